/**
 * The usage rollup (issue 18): rollupUsage folds the audit trail into daily aggregates after a cursor, and
 * usageSummary sums a window of them. Every event here is written through the store's own methods (recordDecision,
 * redeemDecision, recordTokenUse) on a real store of the test project's engine (SQLite, or PostgreSQL in the
 * `postgres` project): what is granted (token.issued, per scope), what is used
 * (a call the proxy forwarded, a resource server's report; never an introspection, a refused or a failed call),
 * what decisions asked and refused; task and record types; the longest token use; incremental reads; pruned history.
 */
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TokenProxiedData, TokenUsedData } from '../../src/audit/index.js';
import { SqliteStore } from '../../src/store/index.js';
import { PostgresStore } from '../../src/store/postgres-store.js';
import type { Store, UsageSummary } from '../../src/store/index.js';
import { pgQuery, postgresUrl } from '../support/postgres.js';
import { at, decision, grant, task, tempStore } from './store-fixtures.js';
import type { TempStore } from './store-fixtures.js';

const DAY = 86_400;
const PEP = 'support-middleware';
const AGENT = 'code-review-agent';
const WINDOW = { since: at(0), until: at(90 * DAY) };

let temp: TempStore;
beforeEach(async () => {
  temp = await tempStore();
});
afterEach(async () => {
  await temp.cleanup();
});

interface Issue {
  jti: string;
  /** Seconds after T0: the decision; the token is issued one second later. */
  t: number;
  scopes: string[];
  integration?: string;
  agent?: string;
  task?: { id: string; type?: string } | null;
  resource?: { type: string; id: string } | null;
  /** What the decision asked for (default: the scopes) and refused. */
  requested?: string[];
  denied?: string[];
}

/** A decision (allow, with what it asked and refused) redeemed for a token, through the store. */
async function issue(i: Issue): Promise<void> {
  const integration = i.integration ?? 'github';
  const agent = i.agent ?? AGENT;
  const taskRef = i.task ?? null;
  const resource = i.resource ?? null;
  const input = {
    agent_id: agent,
    caller_id: PEP,
    integration,
    scopes: i.requested ?? i.scopes,
    ...(taskRef === null ? {} : { task: { id: taskRef.id, ...(taskRef.type === undefined ? {} : { type: taskRef.type }), context: {}, registered: false } }),
    ...(resource === null ? {} : { resource }),
  };
  const result = {
    outcome: 'allow',
    granted_scopes: i.scopes,
    denied_scopes: (i.denied ?? []).map((scope) => ({ scope, reason: 'above_ceiling' })),
  };
  await temp.store.recordDecision(
    decision(`d-${i.jti}`, { agent_id: agent, task_id: taskRef?.id ?? null, integration, input, result, created_at: at(i.t), redeemable_until: at(i.t + 60) }),
  );
  await temp.store.redeemDecision({
    decision_id: `d-${i.jti}`,
    caller_id: PEP,
    now: at(i.t + 1),
    makeToken: () => grant({ jti: i.jti, scopes: i.scopes, issued_at: at(i.t + 1), expires_at: at(i.t + 3601), event_data: { integration, resource, kid: 'key-1' } }),
  });
}

const FORWARDED: TokenProxiedData = {
  action: 'proxy',
  integration: 'github',
  method: 'GET',
  path_template: '/repos/{owner}/{repo}/pulls/{pull_number}',
  scope: 'pr:read',
  record: { type: 'repo', id: 'acme/app' },
  outcome: 'forwarded',
  code: null,
  upstream_status: 200,
  bytes_in: 0,
  bytes_out: 100,
  latency_ms: 3,
};

async function use(jti: string, t: number, data: Partial<TokenProxiedData> | TokenUsedData = {}): Promise<void> {
  const full = 'action' in data && data.action !== 'proxy' ? data : { ...FORWARDED, ...data };
  await temp.store.recordTokenUse({ jti, caller_id: full.action === 'proxy' ? 'proxy' : 'crm-api', at: at(t), data: full as TokenUsedData });
}

function report(scope: string, usedAt: number, record: { type: string; id: string } | null = null): TokenUsedData {
  return { action: 'resource_server', integration: 'crm', scope, record, route: '/customers/:id', used_at: at(usedAt) } as TokenUsedData;
}

/** The summary's rows as `agent integration scope task_type record_type source n days` lines, sorted. */
function lines(summary: UsageSummary): string[] {
  return summary.rows.map((r) => `${r.agent_id} ${r.integration} ${r.scope} ${r.task_type || '-'} ${r.record_type || '-'} ${r.source} ${r.n} ${r.days}`);
}

