/**
 * The audit console's reads on a whole PDP (issue 22), real store and server on loopback: GET /v1/audit/decisions
 * (each filter narrows exactly as the trail says, pages complete and never repeat, bad parameters named),
 * GET /v1/audit/integrity and POST /v1/audit/verify (streamed progress and result, a tampered store named at its
 * first bad seq, the last verification kept), GET /v1/audit/overview, and the export's decision_id and reason.
 */
import Database from 'better-sqlite3';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyExportLines } from '../../src/audit/index.js';
import type { AuditEventV1 } from '../../src/audit/index.js';
import { signedHeadsPath } from '../../src/issuer/audit-key.js';
import { AuditOverview, auditOverview } from '../../src/pdp/audit-overview.js';
import { AuditVerification } from '../../src/pdp/audit-verification.js';
import type { DecisionSearchV1, DecisionSummaryV1, VerifyLineV1 } from '../../src/wire/audit-console-v1.js';
import { decide, registerTask } from '../issuer-http/flow.js';
import type { OpenApiChecker } from '../support/openapi-check.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';
import { auditApiChecker } from './openapi.js';

let t: TestPdp;
let api: OpenApiChecker;
let taskA: string;
/** Every decision event of the trail, newest first: what each search is checked against. */
let trail: AuditEventV1[];
let startedAt: Date;

const summaryOf = (e: AuditEventV1): { id: string; outcome: string; reasons: string[] } => {
  const result = (e.data as { result: { outcome: string; reasons: Array<{ code: string }> } }).result;
  return { id: e.decision_id as string, outcome: result.outcome, reasons: result.reasons.map((r) => r.code) };
};

beforeAll(async () => {
  t = await startTestPdp();
  api = await auditApiChecker(t.url);
  startedAt = t.clock.now;
  taskA = await registerTask(t);
  const taskB = await registerTask(t);
  for (let i = 0; i < 3; i++) expect((await decide(t, taskA)).outcome).toBe('allow');
  for (let i = 0; i < 2; i++) expect((await decide(t, taskA, { customer: '9999' })).outcome).toBe('deny');
  t.clock.advance(120);
  expect((await decide(t, taskB, { customer: '9999' })).outcome).toBe('deny');
  for (let i = 0; i < 4; i++) {
    await request(t.url)
      .post('/v1/decide')
      .set(auth(KEYS.pep))
      .send({ agent_id: 'code-review-agent', task: { id: `review-${i}` }, integration: 'github', scopes: ['repo:read'] })
      .expect(200);
  }
  const events: AuditEventV1[] = [];
  for await (const e of t.pdp.store.iterateEvents({ types: ['decision'] })) events.push(e);
  trail = events.reverse();
});
afterAll(async () => {
  await t.close();
});

const get = (path: string, key: string = KEYS.auditor): request.Test => request(t.url).get(path).set(auth(key));

async function search(query: string): Promise<DecisionSearchV1> {
  const res = await get(`/v1/audit/decisions${query}`).expect(200);
  api.expectResponse(res);
  return res.body as DecisionSearchV1;
}

/** Every page of a search, following next_cursor. */
async function allPages(query: string): Promise<DecisionSummaryV1[]> {
  const out: DecisionSummaryV1[] = [];
  let cursor: string | null = null;
  do {
    const page: DecisionSearchV1 = await search(`${query}${query === '' ? '?' : '&'}limit=2${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`);
    expect(page.decisions.length).toBeLessThanOrEqual(2);
    out.push(...page.decisions);
    cursor = page.next_cursor;
  } while (cursor !== null);
  return out;
}

