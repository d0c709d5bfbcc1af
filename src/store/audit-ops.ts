/** The stored audit chain: append, stream, follow a decision, prune behind a checkpoint, verify.
 * appendEvents, on the path of many requests, runs a generator declared at module level, not an inline `function*`
 * expression (src/store/README.md, "Programs"); the rare writes below (prune, signed heads) keep theirs.
 */
import {
  ChainVerifier,
  GENESIS_HASH,
  auditHeadSignedEvent,
  auditPrunedEvent,
  decisionOutcome,
  isAuditEventType,
  isTrailEventType,
} from '../audit/index.js';
import type { AuditEventV1, ChainHead, NewAuditEvent, SignedHeadV1, VerifyResult } from '../audit/index.js';
import { PdpError } from '../errors/pdp-error.js';
import { SQL, eventPageSql } from './sql.js';
import { all, get, run } from './sql-program.js';
import type { PreparedEvent } from './chain-writer.js';
import type { Program } from './sql-program.js';
import { eventFromRow, hashText } from './rows.js';
import { termsFromEvent } from './decision-terms.js';
import type { EventRow } from './rows.js';
import type { AuditCheckpoint, ChainStart, EventQuery, PruneEventsInput, PruneResult, StoredChainVerifyOptions } from './store.js';
import { requireTime } from './store-context.js';
import type { StoreContext } from './store-context.js';

/** Rows read per query when streaming: memory stays flat and the writer gets the connection between pages. */
export const PAGE_SIZE = 500;

export async function appendEvents(ctx: StoreContext, events: readonly NewAuditEvent[]): Promise<AuditEventV1[]> {
  for (const event of events) {
    if (isTrailEventType(event.type)) throw new TypeError(`${event.type} events are written by the store itself`);
  }
  const prepared = events.map((event) => ctx.chain.prepare(event));
  return ctx.write(() => appendProgram(ctx, prepared));
}

/** appendEvents' transaction. */
function* appendProgram(ctx: StoreContext, prepared: readonly PreparedEvent[]): Program<AuditEventV1[]> {
  const appended: AuditEventV1[] = [];
  for (const p of prepared) appended.push(yield* ctx.chain.append(p));
  return appended;
}

/**
 * Streams events in seq order by keyset pages (`seq > last`), each page read completely before it is yielded.
 * No statement stays open across an await, so the writer is never blocked by a slow consumer (better-sqlite3's
 * `.iterate()` would hold the connection busy for the whole listing). Events appended meanwhile may appear.
 * The outcome filter reads each decision's hashed data (`result.outcome`): no column outside the hash exists.
 */
export async function* iterateEvents(ctx: StoreContext, query: EventQuery = {}): AsyncGenerator<AuditEventV1> {
  if (query.since !== undefined) requireTime('since', query.since);
  if (query.until !== undefined) requireTime('until', query.until);
  for (const type of query.types ?? []) if (!isAuditEventType(type)) throw new TypeError(`unknown event type ${type}`);
  const { sql, params, startAfter } = eventPageSql(query);
  let after = startAfter;
  for (;;) {
    const rows = await ctx.read(() => all<EventRow>(sql, ...params, after, PAGE_SIZE));
    for (const event of rows.map((row) => eventFromRow(row, query.raw_data === true))) {
      if (query.outcome === undefined || decisionOutcome(event) === query.outcome) yield event;
    }
    const last = rows[rows.length - 1];
    if (last === undefined || rows.length < PAGE_SIZE) return;
    after = last.seq;
  }
}

export async function decisionChain(ctx: StoreContext, decisionId: string): Promise<AuditEventV1[]> {
  return ctx.read(() => decisionChainNow(decisionId), { snapshot: true });
}

function* decisionChainNow(decisionId: string): Program<AuditEventV1[]> {
  const anchor = yield* get<{ seq: number; task_id: string | null }>(SQL.selectDecisionEvent, decisionId);
  let taskId = anchor?.task_id ?? null;
  if (anchor === undefined) {
    // The decision event was pruned: its task (if any) still comes from the token it was redeemed for.
    const row = yield* get<{ task_id: string | null }>(SQL.selectTokenTaskOfDecision, decisionId);
    taskId = row?.task_id ?? null;
  }
  const rows = yield* all<EventRow>(SQL.selectDecisionChain, decisionId, taskId, anchor?.seq ?? 0);
  // A denial an access request was made for: the decisions made with its elevation, and what followed from them
  // (their task's completion is the denial's task's, already listed). Merged by seq, each event once.
  const elevated = taskId === null ? [] : yield* elevatedDecisionEvents(decisionId, taskId, anchor?.seq ?? 0);
  if (elevated.length === 0) return rows.map((row) => eventFromRow(row));
  const bySeq = new Map<number, EventRow>();
  for (const row of [...rows, ...elevated]) bySeq.set(row.seq, row);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq).map((row) => eventFromRow(row));
}

