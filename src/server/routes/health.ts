import { Router } from 'express';
import type { PolicyEngine } from '../../pdp/policy-engine.js';
import type { Metrics } from '../metrics.js';

/** Liveness, readiness (with the active revision) and Prometheus metrics. Unauthenticated by design. */
export function healthRoutes(engine: PolicyEngine, metrics: Metrics): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', (_req, res) => {
    const active = engine.active;
    if (!active) {
      res.status(503).json({ status: 'not_ready', reason: 'no policy loaded' });
      return;
    }
    res.json({
      status: 'ready',
      policy_revision: active.revision,
      bundle_revision: active.evaluator.revisions.bundle,
      policies_revision: active.evaluator.revisions.policies,
      agents: active.policySet.agents.length,
      loaded_at: active.loadedAt.toISOString(),
    });
  });
  router.get('/metrics', async (_req, res) => {
    res.setHeader('content-type', metrics.registry.contentType);
    res.send(await metrics.registry.metrics());
  });
  return router;
}
