import type { PolicyEngine } from '../../pdp/policy-engine.js';
import type { Metrics } from '../metrics.js';
import { json } from '../openapi.js';
import { publicRoute, type Route } from '../route.js';

/** Liveness, readiness (with the active revision), Prometheus metrics and the API document. Unauthenticated by design. */
export function healthRoutes(
  engine: PolicyEngine,
  metrics: Metrics,
  openapi: () => object,
  draining: () => boolean = () => false,
  metricsText?: () => Promise<{ text: string; contentType: string } | undefined>,
): Route[] {
  return [
    publicRoute({
      method: 'GET',
      path: '/healthz',
      handle: () => ({ status: 200, json: { status: 'ok' } }),
      openapi: { operationId: 'getHealth', summary: 'Liveness', responses: { '200': { description: 'alive', content: json('Health') } } },
    }),
    publicRoute({
      method: 'GET',
      path: '/readyz',
      handle() {
        const active = engine.active;
        const refusal = engine.refusal;
        // Ready while the last good set serves; `policy_on_disk` says whether that is what the files hold.
        const onDisk = refusal
          ? // Unauthenticated: the code, where the first error is and since when; the full message stays in the log.
            { policy_on_disk: 'refused', refused: { code: refusal.code, first_error: refusal.first_error, since: refusal.since.toISOString() } }
          : { policy_on_disk: 'loaded' };
        if (!active) return { status: 503, json: { status: 'not_ready', reason: 'no policy loaded', ...onDisk } };
        // Shutting down: in-flight requests finish, new ones should go elsewhere.
        if (draining()) return { status: 503, json: { status: 'not_ready', reason: 'shutting down', ...onDisk } };
        return {
          status: 200,
          json: {
            status: 'ready',
            policy_revision: active.revision,
            bundle_revision: active.evaluator.revisions.bundle,
            policies_revision: active.evaluator.revisions.policies,
            agents: active.policySet.agents.length,
            loaded_at: active.loadedAt.toISOString(),
            ...onDisk,
          },
        };
      },
      openapi: {
        operationId: 'getReadiness',
        summary: 'Readiness and the active policy revision',
        responses: { '200': { description: 'ready', content: json('Ready') }, '503': { description: 'no policy loaded, or shutting down', content: json('Ready') } },
      },
    }),
    publicRoute({
      method: 'GET',
      path: '/metrics',
      async handle() {
        if (metricsText === undefined) return { status: 200, text: await metrics.registry.metrics(), contentType: metrics.registry.contentType };
        // A worker of `serve --workers N`: every worker's counts, added up by the supervisor, or a failed scrape
        // (never this worker's alone, which a scraper would read as the others' counters resetting).
        const sum = await metricsText();
        return sum === undefined ? { status: 503, text: 'the workers\' metrics could not be collected\n', contentType: 'text/plain; charset=utf-8' } : { status: 200, text: sum.text, contentType: sum.contentType };
      },
      openapi: {
        operationId: 'getMetrics',
        summary: 'Prometheus metrics',
        description: 'With `serve --workers N`, every worker\'s counts added up (any worker answers for all).',
        responses: { '200': { description: 'text exposition format' }, '503': { description: 'with workers: their metrics could not be collected in time (plain text, as the exposition is)', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    }),
    publicRoute({
      method: 'GET',
      path: '/openapi.json',
      handle: () => ({ status: 200, json: openapi() }),
      openapi: { operationId: 'getOpenApi', summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1' } } },
    }),
  ];
}
