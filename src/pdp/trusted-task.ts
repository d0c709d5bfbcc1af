import type { CallerConfig } from '../config/config-types.js';
import { PdpError } from '../errors/pdp-error.js';
import type { EvaluationInputV1, Reason } from '../policy/decision-types.js';
import type { TaskElevation } from '../store/index.js';
import type { ContextValue, DecisionRequestV1 } from '../wire/decision-v1.js';
import { unregisteredTask } from './evaluation-input.js';

/** A registered task as the store returns it. */
export interface RegisteredTask {
  id: string;
  agent_id: string;
  type: string;
  context: Record<string, ContextValue>;
  expires_at: string;
  completed_at: string | null;
  /** The windows approvers granted the task (the store keeps them in the task row); absent: none. */
  elevations?: readonly TaskElevation[];
}

export interface TaskLookup {
  getTask(id: string): RegisteredTask | undefined | Promise<RegisteredTask | undefined>;
}

export interface ResolvedTask {
  input: EvaluationInputV1['task'];
  /** Set when the task itself rules the request out before policy is consulted. */
  denial?: Reason;
  /**
   * The windows approvers granted a registered task (read with it: no second read); undefined for a task no
   * orchestrator registered, whose elevations, if any, the store is asked for.
   */
  elevations: readonly TaskElevation[] | undefined;
}

/**
 * Task context is a self-authorization hazard if the agent can invent it. A registered task's type and context
 * come from the orchestrator that registered it; inline context is accepted only from callers trusted to assert
 * it. Anything that disagrees with the registration is a denial, recorded like any other.
 */
export async function resolveTask(
  lookup: TaskLookup,
  caller: CallerConfig,
  request: Pick<DecisionRequestV1, 'agent_id' | 'task'>,
  now: Date,
): Promise<ResolvedTask> {
  const asserted = request.task.context !== undefined || request.task.type !== undefined;
  const registered = await lookup.getTask(request.task.id);
  if (!registered) {
    if (asserted && !caller.may_assert_context) {
      throw new PdpError('context_assertion_forbidden', `caller ${caller.id} may not assert task context`, {
        details: [{ path: request.task.context !== undefined ? 'task.context' : 'task.type', message: 'register the task through an orchestrator, then send only task.id' }],
      });
    }
    const input = unregisteredTask(request.task);
    if (!caller.may_assert_context) {
      return { input, denial: reason('task_not_registered', `task ${request.task.id} is not registered`), elevations: [] };
    }
    return { input, elevations: undefined };
  }
  const elevations = registered.elevations ?? [];
  const input = { id: registered.id, type: registered.type, context: registered.context, registered: true };
  if (registered.agent_id !== request.agent_id) {
    return { input, denial: reason('task_agent_mismatch', `task ${registered.id} belongs to another agent`), elevations };
  }
  if (registered.completed_at !== null) {
    return { input, denial: reason('task_completed', `task ${registered.id} is completed`), elevations };
  }
  if (Date.parse(registered.expires_at) <= now.getTime()) {
    return { input, denial: reason('task_expired', `task ${registered.id} has expired`), elevations };
  }
  if (
    (request.task.type !== undefined && request.task.type !== registered.type) ||
    (request.task.context !== undefined && !sameContext(request.task.context, registered.context))
  ) {
    return { input, denial: reason('task_context_mismatch', 'the request asserts a task type or context that differs from the registered task'), elevations };
  }
  return { input, elevations };
}

function reason(code: string, message: string): Reason {
  return { code, message };
}

function sameContext(a: Record<string, ContextValue>, b: Record<string, ContextValue>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && b[k] === a[k]);
}