/** A second store on the same database (another process, another replica). */
async function openOther(): Promise<Store> {
  return temp.engine === 'postgres' ? PostgresStore.open(postgresUrl(), { schema: temp.path }) : SqliteStore.open(temp.path);
}

/** Runs SQL on the store's database behind its back (`?` parameters), as a later retention or a damaged row would. */
async function sabotage<R>(sql: string, ...params: unknown[]): Promise<R[]> {
  if (temp.engine === 'postgres') {
    let n = 0;
    return (await pgQuery(temp.path, sql.replace(/\?/g, () => `$${++n}`), params)) as R[];
  }
  const raw = new Database(temp.path);
  try {
    const statement = raw.prepare(sql);
    return statement.reader ? (statement.all(...params) as R[]) : (statement.run(...params), []);
  } finally {
    raw.close();
  }
}

async function rolledUp(batch?: number): Promise<UsageSummary> {
  await temp.store.rollupUsage(batch === undefined ? {} : { batch });
  return temp.store.usageSummary(WINDOW);
}

describe('rollupUsage: what counts', () => {
  it('counts grants per scope, forwarded proxy calls and resource server reports as use, asks and refusals; never an introspection, a refused or a failed call', async () => {
    await issue({ jti: 'j-gh', t: 10, scopes: ['pr:read', 'repo:write'], requested: ['pr:read', 'repo:write', 'admin:org'], denied: ['admin:org'] });
    await use('j-gh', 20);
    await use('j-gh', 30);
    await use('j-gh', 40, { method: 'PUT', scope: 'repo:write', outcome: 'refused', code: 'token_scope_insufficient', upstream_status: null });
    await use('j-gh', 50, { outcome: 'failed', code: 'upstream_timeout', upstream_status: null });
    await use('j-gh', 60, { action: 'introspect', active: true });
    await issue({ jti: 'j-crm', t: 100, scopes: ['tickets:read'], integration: 'crm' });
    await use('j-crm', 110, report('tickets:read', 109));
    await use('j-crm', 120, { action: 'introspect', active: true });

    const rolled = await temp.store.rollupUsage();
    const head = await temp.store.chainHead();
    expect(rolled).toEqual({ events: head.seq, seq: head.seq });
    expect(lines(await temp.store.usageSummary(WINDOW))).toEqual([
      'code-review-agent crm tickets:read - - granted 1 1',
      'code-review-agent crm tickets:read - - requested 1 1',
      'code-review-agent crm tickets:read - - resource_server 1 1',
      'code-review-agent github admin:org - - denied 1 1',
      'code-review-agent github admin:org - - requested 1 1',
      'code-review-agent github pr:read - - granted 1 1',
      'code-review-agent github pr:read - - requested 1 1',
      'code-review-agent github pr:read - repo proxy 2 1',
      'code-review-agent github repo:write - - granted 1 1',
      'code-review-agent github repo:write - - requested 1 1',
    ]);
  });

  it('task types: the registered task\'s, the one a trusted PEP asserted for an unregistered task, none', async () => {
    await temp.store.registerTask(task('t-reg', { agent_id: AGENT, type: 'code_review', expires_at: at(DAY) }));
    await issue({ jti: 'j-1', t: 10, scopes: ['pr:read'], task: { id: 't-reg', type: 'code_review' } });
    await issue({ jti: 'j-2', t: 20, scopes: ['pr:read'], task: { id: 't-asserted', type: 'hotfix' } });
    await issue({ jti: 'j-3', t: 30, scopes: ['pr:read'] });
    for (const [jti, t] of [['j-1', 40], ['j-2', 50], ['j-3', 60]] as const) await use(jti, t);
    const rows = lines(await rolledUp()).filter((l) => / (granted|proxy) /.test(l));
    expect(rows).toEqual([
      'code-review-agent github pr:read - - granted 1 1',
      'code-review-agent github pr:read - repo proxy 1 1',
      'code-review-agent github pr:read code_review - granted 1 1',
      'code-review-agent github pr:read code_review repo proxy 1 1',
      'code-review-agent github pr:read hotfix - granted 1 1',
      'code-review-agent github pr:read hotfix repo proxy 1 1',
    ]);
  });

  it('record types: the record a token is bound to, the one a call touched, the one a decision was asked about', async () => {
    await issue({ jti: 'j-bound', t: 10, scopes: ['pr:read'], resource: { type: 'repo', id: 'acme/app' } });
    await use('j-bound', 20, { record: { type: 'pull_request', id: 'acme/app#7' } });
    await use('j-bound', 30, { path_template: '/user', record: null });
    const rows = lines(await rolledUp());
    expect(rows).toEqual([
      'code-review-agent github pr:read - - proxy 1 1',
      'code-review-agent github pr:read - pull_request proxy 1 1',
      'code-review-agent github pr:read - repo granted 1 1',
      'code-review-agent github pr:read - repo requested 1 1',
    ]);
  });

  it('the longest use of a token: its last use (the report\'s own time for a resource server) minus its issued_at, in whole seconds rounded up', async () => {
    await issue({ jti: 'j-1', t: 0, scopes: ['pr:read'] }); // issued at(1)
    await use('j-1', 101);
    await use('j-1', 251.5);
    await issue({ jti: 'j-2', t: 300, scopes: ['pr:read'] }); // issued at(301)
    await use('j-2', 331);
    await issue({ jti: 'j-crm', t: 400, scopes: ['tickets:read'], integration: 'crm' }); // issued at(401)
    await use('j-crm', 900, report('tickets:read', 461)); // arrived 499 s after issuance, used 60 s after it
    await issue({ jti: 'j-idle', t: 500, scopes: ['pr:read'] }); // never used
    const summary = await rolledUp();
    expect(summary.spans).toEqual([
      { agent_id: AGENT, integration: 'crm', max_seconds: 60, tokens: 1 },
      { agent_id: AGENT, integration: 'github', max_seconds: 251, tokens: 2 },
    ]);
    expect(summary.issued).toEqual([
      { agent_id: AGENT, integration: 'crm', tokens: 1, first_at: at(401), last_at: at(401), days: 1 },
      { agent_id: AGENT, integration: 'github', tokens: 3, first_at: at(1), last_at: at(501), days: 1 },
    ]);
  });
});

