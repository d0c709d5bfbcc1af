/**
 * The export file: JSON Lines, UTF-8, one JSON object per line. Verifying a file needs nothing but the file (and,
 * to detect a file rewritten as a whole, its head or digest recorded elsewhere). Documented in
 * docs/audit-events.md ("Export files") and docs/compliance.md.
 *
 *   {"format":"agent-pdp-audit-export","start_prev_hash":"<hex>","start_seq":1,"v":1}     header, always first
 *   {"data":{...},"hash":"<hex>","prev_hash":"<hex>","seq":1,"time":"...","type":"decision","v":1}   an event
 *   {"skip":{"from_seq":2,"last_hash":"<hex>","prev_hash":"<hex>","to_seq":9}}   events 2..9 left out by the
 *                                           header's filter (filtered exports only)
 *   {"end":{"count":1,"digest":"<hex>","last_hash":"<hex>","last_seq":1}}                   trailer, always last
 *
 * Every seq from `start_seq` to the last event is accounted for, by an event line or a skip line, and every line
 * links to the one before: an event's prev_hash is the hash of the event before it, or the `last_hash` of the skip
 * before it; a skip's `prev_hash` is the hash of the event before it (so an event edited and re-hashed is named
 * by the line after it, whatever that line is). The trailer says how many events the file holds, which one is
 * last, and the SHA-256 (`digest`) of every line before it (each with its "\n"): a file cut short, or with a line
 * removed or added anywhere (header and skip lines included), fails.
 *
 * A filtered export is made from every event of its range: the filter is applied to each event's hashed fields
 * (export-filter.ts), never to a column stored beside it, and an event is left out only after it was checked to
 * match its own hash and link to the one before it; a skip line carries the hashes of the events it stands for.
 * An event that fails either check is written whatever the filter says, so the file shows the break. A verifier
 * of the file checks that every event in it passes the header's filter; it cannot see the events left out:
 * `audit verify` on the store, or on an unfiltered export, shows they are intact.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { RECORDED_OUTCOMES } from '../wire/evaluation-v1.js';
import { AUDIT_EVENT_TYPES, isIsoTime, isTrailEventType } from './audit-event.js';
import type { AuditEventV1 } from './audit-event.js';
import { canonicalJson } from './canonical-json.js';
import { ChainVerifier } from './chain-verifier.js';
import type { VerifyOptions, VerifyResult } from './chain-verifier.js';
import { matchesFilter } from './export-filter.js';
import type { ExportFilterV1 } from './export-filter.js';
import { isHash, matchesOwnHash } from './hash-chain.js';

export type { ExportFilterV1 } from './export-filter.js';

export const EXPORT_FORMAT = 'agent-pdp-audit-export';

export interface ExportHeaderV1 {
  format: typeof EXPORT_FORMAT;
  v: 1;
  /** seq of the first event (or skip) in the file. */
  start_seq: number;
  /** prev_hash of event start_seq: GENESIS_HASH, the pruning checkpoint's hash, or the hash of start_seq - 1. */
  start_prev_hash: string;
  /** When the export was written (informational). */
  exported_at?: string;
  /** Present when events were left out: skip lines then account for every seq not in the file. */
  filter?: ExportFilterV1;
}

/** A run of events left out by the filter. */
export interface ExportSkipV1 {
  skip: {
    from_seq: number;
    to_seq: number;
    /** prev_hash of event from_seq: the hash of the event (or start) before the run. */
    prev_hash: string;
    /** hash of event to_seq: the prev_hash of the event after the run. */
    last_hash: string;
  };
}

export interface ExportTrailerV1 {
  end: {
    /** Event lines in the file. */
    count: number;
    /** seq and hash of the last event line (start_seq - 1 and start_prev_hash when there is none). */
    last_seq: number;
    last_hash: string;
    /** Lowercase hex SHA-256 of every line before the trailer, each followed by "\n". */
    digest: string;
  };
}

export type ExportStart = Omit<ExportHeaderV1, 'format' | 'v'>;

export interface ExportJsonlOptions {
  /**
   * Decides, event by event, what a filtered export (one whose `start.filter` is set) writes. With it, `events` is
   * every event of the range: an event it rejects is left out only if it matches its own hash and links to the
   * event before it, and a run of left-out events becomes one skip line carrying their own first `prev_hash` and
   * last `hash`; any other event is written, so the file shows the break. Without it, `events` are the events to
   * write and a gap in their seqs becomes a skip line bridging the hashes on either side. Default: none.
   */
  keep?: (event: AuditEventV1) => boolean;
}

