/**
 * GET /v1/audit/export (role auditor) on a whole PDP: each format parsed back, the filters, time ranges that
 * stay one unbroken chain, filtered JSON Lines that verify on their own, and rejections by code.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CSV_COLUMNS, verifyExportLines } from '../../src/audit/index.js';
import type { AuditEventV1 } from '../../src/audit/index.js';
import { parseCsv } from '../audit/csv-reader.js';
import { eventV1Problems } from '../audit/opa-event-v1.js';
import { completeTask, decide, introspect, issueToken, revoke } from '../issuer-http/flow.js';
import { OPA_BIN } from '../support/opa-cli.js';
import type { OpenApiChecker } from '../support/openapi-check.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';
import { auditApiChecker } from './openapi.js';

let t: TestPdp;
let api: OpenApiChecker;
/** The clock at the start of each phase of activity, an hour apart. */
let phase1: Date;
let phase2: Date;
let taskA: string;

beforeAll(async () => {
  t = await startTestPdp();
  api = await auditApiChecker(t.url);
  phase1 = t.clock.now;
  // Phase 1: a task with an allow redeemed, introspected and revoked, a deny, and another agent's decision.
  const first = await issueToken(t);
  taskA = first.taskId;
  await introspect(t, first.token.access_token).expect(200);
  await revoke(t, first.token.access_token).expect(200);
  expect((await decide(t, taskA, { customer: '9999' })).outcome).toBe('deny');
  await request(t.url)
    .post('/v1/decide')
    .set(auth(KEYS.pep))
    .send({ agent_id: 'code-review-agent', task: { id: 'review-1' }, integration: 'github', scopes: ['repo:read'] })
    .expect(200);
  // Phase 2, an hour later: another task, completed.
  t.clock.advance(3600);
  phase2 = t.clock.now;
  const second = await issueToken(t);
  await completeTask(t, second.taskId).expect(200);
});
afterAll(async () => {
  await t.close();
});

async function exportText(query: string, key: string = KEYS.auditor): Promise<request.Response> {
  return request(t.url)
    .get(`/v1/audit/export${query}`)
    .set(auth(key))
    .buffer(true)
    .parse((res, done) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => done(null, text));
    });
}

async function jsonl(query: string): Promise<{ lines: string[]; events: AuditEventV1[] }> {
  const res = await exportText(query);
  expect(res.status).toBe(200);
  const lines = (res.body as string).split('\n').filter((l) => l !== '');
  const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((v) => 'seq' in v) as unknown as AuditEventV1[];
  return { lines, events };
}

