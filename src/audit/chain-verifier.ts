/**
 * Verifies an audit chain and names the first event where it breaks, and how.
 *
 * Works on any sequence of events in chain order (store rows, an export file), one event at a time, in constant
 * memory. After the first break it may read on (without hashing) to tell a removal from a reordering.
 *
 * How a break is named (`seq` is the first position where the chain departs from the original):
 * - changed:   an event's content no longer matches its hash; or it matches but the next event records another
 *              hash for it (edited, then re-hashed by someone who knows the algorithm).
 * - removed:   the chain jumps past seq x and the missing event never appears later (also: the chain ends before
 *              an anchor given as `expectedLast`).
 * - inserted:  an event does not belong: the event after it links to the event before it.
 * - reordered: the event expected at seq x appears later in the sequence.
 * - malformed: not a v1 event (missing or extra fields, wrong types).
 * A filtered export leaves events out on purpose and says so with `skip(...)`, which carries the hashes on both
 * sides of the run it stands for, so the sequence stays linked across it (see export-jsonl.ts).
 * Hash chains detect tampering; they do not authenticate. Whoever can rewrite an event and every event after it
 * (or append forged events at the end) produces a valid chain. Anchor the head outside the store (`expectedLast`)
 * to detect that.
 *
 * A chain that starts at a pruning checkpoint (`checkpoint`) must carry the audit.pruned event that records it:
 * without one, the events before the start were deleted by hand and a checkpoint row forged to cover it. Every
 * signed head in the chain (audit.head_signed) must sign the event right before it with that event's hash, and,
 * given the audit public keys (`headKeys`), verify: rewriting the chain before a signed head takes the key. An
 * anchor before the chain's start is checked against what the chain records about that seq (the checkpoint, or
 * an audit.pruned event naming it); when nothing does, it cannot be checked, and the result says so instead of
 * passing. (trail-events.ts checks the trail's own events.)
 *
 * Anchors come two ways. `expectedLast` and `anchors` must be in the chain (one beyond its end means the tail was
 * cut). `rangeAnchors` are heads kept outside the chain (the signed-heads file) checked against a *range* of it (an
 * export), which may end before them: each one from startSeq - 1 to the last event must match, the others are
 * outside the range and only counted. Anchors are matched in seq order with a cursor: any number of them costs
 * one comparison per event.
 */
import { AUDIT_ID_FIELDS, isIsoTime } from './audit-event.js';
import type { AuditEventV1 } from './audit-event.js';
import { GENESIS_HASH, hashEvent, isHash } from './hash-chain.js';
import type { ChainHead } from './hash-chain.js';
import type { HeadKeys } from './signed-head.js';
import { TrailRecords } from './trail-events.js';
import type { PruneCheckpoint, SignedHeadsSeen } from './trail-events.js';

export type ChainBreakKind = 'changed' | 'removed' | 'inserted' | 'reordered' | 'malformed';

export type VerifyResult =
  | {
      ok: true;
      /** Events verified. */
      count: number;
      /** seq of the last event (startSeq - 1 when there are none). */
      last_seq: number;
      /** hash of the last event (startPrevHash when there are none): record it to anchor later verifications. */
      last_hash: string;
      /** With `checkpoint`: seq of the audit.pruned event that records it. */
      pruned_by?: number;
      /** The signed heads in the chain; absent when there were none and no `headKeys` to check them with. */
      signed_heads?: SignedHeadsSeen;
      /** `time` of the first event verified; absent when there are none. */
      first_time?: string;
      /** `time` of the last event; absent when there are none. */
      last_time?: string;
      /** With `rangeAnchors`: how many were checked (and matched), and how many fell before or after the range. */
      range_anchors?: RangeAnchorsSeen;
    }
  | {
      ok: false;
      kind: ChainBreakKind;
      /** The first seq at which the chain departs from the original. */
      seq: number;
      message: string;
      /** Events that verified and precede the break (a re-hashed or forged event is only caught by its successor). */
      verified: number;
    };

/** What became of `rangeAnchors`. */
export interface RangeAnchorsSeen {
  /** Anchors from startSeq - 1 to the last event: each matched the chain. */
  checked: number;
  /** seq of the newest anchor checked; null when none was. */
  newest_checked: number | null;
  /** Anchors before startSeq - 1: before the range, not checked. */
  before: number;
  /** Anchors after the last event: beyond the range (the chain, or this export of it, ends before them), not checked. */
  after: number;
}

