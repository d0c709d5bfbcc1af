import { Router } from 'express';
import type { PolicyEngine } from '../../pdp/policy-engine.js';
import { PdpError } from '../../errors/pdp-error.js';
import { requireRole } from '../authenticate.js';

const POLICY_REFUSALS: ReadonlySet<string> = new Set(['policy_invalid', 'bundle_invalid', 'bundle_missing', 'evaluation_failed']);

/** POST /v1/admin/reload (role admin): the HTTP twin of SIGHUP. A refused set answers 422 with its errors. */
export function adminRoutes(engine: PolicyEngine, reload: () => Promise<unknown> = () => engine.reload()): Router {
  const router = Router();
  router.post('/v1/admin/reload', requireRole('admin'), async (_req, res) => {
    await reload().catch((err: unknown) => {
      // A refused policy set is the author's to fix: say what and where. Anything else (the key folder, say)
      // stays a coded 5xx whose detail goes to the log, not to the caller.
      if (!(err instanceof PdpError) || !POLICY_REFUSALS.has(err.code)) throw err;
      throw new PdpError('policy_invalid', `policy set refused, the previous one stays in force: ${err.message}`, {
        details: err.details,
      });
    });
    const active = engine.active;
    res.json({ status: 'loaded', policy_revision: active?.revision, loaded_at: active?.loadedAt.toISOString() });
  });
  return router;
}
