import { Router } from 'express';
import type { PolicyEngine } from '../../pdp/policy-engine.js';
import { PdpError } from '../../errors/pdp-error.js';
import { requireRole } from '../authenticate.js';

/** POST /v1/admin/reload (role admin): the HTTP twin of SIGHUP. A refused set answers 422 with its errors. */
export function adminRoutes(engine: PolicyEngine, reload: () => Promise<unknown> = () => engine.reload()): Router {
  const router = Router();
  router.post('/v1/admin/reload', requireRole('admin'), async (_req, res) => {
    await reload().catch((err: unknown) => {
      const error = err instanceof PdpError ? err : undefined;
      throw new PdpError('policy_invalid', `policy set refused, the previous one stays in force: ${error?.message ?? 'load failed'}`, {
        details: error?.details ?? [],
      });
    });
    const active = engine.active;
    res.json({ status: 'loaded', policy_revision: active?.revision, loaded_at: active?.loadedAt.toISOString() });
  });
  return router;
}