describe('rollupUsage: incremental, batched, concurrent', () => {
  it('a second call reads only the events written since; a token used in both is counted once', async () => {
    await issue({ jti: 'j-1', t: 0, scopes: ['pr:read'] });
    await use('j-1', 11);
    const first = await temp.store.rollupUsage();
    expect(first.events).toBe((await temp.store.chainHead()).seq);
    expect(await temp.store.rollupUsage()).toEqual({ events: 0, seq: first.seq });
    await use('j-1', DAY + 41);
    await use('j-1', DAY + 42, { action: 'introspect', active: true });
    expect(await temp.store.rollupUsage()).toEqual({ events: 2, seq: first.seq + 2 });
    const summary = await temp.store.usageSummary(WINDOW);
    expect(lines(summary).filter((l) => l.includes(' proxy '))).toEqual(['code-review-agent github pr:read - repo proxy 2 2']);
    expect(summary.spans).toEqual([{ agent_id: AGENT, integration: 'github', max_seconds: DAY + 40, tokens: 1 }]);
    expect(summary.seq).toBe(first.seq + 2);
  });

  it.each([
    { note: 'one event per transaction', batch: 1, workers: 0 },
    { note: 'a batch that splits a token from its uses', batch: 3, workers: 0 },
    { note: 'the default', batch: undefined, workers: undefined },
    { note: 'two worker threads, a slice each', batch: undefined, workers: 2 },
    { note: 'three worker threads, batches of 7 (slices of 2 or 3 events)', batch: 7, workers: 3 },
  ])('gives the same aggregates whatever the batch and workers: $note', async ({ batch, workers }) => {
    await issue({ jti: 'j-1', t: 0, scopes: ['pr:read', 'repo:write'] });
    for (let k = 0; k < 5; k++) await use('j-1', 10 + k * 100);
    await issue({ jti: 'j-2', t: 2 * DAY, scopes: ['pr:read'] });
    await use('j-2', 2 * DAY + 30);
    const head = await temp.store.chainHead();
    expect(await temp.store.rollupUsage({ ...(batch === undefined ? {} : { batch }), ...(workers === undefined ? {} : { workers }) })).toEqual({ events: head.seq, seq: head.seq });
    const summary = await temp.store.usageSummary(WINDOW);
    expect(lines(summary)).toEqual([
      'code-review-agent github pr:read - - granted 2 2',
      'code-review-agent github pr:read - - requested 2 2',
      'code-review-agent github pr:read - repo proxy 6 2',
      'code-review-agent github repo:write - - granted 1 1',
      'code-review-agent github repo:write - - requested 1 1',
    ]);
    expect(summary.spans).toEqual([{ agent_id: AGENT, integration: 'github', max_seconds: 409, tokens: 2 }]);
  });

  it('two calls at once fold every event once', async () => {
    await issue({ jti: 'j-1', t: 0, scopes: ['pr:read'] });
    for (let k = 0; k < 6; k++) await use('j-1', 10 + k);
    const [a, b] = await Promise.all([temp.store.rollupUsage({ batch: 2 }), temp.store.rollupUsage({ batch: 2 })]);
    expect(a.events + b.events).toBe((await temp.store.chainHead()).seq);
    const summary = await temp.store.usageSummary(WINDOW);
    expect(lines(summary).filter((l) => l.includes(' proxy '))).toEqual(['code-review-agent github pr:read - repo proxy 6 1']);
    expect(summary.spans).toEqual([{ agent_id: AGENT, integration: 'github', max_seconds: 14, tokens: 1 }]);
  });

  it('two stores on one database (two processes or replicas) rolling up at once fold every event once', async () => {
    await issue({ jti: 'j-1', t: 0, scopes: ['pr:read'] });
    for (let k = 0; k < 20; k++) await use('j-1', 10 + k);
    const other = await openOther();
    try {
      const [a, b] = await Promise.all([temp.store.rollupUsage({ batch: 2 }), other.rollupUsage({ batch: 3 })]);
      const head = await temp.store.chainHead();
      expect(a.events + b.events).toBe(head.seq);
      expect([a.seq, b.seq]).toEqual([head.seq, head.seq]);
    } finally {
      await other.close();
    }
    const summary = await temp.store.usageSummary(WINDOW);
    expect(lines(summary).filter((l) => l.includes(' proxy '))).toEqual(['code-review-agent github pr:read - repo proxy 20 1']);
    expect(summary.spans).toEqual([{ agent_id: AGENT, integration: 'github', max_seconds: 28, tokens: 1 }]);
  });

  it('refuses a batch that is not an integer from 1 to 1,000,000, and workers that are not 0 to 64', async () => {
    for (const batch of [0, 1.5, 1_000_001, Number.NaN]) await expect(temp.store.rollupUsage({ batch })).rejects.toThrow(TypeError);
    for (const workers of [-1, 0.5, 65]) await expect(temp.store.rollupUsage({ workers })).rejects.toThrow(TypeError);
  });
});

