/**
 * Appends audit events to the stored chain, inside the writer's transaction.
 *
 * Each event is validated, masked and canonically encoded when it is prepared (before it is queued, so bad data
 * is refused without touching a transaction), and sealed (seq, prev_hash, hash) when it is appended, in
 * commit order. The chain head is read from the database at the start of every transaction (one indexed
 * lookup) rather than trusted from memory, so another writer on the same database (a CLI, a second process, a
 * replica) cannot fork the chain. SQLite's BEGIN IMMEDIATE serialises writers; on PostgreSQL every write transaction
 * takes an advisory lock before the head is read (postgres-connection.ts), so the write transactions of all replicas
 * take turns and the trail stays one chain (src/store/README.md, "PostgreSQL").
 */
import { GENESIS_HEAD, RawJson, assertNewAuditEvent, canonicalJson, hashEvent, isTrailEventType, sha256Hex } from '../audit/index.js';
import type { AuditEventV1, ChainHead, Masker, NewAuditEvent, UnsealedEvent } from '../audit/index.js';
import { PdpError } from '../errors/pdp-error.js';
import { hashText } from './rows.js';
import { SQL } from './sql.js';
import { get, run } from './sql-program.js';
import type { Program } from './sql-program.js';

/** An event ready to append: masked, encoded, validated. */
export interface PreparedEvent {
  event: NewAuditEvent;
  /** The canonical data: what is hashed. */
  dataJson: string;
  /** What is stored, when not `dataJson` itself (a decision event's compact text: decision-codec.ts). */
  storedJson?: string;
}

export class ChainWriter {
  private head: ChainHead = GENESIS_HEAD;
  /** Events appended in the current transaction. */
  private appended = 0;
  private committedEvents = 0;

  constructor(private readonly mask: Masker) {}

  /** prev_hash and hash are stored as their 32 bytes (a BLOB, a bytea: half the hex text's size), read back as hex (`hashText`). */
  private stored(hash: string): Buffer {
    return Buffer.from(hash, 'hex');
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
  *beginBatch(): Program<void> {
    this.head = yield* this.readHead();
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

  *readHead(): Program<ChainHead> {
    const last = yield* get<{ seq: number; hash: string | Uint8Array }>(SQL.selectLastEvent);
    if (last !== undefined) return { seq: last.seq, hash: hashText(last.hash) };
    const checkpoint = yield* get<{ last_pruned_seq: number; last_pruned_hash: string }>(SQL.selectLastCheckpoint);
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
  *append(prepared: PreparedEvent): Program<AuditEventV1> {
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
    const hash = sealHash(unsealed, prepared.dataJson);
    yield* run(
      SQL.insertEvent,
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
      prepared.storedJson ?? prepared.dataJson,
      this.stored(unsealed.prev_hash),
      this.stored(hash),
    );
    this.head = { seq: unsealed.seq, hash };
    this.appended++;
    return Object.assign(unsealed, { data: e.data, hash });
  }
}

/** Strings written as they are in canonical JSON: nothing to escape (`"`, `\\`, control characters). */
const VERBATIM = /^[^"\\\u0000-\u001f]*$/;

const verbatim = (text: string): boolean => VERBATIM.test(text) && (text as unknown as { isWellFormed(): boolean }).isWellFormed();

/**
 * `hashEvent(unsealed)`, with the canonical JSON of the hash input written out in its key order (agent_id,
 * caller_id, data, decision_id, jti, prev_hash, seq, task_id, time, trace_id, type, v) around the data as prepared,
 * instead of the generic encoder's sort and walk: the same bytes, so the same hash (`audit verify` recomputes it
 * with the generic one). Any string the encoder would escape or refuse goes the generic way.
 */
function sealHash(u: UnsealedEvent, dataJson: string): string {
  const ids = [u.agent_id, u.caller_id, u.decision_id, u.jti, u.task_id, u.trace_id];
  for (const id of ids) if (id !== undefined && (typeof id !== 'string' || !verbatim(id))) return hashEvent(u);
  if (!verbatim(u.time) || !verbatim(u.type) || !verbatim(u.prev_hash) || !Number.isSafeInteger(u.seq) || !Number.isSafeInteger(u.v)) return hashEvent(u);
  let json = '{';
  if (u.agent_id !== undefined) json += `"agent_id":"${u.agent_id}",`;
  if (u.caller_id !== undefined) json += `"caller_id":"${u.caller_id}",`;
  json += `"data":${dataJson},`;
  if (u.decision_id !== undefined) json += `"decision_id":"${u.decision_id}",`;
  if (u.jti !== undefined) json += `"jti":"${u.jti}",`;
  json += `"prev_hash":"${u.prev_hash}","seq":${u.seq},`;
  if (u.task_id !== undefined) json += `"task_id":"${u.task_id}",`;
  json += `"time":"${u.time}",`;
  if (u.trace_id !== undefined) json += `"trace_id":"${u.trace_id}",`;
  json += `"type":"${u.type}","v":${u.v}}`;
  return sha256Hex(json);
}

/** Canonical JSON of caller data; a value with no encoding is the caller's fault: invalid_request. */
export function encodeData(data: unknown): string {
  return encodeRecorded(() => canonicalJson(data));
}

/** What `encode` returns; a failure (data with no canonical encoding: the caller's fault) as invalid_request. */
export function encodeRecorded<T>(encode: () => T): T {
  try {
    return encode();
  } catch (error) {
    throw new PdpError('invalid_request', `the payload cannot be recorded: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
