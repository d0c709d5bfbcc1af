/**
 * What an export contains, worked out before the first byte is written: a seq range of the stored chain and,
 * optionally, filters within it. Then the lines of the export in the chosen format, read page by page from the
 * source (memory stays flat however long the export).
 *
 * - The range is a contiguous run of the chain: from `from_seq` (default: where the stored chain starts) to
 *   `to_seq` (default: the head when the export starts, so events committed meanwhile are not half-included).
 *   `since` / `until` narrow it to the first event at or after `since` and the last one before the first event
 *   at or after `until`. Events are sealed in commit order but stamped when they happened, so at the edges of a
 *   time range an event a few milliseconds outside it can be included: the export stays one unbroken chain.
 * - Filters (agent, task, decision, outcome, reason code, event types) leave events of the range out; a JSON Lines export then says so
 *   in its header and accounts for them with skip lines (export-jsonl.ts). Every event of the range is read and
 *   the filter is applied to the event itself (export-filter.ts), never pushed down to a store index: a column
 *   outside the hash could be edited to drop or add an event without breaking a hash.
 * - The events that decide where a time range starts and ends are checked against their own hash; one that fails
 *   is taken into the range, so the export shows the break rather than moving its edge.
 *
 * The source is anything shaped like the store's read side; this folder never imports the store.
 */
import { isTrailEventType } from './audit-event.js';
import type { AuditEventType, AuditEventV1 } from './audit-event.js';
import { exportCsv } from './export-csv.js';
import { matchesFilter } from './export-filter.js';
import type { ExportFilterV1 } from './export-filter.js';
import { exportJsonl } from './export-jsonl.js';
import { exportOpa } from './export-opa.js';
import { matchesOwnHash } from './hash-chain.js';
import type { ChainHead } from './hash-chain.js';