describe('GET /v1/audit/decisions', () => {
  it.each([
    { note: 'no filter', query: '', keep: () => true },
    { note: 'agent', query: '?agent_id=code-review-agent', keep: (e: AuditEventV1) => e.agent_id === 'code-review-agent' },
    { note: 'task', query: () => `?task_id=${taskA}`, keep: (e: AuditEventV1) => e.task_id === taskA },
    { note: 'outcome', query: '?outcome=deny', keep: (e: AuditEventV1) => summaryOf(e).outcome === 'deny' },
    { note: 'reason code', query: '?reason=allowed', keep: (e: AuditEventV1) => summaryOf(e).reasons.includes('allowed') },
    { note: 'decision id', query: () => `?decision_id=${trail[3]?.decision_id}`, keep: (e: AuditEventV1) => e.decision_id === trail[3]?.decision_id },
    { note: 'since', query: () => `?since=${encodeURIComponent(new Date(startedAt.getTime() + 60_000).toISOString())}`, keep: (e: AuditEventV1) => Date.parse(e.time) >= startedAt.getTime() + 60_000 },
    { note: 'until', query: () => `?until=${encodeURIComponent(new Date(startedAt.getTime() + 60_000).toISOString())}`, keep: (e: AuditEventV1) => Date.parse(e.time) < startedAt.getTime() + 60_000 },
    { note: 'agent and outcome', query: '?agent_id=support-resolver&outcome=allow', keep: (e: AuditEventV1) => e.agent_id === 'support-resolver' && summaryOf(e).outcome === 'allow' },
  ])('narrows by $note, newest first; pages of 2 list every match once', async ({ query, keep }) => {
    const q = typeof query === 'function' ? query() : query;
    const want = trail.filter(keep).map((e) => e.decision_id);
    expect(want.length).toBeGreaterThan(0);
    expect(want.length).toBeLessThan(trail.length + (q === '' ? 1 : 0));
    const one = await search(q);
    expect(one.decisions.map((d) => d.decision_id)).toEqual(want);
    expect(one.next_cursor).toBeNull();
    const paged = await allPages(q);
    expect(paged.map((d) => d.decision_id)).toEqual(want);
    expect(new Set(paged.map((d) => d.seq)).size).toBe(paged.length);
  });

  it('summarises each decision from its hashed event', async () => {
    const page = await search('?outcome=deny&limit=1');
    const event = trail.find((e) => summaryOf(e).outcome === 'deny') as AuditEventV1;
    expect(page.decisions).toEqual([
      {
        seq: event.seq,
        time: event.time,
        decision_id: event.decision_id,
        agent_id: 'support-resolver',
        task_id: event.task_id,
        caller_id: 'pep-1',
        integration: 'crm',
        outcome: 'deny',
        allow: false,
        requested_scopes: ['tickets:write'],
        granted_scopes: [],
        reasons: summaryOf(event).reasons,
        policy_revision: (event.data as { policy_revision: string }).policy_revision,
      },
    ]);
    expect(page.next_cursor).not.toBeNull();
    expect(page.scanned_through_seq).toBe(event.seq);
  });

  it.each([
    { note: 'a cursor that is not ours', query: '?cursor=abc', path: 'cursor' },
    { note: 'a cursor edited', query: '?cursor=d1.eHl6', path: 'cursor' },
    { note: 'an unknown outcome', query: '?outcome=maybe', path: 'query.outcome' },
    { note: 'a limit of 0', query: '?limit=0', path: 'query.limit' },
    { note: 'a limit too large', query: '?limit=501', path: 'query.limit' },
    { note: 'a limit that is not a number', query: '?limit=ten', path: 'query.limit' },
    { note: 'a malformed time', query: '?since=yesterday', path: 'query.since' },
    { note: 'until before since', query: '?since=2026-02-01&until=2026-01-01', path: 'query.until' },
    { note: 'a reason that is no code', query: '?reason=%20x', path: 'query.reason' },
    { note: 'an unknown parameter', query: '?agent=x', path: 'query.agent' },
  ])('refuses $note: 400 invalid_request naming it', async ({ query, path }) => {
    const res = await get(`/v1/audit/decisions${query}`).expect(400);
    api.expectResponse(res);
    expect(res.body.error.code).toBe('invalid_request');
    expect(res.body.error.details).toEqual(expect.arrayContaining([expect.objectContaining({ path })]));
  });

  it.each([
    { note: 'a PEP', key: KEYS.pep },
    { note: 'an admin', key: KEYS.admin },
  ])('refuses $note (403): auditors only', async ({ key }) => {
    const res = await get('/v1/audit/decisions', key).expect(403);
    expect(res.body.error.code).toBe('forbidden_role');
  });
});

