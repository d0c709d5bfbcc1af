/**
 * Access requests (break-glass escalation): submit (with its outbox rows), list, approve or deny once, look up the
 * running elevation by key, expire and end by time, end with the task. Every event carries the DENIAL's decision
 * id, so the denial's chain (decisionChain) lists the request's whole life.
 */
import {
  accessRequestApprovedEvent,
  accessRequestDeniedEvent,
  accessRequestExpiredEvent,
  accessRequestSubmittedEvent,
  elevationEndedEvent,
} from '../audit/index.js';
import type { TaskCloseStatus } from '../audit/index.js';
import { PdpError } from '../errors/pdp-error.js';
import { ACCESS_REQUEST_STATUSES } from '../wire/access-request-v1.js';
import type { ElevationEndReason } from '../wire/access-request-v1.js';
import { encodeData } from './chain-writer.js';
import { accessRequestFromRow } from './rows.js';
import { parseTaskElevations, type AccessRequestRow } from './rows.js';
import { SQL, accessRequestPageSql } from './sql.js';
import { all, get, run } from './sql-program.js';
import type { Program } from './sql-program.js';
import type {
  AccessRequestList,
  AccessRequestRecord,
  AccessRequestSweep,
  CreateAccessRequestInput,
  CreatedAccessRequest,
  DecideAccessRequestInput,
  ElevationRecord,
  FindElevationsInput,
  ListAccessRequestsQuery,
  SweepAccessRequestsInput,
  TaskElevation,
} from './store.js';
import { requireId, requireTime } from './store-context.js';
import type { StoreContext } from './store-context.js';

/** Most rows a listing returns per call. */
export const MAX_LIST_LIMIT = 1000;

export async function createAccessRequest(ctx: StoreContext, input: CreateAccessRequestInput): Promise<CreatedAccessRequest> {
  requireId('id', input.id);
  requireId('decision_id', input.decision_id);
  requireId('requested_by', input.requested_by);
  requireId('agent_id', input.agent_id);
  requireId('task_id', input.task_id);
  requireId('integration', input.integration);
  requireId('policy_revision', input.policy_revision);
  requireTime('now', input.now);
  requireTime('expires_at', input.expires_at);
  requireStrings('scopes', input.scopes);
  requireStrings('approver_groups', input.approver_groups);
  requireCount('duration_seconds', input.duration_seconds);
  requireCount('max_duration_seconds', input.max_duration_seconds);
  requireResource(input.resource);
  if (input.reason !== null && typeof input.reason !== 'string') throw new TypeError('reason must be a string or null');
  const idempotencyKey = input.idempotency_key ?? null;
  if (idempotencyKey !== null) requireId('idempotency_key', idempotencyKey);
  const requestHash = input.request_hash ?? null;
  if (requestHash !== null) requireId('request_hash', requestHash);
  const deliveryIds = new Set<string>();
  for (const d of input.deliveries) {
    requireId('deliveries[].id', d.id);
    requireId('deliveries[].destination', d.destination);
    requireId('deliveries[].approver_group', d.approver_group);
    if (deliveryIds.has(d.id)) throw new TypeError(`delivery id ${d.id} is listed twice`);
    deliveryIds.add(d.id);
  }
  const record: AccessRequestRecord = {
    id: input.id,
    status: 'pending',
    expires_at: input.expires_at,
    decision_id: input.decision_id,
    requested_by: input.requested_by,
    agent_id: input.agent_id,
    task_id: input.task_id,
    integration: input.integration,
    resource: input.resource === null ? null : { type: input.resource.type, id: input.resource.id },
    scopes: [...input.scopes],
    reason: input.reason,
    duration_seconds: input.duration_seconds,
    max_duration_seconds: input.max_duration_seconds,
    approver_groups: [...input.approver_groups],
    policy_revision: input.policy_revision,
    created_at: input.now,
    decided_at: null,
    decided_by: null,
    note: null,
    approved_until: null,
    ended_at: null,
    ended_reason: null,
    idempotency_key: idempotencyKey,
    request_hash: requestHash,
    trace_id: input.trace_id ?? null,
  };
  const scopesJson = encodeData(record.scopes);
  const groupsJson = encodeData(record.approver_groups);
  const event = ctx.chain.prepare(
    accessRequestSubmittedEvent(
      input.now,
      { decision_id: record.decision_id, agent_id: record.agent_id, task_id: record.task_id, caller_id: record.requested_by, trace_id: record.trace_id },
      {
        access_request_id: record.id,
        integration: record.integration,
        scopes: record.scopes,
        resource: record.resource,
        reason: record.reason,
        duration_seconds: record.duration_seconds,
        max_duration_seconds: record.max_duration_seconds,
        approver_groups: record.approver_groups,
        expires_at: record.expires_at,
        policy_revision: record.policy_revision,
      },
    ),
  );
  return ctx.write(function* () {
    if (idempotencyKey !== null) {
      const seen = yield* get<AccessRequestRow>(SQL.selectAccessRequestByKey, record.requested_by, idempotencyKey);
      if (seen !== undefined) {
        if (seen.request_hash !== requestHash) {
          throw new PdpError('duplicate_request', 'this Idempotency-Key was used for another request');
        }
        return { request: accessRequestFromRow(seen), created: false };
      }
    }
    const denial = yield* get<{ caller_id: string }>(SQL.selectDecisionCaller, record.decision_id);
    if (denial === undefined) throw new PdpError('decision_not_found', `decision ${record.decision_id} does not exist`);
    if (denial.caller_id !== record.requested_by) {
      throw new PdpError('decision_wrong_caller', `decision ${record.decision_id} was made for another caller`);
    }
    if ((yield* get(SQL.selectAccessRequestByDecision, record.decision_id)) !== undefined) {
      throw new PdpError('access_request_exists', `an access request for decision ${record.decision_id} exists already`);
    }
    if ((yield* get(SQL.accessRequestExists, record.id)) !== undefined) throw new PdpError('internal', `access request id ${record.id} is in use`);
    for (const d of input.deliveries) {
      if ((yield* get(SQL.deliveryExists, d.id)) !== undefined) throw new PdpError('internal', `delivery id ${d.id} is in use`);
    }
    yield* run(
      SQL.insertAccessRequest,
      record.id,
      record.decision_id,
      record.requested_by,
      record.agent_id,
      record.task_id,
      record.integration,
      record.resource?.type ?? null,
      record.resource?.id ?? null,
      scopesJson,
      groupsJson,
      record.reason,
      record.duration_seconds,
      record.max_duration_seconds,
      record.policy_revision,
      record.created_at,
      record.expires_at,
      record.idempotency_key,
      record.request_hash,
      record.trace_id,
    );
    for (const group of new Set(record.approver_groups)) yield* run(SQL.insertAccessRequestGroup, group, record.id);
    for (const d of input.deliveries) {
      yield* run(SQL.insertDelivery, d.id, record.id, d.destination, d.approver_group, input.now, input.now);
    }
    yield* ctx.chain.append(event);
    return { request: record, created: true };
  });
}

