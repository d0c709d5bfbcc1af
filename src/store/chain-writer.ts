/**
 * Appends audit events to the stored chain, inside the writer's transaction.
 *
 * Each event is validated, masked and canonically encoded when it is prepared (before it is queued, so bad data
 * is refused without touching a transaction), and sealed (seq, prev_hash, hash) when it is appended, in
 * commit order. The chain head is read from the database at the start of every transaction (one indexed
 * lookup) rather than trusted from memory, so another writer on the same file (a CLI, a second process)
 * cannot fork the chain: at worst its seq collides with ours and one transaction fails.
 */
import type { Database, Statement } from 'better-sqlite3';
import { GENESIS_HEAD, RawJson, assertNewAuditEvent, canonicalJson, hashEvent, isTrailEventType } from '../audit/index.js';
import type { AuditEventV1, ChainHead, Masker, NewAuditEvent, UnsealedEvent } from '../audit/index.js';
import { PdpError } from '../errors/pdp-error.js';
import { SQL } from './sql.js';

/** An event ready to append: masked, encoded, validated. */
export interface PreparedEvent {
  event: NewAuditEvent;
  dataJson: string;
}

export class ChainWriter {
  private head: ChainHead = GENESIS_HEAD;
  /** Events appended in the current transaction. */
  private appended = 0;
  private committedEvents = 0;
  private readonly insert: Statement;
  private readonly lastEvent: Statement;
  private readonly lastCheckpoint: Statement;

  constructor(
    db: Database,
    private readonly mask: Masker,
  ) {
    this.insert = db.prepare(SQL.insertEvent);
    this.lastEvent = db.prepare(SQL.selectLastEvent);
    this.lastCheckpoint = db.prepare(SQL.selectLastCheckpoint);
  }

  /**
   * Masks and encodes `event`. TypeError for misuse; invalid_request when the data has no canonical encoding.
   * `premasked`: the data was already masked by the caller (never mask twice: a digest would be digested again).
   * The trail's own events (`audit.*`: seqs, hashes, times) are never masked: a digest would break what they prove.
   */
  prepare(event: NewAuditEvent, options: { premasked?: boolean } = {}): PreparedEvent {
    assertNewAuditEvent(event);
    const unmasked = options.premasked === true || isTrailEventType(event.type);
    const masked: NewAuditEvent = unmasked ? event : { ...event, data: this.mask(event.data) };
    return { event: masked, dataJson: encodeData(masked.data) };
  }

  /** Call at the start of each transaction: reads the chain head. */
  beginBatch(): void {
    this.head = this.readHead();
    this.appended = 0;
  }

  /** Call after each transaction. */
  endBatch(committed: boolean): void {
    if (committed) this.committedEvents += this.appended;
    this.appended = 0;
  }

  /** Events committed through this writer since open. */
  get committed(): number {
    return this.committedEvents;
  }

  readHead(): ChainHead {
    const last = this.lastEvent.get() as { seq: number; hash: string } | undefined;
    if (last !== undefined) return { seq: last.seq, hash: last.hash };
    const checkpoint = this.lastCheckpoint.get() as { last_pruned_seq: number; last_pruned_hash: string } | undefined;
    if (checkpoint !== undefined) return { seq: checkpoint.last_pruned_seq, hash: checkpoint.last_pruned_hash };
    return GENESIS_HEAD;
  }

  /** The head as the current transaction sees it (what the next event appended follows). */
  get current(): ChainHead {
    return this.head;
  }

  /** Head and count, to restore when an operation is rolled back to its savepoint. */
  snapshot(): { head: ChainHead; appended: number } {
    return { head: this.head, appended: this.appended };
  }

  restore(snapshot: { head: ChainHead; appended: number }): void {
    this.head = snapshot.head;
    this.appended = snapshot.appended;
  }

  /** Seals and inserts `prepared`; returns the event (its data as prepared: it may hold RawJson parts). */
  append(prepared: PreparedEvent): AuditEventV1 {
    const e = prepared.event;
    const unsealed: UnsealedEvent = {
      v: 1,
      seq: this.head.seq + 1,
      time: e.time,
      type: e.type,
      data: new RawJson(prepared.dataJson),
      prev_hash: this.head.hash,
    };
    if (e.decision_id !== undefined) unsealed.decision_id = e.decision_id;
    if (e.jti !== undefined) unsealed.jti = e.jti;
    if (e.task_id !== undefined) unsealed.task_id = e.task_id;
    if (e.agent_id !== undefined) unsealed.agent_id = e.agent_id;
    if (e.caller_id !== undefined) unsealed.caller_id = e.caller_id;
    if (e.trace_id !== undefined) unsealed.trace_id = e.trace_id;
    const hash = hashEvent(unsealed);
    this.insert.run(
      unsealed.seq,
      unsealed.v,
      unsealed.time,
      unsealed.type,
      e.decision_id ?? null,
      e.jti ?? null,
      e.task_id ?? null,
      e.agent_id ?? null,
      e.caller_id ?? null,
      e.trace_id ?? null,
      prepared.dataJson,
      unsealed.prev_hash,
      hash,
    );
    this.head = { seq: unsealed.seq, hash };
    this.appended++;
    return { ...unsealed, data: e.data, hash };
  }
}

/** Canonical JSON of caller data; a value with no encoding is the caller's fault: invalid_request. */
export function encodeData(data: unknown): string {
  try {
    return canonicalJson(data);
  } catch (error) {
    throw new PdpError('invalid_request', `the payload cannot be recorded: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
