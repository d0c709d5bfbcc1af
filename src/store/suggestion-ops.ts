/**
 * Policy suggestions as stored (issue 18). The suggestion engine (src/suggest/) computes them from the usage summary
 * and saves them here; an operator applies or dismisses one, and that decision is written with its audit event in
 * one transaction. Saving is an upsert by id that never undoes a decision whose evidence has not changed: a dismissed
 * suggestion does not come back until its evidence_hash does. In the same transaction a save withdraws the open
 * suggestions the caller says a run on the same terms no longer makes, and (the scheduled run) writes one
 * notification of the suggestions it made new, with an outbox row per webhook (the transactional outbox the
 * escalations use: nothing is sent before this commit, and a crash after it loses nothing).
 */
import { SUGGESTION_KINDS } from '../audit/index.js';
import { PdpError } from '../errors/pdp-error.js';
import { encodeData } from './chain-writer.js';
import type {
  DecideSuggestionInput,
  ListSuggestionsQuery,
  NotificationRecord,
  SaveSuggestionsOptions,
  SaveSuggestionsResult,
  SuggestionRecord,
  SuggestionStatus,
} from './store.js';
import { SQL } from './sql.js';
import { all, get, run } from './sql-program.js';
import { requireId, requireTime } from './store-context.js';
import type { StoreContext } from './store-context.js';

interface SuggestionRow {
  id: string;
  agent_id: string;
  integration: string;
  kind: string;
  target: string;
  proposal: string;
  evidence: string;
  evidence_hash: string;
  file: string | null;
  file_sha256: string | null;
  status: string;
  created_at: string;
  updated_at: string;
  decided_by: string | null;
  decided_at: string | null;
}

const KINDS = new Set<string>(SUGGESTION_KINDS);
const STATUSES = new Set<string>(['open', 'applied', 'dismissed', 'withdrawn'] satisfies SuggestionStatus[]);
const WITHDRAW = `UPDATE suggestions SET status = 'withdrawn', updated_at = ? WHERE id = ? AND status = 'open' AND evidence_hash = ?`;
const INSERT_NOTIFICATION = 'INSERT INTO notifications (id, kind, data, created_at) VALUES (?, ?, ?, ?)';
const SELECT_NOTIFICATION = 'SELECT id, kind, data, created_at FROM notifications WHERE id = ?';
const INSERT_NOTIFICATION_DELIVERY = `INSERT INTO outbox (id, notification_id, destination, approver_group, status, attempts,
  next_attempt_at, created_at) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)`;
/** The event type each decision writes. */
const EVENT_TYPES = { applied: 'policy.suggestion.applied', dismissed: 'policy.suggestion.dismissed' } as const;

/** A suggestion checked and encoded before it is queued: a bad one is a TypeError and nothing is written. */
interface PreparedSuggestion {
  record: SuggestionRecord;
  proposal: string;
  evidence: string;
}

