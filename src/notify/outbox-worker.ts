/**
 * The outbox worker: delivers the notification rows the store committed with each access request, or with a
 * notification of its own (the scheduled suggestion run's new suggestions), as signed webhooks, at least once (the
 * transactional outbox).
 *
 * - Claim: `claimDeliveries` leases up to the free concurrency of due rows (their `next_attempt_at` moves to the
 *   lease's end), so a process that dies mid-delivery leaves them to be retried when the lease runs out.
 * - Deliver: the body is rendered from the request as stored now (payloads.ts), signed (webhook-signature.ts) and
 *   POSTed with a timeout over one keep-alive agent per protocol (webhook-transport.ts). 2xx is delivered; anything else (status, timeout,
 *   connection error) is retried after min(max, initial · 2^attempts) · jitter(0.5..1); the attempt that reaches
 *   `max_attempts` is the dead letter. `completeDelivery` records the outcome (and its audit event).
 * - Wake: `wake()` after a commit delivers at once; a timer (unref'd) polls for retries that fall due and for rows
 *   written by another process; `stop()` stops claiming, waits for the deliveries in flight and clears every timer.
 *
 * Never logged or stored: the destination URL (a Slack webhook URL is itself a secret), the secret, the routing
 * key, the response body. A log line carries the destination id, delivery id, status, attempt and HTTP status.
 */
import type { OutboxConfig, WebhookConfig } from '../config/config-types.js';
import { describeError } from '../errors/pdp-error.js';
import type { NotificationRecord, SuggestionRecord } from '../store/index.js';
import type { ApprovalLinks } from './approval-links.js';
import { deliveryLinks, renderDelivery, SUBMITTED_EVENT } from './payloads.js';
import type { NotifiedRequest } from './payloads.js';
import { DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signWebhook } from '../pep/index.js';
import { renderSuggestionDelivery, SUGGESTIONS_EVENT } from './suggestion-payloads.js';
import { WebhookTransport } from './webhook-transport.js';
import type { WebhookFetch } from './webhook-transport.js';

/**
 * A leased outbox row (the store's `claimDeliveries`). `attempts`: tries before this one. Exactly one of
 * `access_request_id` and `notification_id` is set.
 */
export interface ClaimedDelivery {
  id: string;
  access_request_id: string | null;
  notification_id?: string | null;
  destination: string;
  approver_group: string;
  attempts: number;
}

export type DeliveryOutcome = 'delivered' | 'retry' | 'dead';

export interface CompleteDeliveryInput {
  id: string;
  at: string;
  outcome: DeliveryOutcome;
  /** retry only: when it falls due again. */
  next_attempt_at?: string;
  /** retry / dead: what went wrong, never a URL or a response body. */
  error?: string;
  /** The receiver's HTTP status, when it answered. */
  status_code?: number;
}

/** What the worker needs of the store; the SQLite store satisfies it. */
export interface OutboxStore {
  claimDeliveries(input: { now: string; lease_until: string; limit: number }): Promise<readonly ClaimedDelivery[]>;
  completeDelivery(input: CompleteDeliveryInput): Promise<unknown>;
  getAccessRequest(id: string): Promise<NotifiedRequest | null | undefined>;
  /** For notification rows (the store's own notifications); a worker on a store without them fails such rows for good. */
  getNotification?(id: string): Promise<NotificationRecord | undefined>;
  getSuggestion?(id: string): Promise<SuggestionRecord | undefined>;
}

/** The only fields a delivery log line carries. */
export interface DeliveryLogFields {
  destination: string;
  delivery_id: string;
  status: DeliveryOutcome;
  attempt: number;
  status_code?: number;
  /** The worker's own description (`HTTP 500`, `timeout after 5000 ms`, `connection failed (ECONNREFUSED)`). */
  error?: string;
}

/** pino's Logger satisfies it. */
export interface OutboxLogger {
  info(fields: DeliveryLogFields, message: string): void;
  warn(fields: DeliveryLogFields | { error: string }, message: string): void;
}

export interface OutboxWorkerOptions {
  store: OutboxStore;
  /** The destinations by id (the rows' `destination`), with their resolved URL, secret and routing key. */
  webhooks: readonly WebhookConfig[];
  links: ApprovalLinks;
  /** Base URL of the review page and API links (config `escalation.public_url`). */
  publicUrl: string;
  outbox: OutboxConfig;
  logger?: OutboxLogger;
  /** The clock. Default: `new Date()`. */
  now?: () => Date;
  /** Another HTTP client (must apply `signal`). Default: node:http(s) with keep-alive agents. */
  fetch?: WebhookFetch;
  /** How often to look for due rows when nothing woke the worker. Default 1000 ms. */
  pollIntervalMs?: number;
  /** How long a claimed row stays leased to this worker. Default `timeout_ms` + 5000 ms (the delivery's whole exchange is bounded by `timeout_ms`; the rest is margin for committing its outcome). */
  leaseMs?: number;
  /** Jitter source in [0, 1). Default Math.random. */
  random?: () => number;
}

