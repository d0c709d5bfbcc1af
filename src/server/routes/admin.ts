import { PdpError } from '../../errors/pdp-error.js';
import type { PolicyEngine } from '../../pdp/policy-engine.js';
import { errors, json } from '../openapi.js';
import { route, type Route } from '../route.js';

const POLICY_REFUSALS: ReadonlySet<string> = new Set(['policy_invalid', 'bundle_invalid', 'bundle_missing', 'evaluation_failed', 'config_invalid']);

/**
 * POST /v1/admin/reload (role admin): the HTTP twin of SIGHUP: policies, issuer keys and (served from a config file)
 * the callers. A refused policy set (`policy_invalid`) or config (`config_refused`: then nothing is reloaded, the
 * config is read first) answers 422 with its errors; what was in force stays.
 */
export function adminRoutes(engine: PolicyEngine, reload: () => Promise<unknown>): Route[] {
  return [
    route({
      method: 'POST',
      path: '/v1/admin/reload',
      roles: ['admin'],
      async handle() {
        await reload().catch((err: unknown) => {
          // A refused policy set is the author's to fix: say what and where. Anything else (the key folder, say)
          // stays a coded 5xx whose detail goes to the log, not to the caller.
          if (!(err instanceof PdpError) || !POLICY_REFUSALS.has(err.code)) throw err;
          if (err.code === 'config_invalid') {
            throw new PdpError('config_refused', `config refused, nothing was reloaded: ${err.message}`, { details: err.details });
          }
          throw new PdpError('policy_invalid', `policy set refused, the previous one stays in force: ${err.message}`, { details: err.details });
        });
        const active = engine.active;
        return { status: 200, json: { status: 'loaded', policy_revision: active?.revision, loaded_at: active?.loadedAt.toISOString() } };
      },
      openapi: {
        operationId: 'reloadPolicy',
        summary: 'Reload the bundle and agent policies now; SIGHUP does the same',
        responses: { '200': { description: 'loaded', content: json('Reloaded') }, ...errors(422, 503) },
      },
    }),
  ];
}