describe('format=jsonl (the default): our format, with the hashes, verifiable on its own', () => {
  it('exports the whole trail as one chain from genesis, with download headers', async () => {
    const res = await exportText('');
    api.expectResponse(res);
    expect(res.headers['content-type']).toBe('application/x-ndjson; charset=utf-8');
    expect(res.headers['content-disposition']).toMatch(/^attachment; filename="agent-pdp-audit-.+\.jsonl"$/);
    expect(res.headers['cache-control']).toBe('no-store');
    const lines = (res.body as string).split('\n').filter((l) => l !== '');
    const result = await verifyExportLines(lines);
    const head = await t.pdp.store.chainHead();
    expect(result).toMatchObject({ ok: true, count: head.seq, last_seq: head.seq, last_hash: head.hash, header: { start_seq: 1 } });
    expect(result.ok && result.header).not.toHaveProperty('filter');
  });

  it.each([
    { note: 'agent', query: '?agent_id=code-review-agent', check: (e: AuditEventV1) => e.agent_id === 'code-review-agent' },
    { note: 'task', query: () => `?task_id=${taskA}`, check: (e: AuditEventV1) => e.task_id === taskA },
    { note: 'outcome', query: '?outcome=deny', check: (e: AuditEventV1) => e.type === 'decision' && (e.data as { result: { outcome: string } }).result.outcome === 'deny' },
    { note: 'event types', query: '?type=token.issued,token.revoked', check: (e: AuditEventV1) => e.type === 'token.issued' || e.type === 'token.revoked' },
  ])('filters by $note: only matching events, skip lines for the rest, and the file verifies', async ({ query, check }) => {
    const { lines, events } = await jsonl(typeof query === 'function' ? query() : query);
    expect(events.length).toBeGreaterThan(0);
    expect(events.every(check)).toBe(true);
    const all = (await jsonl('')).events.filter(check);
    expect(events.map((e) => e.seq)).toEqual(all.map((e) => e.seq));
    expect(JSON.parse(lines[0] as string)).toHaveProperty('filter');
    expect(await verifyExportLines(lines)).toMatchObject({ ok: true, count: events.length });
  });

  it('exports a time range as an unbroken chain starting where the range starts', async () => {
    const all = (await jsonl('')).events;
    const { lines, events } = await jsonl(`?since=${encodeURIComponent(new Date(phase2.getTime() - 1800_000).toISOString())}`);
    const expected = all.filter((e) => e.time >= phase2.toISOString());
    expect(events.map((e) => e.seq)).toEqual(expected.map((e) => e.seq));
    expect(JSON.parse(lines[0] as string)).toMatchObject({ start_seq: expected[0]?.seq, start_prev_hash: expected[0]?.prev_hash });
    expect(JSON.parse(lines[0] as string)).not.toHaveProperty('filter');
    expect(await verifyExportLines(lines)).toMatchObject({ ok: true, count: expected.length });

    const before = await jsonl(`?since=${encodeURIComponent(phase1.toISOString())}&until=${encodeURIComponent(phase2.toISOString())}`);
    expect(before.events.map((e) => e.seq)).toEqual(all.filter((e) => e.time < phase2.toISOString()).map((e) => e.seq));
    expect(await verifyExportLines(before.lines)).toMatchObject({ ok: true });
  });

  it('exports a seq range', async () => {
    const { lines, events } = await jsonl('?from_seq=3&to_seq=6');
    expect(events.map((e) => e.seq)).toEqual([3, 4, 5, 6]);
    expect(await verifyExportLines(lines)).toMatchObject({ ok: true, count: 4, last_seq: 6 });
  });
});

describe('format=csv: for a spreadsheet', () => {
  it('is a header row and one RFC 4180 row per event, the same events as the JSON Lines export', async () => {
    const res = await exportText('?format=csv');
    api.expectResponse(res);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8; header=present');
    expect(res.headers['content-disposition']).toMatch(/\.csv"$/);
    const rows = parseCsv(res.body as string);
    expect(rows[0]).toEqual([...CSV_COLUMNS]);
    const events = (await jsonl('')).events;
    const cell = (row: string[], column: string): string => row[CSV_COLUMNS.indexOf(column as (typeof CSV_COLUMNS)[number])] as string;
    expect(rows.slice(1).map((r) => [Number(cell(r, 'seq')), cell(r, 'type'), cell(r, 'hash')])).toEqual(events.map((e) => [e.seq, e.type, e.hash]));
    const deny = rows.find((r) => cell(r, 'outcome') === 'deny');
    expect(deny && cell(deny, 'agent_id')).toBe('support-resolver');
  });

  it('applies the same filters', async () => {
    const rows = parseCsv((await exportText('?format=csv&agent_id=code-review-agent')).body as string).slice(1);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.[CSV_COLUMNS.indexOf('type')]).toBe('decision');
  });
});