export interface VerifyOptions {
  /** seq the first event must have. Default 1; after pruning, the checkpoint's last_pruned_seq + 1. */
  startSeq?: number;
  /** prev_hash the first event must have. Default GENESIS_HASH; after pruning, the checkpoint's last_pruned_hash. */
  startPrevHash?: string;
  /**
   * The pruning checkpoint the chain starts from: an audit.pruned event in the chain must record it (seq, hash,
   * time, count). Sets the default startSeq and startPrevHash. Default none: the chain starts at genesis, or it is
   * a range (an export) that claims nothing about what came before it.
   */
  checkpoint?: PruneCheckpoint;
  /**
   * A head recorded earlier and kept outside the store: the chain must contain exactly this event. A head before
   * the chain's start must match what the chain records about it (its checkpoint, an audit.pruned event), or the
   * verification fails: it cannot be checked. Default none.
   */
  expectedLast?: ChainHead;
  /** More heads recorded outside the store (the newest line of the signed-heads file), checked as expectedLast is. */
  anchors?: readonly ChainHead[];
  /**
   * Heads recorded outside the store, for a range of the chain that need not reach them (an export: an archive cut
   * at `--until`, a filtered export that ends on events it left out): each one from startSeq - 1 to the last event
   * must be in the range with that hash (at startSeq - 1: startPrevHash); one after the last event is beyond the
   * range and one before startSeq - 1 before it: counted in `range_anchors`, not checked, never a break. Default none.
   */
  rangeAnchors?: readonly ChainHead[];
  /**
   * The audit public keys by kid: every signed head in the chain must verify with one of them. Default none: signed
   * heads are still checked against the chain (the event before each, its hash), not their signatures, and the
   * result says `verified: false`.
   */
  headKeys?: HeadKeys;
}

type State =
  | { kind: 'scanning' }
  /** Event at seq x matches no hash; the next event decides between "changed" and "inserted". */
  | { kind: 'pending'; x: number; before: string }
  /** The chain jumped past seq x; reading on for the event whose hash is `target` decides "reordered" or "removed". */
  | { kind: 'looking'; x: number; target: string; found: number }
  | { kind: 'done'; result: VerifyResult };

/** An anchor, and whether it must be in the chain (`expectedLast`, `anchors`) or only when the range reaches it. */
interface Anchor extends ChainHead {
  strict: boolean;
}

const ALLOWED_KEYS = new Set<string>(['v', 'seq', 'time', 'type', 'data', 'prev_hash', 'hash', ...AUDIT_ID_FIELDS]);

/** Push-based verifier: `push` each event in order, then `end()`. Stop pushing early once `settled`. */
export class ChainVerifier {
  private expectedSeq: number;
  private prevHash: string;
  /** prev_hash of the last accepted event, to recognise an inserted one. */
  private prevPrevHash: string | undefined;
  private count = 0;
  private firstTime: string | undefined;
  private lastTime: string | undefined;
  private state: State = { kind: 'scanning' };
  /** Heads recorded outside the store, strict and range alike, in seq order. */
  private readonly anchors: readonly Anchor[];
  /** Index of the first anchor at or after expectedSeq: the next one an event or skip meets. */
  private nextAnchor: number;
  private readonly rangeAnchors: boolean;
  private rangeChecked = 0;
  private rangeNewest: number | null = null;
  private readonly startSeq: number;
  private readonly startPrevHash: string;
  private readonly trail: TrailRecords;

  constructor(options: VerifyOptions = {}) {
    const checkpoint = options.checkpoint;
    const startSeq = options.startSeq ?? (checkpoint === undefined ? 1 : checkpoint.last_pruned_seq + 1);
    const startPrevHash = options.startPrevHash ?? checkpoint?.last_pruned_hash ?? GENESIS_HASH;
    if (!Number.isSafeInteger(startSeq) || startSeq < 1) throw new TypeError('startSeq must be an integer >= 1');
    if (!isHash(startPrevHash)) throw new TypeError('startPrevHash must be 64 lowercase hex characters');
    if (checkpoint !== undefined && (startSeq !== checkpoint.last_pruned_seq + 1 || startPrevHash !== checkpoint.last_pruned_hash)) {
      throw new TypeError('startSeq and startPrevHash must be those of the checkpoint');
    }
    this.expectedSeq = startSeq;
    this.startSeq = startSeq;
    this.startPrevHash = startPrevHash;
    this.prevHash = startPrevHash;
    const strict = [...(options.expectedLast === undefined ? [] : [options.expectedLast]), ...(options.anchors ?? [])];
    const anchors: Anchor[] = [
      ...strict.map((a) => ({ seq: a.seq, hash: a.hash, strict: true })),
      ...(options.rangeAnchors ?? []).map((a) => ({ seq: a.seq, hash: a.hash, strict: false })),
    ];
    this.anchors = anchors.sort((a, b) => a.seq - b.seq);
    this.rangeAnchors = options.rangeAnchors !== undefined;
    const first = this.anchors.findIndex((a) => a.seq >= startSeq);
    this.nextAnchor = first < 0 ? this.anchors.length : first;
    this.trail = new TrailRecords({ checkpoint, headKeys: options.headKeys, anchorSeqs: strict.map((a) => a.seq) });
  }

