/**
 * recordTokenUses writes a batch of token.used events (a resource server's usage reports, `action:
 * resource_server`) in one transaction: each correlated with its token's decision, task and agent, committed when it
 * resolves, in order; a malformed input anywhere refuses the whole batch before anything is queued; the decision's
 * chain (store and `agent-pdp audit chain`) lists the uses, and the chain verifies.
 */
import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TokenReportedData, TokenUsedData } from '../../src/audit/index.js';
import { sha256Hex } from '../../src/config/dev-keys.js';
import type { TokenUseInput } from '../../src/store/index.js';
import { runAudit } from '../audit-e2e/cli.js';
import { pgQuery, postgresUrl } from '../support/postgres.js';
import { at, decision, grant, task, tempStore } from './store-fixtures.js';
import type { TempStore } from './store-fixtures.js';

const REPORTED: TokenReportedData = {
  action: 'resource_server',
  integration: 'crm',
  scope: 'tickets:write',
  record: { type: 'customer', id: '1234' },
  route: '/customers/:id/tickets',
  used_at: at(20),
};

let temp: TempStore;

async function issue(jti: string): Promise<void> {
  await temp.store.registerTask(task('t-1'));
  await temp.store.recordDecision(decision('d-1', { task_id: 't-1' }));
  await temp.store.redeemDecision({ decision_id: 'd-1', caller_id: 'support-middleware', now: at(5), makeToken: () => grant({ jti }) });
}

/** The token.used rows as committed, read on a connection of their own (SQLite: the file; PostgreSQL: the schema). */
async function committedUses(): Promise<Array<Record<string, unknown>>> {
  const sql = "SELECT seq, decision_id, jti, task_id, agent_id, caller_id, trace_id, data FROM audit_events WHERE type = 'token.used' ORDER BY seq";
  if (temp.engine === 'postgres') return pgQuery(temp.path, sql);
  const other = new Database(temp.path, { readonly: true });
  try {
    return other.prepare(sql).all() as Array<Record<string, unknown>>;
  } finally {
    other.close();
  }
}

const use = (jti: string, data: Partial<TokenReportedData> = {}, more: Partial<TokenUseInput> = {}): TokenUseInput => ({
  jti, caller_id: 'crm-api', at: at(30), data: { ...REPORTED, ...data }, ...more,
});