export async function saveSuggestions(ctx: StoreContext, list: readonly SuggestionRecord[], options: SaveSuggestionsOptions = {}): Promise<SaveSuggestionsResult> {
  if (!Array.isArray(list)) throw new TypeError('saveSuggestions takes an array of suggestions');
  const ids = new Set<string>();
  const prepared = list.map((s): PreparedSuggestion => {
    const record = checkSuggestion(s);
    if (ids.has(record.id)) throw new TypeError(`suggestion ${record.id} is listed twice`);
    ids.add(record.id);
    return { record, proposal: encodeData(record.proposal), evidence: encodeData(record.evidence) };
  });
  const withdraw = options.withdraw ?? [];
  if (!Array.isArray(withdraw)) throw new TypeError('withdraw must be an array');
  for (const w of withdraw) {
    requireId('withdraw id', w?.id);
    requireId('withdraw evidence_hash', w?.evidence_hash);
    if (ids.has(w.id)) throw new TypeError(`suggestion ${w.id} is both saved and withdrawn`);
  }
  const at = withdraw.length > 0 ? requireTime('at', options.at) : options.at;
  const notify = options.notify;
  if (notify !== undefined) {
    requireId('notify id', notify.id);
    requireTime('notify at', notify.at);
    if (!Array.isArray(notify.deliveries)) throw new TypeError('notify deliveries must be an array');
    for (const d of notify.deliveries) {
      requireId('delivery id', d?.id);
      requireId('delivery destination', d.destination);
      requireId('delivery approver_group', d.approver_group);
    }
  }
  if (prepared.length === 0 && withdraw.length === 0) return { new: [], withdrawn: [], notification: null };
  return ctx.write(function* () {
    // Made inside the program: a transaction replayed without another operation (PostgreSQL, group-commit.ts) runs
    // this program again, and must start from nothing.
    const result: SaveSuggestionsResult = { new: [], withdrawn: [], notification: null };
    for (const { record: r, proposal, evidence } of prepared) {
      const existing = yield* get<SuggestionRow>(SQL.selectSuggestion, r.id);
      if (existing === undefined) {
        yield* run(SQL.insertSuggestion, r.id, r.agent_id, r.integration, r.kind, r.target, proposal, evidence, r.evidence_hash, r.file, r.file_sha256, r.created_at, r.updated_at);
        result.new.push(r.id);
        continue;
      }
      // Dismissed, on the same evidence: as dismissed. Applied and made again: the change is no longer in the policy
      // (an applied change removes what the suggestion proposed to remove, so a run finds it only when the file was
      // reverted): open again, announced. On other evidence, or withdrawn: open again (the operator is asked anew).
      if (existing.status === 'dismissed' && existing.evidence_hash === r.evidence_hash) continue;
      yield* run(SQL.reopenSuggestion, r.agent_id, r.integration, r.kind, r.target, proposal, evidence, r.evidence_hash, r.file, r.file_sha256, r.updated_at, r.id);
      if (existing.status !== 'open') result.new.push(r.id);
    }
    for (const w of withdraw) {
      if ((yield* run(WITHDRAW, at, w.id, w.evidence_hash)) > 0) result.withdrawn.push(w.id);
    }
    if (notify !== undefined && result.new.length > 0 && notify.deliveries.length > 0) {
      const notification: NotificationRecord = { id: notify.id, kind: 'policy.suggestions', suggestion_ids: [...result.new], created_at: notify.at };
      yield* run(INSERT_NOTIFICATION, notification.id, notification.kind, encodeData({ suggestion_ids: notification.suggestion_ids }), notification.created_at);
      for (const d of notify.deliveries) {
        if ((yield* get(SQL.deliveryExists, d.id)) !== undefined) throw new PdpError('internal', `delivery id ${d.id} is in use`);
        yield* run(INSERT_NOTIFICATION_DELIVERY, d.id, notification.id, d.destination, d.approver_group, notify.at, notify.at);
      }
      result.notification = notification;
    }
    return result;
  });
}

export async function getNotification(ctx: StoreContext, id: string): Promise<NotificationRecord | undefined> {
  requireId('id', id);
  return ctx.read(function* () {
    const row = yield* get<{ id: string; kind: string; data: string; created_at: string }>(SELECT_NOTIFICATION, id);
    if (row === undefined) return undefined;
    const data = JSON.parse(row.data) as { suggestion_ids?: unknown };
    const suggestionIds = Array.isArray(data.suggestion_ids) ? data.suggestion_ids.filter((x): x is string => typeof x === 'string') : [];
    return { id: row.id, kind: row.kind as NotificationRecord['kind'], suggestion_ids: suggestionIds, created_at: row.created_at };
  });
}