  /** True once further events cannot change the result. */
  get settled(): boolean {
    return this.state.kind === 'done';
  }

  /** Reads the next event; true when it was accepted (intact and in its place), false otherwise. */
  push(value: unknown): boolean {
    const state = this.state;
    if (state.kind === 'done') return false;
    const event = parseEvent(value);
    if (state.kind === 'looking') {
      if (typeof event !== 'string' && event.hash === state.target) {
        this.finish('reordered', state.x, `event ${state.x} appears after event ${state.found}: out of order`);
      }
      return false;
    }
    if (state.kind === 'pending') {
      if (typeof event !== 'string' && event.prev_hash === state.before) {
        this.finish('inserted', state.x, `event at seq ${state.x} does not belong: the next event links past it`);
      } else {
        this.finish('changed', state.x, `event ${state.x} was modified: its content does not match its hash`);
      }
      return false;
    }
    const x = this.expectedSeq;
    if (typeof event === 'string') return this.finish('malformed', x, `event at seq ${x}: ${event}`);
    if (safeHash(event) === event.hash) {
      if (event.prev_hash !== this.prevHash) return this.misplaced(event, event.seq);
      if (event.seq !== x) {
        return this.finish('changed', x, `event carries seq ${event.seq} where ${x} belongs, and was re-hashed`);
      }
      return this.accept(event);
    }
    // Not its own hash. An intact event whose seq was rewritten (rows renumbered) still hashes under its old seq.
    for (const original of [event.seq + 1, event.seq - 1]) {
      if (original >= 1 && safeHash({ ...event, seq: original }) === event.hash) return this.misplaced(event, original);
    }
    this.state = { kind: 'pending', x, before: this.prevHash };
    return false;
  }

