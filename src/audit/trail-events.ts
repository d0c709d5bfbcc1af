/**
 * Reading the trail's own events (`audit.*`) back, as the verifier must: their data may be parsed JSON (an export
 * file) or the stored text (RawJson), and a chain that carries one whose data is not what the store writes is
 * reported, not trusted. `TrailRecords` is the part of the chain verifier that checks what they claim.
 */
import { isIsoTime } from './audit-event.js';
import type { AuditEventV1 } from './audit-event.js';
import { RawJson } from './canonical-json.js';
import type { AuditPrunedData } from './event-payloads.js';
import { isHash } from './hash-chain.js';
import { parseSignedHead, signedHeadProblem } from './signed-head.js';
import type { HeadKeys, SignedHeadV1 } from './signed-head.js';

/**
 * Where a stored chain starts after pruning, as the store records it (its `audit_checkpoints` row): the last
 * pruned event's seq and hash, when, and how many events that prune deleted.
 */
export interface PruneCheckpoint {
  last_pruned_seq: number;
  last_pruned_hash: string;
  pruned_at: string;
  pruned_count: number;
}

/** An event's data as an object, or undefined when it is not one (or not JSON at all). */
export function dataObject(data: unknown): Record<string, unknown> | undefined {
  let value = data;
  if (value instanceof RawJson) {
    try {
      value = JSON.parse(value.json) as unknown;
    } catch {
      return undefined;
    }
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

const PRUNED_KEYS = ['before', 'from_seq', 'last_hash', 'to_seq'];

/** The data of an audit.pruned event, or why it is not one. */
export function parsePrunedData(data: unknown): AuditPrunedData | string {
  const d = dataObject(data);
  if (d === undefined) return 'its data is not an object';
  if (Object.keys(d).sort().join() !== PRUNED_KEYS.join()) return `its data must have exactly ${PRUNED_KEYS.join(', ')}`;
  const { from_seq: from, to_seq: to, last_hash: lastHash, before } = d;
  if (!isSeq(from) || !isSeq(to) || to < from) return 'from_seq..to_seq is not a range of seqs';
  if (!isHash(lastHash)) return 'last_hash is not a SHA-256 hex digest';
  if (!isIsoTime(before)) return 'before is not an ISO 8601 time';
  return { from_seq: from, to_seq: to, last_hash: lastHash, before };
}

/** Where `checkpoint` and the audit.pruned event (`data`, written at `time`) disagree; undefined when they agree. */
export function checkpointMismatch(checkpoint: PruneCheckpoint, data: AuditPrunedData, time: string): string | undefined {
  if (data.to_seq !== checkpoint.last_pruned_seq) return `it ends at seq ${checkpoint.last_pruned_seq}, the event at ${data.to_seq}`;
  if (data.last_hash !== checkpoint.last_pruned_hash) return 'it records another hash';
  if (time !== checkpoint.pruned_at) return `it was made at ${checkpoint.pruned_at}, the event at ${time}`;
  const count = data.to_seq - data.from_seq + 1;
  if (count !== checkpoint.pruned_count) return `it counts ${checkpoint.pruned_count} events, the event ${count}`;
  return undefined;
}

function isSeq(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 1;
}

/** A break found in the trail's own events (the verifier names it like any other). */
export interface TrailBreak {
  kind: 'changed' | 'removed' | 'malformed';
  seq: number;
  message: string;
}

/** What the signed heads in a verified chain showed. */
export interface SignedHeadsSeen {
  /** audit.head_signed events in the chain. */
  count: number;
  /** True when every one was checked with the audit public keys given; false when none were given. */
  verified: boolean;
  /** The newest one (the last in the chain), and the seq of the event that carries it; null when there is none. */
  newest: (SignedHeadV1 & { event_seq: number }) | null;
}

/**
 * Follows the trail's own events through a chain as the verifier accepts them: the audit.pruned event that must
 * record the checkpoint the chain starts from, and every signed head (its signature, when keys are given, and that
 * it signs the event right before it with that event's hash). Also remembers what audit.pruned events record
 * about the seqs of anchors, so a head from before the chain's start can still be checked. Constant memory.
 */
export class TrailRecords {
  private readonly checkpoint: PruneCheckpoint | undefined;
  private readonly keys: HeadKeys | undefined;
  private readonly wanted: ReadonlySet<number>;
  private readonly witnesses = new Map<number, string>();
  private prunedBySeq: number | undefined;
  private heads = 0;
  private newest: SignedHeadsSeen['newest'] = null;

  constructor(options: { checkpoint?: PruneCheckpoint | undefined; headKeys?: HeadKeys | undefined; anchorSeqs?: readonly number[] }) {
    this.checkpoint = options.checkpoint;
    this.keys = options.headKeys;
    this.wanted = new Set(options.anchorSeqs ?? []);
  }

  /** seq of the audit.pruned event that records the checkpoint, once seen. */
  get prunedBy(): number | undefined {
    return this.prunedBySeq;
  }

  /** What the chain's trail events record as the hash of `seq` (for an anchor before the chain's start). */
  recorded(seq: number): string | undefined {
    return this.witnesses.get(seq);
  }

  /** The signed heads seen, or undefined when there were none and no keys to check them with. */
  signedHeads(): SignedHeadsSeen | undefined {
    if (this.heads === 0 && this.keys === undefined) return undefined;
    return { count: this.heads, verified: this.keys !== undefined, newest: this.newest };
  }

  /** An event the verifier accepted (intact, in its place). A break, or undefined. */
  observe(event: AuditEventV1): TrailBreak | undefined {
    if (event.type === 'audit.pruned') return this.pruned(event);
    if (event.type === 'audit.head_signed') return this.signed(event);
    return undefined;
  }

  /** At the end of a chain that verified: a checkpoint no audit.pruned event recorded is a break. */
  end(): TrailBreak | undefined {
    const checkpoint = this.checkpoint;
    if (checkpoint === undefined || this.prunedBySeq !== undefined) return undefined;
    const n = checkpoint.last_pruned_seq;
    const message = `the chain starts after a checkpoint at seq ${n} that no audit.pruned event records: events up to ${n} were deleted outside \`audit prune\``;
    return { kind: 'removed', seq: n, message };
  }

  private pruned(event: AuditEventV1): TrailBreak | undefined {
    const data = parsePrunedData(event.data);
    if (typeof data === 'string') return { kind: 'malformed', seq: event.seq, message: `audit.pruned event ${event.seq}: ${data}` };
    if (data.to_seq >= event.seq) {
      return { kind: 'malformed', seq: event.seq, message: `audit.pruned event ${event.seq} names events up to ${data.to_seq}, not before it` };
    }
    if (this.wanted.has(data.to_seq)) this.witnesses.set(data.to_seq, data.last_hash);
    const checkpoint = this.checkpoint;
    if (checkpoint !== undefined && this.prunedBySeq === undefined && data.to_seq === checkpoint.last_pruned_seq) {
      const mismatch = checkpointMismatch(checkpoint, data, event.time);
      if (mismatch !== undefined) {
        const message = `the checkpoint the chain starts from does not match the audit.pruned event at seq ${event.seq}: ${mismatch}`;
        return { kind: 'changed', seq: checkpoint.last_pruned_seq, message };
      }
      this.prunedBySeq = event.seq;
    }
    return undefined;
  }

  private signed(event: AuditEventV1): TrailBreak | undefined {
    const head = parseSignedHead(dataObject(event.data));
    const at = event.seq;
    if (typeof head === 'string') return { kind: 'malformed', seq: at, message: `audit.head_signed event ${at}: ${head}` };
    if (head.seq !== at - 1 || head.time !== event.time) {
      return { kind: 'changed', seq: at, message: `the signed head in event ${at} is not for the event before it at the event's time: it was moved or altered` };
    }
    if (this.keys !== undefined) {
      const problem = signedHeadProblem(head, this.keys);
      if (problem !== undefined) return { kind: 'changed', seq: at, message: `the signed head in event ${at} ${problem}: it was forged or altered` };
    }
    if (head.hash !== event.prev_hash) {
      const message = `event ${head.seq} does not have the hash the signed head in event ${at} records: the chain was rewritten here or earlier`;
      return { kind: 'changed', seq: head.seq, message };
    }
    this.heads++;
    this.newest = { ...head, event_seq: at };
    return undefined;
  }
}
