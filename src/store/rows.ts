/** Rows as SQLite returns them, and their mapping to the records of store.ts. JSON columns hold canonical JSON. */
import { AUDIT_ID_FIELDS, RawJson } from '../audit/index.js';
import type { AuditEventType, AuditEventV1 } from '../audit/index.js';
import type { RecordedOutcome } from '../wire/evaluation-v1.js';
import type { AccessRequestStatus, ElevationEndReason } from '../wire/access-request-v1.js';
import { termsFromEvent } from './decision-terms.js';
import { decisionDataValue, expandDecisionData } from './decision-codec.js';
import type { DecisionTerms } from './decision-terms.js';
import type { AccessRequestRecord, DeliveryRecord, DeliveryStatus, StoredDecision, TaskElevation, TaskRecord, TaskStatus, TokenRecord } from './store.js';

export interface TaskRow {
  id: string;
  agent_id: string;
  type: string;
  context: string;
  registered_by: string;
  registered_at: string;
  expires_at: string;
  status: string;
  completed_at: string | null;
  completed_by: string | null;
  /** JSON array of TaskElevation, or null. */
  elevations: string | null;
}

/**
 * A decision as read (SQL.selectDecision): its decision event's columns and data, and its decisions row's columns
 * (null without a row: `row_id` null).
 */
export interface DecisionRow {
  seq: number;
  time: string;
  caller_id: string | null;
  agent_id: string | null;
  task_id: string | null;
  trace_id: string | null;
  data: string;
  row_id: string | null;
  integration: string | null;
  outcome: string | null;
  token_grant: string | null;
  policy_revision: string | null;
  redeemable_until: string | null;
  access_request_id: string | null;
  redeemed_jti: string | null;
  redeemed_at: string | null;
  /** A redemption minting a provider credential holds the decision (migration 10): its claim id, and until when. */
  mint_claim: string | null;
  mint_claim_until: string | null;
}

export interface TokenRow {
  jti: string;
  decision_id: string;
  caller_id: string;
  agent_id: string;
  task_id: string | null;
  scopes: string;
  audience: string | null;
  issued_at: string;
  expires_at: string;
  revoked_at: string | null;
  revoked_by: string | null;
  revoke_reason: string | null;
}

export interface EventRow {
  seq: number;
  v: number;
  time: string;
  type: string;
  decision_id: string | null;
  jti: string | null;
  task_id: string | null;
  agent_id: string | null;
  caller_id: string | null;
  trace_id: string | null;
  data: string;
  /** 32 bytes on SQLite (a BLOB), 64 hex digits on PostgreSQL and in rows SQLite wrote before: read with hashText. */
  prev_hash: string | Uint8Array;
  hash: string | Uint8Array;
}

/** A stored hash as the chain names it: 64 lowercase hex digits, whether stored as bytes or as text. */
export function hashText(value: string | Uint8Array | null | undefined): string {
  if (value === null || value === undefined) return '';
  return typeof value === 'string' ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex');
}

/**
 * A task row's elevations (only the code writes the column). A value that does not read as a list reads as none:
 * the decide path then grants nothing from it, and closing the task (which reads the row) never fails on it.
 *
 * The decide path reads a task row for every decision, and an elevated task's column is the same text from its
 * approval until its window ends: the texts read most recently are kept parsed (ELEVATIONS_KEPT of them, the least
 * recently read dropped), deeply frozen, so every read of one text shares one list that no reader can change.
 */
export function parseTaskElevations(text: string | null): readonly TaskElevation[] {
  if (text === null) return NO_ELEVATIONS;
  const kept = parsedElevations.get(text);
  if (kept !== undefined) {
    // Most recently read last: the oldest read is the one dropped.
    parsedElevations.delete(text);
    parsedElevations.set(text, kept);
    return kept;
  }
  let list: readonly TaskElevation[] = NO_ELEVATIONS;
  try {
    const value: unknown = JSON.parse(text);
    if (Array.isArray(value)) list = deepFreeze(value as TaskElevation[]);
  } catch {
    // not a list: none (above)
  }
  if (parsedElevations.size >= ELEVATIONS_KEPT) parsedElevations.delete(parsedElevations.keys().next().value as string);
  parsedElevations.set(text, list);
  return list;
}

const NO_ELEVATIONS: readonly TaskElevation[] = Object.freeze([]);
const ELEVATIONS_KEPT = 256;
const parsedElevations = new Map<string, readonly TaskElevation[]>();

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const member of Object.values(value)) deepFreeze(member);
    Object.freeze(value);
  }
  return value;
}

export function taskFromRow(row: TaskRow): TaskRecord {
  const parsed = taskColumns(row);
  return {
    id: row.id,
    agent_id: row.agent_id,
    type: row.type,
    context: parsed.context,
    registered_by: row.registered_by,
    registered_at: row.registered_at,
    expires_at: row.expires_at,
    status: row.status as TaskStatus,
    completed_at: row.completed_at,
    completed_by: row.completed_by,
    elevations: parsed.elevations,
  };
}

/**
 * A task row's two JSON columns, parsed and deeply frozen. Nearly every decide reads its task's row, and a task's
 * columns rarely change: the last texts read for each task id are kept with their values, and a read whose texts are
 * the same (compared as strings: no parse, no hash of the text) shares those values. Shared and frozen, they are also
 * what the decision's encoding finds already encoded (canonical-json.ts, frozen values).
 */
