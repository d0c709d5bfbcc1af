/**
 * Reading the trail's own events (`audit.*`) back, as the verifier must: their data may be parsed JSON (an export
 * file) or the stored text (RawJson), and a chain that carries one whose data is not what the store writes is
 * reported, not trusted.
 */
import { isIsoTime } from './audit-event.js';
import { RawJson } from './canonical-json.js';
import type { AuditPrunedData } from './event-payloads.js';
import { isHash } from './hash-chain.js';

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