/**
 * The lines of an export file, each ending in "\n": the header, the events (with skip lines for the runs left out
 * when the header has a filter), the trailer. `events` must be in seq order, from `start.start_seq` on.
 */
export async function* exportJsonl(
  start: ExportStart,
  events: AsyncIterable<AuditEventV1> | Iterable<AuditEventV1>,
  options: ExportJsonlOptions = {},
): AsyncGenerator<string> {
  const digest = createHash('sha256');
  const emit = (value: unknown): string => {
    const line = canonicalJson(value) + '\n';
    digest.update(line, 'utf8');
    return line;
  };
  // Field by field: the caller's object (e.g. the store's ChainStart) may carry more than the header holds.
  const header: ExportHeaderV1 = { format: EXPORT_FORMAT, v: 1, start_seq: start.start_seq, start_prev_hash: start.start_prev_hash };
  if (start.exported_at !== undefined) header.exported_at = start.exported_at;
  if (start.filter !== undefined) header.filter = start.filter;
  yield emit(header);
  const filtered = start.filter !== undefined;
  const keep = filtered ? options.keep : undefined;
  let next = start.start_seq;
  let count = 0;
  /** The last event line. */
  let last = { seq: start.start_seq - 1, hash: start.start_prev_hash };
  /** The last event read, written or left out. */
  let read = last;
  let run: ExportSkipV1['skip'] | undefined;
  for await (const event of events) {
    if (keep !== undefined) {
      const linked = event.seq === read.seq + 1 && event.prev_hash === read.hash;
      read = { seq: event.seq, hash: event.hash };
      if (linked && !keep(event) && matchesOwnHash(event)) {
        run ??= { from_seq: event.seq, to_seq: event.seq, prev_hash: event.prev_hash, last_hash: event.hash };
        run.to_seq = event.seq;
        run.last_hash = event.hash;
        continue;
      }
      if (run !== undefined) yield emit({ skip: run } satisfies ExportSkipV1);
      run = undefined;
    } else if (filtered && event.seq > next) {
      // A gap in an unfiltered export is reproduced as it is: the file then fails verification, as the store would.
      const skip: ExportSkipV1 = { skip: { from_seq: next, to_seq: event.seq - 1, prev_hash: last.hash, last_hash: event.prev_hash } };
      yield emit(skip);
    }
    yield emit(event);
    count++;
    next = event.seq + 1;
    last = { seq: event.seq, hash: event.hash };
  }
  // A run left out after the last event line is not declared: the file ends at its last event, as the trailer says.
  const trailer: ExportTrailerV1 = { end: { count, last_seq: last.seq, last_hash: last.hash, digest: digest.digest('hex') } };
  yield canonicalJson(trailer) + '\n';
}

export type ExportVerifyResult = VerifyResult & {
  header?: ExportHeaderV1;
  trailer?: ExportTrailerV1['end'];
};

export interface ExportVerifyOptions extends Pick<VerifyOptions, 'expectedLast' | 'anchors' | 'rangeAnchors' | 'headKeys'> {
  /** The trailer digest recorded when the file was exported: any other file fails, even one rewritten whole. */
  expectedDigest?: string;
}