describe('rollupUsage: pruned and missing history', () => {
  it('starts from the first event a prune left, counts uses of a token whose issuance was pruned, and still knows its span', async () => {
    await issue({ jti: 'j-1', t: 0, scopes: ['pr:read'] });
    await use('j-1', 100);
    await use('j-1', 2 * DAY); // a late use (a token's life is the test's to choose: the store does not check it)
    const { pruned } = await temp.store.pruneEvents({ before: at(DAY), at: at(2 * DAY + 10) });
    expect(pruned).toBe(3); // decision, token.issued, the first use
    const rolled = await temp.store.rollupUsage();
    expect(rolled).toEqual({ events: 2, seq: (await temp.store.chainHead()).seq }); // the late use and audit.pruned
    const summary = await temp.store.usageSummary(WINDOW);
    expect(lines(summary)).toEqual(['code-review-agent github pr:read - repo proxy 1 1']);
    expect(summary.spans).toEqual([{ agent_id: AGENT, integration: 'github', max_seconds: 2 * DAY - 1, tokens: 1 }]);
  });

  it('a cursor past a prune goes on after it', async () => {
    await issue({ jti: 'j-1', t: 0, scopes: ['pr:read'] });
    await use('j-1', 100);
    await temp.store.rollupUsage();
    await temp.store.pruneEvents({ before: at(DAY), at: at(DAY + 10) });
    await use('j-1', DAY + 20);
    expect((await temp.store.rollupUsage()).events).toBe(2); // audit.pruned and the new use
    const summary = await temp.store.usageSummary(WINDOW);
    expect(lines(summary).filter((l) => l.includes(' proxy '))).toEqual(['code-review-agent github pr:read - repo proxy 2 2']);
    // Counted again: the first call counted the token on its first use, which the prune deleted, and a later call
    // knows a token's earlier uses only from the trail (documented in src/store/README.md).
    expect(summary.spans).toEqual([{ agent_id: AGENT, integration: 'github', max_seconds: DAY + 19, tokens: 2 }]);
  });

  it('a use whose token and task rows are gone counts, with the task type its decision carried and without a span; an unreadable event is skipped', async () => {
    await temp.store.registerTask(task('t-1', { agent_id: AGENT, type: 'code_review', expires_at: at(DAY) }));
    await issue({ jti: 'j-1', t: 0, scopes: ['pr:read'], task: { id: 't-1', type: 'code_review' } });
    await use('j-1', 50);
    await temp.store.rollupUsage();
    await use('j-1', 60);
    // Tasks and tokens are not pruned today; a later retention may delete them. And a row no writer could make.
    await sabotage("DELETE FROM tokens WHERE jti = 'j-1'");
    await sabotage("DELETE FROM tasks WHERE id = 't-1'");
    const [head] = await sabotage<{ seq: number | string; hash: string }>('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1');
    if (head === undefined) throw new Error('no events');
    await sabotage(
      `INSERT INTO audit_events (seq, v, time, type, jti, agent_id, caller_id, data, prev_hash, hash)
        VALUES (?, 1, ?, 'token.used', 'j-1', ?, 'proxy', '{not json', ?, ?)`,
      Number(head.seq) + 1, at(70), AGENT, head.hash, Buffer.from('f'.repeat(64), 'hex'),
    );
    expect((await temp.store.rollupUsage()).events).toBe(2);
    const summary = await temp.store.usageSummary(WINDOW);
    // The second call has not seen the decision: it reads the type the task's last decision carried from the trail.
    expect(lines(summary).filter((l) => l.includes(' proxy '))).toEqual(['code-review-agent github pr:read code_review repo proxy 2 1']);
    expect(summary.spans).toEqual([{ agent_id: AGENT, integration: 'github', max_seconds: 49, tokens: 1 }]);
  });
});