function taskColumns(row: TaskRow): ParsedTaskColumns {
  const kept = parsedTasks.get(row.id);
  if (kept !== undefined && kept.contextText === row.context && kept.elevationsText === row.elevations) {
    // Most recently read last: the task read longest ago is the one dropped.
    parsedTasks.delete(row.id);
    parsedTasks.set(row.id, kept);
    return kept;
  }
  const parsed: ParsedTaskColumns = {
    contextText: row.context,
    elevationsText: row.elevations,
    context: deepFreeze(JSON.parse(row.context) as TaskRecord['context']),
    elevations: parseTaskElevations(row.elevations),
  };
  if (kept !== undefined) parsedTasks.delete(row.id);
  else if (parsedTasks.size >= TASKS_KEPT) parsedTasks.delete(parsedTasks.keys().next().value as string);
  parsedTasks.set(row.id, parsed);
  return parsed;
}

interface ParsedTaskColumns {
  readonly contextText: string;
  readonly elevationsText: string | null;
  readonly context: TaskRecord['context'];
  readonly elevations: readonly TaskElevation[];
}

const TASKS_KEPT = 1024;
const parsedTasks = new Map<string, ParsedTaskColumns>();

/**
 * The decision a row holds: ids and time from its event's columns, input and result from the event's data, and its
 * terms from its decisions row where one exists, else from the event (decision-terms.ts).
 */
export function decisionFromRow(decisionId: string, row: DecisionRow): StoredDecision {
  const envelope = { time: row.time, decision_id: decisionId, agent_id: row.agent_id, caller_id: row.caller_id, task_id: row.task_id };
  const data = decisionDataValue(envelope, row.data) as { input?: unknown; result?: unknown };
  const terms: DecisionTerms =
    row.row_id === null
      ? termsFromEvent(data)
      : {
          integration: row.integration ?? '',
          outcome: row.outcome ?? '',
          policy_revision: row.policy_revision ?? '',
          redeemable_until: row.redeemable_until,
          token_grant: row.token_grant === null ? null : (JSON.parse(row.token_grant) as unknown),
          access_request_id: row.access_request_id,
        };
  return {
    decision_id: decisionId,
    caller_id: row.caller_id ?? '',
    agent_id: row.agent_id ?? '',
    task_id: row.task_id,
    integration: terms.integration,
    outcome: terms.outcome as RecordedOutcome,
    input: data.input,
    result: data.result,
    token_grant: terms.token_grant,
    policy_revision: terms.policy_revision,
    trace_id: row.trace_id,
    created_at: row.time,
    redeemable_until: terms.redeemable_until,
    redeemed_jti: row.redeemed_jti,
    redeemed_at: row.redeemed_at,
    access_request_id: terms.access_request_id,
  };
}

export function tokenFromRow(row: TokenRow): TokenRecord {
  return { ...row, scopes: JSON.parse(row.scopes) as string[] };
}

export interface AccessRequestRow {
  id: string;
  decision_id: string;
  caller_id: string;
  agent_id: string;
  task_id: string;
  integration: string;
  resource_type: string | null;
  resource_id: string | null;
  scopes: string;
  approver_groups: string;
  reason: string | null;
  duration_seconds: number;
  max_duration_seconds: number;
  policy_revision: string;
  status: string;
  created_at: string;
  expires_at: string;
  decided_at: string | null;
  decided_by: string | null;
  note: string | null;
  approved_until: string | null;
  ended_at: string | null;
  ended_reason: string | null;
  idempotency_key: string | null;
  request_hash: string | null;
  trace_id: string | null;
}

export function accessRequestFromRow(row: AccessRequestRow): AccessRequestRecord {
  return {
    id: row.id,
    status: row.status as AccessRequestStatus,
    expires_at: row.expires_at,
    decision_id: row.decision_id,
    requested_by: row.caller_id,
    agent_id: row.agent_id,
    task_id: row.task_id,
    integration: row.integration,
    resource: row.resource_type === null || row.resource_id === null ? null : { type: row.resource_type, id: row.resource_id },
    scopes: JSON.parse(row.scopes) as string[],
    reason: row.reason,
    duration_seconds: row.duration_seconds,
    max_duration_seconds: row.max_duration_seconds,
    approver_groups: JSON.parse(row.approver_groups) as string[],
    policy_revision: row.policy_revision,
    created_at: row.created_at,
    decided_at: row.decided_at,
    decided_by: row.decided_by,
    note: row.note,
    approved_until: row.approved_until,
    ended_at: row.ended_at,
    ended_reason: row.ended_reason as ElevationEndReason | null,
    idempotency_key: row.idempotency_key,
    request_hash: row.request_hash,
    trace_id: row.trace_id,
  };
}

export interface DeliveryRow {
  id: string;
  access_request_id: string | null;
  notification_id: string | null;
  destination: string;
  approver_group: string;
  status: string;
  attempts: number;
  next_attempt_at: string;
  last_error: string | null;
  last_status: number | null;
  created_at: string;
  delivered_at: string | null;
}

export function deliveryFromRow(row: DeliveryRow): DeliveryRecord {
  return { ...row, status: row.status as DeliveryStatus };
}

/**
 * The event a row holds. With `raw`, `data` is left as the stored text (a RawJson), so that verification hashes
 * exactly the stored bytes and a row whose data is not even JSON is reported as changed, not thrown.
 */
export function eventFromRow(row: EventRow, raw = false): AuditEventV1 {
  // A decision event's data is stored compact (decision-codec.ts): read back as the canonical data that was hashed.
  const text = row.type === 'decision' ? (expandDecisionData(row, row.data) ?? row.data) : row.data;
  const event = {
    v: row.v,
    seq: row.seq,
    time: row.time,
    type: row.type as AuditEventType,
    data: raw ? new RawJson(text) : (JSON.parse(text) as unknown),
    prev_hash: hashText(row.prev_hash),
    hash: hashText(row.hash),
  } as AuditEventV1;
  for (const field of AUDIT_ID_FIELDS) {
    const id = row[field];
    if (id !== null) event[field] = id;
  }
  return event;
}