export async function getAccessRequest(ctx: StoreContext, id: string): Promise<AccessRequestRecord | undefined> {
  return ctx.read(function* () {
    const row = yield* get<AccessRequestRow>(SQL.selectAccessRequest, id);
    return row === undefined ? undefined : accessRequestFromRow(row);
  });
}

/** The request `requestedBy` submitted under an `Idempotency-Key`, if any. */
export async function getAccessRequestByKey(ctx: StoreContext, requestedBy: string, key: string): Promise<AccessRequestRecord | undefined> {
  return ctx.read(function* () {
    const row = yield* get<AccessRequestRow>(SQL.selectAccessRequestByKey, requestedBy, key);
    return row === undefined ? undefined : accessRequestFromRow(row);
  });
}

export async function listAccessRequests(ctx: StoreContext, query: ListAccessRequestsQuery): Promise<AccessRequestList> {
  const limit = requireLimit(query.limit);
  if (query.status !== undefined && !(ACCESS_REQUEST_STATUSES as readonly string[]).includes(query.status)) {
    throw new TypeError(`unknown access request status ${String(query.status)}`);
  }
  if (query.approver_groups !== undefined) requireStrings('approver_groups', query.approver_groups);
  if (query.now !== undefined) requireTime('now', query.now);
  return ctx.read(function* () {
    let after: { created_at: string; id: string } | undefined;
    if (query.after !== undefined) {
      const row = yield* get<AccessRequestRow>(SQL.selectAccessRequest, query.after);
      if (row === undefined) throw new PdpError('invalid_request', '`after` names no access request', { details: [{ path: 'query.after', message: 'names no access request (use next_after of the previous page)' }] });
      after = { created_at: row.created_at, id: row.id };
    }
    const { sql, params } = accessRequestPageSql({
      ...(query.status === undefined ? {} : { status: query.status }),
      ...(query.now === undefined ? {} : { now: query.now }),
      ...(query.agent_id === undefined ? {} : { agent_id: query.agent_id }),
      ...(query.approver_groups === undefined ? {} : { approver_groups: [...new Set(query.approver_groups)] }),
      ...(after === undefined ? {} : { after }),
    });
    const rows = yield* all<AccessRequestRow>(sql, ...params, limit + 1);
    const items = rows.slice(0, limit).map(accessRequestFromRow);
    return { items, next_after: rows.length > limit ? (items[items.length - 1]?.id ?? null) : null };
  });
}

