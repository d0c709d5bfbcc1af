import type { CallerConfig } from '../config/config-types.js';
import { PdpError } from '../errors/pdp-error.js';
import type { Store, TaskRecord } from '../store/index.js';
import type { TaskRegistrationV1, TaskV1 } from '../wire/decision-v1.js';

export interface TaskServiceOptions {
  store: Pick<Store, 'registerTask' | 'getTask' | 'completeTask' | 'expireTasks'>;
  defaultTtlSeconds: number;
  maxTtlSeconds: number;
  now?: () => Date;
}

/**
 * Tasks carry the context decisions trust. An orchestrator registers them; completing one (or its expiry)
 * revokes every token issued for it, in the same transaction.
 */
export class TaskService {
  readonly #o: TaskServiceOptions;

  constructor(options: TaskServiceOptions) {
    this.#o = options;
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
    return toWire(task, now);
  }

  async get(id: string): Promise<TaskV1> {
    const task = await this.#o.store.getTask(id);
    if (!task) throw new PdpError('task_not_found', `task ${id} is not registered`);
    return toWire(task, this.#now());
  }

  async complete(caller: CallerConfig, id: string, traceId: string | null): Promise<TaskV1> {
    const now = this.#now();
    const closure = await this.#o.store.completeTask({ task_id: id, by: caller.id, at: now.toISOString(), trace_id: traceId });
    return { ...toWire(closure.task, now), revoked_tokens: closure.revoked_jtis.length };
  }

  /** Closes every task past its expiry and revokes its tokens; returns how many were closed. */
  async expireDue(): Promise<number> {
    let closed = 0;
    for (;;) {
      const batch = await this.#o.store.expireTasks({ now: this.#now().toISOString(), limit: 500 });
      closed += batch.length;
      if (batch.length < 500) return closed;
    }
  }

  #now(): Date {
    return (this.#o.now ?? (() => new Date()))();
  }
}

function toWire(task: TaskRecord, now: Date): TaskV1 {
  const status = task.status === 'active' && Date.parse(task.expires_at) <= now.getTime() ? 'expired' : task.status;
  return {
    id: task.id,
    agent_id: task.agent_id,
    type: task.type,
    context: task.context,
    status,
    registered_by: task.registered_by,
    registered_at: task.registered_at,
    expires_at: task.expires_at,
    completed_at: task.completed_at,
  };
}