describe('recordTokenUses', () => {
  beforeEach(async () => {
    temp = await tempStore();
  });
  afterEach(async () => {
    await temp.cleanup();
  });

  it('commits every use in one transaction, in order, correlated when the jti is ours', async () => {
    await issue('j-1');
    const before = temp.store.stats();
    await temp.store.recordTokenUses([
      use('j-1', {}, { trace_id: '4bf92f3577b34da6a3ce929d0e0e4736' }),
      use('j-foreign'),
      use('j-1', { record: null, route: null, used_at: at(21) }),
    ]);
    const after = temp.store.stats();
    expect(after.transactions - before.transactions).toBe(1);
    const rows = await committedUses();
    expect(rows.map(({ seq: _seq, data: _data, ...ids }) => ids)).toEqual([
      { decision_id: 'd-1', jti: 'j-1', task_id: 't-1', agent_id: 'support-resolver', caller_id: 'crm-api', trace_id: '4bf92f3577b34da6a3ce929d0e0e4736' },
      { decision_id: null, jti: 'j-foreign', task_id: null, agent_id: null, caller_id: 'crm-api', trace_id: null },
      { decision_id: 'd-1', jti: 'j-1', task_id: 't-1', agent_id: 'support-resolver', caller_id: 'crm-api', trace_id: null },
    ]);
    expect(JSON.parse(rows[0]?.['data'] as string)).toEqual(REPORTED);
    expect(JSON.parse(rows[2]?.['data'] as string)).toEqual({ ...REPORTED, record: null, route: null, used_at: at(21) });
    expect(await temp.store.verifyStoredChain()).toMatchObject({ ok: true });
  });

  it('writes nothing for an empty list', async () => {
    const head = await temp.store.chainHead();
    await temp.store.recordTokenUses([]);
    expect(await temp.store.chainHead()).toEqual(head);
  });

  it.each([
    { note: 'a route that is no template', bad: { route: 'customers/1234' } },
    { note: 'a scope outside the grammar', bad: { scope: 'tickets write' } },
    { note: 'a used_at of another format', bad: { used_at: '2026-01-01T00:00:20Z' } },
  ])('refuses the whole batch when one input has $note (TypeError), and the store is unharmed', async ({ bad }) => {
    await issue('j-1');
    const head = await temp.store.chainHead();
    await expect(temp.store.recordTokenUses([use('j-1'), use('j-1', bad as Partial<TokenReportedData>), use('j-1')])).rejects.toThrow(TypeError);
    expect(await temp.store.chainHead()).toEqual(head);
    expect(await committedUses()).toEqual([]);
    await temp.store.recordTokenUses([use('j-1')]);
    expect(await committedUses()).toHaveLength(1);
  });

  it('refuses a missing caller or a time of another format before queuing', async () => {
    await expect(temp.store.recordTokenUses([use('j-1', {}, { caller_id: '' })])).rejects.toThrow(TypeError);
    await expect(temp.store.recordTokenUses([use('j-1', {}, { at: '2026-01-01' })])).rejects.toThrow(TypeError);
    await expect(temp.store.recordTokenUses('j-1' as unknown as TokenUseInput[])).rejects.toThrow(TypeError);
    expect(await committedUses()).toEqual([]);
  });

  it('masks the configured members of each payload, like every event', async () => {
    await temp.reopen({ mask: ['record.id'] });
    await temp.store.recordTokenUses([use('j-1')]);
    const data = JSON.parse((await committedUses())[0]?.['data'] as string) as TokenReportedData;
    expect(data.record?.type).toBe('customer');
    expect(data.record?.id).toMatch(/^sha256:[0-9a-f]{64}$/);
  });
});

describe('the decision chain of a token a resource server reported', () => {
  beforeEach(async () => {
    temp = await tempStore();
  });
  afterEach(async () => {
    await temp.cleanup();
  });

  // Not on PostgreSQL yet: `agent-pdp audit` opens only a sqlite: store (src/cli/audit-commands.ts, openConfiguredStore).
  it('lists the reported uses, in the store and in `agent-pdp audit chain` (route and record id quoted)', async () => {
    await issue('j-1');
    await temp.store.recordTokenUses([
      use('j-1'),
      use('j-1', { record: { type: 'customer', id: 'C1\u001b]0;pwned\u0007' }, route: null }),
    ]);
    const chain = await temp.store.decisionChain('d-1');
    expect(chain.map((e) => [e.type, (e.data as TokenUsedData & { action?: string }).action ?? null])).toEqual([
      ['decision', null],
      ['token.issued', null],
      ['token.used', 'resource_server'],
      ['token.used', 'resource_server'],
    ]);
    await temp.store.close();
    const config = join(temp.dir, 'config.yaml');
    const store = temp.engine === 'postgres' ? `store: { url: "${postgresUrl()}", schema: ${temp.path} }` : `store: { url: "sqlite:${temp.path}" }`;
    writeFileSync(config, [store, 'callers:', `  - { id: ops, role: admin, key_sha256: ${sha256Hex('usage-batch-admin')} }`, ''].join('\n'));
    const text = await runAudit(['chain', 'd-1', '--config', config]);
    expect(text.code).toBe(0);
    const lines = text.stdout.trim().split('\n').filter((l) => l.includes('token.used'));
    expect(lines[0]).toMatch(/by crm-api {2}jti j-1 reported: crm "\/customers\/:id\/tickets" needed tickets:write on customer "1234", used at 2026-01-01T00:00:20\.000Z$/);
    expect(lines[1]).toContain('reported: crm (route not named) needed tickets:write on customer "C1\\u001b]0;pwned\\u0007"');
    expect(text.stdout).not.toContain('\u001b');
    temp.store = await temp.reopen();
  });
});