/** Verifies the lines of an export (header first, trailer last). Blank lines are ignored. */
export async function verifyExportLines(
  lines: AsyncIterable<string> | Iterable<string>,
  options: ExportVerifyOptions = {},
): Promise<ExportVerifyResult> {
  let header: ExportHeaderV1 | undefined;
  let verifier: ChainVerifier | undefined;
  let trailer: ExportTrailerV1['end'] | undefined;
  const digest = createHash('sha256');
  let lineNo = 0;
  let events = 0;
  /** The first event line the header's filter leaves out, and how many event lines came before it. */
  let outsideFilter: { seq: number; verified: number } | undefined;
  const fail = (kind: 'malformed' | 'changed' | 'removed' | 'inserted', seq: number, message: string): ExportVerifyResult => {
    const verified = verifier?.end();
    return { ok: false, kind, seq, message, verified: verified?.ok ? verified.count : 0, ...(header ? { header } : {}) };
  };
  for await (const raw of lines) {
    lineNo++;
    const line = raw.endsWith('\n') ? raw.slice(0, raw.endsWith('\r\n') ? -2 : -1) : raw;
    if (line.trim() === '') continue;
    if (trailer !== undefined) return fail('malformed', trailer.last_seq + 1, `line ${lineNo} follows the trailer`);
    if (verifier === undefined) {
      header = parseHeader(line);
      if (header === undefined) return fail('malformed', 0, `line ${lineNo} is not an export header`);
      const { expectedLast, anchors, rangeAnchors, headKeys } = options;
      verifier = new ChainVerifier({
        startSeq: header.start_seq,
        startPrevHash: header.start_prev_hash,
        ...(expectedLast === undefined ? {} : { expectedLast }),
        ...(anchors === undefined ? {} : { anchors }),
        ...(rangeAnchors === undefined ? {} : { rangeAnchors }),
        ...(headKeys === undefined ? {} : { headKeys }),
      });
      digest.update(line + '\n', 'utf8');
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      value = `line ${lineNo} is not JSON`;
    }
    const kind = lineKind(value);
    if (kind === 'end') {
      trailer = parseTrailer(value);
      if (trailer === undefined) return fail('malformed', 0, `line ${lineNo} is not a valid trailer`);
      continue;
    }
    digest.update(line + '\n', 'utf8');
    if (kind === 'skip') {
      const skip = parseSkip(value);
      if (skip === undefined || header?.filter === undefined) {
        const why = skip === undefined ? 'is not a valid skip line' : 'skips events, but the export is not filtered';
        return fail('malformed', 0, `line ${lineNo} ${why}`);
      }
      verifier.skip(skip.from_seq, skip.to_seq, skip.prev_hash, skip.last_hash);
    } else if (verifier.push(value) && header?.filter !== undefined && !keptByFilter(value as AuditEventV1, header.filter)) {
      // Intact and in place, but the header's filter leaves it out. Reported once the rest verifies: a header
      // edited after the export is named by the digest, which is the better account of what happened.
      outsideFilter ??= { seq: (value as AuditEventV1).seq, verified: events };
    }
    if (kind === 'event') events++;
    if (verifier.settled) break;
  }
  if (verifier === undefined) return fail('malformed', 0, 'empty export');
  const result = verifier.end();
  if (!result.ok || header === undefined) return { ...result, ...(header ? { header } : {}) };
  const withHeader = { header };
  if (trailer === undefined) {
    const message = `the file ends after seq ${result.last_seq} without its trailer: it was cut short`;
    return { ok: false, kind: 'removed', seq: result.last_seq + 1, message, verified: result.count, ...withHeader };
  }
  const mismatch = compareTrailer(result, trailer, digest.digest('hex'));
  if (mismatch !== undefined) return { ...mismatch, verified: result.count, ...withHeader };
  if (options.expectedDigest !== undefined && options.expectedDigest.toLowerCase() !== trailer.digest) {
    const message = `the file's digest ${trailer.digest} is not the digest recorded at export: the file was replaced`;
    return { ok: false, kind: 'changed', seq: 0, message, verified: result.count, ...withHeader };
  }
  if (outsideFilter !== undefined) {
    const { seq, verified } = outsideFilter;
    const message = `event ${seq} does not pass the export's filter: it does not belong in this file`;
    return { ok: false, kind: 'inserted', seq, message, verified, ...withHeader };
  }
  return { ...result, header, trailer };
}

/** Verifies an export file on disk, streaming it line by line. */
export async function verifyExportFile(path: string, options: ExportVerifyOptions = {}): Promise<ExportVerifyResult> {
  const input = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  try {
    return await verifyExportLines(lines, options);
  } finally {
    lines.close();
    input.destroy();
  }
}

type Mismatch = { ok: false; kind: 'changed' | 'removed' | 'inserted'; seq: number; message: string };

function compareTrailer(result: Extract<VerifyResult, { ok: true }>, end: ExportTrailerV1['end'], digest: string): Mismatch | undefined {
  if (end.last_seq > result.last_seq) {
    const message = `the trailer ends at seq ${end.last_seq}, the file at seq ${result.last_seq}: the events after it were removed`;
    return { ok: false, kind: 'removed', seq: result.last_seq + 1, message };
  }
  if (end.last_seq < result.last_seq) {
    const message = `the trailer ends at seq ${end.last_seq}, the file at seq ${result.last_seq}: the events after it were added`;
    return { ok: false, kind: 'inserted', seq: end.last_seq + 1, message };
  }
  if (end.last_hash !== result.last_hash) {
    const message = `event ${end.last_seq} does not have the hash the trailer records: it was modified and re-hashed`;
    return { ok: false, kind: 'changed', seq: end.last_seq, message };
  }
  if (end.count !== result.count) {
    const kind = end.count > result.count ? 'removed' : 'inserted';
    const message = `the trailer counts ${end.count} events, the file holds ${result.count}: a skip line hides the difference`;
    return { ok: false, kind, seq: end.last_seq, message };
  }
  if (end.digest !== digest) {
    const message = 'the lines before the trailer do not match its digest: the header or a skip line was changed';
    return { ok: false, kind: 'changed', seq: 0, message };
  }
  return undefined;
}