describe('GET /v1/audit/overview', () => {
  it('counts the decisions of the window per minute and outcome, with the top denial reasons', async () => {
    const res = await get('/v1/audit/overview?minutes=5').expect(200);
    api.expectResponse(res);
    const body = res.body;
    const count = (o: string): number => trail.filter((e) => summaryOf(e).outcome === o).length;
    expect(body.by_outcome).toEqual({ allow: count('allow'), deny: count('deny'), undefined: count('undefined'), error: count('error') });
    expect(body.per_minute).toHaveLength(5);
    const sum = (k: 'allow' | 'deny'): number => body.per_minute.reduce((n: number, m: Record<string, number>) => n + (m[k] as number), 0);
    expect(sum('allow')).toBe(count('allow'));
    expect(sum('deny')).toBe(count('deny'));
    // The denials two minutes apart fall in different minutes.
    expect(body.per_minute.filter((m: Record<string, number>) => (m['deny'] as number) > 0).length).toBe(2);
    const reasons = new Map<string, number>();
    for (const e of trail) if (summaryOf(e).outcome === 'deny') for (const c of new Set(summaryOf(e).reasons)) reasons.set(c, (reasons.get(c) ?? 0) + 1);
    expect(body.top_denial_reasons).toEqual([...reasons].sort(([a, n], [b, m]) => m - n || a.localeCompare(b)).slice(0, 10).map(([code, c]) => ({ code, count: c })));
    expect(body.decisions_per_second).toBeCloseTo(trail.length / ((Date.parse(body.until) - Date.parse(body.since)) / 1000), 2);
    expect(body.truncated).toBe(false);
  });

  it('leaves out decisions before the window', async () => {
    // One minute: only the decisions made since the clock moved on.
    const body = (await get('/v1/audit/overview?minutes=1', KEYS.admin).expect(200)).body;
    const since = Date.parse(body.since);
    const inWindow = trail.filter((e) => Date.parse(e.time) >= since).length;
    expect(body.by_outcome.allow + body.by_outcome.deny).toBe(inWindow);
    expect(inWindow).toBeLessThan(trail.length);
  });

  it('reads at most its cap of decisions, newest first, and says so', async () => {
    const body = await auditOverview(t.pdp.store, t.clock.now, 5, 3);
    expect(body.truncated).toBe(true);
    const newest = trail.slice(0, 3);
    const count = (o: string): number => newest.filter((e) => summaryOf(e).outcome === o).length;
    expect(body.by_outcome).toEqual({ allow: count('allow'), deny: count('deny'), undefined: 0, error: 0 });
    const whole = await auditOverview(t.pdp.store, t.clock.now, 5, trail.length);
    expect(whole.truncated).toBe(false);
  });

  it('a burst of overviews of one window reads the trail once; another window, or 5 s later, reads it again', async () => {
    let reads = 0;
    const counted = { searchDecisions: (...args: Parameters<typeof t.pdp.store.searchDecisions>) => (reads++, t.pdp.store.searchDecisions(...args)) };
    const clock = { now: new Date(t.clock.now) };
    const overview = new AuditOverview({ store: counted, now: () => clock.now });
    const burst = await Promise.all(Array.from({ length: 10 }, () => overview.overview(5)));
    const once = reads;
    expect(once).toBeGreaterThan(0);
    for (const body of burst) expect(body).toBe(burst[0]);
    await overview.overview(7);
    expect(reads).toBe(2 * once);
    clock.now = new Date(clock.now.getTime() + 4_999);
    await overview.overview(5);
    expect(reads).toBe(2 * once);
    clock.now = new Date(clock.now.getTime() + 1);
    await overview.overview(5);
    expect(reads).toBe(3 * once);
  });

  it.each(['0', '1441', 'x'])('refuses minutes=%s (400 naming it)', async (minutes) => {
    const res = await get(`/v1/audit/overview?minutes=${minutes}`).expect(400);
    expect(res.body.error.details).toEqual([expect.objectContaining({ path: 'query.minutes' })]);
  });

  it('refuses a PEP (403)', async () => {
    await get('/v1/audit/overview', KEYS.pep).expect(403);
  });
});

describe('GET /v1/audit/export: decision_id and reason, as the console searches', () => {
  it('exports exactly the current search filter, and the file verifies', async () => {
    const code = summaryOf(trail.find((e) => summaryOf(e).outcome === 'deny') as AuditEventV1).reasons[0] as string;
    const res = await get(`/v1/audit/export?outcome=deny&reason=${code}`)
      .buffer(true)
      .parse((r, done) => {
        let text = '';
        r.setEncoding('utf8');
        r.on('data', (c: string) => (text += c));
        r.on('end', () => done(null, text));
      })
      .expect(200);
    const lines = (res.body as string).split('\n').filter((l) => l !== '');
    const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((v) => 'seq' in v && v['type'] === 'decision') as unknown as AuditEventV1[];
    const want = trail.filter((e) => summaryOf(e).outcome === 'deny' && summaryOf(e).reasons.includes(code));
    expect(want.length).toBeGreaterThan(0);
    expect(events.map((e) => e.seq)).toEqual(want.map((e) => e.seq).reverse());
    expect(JSON.parse(lines[0] as string).filter).toEqual({ outcome: 'deny', reason: code });
    expect(await verifyExportLines(lines)).toMatchObject({ ok: true });

    const id = trail[0]?.decision_id as string;
    const one = await get(`/v1/audit/export?format=csv&decision_id=${id}`).buffer(true).expect(200);
    expect(one.text.split('\n').filter((l) => l.includes(id)).length).toBeGreaterThan(0);
    expect(one.text.split('\n').slice(1).filter((l) => l !== '' && !l.includes(id))).toEqual([]);
  });

  it.each([
    { query: '?reason=%20', path: 'query.reason' },
    { query: '?decision_id=%20', path: 'query.decision_id' },
  ])('refuses $query (400 naming it)', async ({ query, path }) => {
    const res = await get(`/v1/audit/export${query}`).expect(400);
    expect(res.body.error.details).toEqual([expect.objectContaining({ path })]);
  });
});