export interface OutboxWorkerStats {
  delivered: number;
  retried: number;
  dead: number;
  in_flight: number;
}

type Attempt = { ok: true; status: number } | { ok: false; error: string; status?: number; permanent?: boolean };

const USER_AGENT = 'agent-pdp-webhooks/1';
/**
 * A timer may fire a millisecond before `Date.now()` reaches its target, and a claim at that instant finds the row
 * not yet due (it would then wait for the next poll): timers aim a little late.
 */
const TIMER_SLACK_MS = 5;

export class OutboxWorker {
  readonly #store: OutboxStore;
  readonly #webhooks: ReadonlyMap<string, WebhookConfig>;
  readonly #links: ApprovalLinks;
  readonly #publicUrl: string;
  readonly #config: OutboxConfig;
  readonly #logger: OutboxLogger | undefined;
  readonly #now: () => Date;
  readonly #pollIntervalMs: number;
  readonly #leaseMs: number;
  readonly #random: () => number;
  readonly #transport: WebhookTransport;
  readonly #claimBatch: number;

  #state: 'idle' | 'running' | 'stopped' = 'idle';
  readonly #inFlight = new Set<Promise<void>>();
  #pumping: Promise<void> | undefined;
  #again = false;
  /** The last claim filled every free slot: there may be more due rows as soon as a slot frees. */
  #backlog = false;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  /** When the retries this worker scheduled fall due (ms, ascending): the timer is re-aimed at the next one. */
  readonly #retryTimes: number[] = [];
  #stats = { delivered: 0, retried: 0, dead: 0 };