export async function decideAccessRequest(ctx: StoreContext, input: DecideAccessRequestInput): Promise<AccessRequestRecord> {
  requireId('id', input.id);
  requireId('by', input.by);
  requireTime('at', input.at);
  if (input.verdict !== 'approved' && input.verdict !== 'denied') throw new TypeError(`unknown verdict ${String(input.verdict)}`);
  const note = input.note ?? null;
  if (note !== null && typeof note !== 'string') throw new TypeError('note must be a string or null');
  let approvedUntil: string | null = null;
  let duration = 0;
  if (input.verdict === 'approved') {
    approvedUntil = requireTime('approved_until', input.approved_until);
    if (approvedUntil <= input.at) throw new TypeError('approved_until must be after at');
    duration = input.duration_seconds ?? Math.round((Date.parse(approvedUntil) - Date.parse(input.at)) / 1000);
    requireCount('duration_seconds', duration);
  }
  const traceId = input.trace_id ?? null;
  return ctx.write(function* () {
    const row = yield* get<AccessRequestRow>(SQL.selectAccessRequest, input.id);
    if (row === undefined) throw new PdpError('access_request_not_found', `access request ${input.id} does not exist`);
    // Expired is one answer whether the sweeper has marked it yet or not.
    if (row.status === 'expired' || (row.status === 'pending' && row.expires_at <= input.at)) {
      throw new PdpError('access_request_expired', `access request ${input.id} expired at ${row.expires_at}`);
    }
    if (row.status !== 'pending') throw new PdpError('access_request_not_pending', `access request ${input.id} is ${row.status}`);
    if (row.caller_id === input.by) throw new PdpError('self_approval', 'an access request cannot be decided by the caller that submitted it');
    yield* run(SQL.decideAccessRequest, input.verdict, input.at, input.by, note, approvedUntil, row.id);
    // The decide path reads a task's elevations with the task: the window goes into its row in the approval's
    // transaction (windows already over are dropped on the way; a closed task is never decided for again).
    // Only on the agent's own task, and only while it is active (checked here, in the approval's transaction: a
    // completion committed after the caller's check refuses the approval rather than elevate a closed task).
    if (approvedUntil !== null) {
      const current = yield* get<{ agent_id: string; status: string; elevations: string | null }>(SQL.selectTaskElevations, row.task_id);
      if (current !== undefined && current.status !== 'active') {
        throw new PdpError('task_not_active', `task ${row.task_id} is ${current.status}: approving would elevate nothing`);
      }
      if (current !== undefined && current.agent_id === row.agent_id) {
        const kept = parseTaskElevations(current.elevations).filter((e) => e.approved_until > input.at);
        const added: TaskElevation = {
          id: row.id,
          agent_id: row.agent_id,
          requested_by: row.caller_id,
          integration: row.integration,
          resource: row.resource_type === null || row.resource_id === null ? null : { type: row.resource_type, id: row.resource_id },
          scopes: JSON.parse(row.scopes) as string[],
          approved_until: approvedUntil,
        };
        yield* run(SQL.updateTaskElevations, JSON.stringify([...kept, added]), row.task_id);
      }
    }
    const ids = { decision_id: row.decision_id, agent_id: row.agent_id, task_id: row.task_id, caller_id: input.by, trace_id: traceId };
    const event =
      approvedUntil === null
        ? accessRequestDeniedEvent(input.at, ids, { access_request_id: row.id, note })
        : accessRequestApprovedEvent(input.at, ids, { access_request_id: row.id, duration_seconds: duration, approved_until: approvedUntil, note });
    yield* ctx.chain.append(ctx.chain.prepare(event));
    return accessRequestFromRow({ ...row, status: input.verdict, decided_at: input.at, decided_by: input.by, note, approved_until: approvedUntil });
  });
}

/** The columns findElevations reads. */
type ElevationRow = { id: string; scopes: string; resource_type: string | null; resource_id: string | null; approved_until: string };

/**
 * The decide path's lookup (every decide that names a requestable scope pays it): the few columns an elevation is
 * made of, by the index on (agent_id, task_id, integration), never a whole request row.
 */