async function verify(key: string = KEYS.auditor): Promise<{ status: number; lines: VerifyLineV1[]; type: string | undefined }> {
  const res = await request(t.url)
    .post('/v1/audit/verify')
    .set(auth(key))
    .buffer(true)
    .parse((r, done) => {
      let text = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => (text += c));
      r.on('end', () => done(null, text));
    });
  const lines = res.status === 200 ? (res.body as string).split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as VerifyLineV1) : [];
  return { status: res.status, lines, type: res.headers['content-type'] };
}

describe('GET /v1/audit/integrity and POST /v1/audit/verify', () => {
  it('names the head and start; no verification before the first', async () => {
    const res = await get('/v1/audit/integrity').expect(200);
    api.expectResponse(res);
    const head = await t.pdp.store.chainHead();
    expect(res.body.head).toMatchObject({ seq: head.seq, hash: head.hash });
    expect(res.body.start).toEqual({ start_seq: 1, start_prev_hash: '0'.repeat(64) });
    expect(res.body.last_verification).toBeNull();
  });

  it('streams progress then the result, and keeps it as the last verification', async () => {
    const head = await t.pdp.store.chainHead();
    const { status, lines, type } = await verify();
    expect(status).toBe(200);
    expect(type).toBe('application/x-ndjson; charset=utf-8');
    const progress = lines.filter((l) => l.type === 'progress');
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toEqual({ type: 'progress', verified: head.seq, total: head.seq });
    const result = lines.at(-1);
    expect(result).toMatchObject({ type: 'result', ok: true, verified: head.seq, from_seq: 1, to_seq: head.seq, by: 'compliance' });
    const integrity = (await get('/v1/audit/integrity').expect(200)).body;
    const { type: _type, ...verification } = result as VerifyLineV1 & { type: string };
    expect(integrity.last_verification).toEqual(verification);
    api.expectResponse(await get('/v1/audit/integrity'));
  });

  it('refuses a PEP (403)', async () => {
    expect((await verify(KEYS.pep)).status).toBe(403);
  });

  it('checks signed heads with the audit key, anchored on the signed-heads file', async () => {
    const signed = await t.pdp.heads.signNow();
    expect(signed).not.toBeNull();
    const head = await t.pdp.store.chainHead();
    const { lines } = await verify();
    expect(lines.at(-1)).toMatchObject({ type: 'result', ok: true, verified: head.seq, to_seq: head.seq });
    // The signed-heads file is read: a line in it that is not a head the audit key signed fails the verification.
    const file = signedHeadsPath(t.pdp.config.issuer.keys);
    const kept = readFileSync(file, 'utf8');
    expect(kept.trim().split('\n')).toHaveLength(1);
    try {
      appendFileSync(file, `${JSON.stringify({ ...JSON.parse(kept), seq: head.seq + 5 })}\n`);
      const failed = (await verify()).lines.at(-1);
      expect(failed).toMatchObject({ type: 'result', ok: false });
      expect((failed as { error: string }).error).toMatch(/^line 2 of the signed-heads file/);
    } finally {
      writeFileSync(file, kept);
    }
  });

  it('names the first bad seq of a tampered store', async () => {
    const target = trail[trail.length - 2] as AuditEventV1;
    const raw = new Database(join(t.dir, 'data', 'pdp.db'));
    try {
      raw.prepare(`UPDATE audit_events SET data = replace(data, '"tickets:write"', '"tickets:admin"') WHERE seq = ?`).run(target.seq);
    } finally {
      raw.close();
    }
    const { lines } = await verify();
    expect(lines.at(-1)).toMatchObject({ type: 'result', ok: false, first_bad_seq: target.seq, verified: target.seq - 1 });
    expect((lines.at(-1) as { error: string }).error).toMatch(new RegExp(`event ${target.seq}`));
    expect((await get('/v1/audit/integrity').expect(200)).body.last_verification).toMatchObject({ ok: false, first_bad_seq: target.seq });
  });
});

describe('AuditVerification', () => {
  it('runs one verification at a time per process: a second is refused with verification_running', async () => {
    const verification = new AuditVerification({ store: t.pdp.store, now: () => t.clock.now });
    const first = verification.start('a');
    expect(() => verification.start('b')).toThrow(expect.objectContaining({ code: 'verification_running', status: 409 }));
    const lines: VerifyLineV1[] = [];
    for await (const line of first) lines.push(line);
    expect(lines.at(-1)).toMatchObject({ type: 'result', by: 'a' });
    expect(verification.last).toMatchObject({ by: 'a' });
    // Finished: the next one may start.
    for await (const _line of verification.start('c')) void _line;
    expect(verification.last).toMatchObject({ by: 'c' });
  });
});
