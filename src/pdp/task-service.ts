import { compileMask } from '../audit/index.js';
import type { CallerConfig } from '../config/config-types.js';
import { PdpError } from '../errors/pdp-error.js';
import type { Store, TaskRecord } from '../store/index.js';
import type { ContextValue, TaskRegistrationV1, TaskV1 } from '../wire/decision-v1.js';

export interface TaskServiceOptions {
  store: Pick<Store, 'registerTask' | 'getTask' | 'completeTask' | 'expireTasks'>;
  defaultTtlSeconds: number;
  maxTtlSeconds: number;
  /**
   * The audit masks (`audit.mask`, paths relative to an event's data): a context field they replace in the
   * `task.registered` or a `decision` event is replaced by the same digest in every task this service returns.
   * Required, so that wiring cannot forget it; `[]` masks nothing.
   */
  mask: readonly string[];
  /** The HMAC key of mask digests (`audit.mask_key_file`). Default none: plain SHA-256, as the store does. */
  maskKey?: string | Uint8Array;
  now?: () => Date;
  /** Told of the elevations a task's completion or expiry ended (the metrics' `elevation_ended`, as the window sweep tells it). */
  observer?: { accessRequestEvent(event: 'elevation_ended', count?: number): void };
}

/**
 * Tasks carry the context decisions trust. An orchestrator registers them; completing one (or its expiry)
 * revokes every token issued for it, in the same transaction.
 */
export class TaskService {
  readonly #o: TaskServiceOptions;
  readonly #maskContext: ContextMasker;

  constructor(options: TaskServiceOptions) {
    this.#o = options;
    this.#maskContext = contextMasker(options.mask, options.maskKey);
  }

  async register(caller: CallerConfig, body: TaskRegistrationV1, traceId: string | null): Promise<TaskV1> {
    const ttl = body.expires_in_seconds ?? this.#o.defaultTtlSeconds;
    if (ttl > this.#o.maxTtlSeconds) {
      throw new PdpError('invalid_request', `expires_in_seconds exceeds the maximum of ${this.#o.maxTtlSeconds}`, {
        details: [{ path: 'expires_in_seconds', message: `must be at most ${this.#o.maxTtlSeconds}` }],
      });
    }
    const now = this.#now();
    const task = await this.#o.store.registerTask({
      id: body.id,
      agent_id: body.agent_id,
      type: body.type,
      context: body.context ?? {},
      registered_by: caller.id,
      registered_at: now.toISOString(),
      expires_at: new Date(now.getTime() + ttl * 1000).toISOString(),
      trace_id: traceId,
    });
    return this.#toWire(task, now);
  }

  /**
   * The task as a caller (orchestrator, auditor, admin) may see it: its context masked. The decider reads the
   * store's unmasked copy instead (`trusted-task.ts`): it must decide on the real values.
   */
  async get(id: string): Promise<TaskV1> {
    const task = await this.#o.store.getTask(id);
    if (!task) throw new PdpError('task_not_found', `task ${id} is not registered`);
    return this.#toWire(task, this.#now());
  }

  async complete(caller: CallerConfig, id: string, traceId: string | null): Promise<TaskV1> {
    const now = this.#now();
    const closure = await this.#o.store.completeTask({ task_id: id, by: caller.id, at: now.toISOString(), trace_id: traceId });
    if (closure.ended_access_requests.length > 0) this.#o.observer?.accessRequestEvent('elevation_ended', closure.ended_access_requests.length);
    return { ...this.#toWire(closure.task, now), revoked_tokens: closure.revoked_jtis.length };
  }

  /** Closes every task past its expiry and revokes its tokens; returns how many were closed. */
  async expireDue(): Promise<number> {
    let closed = 0;
    for (;;) {
      const batch = await this.#o.store.expireTasks({ now: this.#now().toISOString(), limit: 500 });
      closed += batch.length;
      const ended = batch.reduce((n, closure) => n + closure.ended_access_requests.length, 0);
      if (ended > 0) this.#o.observer?.accessRequestEvent('elevation_ended', ended);
      if (batch.length < 500) return closed;
    }
  }

  #now(): Date {
    return (this.#o.now ?? (() => new Date()))();
  }

  #toWire(task: TaskRecord, now: Date): TaskV1 {
    return toWire(task, this.#maskContext(task.context), now);
  }
}

type TaskContext = Record<string, ContextValue>;
type ContextMasker = (context: TaskContext) => TaskContext;

/**
 * A context field is masked when the configured paths replace it in either audit event that carries a task
 * context: `task.registered` (`{ context }`: `context.ssn`, `*.ssn`, `**.ssn`) or `decision`
 * (`{ input: { task: { context } } }`: `input.task.context.ssn`). It is replaced by the digest those events hold
 * (the configured masker's digest of the value), so a masked read still correlates with the trail.
 */
function contextMasker(paths: readonly string[], key: string | Uint8Array | undefined): ContextMasker {
  if (paths.length === 0) return (context) => context;
  const options = key === undefined ? {} : { key };
  const configured = compileMask(paths, options);
  const digestEvery = compileMask(['context.*'], options);
  return (context) => {
    const views = [
      configured({ context }).context as unknown,
      configured({ input: { task: { context } } }).input.task.context as unknown,
    ];
    const entries = Object.entries(context);
    // A view that is no longer an object had the whole context replaced: every field is masked then.
    const masked = (name: string): boolean =>
      views.some((view) => typeof view !== 'object' || view === null || (view as TaskContext)[name] !== context[name]);
    const hidden = entries.filter(([name]) => masked(name));
    if (hidden.length === 0) return context;
    const digests = new Map(Object.entries(digestEvery({ context: Object.fromEntries(hidden) as TaskContext }).context));
    return Object.fromEntries(entries.map(([name, value]) => [name, digests.get(name) ?? value]));
  };
}

function toWire(task: TaskRecord, context: TaskContext, now: Date): TaskV1 {
  const status = task.status === 'active' && Date.parse(task.expires_at) <= now.getTime() ? 'expired' : task.status;
  return {
    id: task.id,
    agent_id: task.agent_id,
    type: task.type,
    context,
    status,
    registered_by: task.registered_by,
    registered_at: task.registered_at,
    expires_at: task.expires_at,
    completed_at: task.completed_at,
  };
}
