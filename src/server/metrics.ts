import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { TokenEvent } from '../pdp/token-service.js';
import type { Outcome, Reason } from '../policy/decision-types.js';

/** Prometheus metrics of one PDP instance, on its own registry (tests build many apps in one process). */
export class Metrics {
  readonly registry = new Registry();
  readonly decisions = new Counter({
    name: 'agentpdp_decisions_total',
    help: 'Decisions by outcome (allow, deny, undefined, error) and reason code',
    labelNames: ['outcome', 'reason'] as const,
    registers: [this.registry],
  });
  readonly evaluationSeconds = new Histogram({
    name: 'agentpdp_evaluation_duration_seconds',
    help: 'Time spent evaluating the policy for one decision',
    buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.05],
    registers: [this.registry],
  });
  readonly requestSeconds = new Histogram({
    name: 'agentpdp_http_request_duration_seconds',
    help: 'HTTP request latency by route, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
    registers: [this.registry],
  });
  readonly reloads = new Counter({
    name: 'agentpdp_policy_reloads_total',
    help: 'Policy loads by result (loaded, refused)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly activeRevision = new Gauge({
    name: 'agentpdp_policy_active_revision_info',
    help: 'The active policy revision (value 1), with its bundle and agent-policy revisions',
    labelNames: ['revision', 'bundle', 'policies'] as const,
    registers: [this.registry],
  });
  readonly authFailures = new Counter({
    name: 'agentpdp_auth_failures_total',
    help: 'Requests refused for a missing or unknown API key',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly tokens = new Counter({
    name: 'agentpdp_tokens_total',
    help: 'Token issuer events (issued, refused, revoked, introspected)',
    labelNames: ['event'] as const,
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  decided(outcome: Outcome, reasons: readonly Reason[], evaluationSeconds: number): void {
    for (const reason of reasons) this.decisions.inc({ outcome, reason: reason.code });
    if (reasons.length === 0) this.decisions.inc({ outcome, reason: 'none' });
    this.evaluationSeconds.observe(evaluationSeconds);
  }

  /** A decision that could not be made (503): outcome `error`, the error code as its reason. */
  failed(code: string): void {
    this.decisions.inc({ outcome: 'error', reason: code });
  }

  /** The token service's observer (`TokenServiceOptions.observer`): one count per token event. */
  tokenEvent(event: TokenEvent): void {
    this.tokens.inc({ event });
  }

  policyActive(revision: string, bundle: string, policies: string): void {
    this.activeRevision.reset();
    this.activeRevision.set({ revision, bundle, policies }, 1);
  }
}