export const EXPORT_FORMATS = ['jsonl', 'csv', 'opa'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** The media type of each format (JSON Lines is sent as NDJSON, the name most HTTP clients know). */
export const EXPORT_MEDIA_TYPES: Readonly<Record<ExportFormat, string>> = {
  jsonl: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8; header=present',
  opa: 'application/x-ndjson; charset=utf-8',
};

/** The query a source answers: the store's `iterateEvents` (EventQuery) takes exactly these. */
export interface ExportSourceQuery extends ExportFilterV1 {
  from_seq?: number;
  to_seq?: number;
  since?: string;
  /** Events with `data` as stored canonical text (RawJson): JSON Lines writes and hashes them without parsing. */
  raw_data?: boolean;
}

/** The read side of the store, as an export needs it. */
export interface ExportSource {
  chainStart(): Promise<{ start_seq: number; start_prev_hash: string }>;
  chainHead(): Promise<ChainHead>;
  iterateEvents(query?: ExportSourceQuery): AsyncIterable<AuditEventV1>;
}

/** What was asked for. Times are ISO 8601 UTC with milliseconds; every field is optional. */
export interface ExportRequest {
  from_seq?: number;
  to_seq?: number;
  /** Events from the first one with time >= since. */
  since?: string;
  /** Events before the first one with time >= until. */
  until?: string;
  agent_id?: string;
  task_id?: string;
  decision_id?: string;
  outcome?: ExportFilterV1['outcome'];
  /** Decision events with a reason of this code. */
  reason?: string;
  types?: AuditEventType[];
}

export interface ExportPlan {
  /** First and last seq of the range (from_seq > to_seq when it is empty). */
  from_seq: number;
  to_seq: number;
  /** Hash of event from_seq - 1 (or genesis / the checkpoint): the header's start_prev_hash. */
  start_prev_hash: string;
  /** Present when events of the range are left out. */
  filter?: ExportFilterV1;
}

/** Resolves a request into a seq range and filters against the chain as it is now. */
export async function planExport(source: ExportSource, request: ExportRequest = {}): Promise<ExportPlan> {
  const start = await source.chainStart();
  const head = await source.chainHead();
  const lowest = Math.max(start.start_seq, request.from_seq ?? start.start_seq);
  let from = lowest;
  let to = Math.min(head.seq, request.to_seq ?? head.seq);
  if (request.since !== undefined && from <= to) {
    from = (await firstSeq(source, { from_seq: from, to_seq: to, since: request.since })) ?? to + 1;
    // The event before the range is outside it because of its time: only if that time is the one sealed.
    if (from > lowest) {
      const before = await firstEvent(source, { from_seq: from - 1, to_seq: from - 1 });
      if (before !== undefined && !matchesOwnHash(before)) from = before.seq;
    }
  }
  if (request.until !== undefined && from <= to) {
    const stop = await firstEvent(source, { from_seq: from, to_seq: to, since: request.until });
    if (stop !== undefined) to = matchesOwnHash(stop) ? stop.seq - 1 : stop.seq;
  }
  let startPrevHash = start.start_prev_hash;
  if (from > start.start_seq) {
    const before = await firstEvent(source, { from_seq: from - 1, to_seq: from - 1 });
    // Missing only in a tampered store; the first event's own link then decides (verification will name it).
    startPrevHash = before?.hash ?? (await firstEvent(source, { from_seq: from, to_seq: from }))?.prev_hash ?? startPrevHash;
  }
  const filter = filterOf(request);
  return { from_seq: from, to_seq: to, start_prev_hash: startPrevHash, ...(filter ? { filter } : {}) };
}

export interface ExportLinesOptions {
  /** Stamped in the JSON Lines header. Default: none. */
  exported_at?: string;
  /** Called with each event read (its seq), e.g. for a progress bar. */
  onEvent?: (seq: number) => void;
}

/** The lines of the planned export in `format`, read from `source` page by page. */
export function exportLines(
  source: ExportSource,
  plan: ExportPlan,
  format: ExportFormat,
  options: ExportLinesOptions = {},
): AsyncGenerator<string> {
  // JSON Lines writes each event as stored and checks its hash: no need to parse its data (the outcome filter parses
  // a decision's data when it needs it). CSV and OPA's format read fields of the data.
  const events = readRange(source, plan, options.onEvent, format === 'jsonl');
  const filter = plan.filter;
  switch (format) {
    case 'jsonl':
      return exportJsonl(
        {
          start_seq: plan.from_seq,
          start_prev_hash: plan.start_prev_hash,
          ...(options.exported_at === undefined ? {} : { exported_at: options.exported_at }),
          ...(filter === undefined ? {} : { filter }),
        },
        events,
        // The trail's own events are kept whatever the filter: a reader verifies the chain against them.
        filter === undefined ? {} : { keep: (event) => matchesFilter(event, filter) || isTrailEventType(event.type) },
      );
    case 'csv':
      return exportCsv(filter === undefined ? events : only(events, filter));
    case 'opa':
      // OPA's format has decision and evaluation events only.
      return exportOpa(only(events, { ...filter, types: (filter?.types ?? ['decision', 'evaluation']).filter((t) => t === 'decision' || t === 'evaluation') }));
    default:
      throw new TypeError(`unknown export format ${String(format)}`);
  }
}

/** Groups lines into chunks of at least `bytes` (64 KiB by default): far fewer writes to a socket or file. */
export async function* inChunks(lines: AsyncIterable<string>, bytes = 64 * 1024): AsyncGenerator<string> {
  let parts: string[] = [];
  let size = 0;
  for await (const line of lines) {
    parts.push(line);
    size += line.length;
    if (size >= bytes) {
      yield parts.join('');
      parts = [];
      size = 0;
    }
  }
  if (parts.length > 0) yield parts.join('');
}

/** Every event of the planned range, in seq order: the filter is applied to them afterwards, never by the source. */
async function* readRange(source: ExportSource, plan: ExportPlan, onEvent: ((seq: number) => void) | undefined, rawData = false): AsyncGenerator<AuditEventV1> {
  if (plan.from_seq > plan.to_seq) return;
  for await (const event of source.iterateEvents({ from_seq: plan.from_seq, to_seq: plan.to_seq, ...(rawData ? { raw_data: true } : {}) })) {
    onEvent?.(event.seq);
    yield event;
  }
}

async function* only(events: AsyncIterable<AuditEventV1>, filter: ExportFilterV1): AsyncGenerator<AuditEventV1> {
  for await (const event of events) if (matchesFilter(event, filter)) yield event;
}

function filterOf(request: ExportRequest): ExportFilterV1 | undefined {
  const filter: ExportFilterV1 = {};
  if (request.agent_id !== undefined) filter.agent_id = request.agent_id;
  if (request.task_id !== undefined) filter.task_id = request.task_id;
  if (request.decision_id !== undefined) filter.decision_id = request.decision_id;
  if (request.outcome !== undefined) filter.outcome = request.outcome;
  if (request.reason !== undefined) filter.reason = request.reason;
  if (request.types !== undefined) filter.types = [...request.types];
  return Object.keys(filter).length > 0 ? filter : undefined;
}

async function firstEvent(source: ExportSource, query: ExportSourceQuery): Promise<AuditEventV1 | undefined> {
  for await (const event of source.iterateEvents(query)) return event;
  return undefined;
}

async function firstSeq(source: ExportSource, query: ExportSourceQuery): Promise<number | undefined> {
  return (await firstEvent(source, query))?.seq;
}
