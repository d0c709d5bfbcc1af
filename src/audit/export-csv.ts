/**
 * The CSV export, for a spreadsheet: RFC 4180 (comma, "-quoted fields, CRLF), UTF-8, a header row, one row per
 * event. Every field of the event is a column (`data` as its canonical JSON), so a row still carries what its
 * hash covers; three derived columns (`outcome`, `policy_revision`, `scopes`) are added for filtering in a sheet
 * and are not hashed: a decision's outcome and granted scopes, a token's scopes, for a call through the proxy
 * (token.used, action `proxy`) its outcome (forwarded, refused, failed) and the scope it needed, and for a request
 * a resource server reported (token.used, action `resource_server`) the scope it required. A text cell that a
 * spreadsheet would run as a formula (first character = + - @ tab or CR) is prefixed with a single quote (OWASP
 * "CSV injection"); strip it before recomputing a hash.
 * The CSV export has no skip lines or trailer: use JSON Lines for evidence.
 */
import type { AuditEventV1 } from './audit-event.js';
import { canonicalJson } from './canonical-json.js';

/** The columns, in order. */
export const CSV_COLUMNS = [
  'v',
  'seq',
  'time',
  'type',
  'decision_id',
  'jti',
  'task_id',
  'agent_id',
  'caller_id',
  'trace_id',
  'outcome',
  'policy_revision',
  'scopes',
  'data',
  'prev_hash',
  'hash',
] as const;

export type CsvColumn = (typeof CSV_COLUMNS)[number];

const FORMULA_START = /^[=+\-@\t\r]/;

/** One field: quoted when it holds a comma, quote or line break; formula-like text neutralised. */
export function csvField(value: string | number | undefined): string {
  if (value === undefined) return '';
  if (typeof value === 'number') return String(value);
  const text = FORMULA_START.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** The cells of one event, by column. */
export function csvCells(event: AuditEventV1): Record<CsvColumn, string | number | undefined> {
  const data = event.data as Record<string, unknown> | null;
  const result = isObject(data) && isObject(data['result']) ? data['result'] : undefined;
  const proxied = event.type === 'token.used' && isObject(data) && data['action'] === 'proxy' ? data : undefined;
  const reported = event.type === 'token.used' && isObject(data) && data['action'] === 'resource_server' ? data : undefined;
  const used = proxied ?? reported;
  const scopes =
    event.type === 'decision' ? result?.['granted_scopes']
    : used !== undefined ? (typeof used['scope'] === 'string' ? [used['scope']] : undefined)
    : isObject(data) ? data['scopes']
    : undefined;
  const outcome = proxied !== undefined ? proxied['outcome'] : result?.['outcome'];
  const revision = isObject(data) ? data['policy_revision'] : undefined;
  return {
    v: event.v,
    seq: event.seq,
    time: event.time,
    type: event.type,
    decision_id: event.decision_id,
    jti: event.jti,
    task_id: event.task_id,
    agent_id: event.agent_id,
    caller_id: event.caller_id,
    trace_id: event.trace_id,
    outcome: typeof outcome === 'string' ? outcome : undefined,
    policy_revision: typeof revision === 'string' ? revision : undefined,
    scopes: Array.isArray(scopes) ? scopes.filter((s) => typeof s === 'string').join(' ') : undefined,
    data: canonicalJson(event.data),
    prev_hash: event.prev_hash,
    hash: event.hash,
  };
}

export function csvRow(event: AuditEventV1): string {
  const cells = csvCells(event);
  return CSV_COLUMNS.map((column) => csvField(cells[column])).join(',') + '\r\n';
}

/** The lines of a CSV export: the header row, then one row per event. */
export async function* exportCsv(events: AsyncIterable<AuditEventV1> | Iterable<AuditEventV1>): AsyncGenerator<string> {
  yield CSV_COLUMNS.join(',') + '\r\n';
  for await (const event of events) yield csvRow(event);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