/**
 * The events of the decisions made with an elevation of the access request for a denial: an elevation serves the
 * denial's own task, so they are among the task's decision events after the denial, each naming the access request
 * in its terms (its answer's `approval`, or its row's).
 */
function* elevatedDecisionEvents(denialId: string, taskId: string, afterSeq: number): Program<EventRow[]> {
  const requests = new Set((yield* all<{ id: string }>(SQL.selectAccessRequestIdsOfDecision, denialId)).map((r) => r.id));
  if (requests.size === 0) return [];
  const decisions = yield* all<{ decision_id: string; data: string; row_id: string | null; access_request_id: string | null }>(
    SQL.selectTaskDecisionsAfter,
    taskId,
    afterSeq,
  );
  const events: EventRow[] = [];
  for (const d of decisions) {
    let requestId = d.access_request_id;
    if (d.row_id === null) {
      // result.approval is stored in place (decision-codec.ts): the stored text gives it without expanding.
      try {
        requestId = termsFromEvent(JSON.parse(d.data)).access_request_id;
      } catch {
        continue; // not JSON: no decision of an elevation (verification reports the row)
      }
    }
    if (requestId !== null && requests.has(requestId)) events.push(...(yield* all<EventRow>(SQL.selectDecisionEvents, d.decision_id)));
  }
  return events;
}

export function* latestCheckpoint(): Program<AuditCheckpoint | null> {
  return (yield* get<AuditCheckpoint>(SQL.selectLastCheckpoint)) ?? null;
}

export async function chainStart(ctx: StoreContext): Promise<ChainStart> {
  return ctx.read(chainStartNow);
}

function* chainStartNow(): Program<ChainStart> {
  const checkpoint = yield* latestCheckpoint();
  if (checkpoint === null) return { start_seq: 1, start_prev_hash: GENESIS_HASH, checkpoint };
  return { start_seq: checkpoint.last_pruned_seq + 1, start_prev_hash: checkpoint.last_pruned_hash, checkpoint };
}

export async function chainHead(ctx: StoreContext): Promise<ChainHead> {
  return ctx.read(() => ctx.chain.readHead());
}

/**
 * Deletes the oldest events, as a prefix of the chain: every event before the first one with time >= before.
 * Writes a checkpoint {last_pruned_seq, last_pruned_hash} in the same transaction, so the first kept event
 * still verifies against it, and appends an audit.pruned event naming the range and the checkpoint, so that the
 * checkpoint is itself verifiable: a chain whose start no audit.pruned event records was cut by hand.
 */
