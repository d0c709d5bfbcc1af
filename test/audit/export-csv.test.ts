import { describe, expect, it } from 'vitest';
import { AUDIT_ID_FIELDS, CSV_COLUMNS, GENESIS_HEAD, canonicalJson, csvCells, csvField, exportCsv, hashEvent, sealEvent, tokenUsedEvent } from '../../src/audit/index.js';
import type { AuditEventV1, NewAuditEvent } from '../../src/audit/index.js';
import { parseCsv } from './csv-reader.js';

const T = '2026-01-01T00:00:00.000Z';
const NEW_EVENTS: NewAuditEvent[] = [
  {
    type: 'decision',
    time: T,
    decision_id: 'd-1',
    agent_id: 'support-resolver',
    caller_id: 'pep-1',
    task_id: 't-1',
    trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
    data: {
      input: { scopes: ['tickets:write', 'tickets:read'], task: { context: { note: 'line one\r\nline "two", =SUM(A1)' } } },
      result: { outcome: 'allow', granted_scopes: ['tickets:write', 'tickets:read'] },
      policy_revision: 'rev.1',
    },
  },
  { type: 'token.issued', time: T, decision_id: 'd-1', jti: 'j-1', data: { scopes: ['tickets:write'], audience: 'crm' } },
  { type: 'auth.failed', time: T, caller_id: '=cmd|calc', data: { reason: 'unknown_key' } },
  { type: 'policy.loaded', time: T, data: 'just a string, with a comma' },
];

function chainOf(events: NewAuditEvent[]): AuditEventV1[] {
  let head = GENESIS_HEAD;
  return events.map((e) => {
    const sealed = sealEvent(head, e);
    head = sealed;
    return sealed;
  });
}

async function csvOf(events: AuditEventV1[]): Promise<string> {
  let text = '';
  for await (const line of exportCsv(events)) text += line;
  return text;
}

describe('the CSV export', () => {
  const chain = chainOf(NEW_EVENTS);

  it('is RFC 4180: a header row, one row per event, every cell where its column says', async () => {
    const rows = parseCsv(await csvOf(chain));
    expect(rows[0]).toEqual([...CSV_COLUMNS]);
    expect(rows).toHaveLength(1 + chain.length);
    const byColumn = rows.slice(1).map((r) => Object.fromEntries(CSV_COLUMNS.map((c, i) => [c, r[i]])));
    expect(byColumn[0]).toMatchObject({
      v: '1', seq: '1', type: 'decision', decision_id: 'd-1', task_id: 't-1', agent_id: 'support-resolver', caller_id: 'pep-1',
      trace_id: '4bf92f3577b34da6a3ce929d0e0e4736', outcome: 'allow', policy_revision: 'rev.1', scopes: 'tickets:write tickets:read',
      prev_hash: chain[0]!.prev_hash, hash: chain[0]!.hash,
    });
    expect(byColumn[1]).toMatchObject({ type: 'token.issued', jti: 'j-1', scopes: 'tickets:write', outcome: '', policy_revision: '' });
  });

  it('carries every hashed field: each row recomputes to its hash (after undoing formula neutralisation)', async () => {
    const rows = parseCsv(await csvOf(chain)).slice(1);
    rows.forEach((row, n) => {
      const cell = (c: string): string => {
        const value = row[CSV_COLUMNS.indexOf(c as (typeof CSV_COLUMNS)[number])] as string;
        return value.startsWith("'") ? value.slice(1) : value;
      };
      const event: Record<string, unknown> = { v: Number(cell('v')), seq: Number(cell('seq')), time: cell('time'), type: cell('type'), data: JSON.parse(cell('data')), prev_hash: cell('prev_hash') };
      for (const id of AUDIT_ID_FIELDS) if (cell(id) !== '') event[id] = cell(id);
      expect(hashEvent(event as Omit<AuditEventV1, 'hash'>)).toBe(chain[n]!.hash);
    });
  });

  it.each([
    { note: 'plain text', value: 'pep-1', cell: 'pep-1' },
    { note: 'a number', value: 42, cell: '42' },
    { note: 'absent', value: undefined, cell: '' },
    { note: 'a comma', value: 'a,b', cell: '"a,b"' },
    { note: 'a quote', value: 'say "hi"', cell: '"say ""hi"""' },
    { note: 'a line break', value: 'a\nb', cell: '"a\nb"' },
    { note: 'a formula (=)', value: '=HYPERLINK("x")', cell: `"'=HYPERLINK(""x"")"` },
    { note: 'a formula (+)', value: '+1', cell: "'+1" },
    { note: 'a formula (-)', value: '-1', cell: "'-1" },
    { note: 'a formula (@)', value: '@SUM(A1)', cell: "'@SUM(A1)" },
    { note: 'a leading tab', value: '\tx', cell: "'\tx" },
  ])('writes $note as a safe cell', ({ value, cell }) => {
    expect(csvField(value)).toBe(cell);
  });
});

describe('the CSV export of token uses', () => {
  const proxied = {
    action: 'proxy', integration: 'github', method: 'PUT', path_template: '/repos/{owner}/{repo}/contents/{path+}', scope: 'repo:write',
    record: { type: 'repo', id: 'acme/app' }, outcome: 'refused', code: 'token_scope_insufficient', upstream_status: null, bytes_in: 0, bytes_out: 120, latency_ms: 1,
  } as const;
  it.each([
    { note: 'a proxied call: its outcome and the scope it needed', data: proxied, want: { outcome: 'refused', scopes: 'repo:write' } },
    { note: 'an unmapped proxied call: no scope', data: { ...proxied, path_template: '', scope: null, record: null, code: 'endpoint_not_mapped' }, want: { outcome: 'refused', scopes: undefined } },
    { note: 'an introspection: neither', data: { action: 'introspect', active: true } as const, want: { outcome: undefined, scopes: undefined } },
    {
      note: 'a request a resource server reported: the scope it required, no outcome',
      data: { action: 'resource_server', integration: 'crm', scope: 'tickets:read', record: null, route: '/tickets', used_at: T } as const,
      want: { outcome: undefined, scopes: 'tickets:read' },
    },
  ])('derives $note', ({ data, want }) => {
    const event = sealEvent(GENESIS_HEAD, tokenUsedEvent(T, { jti: 'j-1', caller_id: 'proxy' }, data));
    expect(csvCells(event)).toMatchObject({ ...want, policy_revision: undefined, data: canonicalJson(event.data) });
  });
});
