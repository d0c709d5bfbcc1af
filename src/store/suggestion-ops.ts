/**
 * Policy suggestions as stored (issue 18). The suggestion engine (src/suggest/) computes them from the usage summary
 * and saves them here; an operator applies or dismisses one, and that decision is written with its audit event in
 * one transaction. Saving is an upsert by id that never undoes a decision whose evidence has not changed: a dismissed
 * suggestion does not come back until its evidence_hash does.
 */
import { SUGGESTION_KINDS } from '../audit/index.js';
import { PdpError } from '../errors/pdp-error.js';
import { encodeData } from './chain-writer.js';
import type { DecideSuggestionInput, ListSuggestionsQuery, SuggestionRecord, SuggestionStatus } from './store.js';
import { read, requireId, requireTime } from './store-context.js';
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
const STATUSES = new Set<string>(['open', 'applied', 'dismissed'] satisfies SuggestionStatus[]);
/** The event type each decision writes. */
const EVENT_TYPES = { applied: 'policy.suggestion.applied', dismissed: 'policy.suggestion.dismissed' } as const;

/** A suggestion checked and encoded before it is queued: a bad one is a TypeError and nothing is written. */
interface PreparedSuggestion {
  record: SuggestionRecord;
  proposal: string;
  evidence: string;
}

export async function saveSuggestions(ctx: StoreContext, list: readonly SuggestionRecord[]): Promise<void> {
  if (!Array.isArray(list)) throw new TypeError('saveSuggestions takes an array of suggestions');
  const ids = new Set<string>();
  const prepared = list.map((s): PreparedSuggestion => {
    const record = checkSuggestion(s);
    if (ids.has(record.id)) throw new TypeError(`suggestion ${record.id} is listed twice`);
    ids.add(record.id);
    return { record, proposal: encodeData(record.proposal), evidence: encodeData(record.evidence) };
  });
  if (prepared.length === 0) return;
  return ctx.write(() => {
    for (const { record: r, proposal, evidence } of prepared) {
      const existing = ctx.sql.selectSuggestion.get(r.id) as SuggestionRow | undefined;
      if (existing === undefined) {
        ctx.sql.insertSuggestion.run(r.id, r.agent_id, r.integration, r.kind, r.target, proposal, evidence, r.evidence_hash, r.file, r.file_sha256, r.created_at, r.updated_at);
        continue;
      }
      // Decided, on the same evidence: as decided. On other evidence: open again (the operator is asked anew).
      if (existing.status !== 'open' && existing.evidence_hash === r.evidence_hash) continue;
      ctx.sql.reopenSuggestion.run(r.agent_id, r.integration, r.kind, r.target, proposal, evidence, r.evidence_hash, r.file, r.file_sha256, r.updated_at, r.id);
    }
  });
}

export async function listSuggestions(ctx: StoreContext, query: ListSuggestionsQuery = {}): Promise<SuggestionRecord[]> {
  const { status, agent_id: agent } = query;
  if (status !== undefined && !STATUSES.has(status)) throw new TypeError(`unknown suggestion status: ${String(status)}`);
  if (agent !== undefined) requireId('agent_id', agent);
  return read(() => {
    const sql = ctx.sql;
    const rows =
      status === undefined
        ? agent === undefined
          ? sql.selectSuggestions.all()
          : sql.selectSuggestionsOfAgent.all(agent)
        : agent === undefined
          ? sql.selectSuggestionsByStatus.all(status)
          : sql.selectSuggestionsByStatusOfAgent.all(status, agent);
    return (rows as SuggestionRow[]).map(suggestionFromRow);
  });
}

export async function getSuggestion(ctx: StoreContext, id: string): Promise<SuggestionRecord | undefined> {
  requireId('id', id);
  return read(() => {
    const row = ctx.sql.selectSuggestion.get(id) as SuggestionRow | undefined;
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
  return ctx.write(() => {
    const row = ctx.sql.selectSuggestion.get(input.id) as SuggestionRow | undefined;
    if (row === undefined) throw new PdpError('not_found', `suggestion ${input.id} does not exist`);
    if (row.status !== 'open') throw new PdpError('suggestion_decided', `suggestion ${input.id} was ${row.status} already`);
    if (event.agent_id !== row.agent_id) throw new TypeError(`the event names another agent than suggestion ${input.id}'s`);
    ctx.sql.decideSuggestion.run(input.status, input.by, input.at, input.at, input.id);
    ctx.chain.append(prepared);
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