export async function findElevations(ctx: StoreContext, input: FindElevationsInput): Promise<ElevationRecord[]> {
  requireTime('now', input.now);
  requireId('requested_by', input.requested_by);
  requireResource(input.resource);
  return ctx.read(function* () {
    const rows =
      input.resource === null
        ? yield* all<ElevationRow>(SQL.selectElevationsUnbound, input.agent_id, input.task_id, input.integration, input.requested_by, input.now)
        : yield* all<ElevationRow>(SQL.selectElevationsBound, input.agent_id, input.task_id, input.integration, input.requested_by, input.now, input.resource.type, input.resource.id);
    return rows.map((row) => ({
      id: row.id,
      scopes: JSON.parse(row.scopes) as string[],
      resource: row.resource_type === null || row.resource_id === null ? null : { type: row.resource_type, id: row.resource_id },
      approved_until: row.approved_until,
    }));
  });
}

export async function sweepAccessRequests(ctx: StoreContext, input: SweepAccessRequestsInput): Promise<AccessRequestSweep> {
  requireTime('now', input.now);
  const limit = input.limit ?? 500;
  if (!Number.isSafeInteger(limit) || limit < 1) throw new TypeError('limit must be a positive integer');
  return ctx.write(function* () {
    const expired: AccessRequestRecord[] = [];
    for (const row of yield* all<AccessRequestRow>(SQL.selectExpiredAccessRequests, input.now, limit)) {
      yield* run(SQL.expireAccessRequest, row.id);
      yield* ctx.chain.append(
        ctx.chain.prepare(
          accessRequestExpiredEvent(
            input.now,
            { decision_id: row.decision_id, agent_id: row.agent_id, task_id: row.task_id },
            { access_request_id: row.id, expires_at: row.expires_at },
          ),
        ),
      );
      expired.push(accessRequestFromRow({ ...row, status: 'expired' }));
    }
    const ended: AccessRequestRecord[] = [];
    for (const row of yield* all<AccessRequestRow>(SQL.selectPassedElevations, input.now, limit)) {
      ended.push(
        yield* endElevation(ctx, row, { time: input.now, ended_at: row.approved_until ?? input.now, reason: 'window', by: null, trace_id: null }),
      );
    }
    return { expired, ended };
  });
}

/**
 * Inside the transaction that closes a task: ends each running elevation of the task, reason task_completed or
 * task_expired (or window, with ended_at = approved_until, for one whose window had passed unswept), an
 * elevation.ended event each. Returns the access request ids.
 */
export function* endElevationsOfTask(
  ctx: StoreContext,
  task: { id: string; agent_id: string; status: TaskCloseStatus },
  how: { at: string; by: string | null; trace_id: string | null },
): Program<string[]> {
  const rows = yield* all<AccessRequestRow>(SQL.selectRunningElevationsOfTask, task.agent_id, task.id);
  const reason: ElevationEndReason = task.status === 'completed' ? 'task_completed' : 'task_expired';
  const ended: string[] = [];
  for (const row of rows) {
    const passed = row.approved_until !== null && row.approved_until <= how.at;
    yield* endElevation(
      ctx,
      row,
      passed
        ? { time: how.at, ended_at: row.approved_until ?? how.at, reason: 'window', by: null, trace_id: null }
        : { time: how.at, ended_at: how.at, reason, by: how.by, trace_id: how.trace_id },
    );
    ended.push(row.id);
  }
  return ended;
}

function* endElevation(
  ctx: StoreContext,
  row: AccessRequestRow,
  how: { time: string; ended_at: string; reason: ElevationEndReason; by: string | null; trace_id: string | null },
): Program<AccessRequestRecord> {
  yield* run(SQL.endElevation, how.ended_at, how.reason, row.id);
  yield* ctx.chain.append(
    ctx.chain.prepare(
      elevationEndedEvent(
        how.time,
        { decision_id: row.decision_id, agent_id: row.agent_id, task_id: row.task_id, caller_id: how.by, trace_id: how.trace_id },
        { access_request_id: row.id, reason: how.reason, ended_at: how.ended_at },
      ),
    ),
  );
  return accessRequestFromRow({ ...row, ended_at: how.ended_at, ended_reason: how.reason });
}

export function requireLimit(limit: unknown): number {
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new TypeError(`limit must be an integer from 1 to ${MAX_LIST_LIMIT}`);
  }
  return limit;
}

function requireStrings(name: string, value: unknown): void {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v !== '')) {
    throw new TypeError(`${name} must be an array of non-empty strings`);
  }
}

function requireCount(name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new TypeError(`${name} must be a non-negative integer`);
}

function requireResource(resource: unknown): void {
  if (resource === null) return;
  const r = resource as { type?: unknown; id?: unknown } | undefined;
  if (typeof r?.type !== 'string' || typeof r.id !== 'string') throw new TypeError('resource must be a { type, id } or null');
}