  /**
   * Events `from`..`to` were left out on purpose (a filtered export). `prevHash` is the prev_hash of event `from`
   * (so: the hash of the event before the run), `lastHash` the hash of event `to`; the next event links to it.
   */
  skip(from: number, to: number, prevHash: string, lastHash: string): boolean {
    const state = this.state;
    if (state.kind === 'done' || state.kind === 'looking') return false;
    if (state.kind === 'pending') {
      return this.finish('changed', state.x, `event ${state.x} was modified: its content does not match its hash`);
    }
    const x = this.expectedSeq;
    if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || to < from || !isHash(prevHash) || !isHash(lastHash)) {
      return this.finish('malformed', x, `skip of events ${from}..${to} is not a seq range with two hashes`);
    }
    if (from > x) {
      const which = from - 1 > x ? `events ${x}..${from - 1} are` : `event ${x} is`;
      return this.finish('removed', x, `${which} missing: neither present nor declared skipped`);
    }
    if (from < x) return this.finish('malformed', x, `skip of events ${from}..${to} overlaps events already read`);
    if (prevHash !== this.prevHash) {
      if (this.count === 0) {
        return this.finish('changed', x, `skipped events ${from}..${to} do not link to the start of the chain (genesis or checkpoint)`);
      }
      const message = `the skip of events ${from}..${to} records another hash for event ${x - 1}: it was modified and re-hashed`;
      return this.finish('changed', x - 1, message);
    }
    for (let anchor = this.anchors[this.nextAnchor]; anchor !== undefined && anchor.seq <= to; anchor = this.anchors[++this.nextAnchor]) {
      // A signed head signs the event right before its audit.head_signed event, which every export keeps: it is
      // an event of the file or the last of a skipped run, never inside one.
      if (anchor.seq < to) return this.finish('removed', anchor.seq, `the anchored event ${anchor.seq} is declared skipped`);
      if (anchor.hash !== lastHash) {
        const message = `event ${to} does not match the anchored hash: the chain was rewritten here or earlier`;
        return this.finish('changed', to, message);
      }
      this.checkedAnchor(anchor);
    }
    this.expectedSeq = to + 1;
    this.prevPrevHash = undefined;
    this.prevHash = lastHash;
    return true;
  }

  end(): VerifyResult {
    const state = this.state;
    if (state.kind === 'pending') {
      this.finish('changed', state.x, `event ${state.x} was modified: its content does not match its hash`);
    } else if (state.kind === 'looking') {
      const last = state.found - 1;
      const which = last > state.x ? `events ${state.x}..${last} are` : `event ${state.x} is`;
      this.finish('removed', state.x, `${which} missing: event ${state.found} links to an event not in the chain`);
    } else if (state.kind === 'scanning') {
      const lastSeq = this.expectedSeq - 1;
      const highest = this.anchors.findLast((a) => a.strict);
      const trailBreak = this.trail.end();
      if (highest !== undefined && lastSeq < highest.seq) {
        const message = `the chain ends at seq ${lastSeq}, before the anchored head at seq ${highest.seq}`;
        this.finish('removed', this.expectedSeq, message);
      } else if (trailBreak !== undefined) {
        this.finish(trailBreak.kind, trailBreak.seq, trailBreak.message);
      } else {
        for (const anchor of this.anchors) {
          if (anchor.seq >= this.startSeq || this.state.kind === 'done') break;
          if (anchor.strict) this.anchorBeforeStart(anchor);
          else if (anchor.seq === this.startSeq - 1) this.rangeAnchorAtStart(anchor);
        }
      }
      if (this.state.kind !== 'done') {
        const result: VerifyResult = { ok: true, count: this.count, last_seq: lastSeq, last_hash: this.prevHash };
        const prunedBy = this.trail.prunedBy;
        if (prunedBy !== undefined) result.pruned_by = prunedBy;
        const heads = this.trail.signedHeads();
        if (heads !== undefined) result.signed_heads = heads;
        if (this.firstTime !== undefined) result.first_time = this.firstTime;
        if (this.lastTime !== undefined) result.last_time = this.lastTime;
        if (this.rangeAnchors) result.range_anchors = this.rangeSeen(lastSeq);
        this.state = { kind: 'done', result };
      }
    }
    return (this.state as Extract<State, { kind: 'done' }>).result;
  }

  /** An anchor before the first seq: checked against the start (checkpoint) or a trail event naming it, or refused. */
  private anchorBeforeStart(anchor: ChainHead): void {
    const recorded = anchor.seq === this.startSeq - 1 ? this.startPrevHash : this.trail.recorded(anchor.seq);
    if (recorded === undefined) {
      const message =
        `the anchored event ${anchor.seq} is before the start of this chain (seq ${this.startSeq}) and nothing in it ` +
        'records that event\'s hash: it was pruned or removed, so the head cannot be checked here; check it against ' +
        'the export archived before the prune';
      this.finish('removed', anchor.seq, message);
    } else if (recorded !== anchor.hash) {
      const message = `event ${anchor.seq} does not match the anchored hash (as the chain's start or an audit.pruned event records it): the chain was rewritten here or earlier`;
      this.finish('changed', anchor.seq, message);
    }
  }

  /** A range anchor at startSeq - 1: the hash the range starts from must be its hash. */
  private rangeAnchorAtStart(anchor: Anchor): void {
    if (anchor.hash !== this.startPrevHash) {
      const message = `event ${anchor.seq}, right before this range, does not match the anchored hash (the range's start records another): the chain was rewritten here or earlier`;
      this.finish('changed', anchor.seq, message);
    } else {
      this.checkedAnchor(anchor);
    }
  }

  private checkedAnchor(anchor: Anchor): void {
    if (anchor.strict) return;
    this.rangeChecked++;
    this.rangeNewest = Math.max(this.rangeNewest ?? 0, anchor.seq);
  }

  /** Counts the range anchors once the range's end (`lastSeq`) is known. */
  private rangeSeen(lastSeq: number): RangeAnchorsSeen {
    let before = 0;
    let after = 0;
    for (const anchor of this.anchors) {
      if (anchor.strict) continue;
      if (anchor.seq < this.startSeq - 1) before++;
      else if (anchor.seq > lastSeq) after++;
    }
    return { checked: this.rangeChecked, newest_checked: this.rangeNewest, before, after };
  }

  private accept(event: AuditEventV1): boolean {
    for (let anchor = this.anchors[this.nextAnchor]; anchor !== undefined && anchor.seq === event.seq; anchor = this.anchors[++this.nextAnchor]) {
      if (event.hash !== anchor.hash) {
        const message = `event ${event.seq} does not match the anchored hash: the chain was rewritten here or earlier`;
        return this.finish('changed', event.seq, message);
      }
      this.checkedAnchor(anchor);
    }
    this.prevPrevHash = event.prev_hash;
    this.prevHash = event.hash;
    this.expectedSeq = event.seq + 1;
    this.firstTime ??= event.time;
    this.lastTime = event.time;
    this.count++;
    const trailBreak = this.trail.observe(event);
    if (trailBreak !== undefined) return this.finish(trailBreak.kind, trailBreak.seq, trailBreak.message);
    return true;
  }

  /** `event` is intact (it hashes under seq `original`) but does not link to the event before it. */
  private misplaced(event: AuditEventV1, original: number): false {
    const x = this.expectedSeq;
    const last = x - 1;
    if (this.count > 0 && event.prev_hash === this.prevPrevHash) {
      const message = `event at seq ${last} does not belong: event ${original} links to the event before it`;
      return this.finish('inserted', last, message);
    }
    if (original > x) {
      this.state = { kind: 'looking', x, target: event.prev_hash, found: original };
      return false;
    }
    if (original < x) {
      const message = `event ${original} appears again after event ${last}: it was duplicated or inserted`;
      return this.finish('inserted', x, message);
    }
    if (this.count === 0) {
      return this.finish('changed', x, `event ${x} does not link to the start of the chain (genesis or checkpoint)`);
    }
    const message = `event ${x} records another hash for event ${last}: event ${last} was modified and re-hashed`;
    return this.finish('changed', last, message);
  }

  private finish(kind: ChainBreakKind, seq: number, message: string): false {
    // Accepted events are contiguous from startSeq; those at or after the break's seq do not count.
    const verified = Math.min(this.count, Math.max(0, seq - this.startSeq));
    this.state = { kind: 'done', result: { ok: false, kind, seq, message, verified } };
    return false;
  }
}