export async function listSuggestions(ctx: StoreContext, query: ListSuggestionsQuery = {}): Promise<SuggestionRecord[]> {
  const { status, agent_id: agent } = query;
  if (status !== undefined && !STATUSES.has(status)) throw new TypeError(`unknown suggestion status: ${String(status)}`);
  if (agent !== undefined) requireId('agent_id', agent);
  return ctx.read(function* () {
    const rows =
      status === undefined
        ? agent === undefined
          ? yield* all<SuggestionRow>(SQL.selectSuggestions)
          : yield* all<SuggestionRow>(SQL.selectSuggestionsOfAgent, agent)
        : agent === undefined
          ? yield* all<SuggestionRow>(SQL.selectSuggestionsByStatus, status)
          : yield* all<SuggestionRow>(SQL.selectSuggestionsByStatusOfAgent, status, agent);
    return rows.map(suggestionFromRow);
  });
}

export async function getSuggestion(ctx: StoreContext, id: string): Promise<SuggestionRecord | undefined> {
  requireId('id', id);
  return ctx.read(function* () {
    const row = yield* get<SuggestionRow>(SQL.selectSuggestion, id);
    return row === undefined ? undefined : suggestionFromRow(row);
  });
}

export async function decideSuggestion(ctx: StoreContext, input: DecideSuggestionInput): Promise<SuggestionRecord> {
  requireId('id', input.id);
  requireId('by', input.by);
  requireTime('at', input.at);
  if (input.status !== 'applied' && input.status !== 'dismissed') throw new TypeError(`a suggestion is decided applied or dismissed, not ${String(input.status)}`);
  const event = input.event;
  if (event?.type !== EVENT_TYPES[input.status]) throw new TypeError(`deciding ${input.status} writes a ${EVENT_TYPES[input.status]} event`);
  const data = event.data as { suggestion_id?: unknown } | null;
  if (data?.suggestion_id !== input.id) throw new TypeError(`the event is not about suggestion ${input.id}`);
  // Validated, masked and encoded before queuing, as every event is.
  const prepared = ctx.chain.prepare(event);
  return ctx.write(function* () {
    const row = yield* get<SuggestionRow>(SQL.selectSuggestion, input.id);
    if (row === undefined) throw new PdpError('not_found', `suggestion ${input.id} does not exist`);
    if (row.status !== 'open') throw new PdpError('suggestion_decided', `suggestion ${input.id} was ${row.status} already`);
    if (event.agent_id !== row.agent_id) throw new TypeError(`the event names another agent than suggestion ${input.id}'s`);
    yield* run(SQL.decideSuggestion, input.status, input.by, input.at, input.at, input.id);
    yield* ctx.chain.append(prepared);
    return suggestionFromRow({ ...row, status: input.status, decided_by: input.by, decided_at: input.at, updated_at: input.at });
  });
}

function checkSuggestion(s: SuggestionRecord): SuggestionRecord {
  if (typeof s !== 'object' || s === null) throw new TypeError('a suggestion must be an object');
  requireId('suggestion id', s.id);
  requireId('suggestion agent_id', s.agent_id);
  requireId('suggestion integration', s.integration);
  requireId('suggestion target', s.target);
  requireId('suggestion evidence_hash', s.evidence_hash);
  if (!KINDS.has(s.kind)) throw new TypeError(`unknown suggestion kind: ${String(s.kind)}`);
  if (s.file !== null && (typeof s.file !== 'string' || s.file === '')) throw new TypeError('suggestion file must be a non-empty string or null');
  if (s.file_sha256 !== null && (typeof s.file_sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(s.file_sha256))) {
    throw new TypeError('suggestion file_sha256 must be SHA-256 in lowercase hex, or null');
  }
  // Saved open: a decision is decideSuggestion's, with its audit event.
  if (s.status !== 'open' || s.decided_by !== null || s.decided_at !== null) {
    throw new TypeError(`suggestion ${s.id}: only open suggestions are saved (decideSuggestion decides them)`);
  }
  requireTime('suggestion created_at', s.created_at);
  requireTime('suggestion updated_at', s.updated_at);
  return s;
}

function suggestionFromRow(row: SuggestionRow): SuggestionRecord {
  return {
    ...row,
    kind: row.kind as SuggestionRecord['kind'],
    status: row.status as SuggestionStatus,
    proposal: JSON.parse(row.proposal) as unknown,
    evidence: JSON.parse(row.evidence) as unknown,
  };
}