describe('usageSummary', () => {
  beforeEach(async () => {
    await issue({ jti: 'j-0', t: 10, scopes: ['pr:read'] });
    await use('j-0', 20);
    await issue({ jti: 'j-1', t: DAY + 10, scopes: ['pr:read'] });
    await use('j-1', DAY + 20);
    await use('j-1', DAY + 30);
    await issue({ jti: 'j-5', t: 5 * DAY + 10, scopes: ['pr:read'] });
    await use('j-5', 5 * DAY + 20);
    await issue({ jti: 'j-other', t: DAY + 50, scopes: ['chat:write'], integration: 'slack', agent: 'triage-agent' });
    await temp.store.rollupUsage();
  });

  it('sums the whole days that overlap the window, with first and last seen and days observed', async () => {
    const summary = await temp.store.usageSummary({ since: at(DAY + 3600), until: at(5 * DAY) });
    expect(summary).toMatchObject({ first_day: '2026-01-02', last_day: '2026-01-05' });
    expect(summary.rows.filter((r) => r.source === 'proxy')).toEqual([
      { agent_id: AGENT, integration: 'github', scope: 'pr:read', task_type: '', record_type: 'repo', source: 'proxy', n: 2, first_at: at(DAY + 20), last_at: at(DAY + 30), days: 1 },
    ]);
    const all = await temp.store.usageSummary({ since: at(0), until: at(5 * DAY + 1) });
    expect(all.rows.find((r) => r.source === 'proxy')).toMatchObject({ n: 4, first_at: at(20), last_at: at(5 * DAY + 20), days: 3 });
  });

  it('of one agent', async () => {
    const summary = await temp.store.usageSummary({ ...WINDOW, agent_id: 'triage-agent' });
    expect(lines(summary)).toEqual(['triage-agent slack chat:write - - granted 1 1', 'triage-agent slack chat:write - - requested 1 1']);
    expect(summary.issued).toEqual([{ agent_id: 'triage-agent', integration: 'slack', tokens: 1, first_at: at(DAY + 51), last_at: at(DAY + 51), days: 1 }]);
    expect(summary.spans).toEqual([]);
  });

  it.each([
    { note: 'an empty window', input: { since: at(10), until: at(10) } },
    { note: 'a window backwards', input: { since: at(10), until: at(0) } },
    { note: 'a time without milliseconds', input: { since: '2026-01-01T00:00:00Z', until: at(10) } },
    { note: 'an empty agent id', input: { ...WINDOW, agent_id: '' } },
  ])('refuses $note with a TypeError', async ({ input }) => {
    await expect(temp.store.usageSummary(input)).rejects.toThrow(TypeError);
  });
});
