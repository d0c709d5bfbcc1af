import { PdpError } from '../../errors/pdp-error.js';
import type { PolicyEngine } from '../../pdp/policy-engine.js';
import type { DeliveryStatus, Store } from '../../store/index.js';
import { errors, json } from '../openapi.js';
import { route, type Route } from '../route.js';

const POLICY_REFUSALS: ReadonlySet<string> = new Set(['policy_invalid', 'bundle_invalid', 'bundle_missing', 'evaluation_failed', 'config_invalid']);

/**
 * POST /v1/admin/reload (role admin): the HTTP twin of SIGHUP: policies, issuer keys and (served from a config file)
 * the callers. A refused policy set (`policy_invalid`) or config (`config_refused`: then nothing is reloaded, the
 * config is read first) answers 422 with its errors; what was in force stays.
 */
export function adminRoutes(engine: PolicyEngine, reload: () => Promise<unknown>, outbox: Pick<Store, 'listDeliveries' | 'outboxCounts'>): Route[] {
  return [
    route({
      method: 'GET',
      path: '/v1/admin/notifications',
      roles: ['admin'],
      async handle({ query }) {
        const status = single(query, 'status');
        if (status !== undefined && !DELIVERY_STATUSES.includes(status as DeliveryStatus)) {
          throw new PdpError('invalid_request', `status must be one of ${DELIVERY_STATUSES.join(', ')}`, { details: [{ path: 'status', message: 'unknown status' }] });
        }
        const accessRequestId = single(query, 'access_request_id');
        const items = await outbox.listDeliveries({
          ...(status === undefined ? {} : { status: status as DeliveryStatus }),
          ...(accessRequestId === undefined ? {} : { access_request_id: accessRequestId }),
          limit: 200,
        });
        return { status: 200, json: { counts: await outbox.outboxCounts(), items } };
      },
      openapi: {
        operationId: 'listNotifications',
        summary: 'Approver notifications in the outbox (a dead letter: `status=dead`), oldest first, at most 200',
        parameters: [
          { name: 'status', in: 'query', required: false, schema: { enum: ['pending', 'delivered', 'dead'] } },
          { name: 'access_request_id', in: 'query', required: false, schema: { type: 'string' } },
        ],
        responses: { '200': { description: 'counts by status, and the matching notifications', content: json('NotificationListV1') }, ...errors(400, 503) },
      },
    }),
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

const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['pending', 'delivered', 'dead'];

function single(query: Readonly<Record<string, string | string[]>>, name: string): string | undefined {
  const value = query[name];
  if (Array.isArray(value)) throw new PdpError('invalid_request', `${name} given twice`, { details: [{ path: name, message: 'given more than once' }] });
  return value;
}
