import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { StoreStats } from '../store/index.js';

/** What `watchStore` reads of a store's stats. */
type StoreStatsView = Pick<StoreStats, 'transactions' | 'failed_transactions' | 'ops' | 'refused' | 'events' | 'largest_batch' | 'queued' | 'wal_checkpoints'>;
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
    // Across workers (aggregateMetrics): each revision any worker serves, once.
    aggregator: 'max',
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

  readonly proxyCalls = new Counter({
    name: 'agentpdp_proxy_requests_total',
    help: 'Calls through the enforcement proxy by integration, outcome (forwarded, refused, failed) and code (the upstream status, or the refusal or failure code)',
    labelNames: ['integration', 'outcome', 'code'] as const,
    registers: [this.registry],
  });
  readonly proxySeconds = new Histogram({
    name: 'agentpdp_proxy_request_duration_seconds',
    help: 'Time from a proxied call received to its last byte (or its refusal), by integration and outcome',
    labelNames: ['integration', 'outcome'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [this.registry],
  });

  readonly accessRequests = new Counter({
    name: 'agentpdp_access_requests_total',
    help: 'Break-glass access request events (submitted, approved, denied, expired, elevation_ended)',
    labelNames: ['event'] as const,
    registers: [this.registry],
  });
  #outboxWorker: (() => void) | undefined;
  readonly webhookDeliveries = new Counter({
    name: 'agentpdp_webhook_deliveries_total',
    help: 'Approver notification attempts by this process, by outcome (delivered, retried, dead)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
    collect: () => this.#outboxWorker?.(),
  });
  #outbox: (() => Promise<void>) | undefined;
  #store: (() => void) | undefined;
  readonly outboxRows: Gauge<'status'>;
  readonly storeCounts = new Gauge({
    name: 'agentpdp_store',
    help: "The store's writer and WAL checkpointer, read at each scrape: transactions, failed_transactions, ops, refused_ops, events, largest_batch, queued_ops (since start); wal_checkpoint_rounds, wal_checkpoint_frames, wal_checkpoint_busy_rounds, wal_pending_frames (after the last round; -1 before it), wal_catch_ups and wal_catch_up_ms (the writer's pauses for the worker to catch up, and their time), wal_checkpoint_inline (1: the worker failed, the writer checkpoints)",
    labelNames: ['count'] as const,
    registers: [this.registry],
    collect: () => this.#store?.(),
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const read = (): Promise<void> => this.#outbox?.() ?? Promise.resolve();
    this.outboxRows = new Gauge({
      name: 'agentpdp_outbox_notifications',
      help: 'Approver notifications in the store by status (pending, delivered, dead: a dead letter needs an operator)',
      labelNames: ['status'] as const,
      registers: [this.registry],
      // Every worker reads the same store: across workers, one count, not N.
      aggregator: 'max',
      collect: read,
    });
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** This process's metrics as values, for the supervisor to add up with the other workers' (aggregateMetrics). */
  values(): Promise<Array<MetricObjectWithValues<MetricValue<string>>>> {
    return this.registry.getMetricsAsJSON();
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

  /** The enforcement proxy's observer (src/proxy/proxy-server.ts, ProxyObserver). */
  proxied(integration: string, outcome: 'forwarded' | 'refused' | 'failed', code: string, seconds: number): void {
    this.proxyCalls.inc({ integration, outcome, code });
    this.proxySeconds.observe({ integration, outcome }, seconds);
  }

  /** The token service's observer (`TokenServiceOptions.observer`): one count per token event. */
  tokenEvent(event: TokenEvent): void {
    this.tokens.inc({ event });
  }

  /** The access request service's observer: one count per event. */
  accessRequestEvent(event: 'submitted' | 'approved' | 'denied' | 'expired' | 'elevation_ended', count = 1): void {
    if (count > 0) this.accessRequests.inc({ event }, count);
  }

  /**
   * Reads the store's own counts at each scrape (`Store.stats()`): the group-commit writer's transactions, operations
   * and largest batch, what waits for the next transaction, and the background WAL checkpointer's rounds, copied
   * frames, busy rounds and the frames still pending after the last round. What a stall on the write path is read
   * against (a checkpoint that fell behind, a batch that grew).
   */
  watchStore(store: { stats(): StoreStatsView }): void {
    const read = (): void => {
      const s = store.stats();
      const wal = s.wal_checkpoints;
      this.storeCounts.set({ count: 'transactions' }, s.transactions);
      this.storeCounts.set({ count: 'failed_transactions' }, s.failed_transactions);
      this.storeCounts.set({ count: 'ops' }, s.ops);
      this.storeCounts.set({ count: 'refused_ops' }, s.refused);
      this.storeCounts.set({ count: 'events' }, s.events);
      this.storeCounts.set({ count: 'largest_batch' }, s.largest_batch);
      this.storeCounts.set({ count: 'queued_ops' }, s.queued);
      if (wal !== null) {
        this.storeCounts.set({ count: 'wal_checkpoint_rounds' }, wal.rounds);
        this.storeCounts.set({ count: 'wal_checkpoint_frames' }, wal.frames);
        this.storeCounts.set({ count: 'wal_checkpoint_busy_rounds' }, wal.busy);
        this.storeCounts.set({ count: 'wal_pending_frames' }, wal.pending_frames);
        this.storeCounts.set({ count: 'wal_catch_ups' }, wal.catch_ups);
        this.storeCounts.set({ count: 'wal_catch_up_ms' }, wal.catch_up_ms);
        this.storeCounts.set({ count: 'wal_checkpoint_inline' }, wal.mode === 'inline' ? 1 : 0);
      }
    };
    this.#store = read;
  }

  /**
   * Reads the outbox at each scrape: the worker's attempt counts (as counters) and the store's rows by status
   * (a gauge; `dead` > 0 wants an operator: `GET /v1/admin/notifications?status=dead`).
   */
  watchOutbox(worker: { stats(): { delivered: number; retried: number; dead: number } }, store: { outboxCounts(): Promise<Record<'pending' | 'delivered' | 'dead', number>> }): void {
    const seen = { delivered: 0, retried: 0, dead: 0 };
    this.#outboxWorker = () => {
      const stats = worker.stats();
      for (const outcome of ['delivered', 'retried', 'dead'] as const) {
        if (stats[outcome] > seen[outcome]) this.webhookDeliveries.inc({ outcome }, stats[outcome] - seen[outcome]);
        seen[outcome] = stats[outcome];
      }
    };
    this.#outbox = async () => {
      // A store that cannot answer leaves the last counts: /metrics keeps answering (liveness is its job).
      const counts = await store.outboxCounts().catch(() => undefined);
      if (counts === undefined) return;
      for (const status of ['pending', 'delivered', 'dead'] as const) this.outboxRows.set({ status }, counts[status]);
    };
  }

  policyActive(revision: string, bundle: string, policies: string): void {
    this.activeRevision.reset();
    this.activeRevision.set({ revision, bundle, policies }, 1);
  }
}

/**
 * The workers' metrics as one exposition (`serve --workers N`: `/metrics` on any worker answers for all): counters
 * and histograms added up, each gauge as its `aggregator` says (default: the sum). `parts`: each worker's `values()`.
 */
export async function aggregateMetrics(parts: ReadonlyArray<Array<MetricObjectWithValues<MetricValue<string>>>>): Promise<{ text: string; contentType: string }> {
  const registry = AggregatorRegistry.aggregate(parts as Array<Array<MetricObjectWithValues<MetricValue<string>>>>);
  return { text: await registry.metrics(), contentType: registry.contentType };
}