/** Verifies a whole chain given in order. */
export function verifyChain(events: Iterable<unknown>, options: VerifyOptions = {}): VerifyResult {
  const verifier = new ChainVerifier(options);
  for (const event of events) {
    verifier.push(event);
    if (verifier.settled) break;
  }
  return verifier.end();
}

/** {@link verifyChain} over an async source (a store cursor, a file being read). */
export async function verifyChainAsync(
  events: AsyncIterable<unknown> | Iterable<unknown>,
  options: VerifyOptions = {},
): Promise<VerifyResult> {
  const verifier = new ChainVerifier(options);
  for await (const event of events) {
    verifier.push(event);
    if (verifier.settled) break;
  }
  return verifier.end();
}

/** The event's hash, or undefined when its data has no canonical encoding (which only tampering produces). */
function safeHash(event: AuditEventV1): string | undefined {
  try {
    return hashEvent(event);
  } catch {
    return undefined;
  }
}

/** The event, or why it is not a v1 event. */
function parseEvent(value: unknown): AuditEventV1 | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not an object';
  const e = value as Record<string, unknown>;
  for (const key of Object.keys(e)) if (!ALLOWED_KEYS.has(key)) return `unexpected field ${JSON.stringify(key)}`;
  if (e['v'] !== 1) return `unsupported version ${JSON.stringify(e['v'])}`;
  if (!Number.isSafeInteger(e['seq']) || (e['seq'] as number) < 1) return 'seq is not a positive integer';
  if (!isIsoTime(e['time'])) return 'time is not ISO 8601 UTC with milliseconds';
  if (typeof e['type'] !== 'string' || e['type'] === '') return 'type is missing';
  if (e['data'] === undefined) return 'data is missing';
  if (!isHash(e['prev_hash'])) return 'prev_hash is not a SHA-256 hex digest';
  if (!isHash(e['hash'])) return 'hash is not a SHA-256 hex digest';
  for (const field of AUDIT_ID_FIELDS) {
    const id = e[field];
    if (id !== undefined && (typeof id !== 'string' || id === '')) return `${field} is not a non-empty string`;
  }
  return value as AuditEventV1;
}