export async function pruneEvents(ctx: StoreContext, input: PruneEventsInput): Promise<PruneResult> {
  requireTime('before', input.before);
  requireTime('at', input.at);
  if (input.decisions_live_since !== undefined) requireTime('decisions_live_since', input.decisions_live_since);
  if (input.tokens_live_since !== undefined) requireTime('tokens_live_since', input.tokens_live_since);
  return ctx.write(function* () {
    const first = (yield* get<{ seq: number | null }>(SQL.selectFirstSeq))?.seq ?? null;
    if (first === null) return { pruned: 0, checkpoint: yield* latestCheckpoint(), event: null, held_by: null };
    const head = (yield* ctx.chain.readHead()).seq;
    const lastBefore = function* (time: string): Program<number> {
      const keep = (yield* get<{ seq: number | null }>(SQL.selectFirstSeqAtOrAfter, time))?.seq ?? null;
      return keep === null ? head : keep - 1;
    };
    const asked = yield* lastBefore(input.before);
    if (asked < first) return { pruned: 0, checkpoint: yield* latestCheckpoint(), event: null, held_by: null };
    let through = asked;
    let held: PruneResult['held_by'] = null;
    // A decision is its event: never prune one that a redemption, an approval or a usage report may still read.
    const tokensSince = input.tokens_live_since ?? input.at;
    const live = (yield* get<{ seq: number | null }>(SQL.selectFirstLiveDecisionSeq, tokensSince, tokensSince, input.at, input.at, input.at))?.seq ?? null;
    if (live !== null && live <= through) {
      through = live - 1;
      held = { seq: live, time: '', reason: 'live_decision' };
    }
    if (input.decisions_live_since !== undefined && input.decisions_live_since < input.before) {
      const windowed = yield* lastBefore(input.decisions_live_since);
      if (windowed < through) {
        through = windowed;
        held = { seq: windowed + 1, time: '', reason: 'decision_window' };
      }
    }
    if (held !== null) held.time = (yield* get<{ time: string }>(SQL.selectEventTime, held.seq))?.time ?? '';
    if (through < first) return { pruned: 0, checkpoint: yield* latestCheckpoint(), event: null, held_by: held };
    const stored = yield* get<{ hash: string | Uint8Array }>(SQL.selectEventHash, through);
    const last = stored === undefined ? undefined : { hash: hashText(stored.hash) };
    if (last === undefined) throw new PdpError('internal', `audit event ${through} is missing; verify the chain`);
    const pruned = yield* run(SQL.deleteEventsThrough, through);
    if (pruned !== through - first + 1) throw new PdpError('internal', `audit events ${first}..${through} are not all there; verify the chain`);
    const checkpoint: AuditCheckpoint = {
      last_pruned_seq: through,
      last_pruned_hash: last.hash,
      pruned_at: input.at,
      pruned_count: pruned,
    };
    yield* run(SQL.insertCheckpoint, through, last.hash, input.at, pruned);
    const record = auditPrunedEvent(input.at, { from_seq: first, to_seq: through, last_hash: last.hash, before: input.before });
    const event = yield* ctx.chain.append(ctx.chain.prepare(record));
    return { pruned, checkpoint, event, held_by: held };
  });
}

/**
 * Signs the chain head, as the current transaction sees it, and appends the audit.head_signed event that records the
 * signature right after it: the event's seq - 1 and prev_hash are what was signed. `sign` runs inside the
 * transaction (synchronous, no I/O: an Ed25519 signature). Null when there is nothing new to sign: no event yet,
 * or the head is itself a signed head.
 *
 * The transaction commits durably (the WAL synced, even under synchronous = NORMAL) before this resolves: the caller
 * then publishes the head outside the database (the signed-heads file), and a head published for events a power
 * loss could still take back would be contradicted, for good, by the next head signed over the seqs reused.
 */
export async function signHead(ctx: StoreContext, sign: (head: ChainHead) => SignedHeadV1): Promise<AuditEventV1 | null> {
  return ctx.write(function* () {
    const head = ctx.chain.current;
    if (head.seq === 0) return null;
    const last = yield* get<{ type: string }>(SQL.selectEventType, head.seq);
    if (last?.type === 'audit.head_signed') return null;
    const signed = sign(head);
    if (signed.seq !== head.seq || signed.hash !== head.hash) throw new TypeError('the signed head is not the head of the chain');
    return yield* ctx.chain.append(ctx.chain.prepare(auditHeadSignedEvent(signed)));
  }, { durable: true });
}

/**
 * Verifies the stored chain from its start (genesis or latest checkpoint, which an audit.pruned event in the chain
 * must record) up to the head at the time of the call, hashing the stored bytes. Yields to the event loop between
 * pages so a server stays responsive; `onProgress` hears of each page.
 */
export async function verifyStoredChain(ctx: StoreContext, options: StoredChainVerifyOptions = {}): Promise<VerifyResult> {
  const start = await chainStart(ctx);
  const through = (await chainHead(ctx)).seq;
  const verifier = new ChainVerifier({
    startSeq: start.start_seq,
    startPrevHash: start.start_prev_hash,
    ...(start.checkpoint === null ? {} : { checkpoint: start.checkpoint }),
    ...(options.expectedLast === undefined ? {} : { expectedLast: options.expectedLast }),
    ...(options.anchors === undefined ? {} : { anchors: options.anchors }),
    ...(options.headKeys === undefined ? {} : { headKeys: options.headKeys }),
  });
  const total = Math.max(0, through - start.start_seq + 1);
  let verified = 0;
  options.onProgress?.(0, total);
  let after = 0;
  for (;;) {
    const rows = await ctx.read(() => all<EventRow>(SQL.selectChainPage, after, through, PAGE_SIZE));
    for (const row of rows) {
      verifier.push(eventFromRow(row, true));
      if (verifier.settled) return verifier.end();
    }
    verified += rows.length;
    options.onProgress?.(verified, total);
    const last = rows[rows.length - 1];
    if (last === undefined || rows.length < PAGE_SIZE) return verifier.end();
    after = last.seq;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
