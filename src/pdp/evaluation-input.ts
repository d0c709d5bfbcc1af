/**
 * The one place an `EvaluationInputV1` (docs/architecture.md, "Evaluation input (v1)") is assembled. The server's
 * decider and the CLI's `decide` both build it here, so a new input field cannot reach one and miss the other.
 * The input is never the caller's request verbatim: the caller id is the authenticated one and the task is the
 * trusted one (`trusted-task.ts`). The time is the one input field that needs the caller's clock: it is set when
 * `now` is passed (the decider passes the instant it read for the decision), absent otherwise.
 */
import type { ElevationInputV1, EvaluationInputV1 } from '../policy/decision-types.js';
import { sharedEvaluationTime } from '../wire/evaluation-time.js';
import type { DecisionRequestV1 } from '../wire/decision-v1.js';

export { evaluationTime } from '../wire/evaluation-time.js';

/** The task as the policy sees it. */
export type EvaluationTask = EvaluationInputV1['task'];

/**
 * The input for `request`, asked by `callerId`, about `task`, decided at `now`. Scopes are deduplicated (first
 * occurrence order); `resource` and `ttl_seconds` are present exactly when the request has them, `time` exactly
 * when `now` is given. The decider passes the one `now` it read for the decision, so the time the policy saw is
 * the one the decision event records and a replay sees. `elevation`: the active elevation the decider found by
 * key (agent, task, integration, record) for this request; `input.elevation` exactly when it is given.
 */
export function buildEvaluationInput(
  request: DecisionRequestV1,
  callerId: string,
  task: EvaluationTask,
  now?: Date,
  elevation?: ElevationInputV1,
): EvaluationInputV1 {
  return {
    agent_id: request.agent_id,
    caller_id: callerId,
    task,
    integration: request.integration,
    scopes: [...new Set(request.scopes)],
    ...(request.resource !== undefined ? { resource: request.resource } : {}),
    ...(request.ttl_seconds !== undefined ? { ttl_seconds: request.ttl_seconds } : {}),
    ...(now !== undefined ? { time: sharedEvaluationTime(now) } : {}),
    ...(elevation !== undefined ? { elevation } : {}),
  };
}

/**
 * A task no orchestrator registered, as the request describes it: its context (default `{}`) and its type when
 * given. Only trusted callers' assertions, and the CLI's local what-if evaluations, are built from it.
 */
export function unregisteredTask(task: DecisionRequestV1['task']): EvaluationTask {
  return {
    id: task.id,
    ...(task.type !== undefined ? { type: task.type } : {}),
    context: task.context ?? {},
    registered: false,
  };
}