/** What a filtered export holds: the events its filter passes, and the trail's own events, always. */
function keptByFilter(event: AuditEventV1, filter: ExportFilterV1): boolean {
  return matchesFilter(event, filter) || isTrailEventType(event.type);
}

function lineKind(value: unknown): 'end' | 'skip' | 'event' {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'event';
  if (Object.hasOwn(value, 'end')) return 'end';
  if (Object.hasOwn(value, 'skip')) return 'skip';
  return 'event';
}

const HEADER_KEYS = new Set(['format', 'v', 'start_seq', 'start_prev_hash', 'exported_at', 'filter']);
const FILTER_KEYS = new Set(['agent_id', 'task_id', 'decision_id', 'outcome', 'reason', 'types']);
const OUTCOMES = new Set<string>(RECORDED_OUTCOMES);

function parseHeader(line: string): ExportHeaderV1 | undefined {
  const h = parseObject(line);
  if (h === undefined || !Object.keys(h).every((k) => HEADER_KEYS.has(k))) return undefined;
  if (h['format'] !== EXPORT_FORMAT || h['v'] !== 1) return undefined;
  if (!isSeq(h['start_seq']) || !isHash(h['start_prev_hash'])) return undefined;
  const header: ExportHeaderV1 = { format: EXPORT_FORMAT, v: 1, start_seq: h['start_seq'], start_prev_hash: h['start_prev_hash'] };
  if (h['exported_at'] !== undefined) {
    if (!isIsoTime(h['exported_at'])) return undefined;
    header.exported_at = h['exported_at'];
  }
  if (h['filter'] !== undefined) {
    const filter = parseFilter(h['filter']);
    if (filter === undefined) return undefined;
    header.filter = filter;
  }
  return header;
}

function parseFilter(value: unknown): ExportFilterV1 | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const f = value as Record<string, unknown>;
  if (!Object.keys(f).every((k) => FILTER_KEYS.has(k))) return undefined;
  for (const key of ['agent_id', 'task_id', 'decision_id', 'reason'] as const) {
    if (f[key] !== undefined && (typeof f[key] !== 'string' || f[key] === '')) return undefined;
  }
  if (f['outcome'] !== undefined && !OUTCOMES.has(f['outcome'] as string)) return undefined;
  const types = f['types'];
  if (types !== undefined && (!Array.isArray(types) || !types.every((t) => typeof t === 'string' && Object.hasOwn(AUDIT_EVENT_TYPES, t)))) {
    return undefined;
  }
  return f as ExportFilterV1;
}

function parseSkip(value: unknown): ExportSkipV1['skip'] | undefined {
  const line = value as Record<string, unknown>;
  if (Object.keys(line).length !== 1) return undefined;
  const skip = line['skip'];
  if (typeof skip !== 'object' || skip === null || Array.isArray(skip)) return undefined;
  const s = skip as Record<string, unknown>;
  if (Object.keys(s).length !== 4 || !isSeq(s['from_seq']) || !isSeq(s['to_seq']) || s['to_seq'] < s['from_seq']) return undefined;
  if (!isHash(s['prev_hash']) || !isHash(s['last_hash'])) return undefined;
  return { from_seq: s['from_seq'], to_seq: s['to_seq'], prev_hash: s['prev_hash'], last_hash: s['last_hash'] };
}

function parseTrailer(value: unknown): ExportTrailerV1['end'] | undefined {
  const line = value as Record<string, unknown>;
  if (Object.keys(line).length !== 1) return undefined;
  const end = line['end'];
  if (typeof end !== 'object' || end === null || Array.isArray(end)) return undefined;
  const e = end as Record<string, unknown>;
  if (Object.keys(e).length !== 4) return undefined;
  const { count, last_seq: lastSeq, last_hash: lastHash, digest } = e;
  if (!Number.isSafeInteger(count) || (count as number) < 0 || !Number.isSafeInteger(lastSeq) || (lastSeq as number) < 0) {
    return undefined;
  }
  if (!isHash(lastHash) || !isHash(digest)) return undefined;
  return { count: count as number, last_seq: lastSeq as number, last_hash: lastHash, digest };
}

function parseObject(line: string): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function isSeq(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 1;
}