describe("format=opa: OPA's decision-log events", () => {
  it('writes one EventV1 per decision, with EventV1 field names and types, carrying what the decision event holds', async () => {
    const res = await exportText('?format=opa');
    api.expectResponse(res);
    const opa = (res.body as string).split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    const decisions = (await jsonl('?type=decision')).events;
    expect(opa.map((e) => e['decision_id'])).toEqual(decisions.map((e) => e.decision_id));
    opa.forEach((event, i) => {
      expect(eventV1Problems(event)).toEqual([]);
      const source = decisions[i] as AuditEventV1;
      const data = source.data as { input: unknown; result: unknown; policy_revision: string };
      expect(event).toMatchObject({
        path: 'agentpdp/decision',
        input: data.input,
        result: data.result,
        bundles: { 'agent-pdp': { revision: data.policy_revision } },
        requested_by: source.caller_id,
        labels: { app: 'agent-pdp', audit_seq: String(source.seq), audit_hash: source.hash },
      });
      expect(Date.parse(event['timestamp'] as string)).toBe(Date.parse(source.time));
    });
  });

  it("is read by OPA's own evaluator: every field has EventV1's type, every timestamp parses as RFC 3339", async () => {
    const body = (await exportText('?format=opa')).body as string;
    const events = body.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { timestamp: string });
    const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-opa-log-'));
    try {
      writeFileSync(join(dir, 'events.json'), JSON.stringify({ events }));
      writeFileSync(join(dir, 'check.rego'), OPA_CHECK);
      const args = ['eval', '--format', 'json', '-d', join(dir, 'check.rego'), '-d', join(dir, 'events.json'), 'data.check'];
      const out = JSON.parse(execFileSync(OPA_BIN, args, { encoding: 'utf8' })) as {
        result: Array<{ expressions: Array<{ value: { problems: string[]; timestamps: number[] } }> }>;
      };
      const value = out.result[0]?.expressions[0]?.value;
      expect(value?.problems).toEqual([]);
      expect(value?.timestamps).toEqual(events.map((e) => Date.parse(e.timestamp) * 1e6));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('accepts type=decision and refuses any other type filter', async () => {
    expect((await exportText('?format=opa&type=decision')).status).toBe(200);
    const res = await exportText('?format=opa&type=token.issued');
    expect(res.status).toBe(400);
  });
});

/** Rego over the exported events, in OPA's own terms: type checks of EventV1's fields, RFC 3339 timestamps. */
const OPA_CHECK = `package check

string_fields := {"decision_id", "trace_id", "path", "requested_by", "timestamp"}

problems contains sprintf("event %d: %s is not a string", [i, f]) if {
	some i, e in data.events
	some f in string_fields
	f in object.keys(e)
	not is_string(e[f])
}

problems contains sprintf("event %d: no %s", [i, f]) if {
	some i, e in data.events
	some f in {"labels", "decision_id", "timestamp"}
	not f in object.keys(e)
}

problems contains sprintf("event %d: label %s is not a string", [i, k]) if {
	some i, e in data.events
	some k, v in e.labels
	not is_string(v)
}

problems contains sprintf("event %d: bundle %s has no string revision", [i, k]) if {
	some i, e in data.events
	some k, b in e.bundles
	not is_string(b.revision)
}

problems contains sprintf("event %d: timestamp %v is not RFC 3339", [i, e.timestamp]) if {
	some i, e in data.events
	not time.parse_rfc3339_ns(e.timestamp)
}

timestamps := [time.parse_rfc3339_ns(e.timestamp) | some e in data.events]
`;

describe('rejections', () => {
  it.each([
    { note: 'an unknown format', query: '?format=xml', path: 'query.format' },
    { note: 'an unknown parameter', query: '?agent=support-resolver', path: 'query.agent' },
    { note: 'a time that is not RFC 3339', query: '?since=yesterday', path: 'query.since' },
    { note: 'a seq of zero', query: '?from_seq=0', path: 'query.from_seq' },
    { note: 'a seq that is not a number', query: '?to_seq=ten', path: 'query.to_seq' },
    { note: 'until before since', query: '?since=2026-02-01&until=2026-01-01', path: 'query.until' },
    { note: 'to_seq below from_seq', query: '?from_seq=5&to_seq=2', path: 'query.to_seq' },
    { note: 'an unknown outcome', query: '?outcome=maybe', path: 'query.outcome' },
    { note: 'an unknown event type', query: '?type=decision,token.minted', path: 'query.type' },
    { note: 'an agent given twice', query: '?agent_id=a&agent_id=b', path: 'query.agent_id' },
    { note: 'an id with a space', query: '?task_id=a%20b', path: 'query.task_id' },
  ])('refuses $note with 400 invalid_request naming $path', async ({ query, path }) => {
    const res = await request(t.url).get(`/v1/audit/export${query}`).set(auth(KEYS.auditor));
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
    expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain(path);
    api.expectResponse(res);
  });

  it.each([
    { note: 'no API key', key: undefined, status: 401, code: 'unauthenticated' },
    { note: 'a PEP', key: KEYS.pep, status: 403, code: 'forbidden_role' },
    { note: 'an admin', key: KEYS.admin, status: 403, code: 'forbidden_role' },
  ])('refuses $note with $code', async ({ key, status, code }) => {
    const req = request(t.url).get('/v1/audit/export');
    const res = await (key === undefined ? req : req.set(auth(key)));
    expect(res.status).toBe(status);
    expect(res.body.error.code).toBe(code);
    api.expectResponse(res);
  });
});
