/** Tasks: registration, lookup, completion and expiry. Closing a task revokes its tokens in the same transaction.
 * Transactions and reads are generators declared at module level, never inline `function*` expressions
 * (src/store/README.md, "Programs").
 */
import { taskCompletedEvent, taskRegisteredEvent, tokenRevokedEvent } from '../audit/index.js';
import type { TaskCloseStatus } from '../audit/index.js';
import { PdpError } from '../errors/pdp-error.js';
import { endElevationsOfTask } from './access-request-ops.js';
import { encodeData } from './chain-writer.js';
import type { PreparedEvent } from './chain-writer.js';
import { taskFromRow, tokenFromRow } from './rows.js';
import type { TaskRow, TokenRow } from './rows.js';
import type { CompleteTaskInput, ExpireTasksInput, RegisterTaskInput, TaskClosure, TaskRecord } from './store.js';
import { SQL } from './sql.js';
import { all, get, run } from './sql-program.js';
import type { Program } from './sql-program.js';
import { requireId, requireTime } from './store-context.js';
import type { StoreContext } from './store-context.js';

export async function registerTask(ctx: StoreContext, input: RegisterTaskInput): Promise<TaskRecord> {
  requireId('id', input.id);
  requireId('agent_id', input.agent_id);
  requireId('type', input.type);
  requireId('registered_by', input.registered_by);
  requireTime('registered_at', input.registered_at);
  requireTime('expires_at', input.expires_at);
  const contextJson = encodeData(input.context);
  const record: TaskRecord = {
    id: input.id,
    agent_id: input.agent_id,
    type: input.type,
    context: { ...input.context },
    registered_by: input.registered_by,
    registered_at: input.registered_at,
    expires_at: input.expires_at,
    status: 'active',
    completed_at: null,
    completed_by: null,
    elevations: [],
  };
  const event = ctx.chain.prepare(
    taskRegisteredEvent(
      input.registered_at,
      { task_id: input.id, agent_id: input.agent_id, caller_id: input.registered_by, trace_id: input.trace_id },
      { type: input.type, context: record.context, expires_at: input.expires_at },
    ),
  );
  return ctx.write(() => registerProgram(ctx, input, contextJson, event, record));
}

/** registerTask's transaction. */
function* registerProgram(ctx: StoreContext, input: RegisterTaskInput, contextJson: string, event: PreparedEvent, record: TaskRecord): Program<TaskRecord> {
  if ((yield* get(SQL.taskExists, input.id)) !== undefined) {
    throw new PdpError('task_exists', `task ${input.id} is already registered`);
  }
  yield* run(
    SQL.insertTask,
    input.id,
    input.agent_id,
    input.type,
    contextJson,
    input.registered_by,
    input.registered_at,
    input.expires_at,
  );
  yield* ctx.chain.append(event);
  return record;
}

export async function getTask(ctx: StoreContext, id: string): Promise<TaskRecord | undefined> {
  return ctx.read(() => readTask(id));
}

/** getTask's program. */
function* readTask(id: string): Program<TaskRecord | undefined> {
  const row = yield* get<TaskRow>(SQL.selectTask, id);
  return row === undefined ? undefined : taskFromRow(row);
}

export async function completeTask(ctx: StoreContext, input: CompleteTaskInput): Promise<TaskClosure> {
  requireId('task_id', input.task_id);
  requireId('by', input.by);
  requireTime('at', input.at);
  return ctx.write(() => completeProgram(ctx, input));
}

/** completeTask's transaction. */
function* completeProgram(ctx: StoreContext, input: CompleteTaskInput): Program<TaskClosure> {
  const row = yield* get<TaskRow>(SQL.selectTask, input.task_id);
  if (row === undefined) throw new PdpError('task_not_found', `task ${input.task_id} is not registered`);
  if (row.status !== 'active') throw new PdpError('task_not_active', `task ${input.task_id} is ${row.status}`);
  const task: ClosedTask = {
    ...taskFromRow(row),
    status: 'completed',
    completed_at: input.at,
    completed_by: input.by,
  };
  return yield* closeTask(ctx, task, { at: input.at, by: input.by, trace_id: input.trace_id ?? null });
}

export async function expireTasks(ctx: StoreContext, input: ExpireTasksInput): Promise<TaskClosure[]> {
  requireTime('now', input.now);
  const limit = input.limit ?? 500;
  if (!Number.isSafeInteger(limit) || limit < 1) throw new TypeError('limit must be a positive integer');
  return ctx.write(() => expireProgram(ctx, input, limit));
}

/** expireTasks' transaction. */
function* expireProgram(ctx: StoreContext, input: ExpireTasksInput, limit: number): Program<TaskClosure[]> {
  const rows = yield* all<TaskRow>(SQL.selectExpiredTasks, input.now, limit);
  const closed: TaskClosure[] = [];
  for (const row of rows) {
    const task: ClosedTask = { ...taskFromRow(row), status: 'expired' };
    closed.push(yield* closeTask(ctx, task, { at: input.now, by: null, trace_id: null }));
  }
  return closed;
}

type ClosedTask = TaskRecord & { status: TaskCloseStatus };

/**
 * Inside a transaction: marks `task` closed (its status says how), revokes every unrevoked token of the task, ends
 * its running elevations, and appends task.completed followed by one token.revoked per token and one
 * elevation.ended per elevation.
 */
function* closeTask(
  ctx: StoreContext,
  task: ClosedTask,
  how: { at: string; by: string | null; trace_id: string | null },
): Program<TaskClosure> {
  yield* run(SQL.closeTask, task.status, task.completed_at, task.completed_by, task.id);
  const reason = task.status === 'completed' ? 'task_completed' : 'task_expired';
  const tokens = (yield* all<TokenRow>(SQL.selectUnrevokedTokensOfTask, task.id)).map(tokenFromRow);
  for (const token of tokens) yield* run(SQL.revokeToken, how.at, how.by, reason, token.jti);
  const revokedJtis = tokens.map((t) => t.jti);
  const common = { task_id: task.id, agent_id: task.agent_id, caller_id: how.by, trace_id: how.trace_id };
  yield* ctx.chain.append(
    ctx.chain.prepare(
      taskCompletedEvent(how.at, common, { status: task.status, expires_at: task.expires_at, revoked_jtis: revokedJtis }),
    ),
  );
  for (const token of tokens) {
    yield* ctx.chain.append(
      ctx.chain.prepare(
        tokenRevokedEvent(
          how.at,
          { jti: token.jti, decision_id: token.decision_id, ...common },
          { reason, issued_to: token.caller_id },
        ),
      ),
    );
  }
  const ended = yield* endElevationsOfTask(ctx, task, how);
  return { task, revoked_jtis: revokedJtis, ended_access_requests: ended };
}