  constructor(options: OutboxWorkerOptions) {
    const { outbox } = options;
    for (const key of ['max_attempts', 'initial_backoff_ms', 'max_backoff_ms', 'timeout_ms', 'concurrency'] as const) {
      if (!Number.isSafeInteger(outbox[key]) || outbox[key] <= 0) throw new TypeError(`"outbox.${key}" must be a positive integer`);
    }
    if (typeof options.publicUrl !== 'string' || !/^https?:\/\//.test(options.publicUrl)) throw new TypeError('"publicUrl" must be an http(s) URL');
    const byId = new Map<string, WebhookConfig>();
    for (const hook of options.webhooks) {
      if (byId.has(hook.id)) throw new TypeError(`two webhooks have the id ${JSON.stringify(hook.id)}`);
      byId.set(hook.id, hook);
    }
    this.#store = options.store;
    this.#webhooks = byId;
    this.#links = options.links;
    this.#publicUrl = options.publicUrl;
    this.#config = { ...outbox };
    this.#logger = options.logger;
    this.#now = options.now ?? (() => new Date());
    this.#pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.#leaseMs = options.leaseMs ?? outbox.timeout_ms + 5_000;
    this.#random = options.random ?? Math.random;
    if (!(this.#pollIntervalMs > 0) || !(this.#leaseMs > outbox.timeout_ms)) throw new TypeError('"pollIntervalMs" must be positive and "leaseMs" above "timeout_ms"');
    this.#claimBatch = Math.max(1, Math.floor(outbox.concurrency / 4));
    this.#transport = new WebhookTransport({ timeoutMs: outbox.timeout_ms, maxSockets: outbox.concurrency, fetch: options.fetch });
  }

  /** Starts delivering: due rows at once, then on wake() and on the poll timer. */
  start(): void {
    if (this.#state === 'stopped') throw new TypeError('a stopped OutboxWorker cannot start again: create a new one');
    if (this.#state === 'running') return;
    this.#state = 'running';
    this.#kick();
  }

  /** New rows were committed: deliver them now rather than at the next poll. */
  wake(): void {
    if (this.#state !== 'running') return;
    this.#backlog = true;
    this.#kick();
  }

  /** Stops claiming, waits for every delivery in flight to finish and be recorded, clears the timers. */
  async stop(): Promise<void> {
    if (this.#state !== 'stopped') this.#state = 'stopped';
    this.#clearTimer();
    while (this.#pumping !== undefined || this.#inFlight.size > 0) {
      await this.#pumping;
      await Promise.allSettled([...this.#inFlight]);
    }
    this.#clearTimer();
    this.#transport.close();
  }

  stats(): OutboxWorkerStats {
    return { ...this.#stats, in_flight: this.#inFlight.size };
  }

  #kick(): void {
    if (this.#state !== 'running') return;
    if (this.#pumping !== undefined) {
      this.#again = true;
      return;
    }
    this.#pumping = this.#pump().finally(() => {
      this.#pumping = undefined;
      if (this.#state === 'running') this.#arm(Math.min(this.#now().getTime() + this.#pollIntervalMs, this.#retryTimes[0] ?? Infinity));
    });
  }

  /** Claims due rows into the free slots, and again while a claim filled them or a wake() came in meanwhile. */
  async #pump(): Promise<void> {
    do {
      this.#again = false;
      const free = this.#config.concurrency - this.#inFlight.size;
      if (free <= 0) {
        this.#backlog = true; // a finishing delivery kicks again
        return;
      }
      const now = this.#now();
      let rows: readonly ClaimedDelivery[];
      try {
        rows = await this.#store.claimDeliveries({ now: now.toISOString(), lease_until: new Date(now.getTime() + this.#leaseMs).toISOString(), limit: free });
      } catch (err) {
        this.#logger?.warn({ error: describeError(err) }, 'outbox: claiming deliveries failed; retrying at the next poll');
        return;
      }
      // Rows claimed are leased to us: deliver them even if stop() came in meanwhile (stop waits for them).
      for (const row of rows) this.#launch(row);
      this.#backlog = rows.length >= free;
      if (this.#backlog) this.#again = true;
    } while (this.#again && this.#state === 'running');
  }

  #launch(row: ClaimedDelivery): void {
    const run = this.#deliver(row)
      .catch((err: unknown) => {
        // A defect, not a receiver's failure: the row stays leased and is retried after the lease.
        this.#logger?.warn({ error: describeError(err) }, 'outbox: a delivery failed unexpectedly; it is retried after its lease');
      })
      .finally(() => {
        this.#inFlight.delete(run);
        // Claim in batches: one claim (a write transaction) per quarter of the slots freed, not one per delivery.
        if (this.#backlog && this.#config.concurrency - this.#inFlight.size >= this.#claimBatch) this.#kick();
      });
    this.#inFlight.add(run);
  }

  async #deliver(row: ClaimedDelivery): Promise<void> {
    const attempt = row.attempts + 1;
    const result = await this.#attempt(row);
    const at = this.#now();
    let input: CompleteDeliveryInput;
    if (result.ok) {
      input = { id: row.id, at: at.toISOString(), outcome: 'delivered', status_code: result.status };
    } else if (result.permanent === true || attempt >= this.#config.max_attempts) {
      input = { id: row.id, at: at.toISOString(), outcome: 'dead', error: result.error, ...statusOf(result) };
    } else {
      const next = at.getTime() + this.#backoffMs(row.attempts);
      input = { id: row.id, at: at.toISOString(), outcome: 'retry', next_attempt_at: new Date(next).toISOString(), error: result.error, ...statusOf(result) };
    }
    try {
      await this.#store.completeDelivery(input);
    } catch (err) {
      // The row stays leased; it is tried again when the lease runs out (at-least-once).
      this.#logger?.warn({ error: describeError(err) }, 'outbox: recording a delivery failed; it is retried after its lease');
      return;
    }
    const fields: DeliveryLogFields = { destination: row.destination, delivery_id: row.id, status: input.outcome, attempt, ...statusOf(input) };
    if (input.outcome === 'delivered') {
      this.#stats.delivered += 1;
      this.#logger?.info(fields, 'webhook delivered');
    } else {
      fields.error = input.error as string;
      if (input.outcome === 'retry') {
        this.#stats.retried += 1;
        this.#scheduleRetry(Date.parse(input.next_attempt_at as string));
        this.#logger?.warn(fields, 'webhook delivery failed; retrying');
      } else {
        this.#stats.dead += 1;
        this.#logger?.warn(fields, 'webhook delivery failed for good (dead letter)');
      }
    }
  }

  /** One try: render, sign, POST. Never throws; the error text holds no URL, secret or response body. */
  async #attempt(row: ClaimedDelivery): Promise<Attempt> {
    const hook = this.#webhooks.get(row.destination);
    if (hook === undefined) return { ok: false, error: `destination ${row.destination} is not configured` };
    if (row.access_request_id === null) return this.#attemptNotification(row, hook);
    let request: NotifiedRequest | null | undefined;
    try {
      request = await this.#store.getAccessRequest(row.access_request_id);
    } catch (err) {
      return { ok: false, error: `reading the access request failed: ${describeError(err)}` };
    }
    if (request === null || request === undefined) return { ok: false, error: 'the access request does not exist', permanent: true };
    const now = this.#now();
    let body: string;
    let headers: Record<string, string>;
    try {
      const expiry = new Date(request.expires_at);
      const token = this.#links.issue(request.id, row.approver_group, now, Number.isNaN(expiry.getTime()) ? undefined : expiry);
      body = renderDelivery({
        format: hook.format,
        request,
        delivery_id: row.id,
        approver_group: row.approver_group,
        links: deliveryLinks(this.#publicUrl, request.id, token),
        public_url: this.#publicUrl,
        routing_key: hook.routing_key,
      });
      headers = {
        'content-type': 'application/json',
        'user-agent': USER_AGENT,
        [SIGNATURE_HEADER.toLowerCase()]: signWebhook(hook.secret, body, Math.floor(now.getTime() / 1000)),
        [DELIVERY_HEADER.toLowerCase()]: row.id,
        [EVENT_HEADER.toLowerCase()]: SUBMITTED_EVENT,
      };
    } catch (err) {
      return { ok: false, error: `rendering failed: ${err instanceof TypeError ? err.message : 'unexpected error'}` };
    }
    return this.#post(hook, headers, body);
  }

  /** A notification of the store's own (policy.suggestions): rendered from the suggestions as stored now. */
  async #attemptNotification(row: ClaimedDelivery, hook: WebhookConfig): Promise<Attempt> {
    const id = row.notification_id;
    const store = this.#store;
    if (typeof id !== 'string' || store.getNotification === undefined || store.getSuggestion === undefined) {
      return { ok: false, error: 'the delivery names no notification this worker can read', permanent: true };
    }
    let notification: NotificationRecord | undefined;
    const suggestions: SuggestionRecord[] = [];
    try {
      notification = await store.getNotification(id);
      for (const sid of notification?.suggestion_ids ?? []) {
        const found = await store.getSuggestion(sid);
        if (found !== undefined) suggestions.push(found);
      }
    } catch (err) {
      return { ok: false, error: `reading the notification failed: ${describeError(err)}` };
    }
    if (notification === undefined) return { ok: false, error: 'the notification does not exist', permanent: true };
    const now = this.#now();
    let body: string;
    try {
      body = renderSuggestionDelivery({ format: hook.format, notification, suggestions, delivery_id: row.id, group: row.approver_group, public_url: this.#publicUrl });
    } catch (err) {
      return { ok: false, error: `rendering failed: ${err instanceof TypeError ? err.message : 'unexpected error'}`, permanent: true };
    }
    const headers = {
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
      [SIGNATURE_HEADER.toLowerCase()]: signWebhook(hook.secret, body, Math.floor(now.getTime() / 1000)),
      [DELIVERY_HEADER.toLowerCase()]: row.id,
      [EVENT_HEADER.toLowerCase()]: SUGGESTIONS_EVENT,
    };
    return this.#post(hook, headers, body);
  }

  async #post(hook: WebhookConfig, headers: Record<string, string>, body: string): Promise<Attempt> {
    const sent = await this.#transport.post(hook.url, headers, body);
    if ('error' in sent) return { ok: false, error: sent.error };
    const { status } = sent;
    return status >= 200 && status < 300 ? { ok: true, status } : { ok: false, error: `HTTP ${status}`, status };
  }

  #backoffMs(attemptsBefore: number): number {
    const { initial_backoff_ms: initial, max_backoff_ms: max } = this.#config;
    const base = Math.min(max, initial * 2 ** Math.min(attemptsBefore, 52));
    return Math.max(1, Math.round(base * (0.5 + 0.5 * this.#random())));
  }

  /** Remembers a retry's due time and aims the timer at it if it is the earliest. */
  #scheduleRetry(atMs: number): void {
    if (!Number.isFinite(atMs)) return;
    const times = this.#retryTimes;
    let lo = 0;
    let hi = times.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((times[mid] as number) <= atMs) lo = mid + 1;
      else hi = mid;
    }
    times.splice(lo, 0, atMs);
    this.#arm(atMs);
  }

  /** The poll timer fires no later than `atMs` (unref'd: it never keeps the process alive). */
  #arm(atMs: number): void {
    if (this.#state !== 'running' || !Number.isFinite(atMs)) return;
    if (this.#timer !== undefined && this.#timerAt <= atMs) return;
    this.#clearTimer();
    this.#timerAt = atMs;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      // Retries due by now are claimed by this pump; later ones re-aim the timer when it ends.
      const now = this.#now().getTime();
      let due = 0;
      while (due < this.#retryTimes.length && (this.#retryTimes[due] as number) <= now) due += 1;
      this.#retryTimes.splice(0, due);
      this.#kick();
    }, Math.max(0, atMs - this.#now().getTime()) + TIMER_SLACK_MS);
    this.#timer.unref();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }
}

function statusOf(result: { status?: number; status_code?: number }): { status_code?: number } {
  const code = result.status ?? result.status_code;
  return code === undefined ? {} : { status_code: code };
}
