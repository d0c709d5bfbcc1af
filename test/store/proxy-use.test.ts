/**
 * A call through the enforcement proxy is one token.used event (action `proxy`): recordTokenUse writes it with the
 * token's decision, task and agent, committed before it resolves; malformed data is refused before anything is
 * queued; the decision's chain (store and `agent-pdp audit chain`) lists it, and the chain verifies.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TokenProxiedData, TokenUsedData } from '../../src/audit/index.js';
import { sha256Hex } from '../../src/config/dev-keys.js';
import { runAudit } from '../audit-e2e/cli.js';
import { postgresUrl } from '../support/postgres.js';
import { at, decision, grant, rawSql, task, tempStore } from './store-fixtures.js';
import type { TempStore } from './store-fixtures.js';

const CALLER = 'support-middleware';
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
  bytes_out: 5120,
  latency_ms: 12,
};
const REFUSED: TokenProxiedData = {
  ...FORWARDED,
  method: 'PUT',
  path_template: '/repos/{owner}/{repo}/contents/{path+}',
  scope: 'repo:write',
  outcome: 'refused',
  code: 'token_scope_insufficient',
  upstream_status: null,
  bytes_out: 131,
  latency_ms: 1,
};

let temp: TempStore;

async function issue(jti: string): Promise<void> {
  await temp.store.registerTask(task('t-1'));
  await temp.store.recordDecision(decision('d-1', { task_id: 't-1' }));
  await temp.store.redeemDecision({ decision_id: 'd-1', caller_id: CALLER, now: at(5), makeToken: () => grant({ jti }) });
}

/** The token.used rows as another connection sees them: what is committed, and nothing else. */
function committedUses(): Promise<Array<Record<string, unknown>>> {
  return rawSql(temp, "SELECT decision_id, jti, task_id, agent_id, caller_id, trace_id, data FROM audit_events WHERE type = 'token.used' ORDER BY seq");
}

describe('recordTokenUse with a call through the proxy', () => {
  beforeEach(async () => {
    temp = await tempStore();
  });
  afterEach(async () => {
    await temp.cleanup();
  });

  it('is committed when it resolves, with the token’s decision, task and agent, and only the documented members', async () => {
    await issue('j-1');
    await temp.store.recordTokenUse({ jti: 'j-1', caller_id: 'proxy', at: at(30), trace_id: '4bf92f3577b34da6a3ce929d0e0e4736', data: FORWARDED });
    const [row] = await committedUses();
    expect(row).toMatchObject({ decision_id: 'd-1', jti: 'j-1', task_id: 't-1', agent_id: 'support-resolver', caller_id: 'proxy', trace_id: '4bf92f3577b34da6a3ce929d0e0e4736' });
    expect(JSON.parse(row?.['data'] as string)).toEqual(FORWARDED);
    expect(await temp.store.verifyStoredChain()).toMatchObject({ ok: true });
  });

  it('with the token row\'s ids given (the proxy\'s gate read them once), writes the event the row would give', async () => {
    await issue('j-1');
    const row = await temp.store.getToken('j-1');
    const ids = { decision_id: row?.decision_id as string, task_id: row?.task_id ?? null, agent_id: row?.agent_id as string };
    await temp.store.recordTokenUse({ jti: 'j-1', caller_id: 'proxy', at: at(30), data: FORWARDED });
    await temp.store.recordTokenUse({ jti: 'j-1', caller_id: 'proxy', at: at(30), data: FORWARDED, token: ids });
    const [read, given] = await committedUses();
    expect(given).toEqual(read);
    expect(given).toMatchObject({ decision_id: 'd-1', task_id: 't-1', agent_id: 'support-resolver' });
    // A token row without a task (a decision on a task the PEP asserted inline) gives none, as the row would.
    await temp.store.recordTokenUse({ jti: 'j-1', caller_id: 'proxy', at: at(31), data: FORWARDED, token: { ...ids, task_id: null } });
    expect((await committedUses())[2]).toMatchObject({ decision_id: 'd-1', task_id: null, agent_id: 'support-resolver' });
    expect(await temp.store.verifyStoredChain()).toMatchObject({ ok: true });
  });

  it('refuses malformed token ids before anything is queued', async () => {
    await issue('j-1');
    const ids = { decision_id: 'd-1', task_id: 't-1', agent_id: 'support-resolver' };
    for (const token of [{ ...ids, decision_id: '' }, { ...ids, agent_id: 7 }, { ...ids, task_id: '' }]) {
      await expect(
        temp.store.recordTokenUse({ jti: 'j-1', caller_id: 'proxy', at: at(30), data: FORWARDED, token: token as typeof ids }),
      ).rejects.toThrow(TypeError);
    }
    expect(await committedUses()).toEqual([]);
  });

  it('writes a use of a jti that is not ours without decision, task or agent', async () => {
    await temp.store.recordTokenUse({ jti: 'j-foreign', caller_id: 'proxy', at: at(30), data: REFUSED });
    expect(await committedUses()).toEqual([
      { decision_id: null, jti: 'j-foreign', task_id: null, agent_id: null, caller_id: 'proxy', trace_id: null, data: expect.any(String) },
    ]);
  });

  const bad = (data: Partial<Record<keyof TokenProxiedData, unknown>>): TokenUsedData => ({ ...FORWARDED, ...data }) as TokenUsedData;
  it.each([
    { note: 'an unknown outcome', data: bad({ outcome: 'ok' }) },
    { note: 'a forwarded call with a refusal code', data: bad({ code: 'token_scope_insufficient' }) },
    { note: 'a refused call the upstream answered', data: bad({ outcome: 'refused', code: 'token_scope_insufficient', upstream_status: 403 }) },
    { note: 'a template past the bound', data: bad({ path_template: '/' + 'x'.repeat(600) }) },
    { note: 'a negative byte count', data: bad({ bytes_in: -5 }) },
    { note: 'a record of the wrong shape', data: bad({ record: ['repo', 'acme/app'] }) },
    { note: 'a method that is not one', data: bad({ method: 'GET\r\nX-Injected: 1' }) },
  ])('refuses $note with a TypeError, and writes nothing', async ({ data }) => {
    await issue('j-1');
    const head = await temp.store.chainHead();
    await expect(temp.store.recordTokenUse({ jti: 'j-1', caller_id: 'proxy', at: at(30), data })).rejects.toThrow(TypeError);
    expect(await temp.store.chainHead()).toEqual(head);
    expect(await committedUses()).toEqual([]);
    // The store is unharmed: the next use is written.
    await temp.store.recordTokenUse({ jti: 'j-1', caller_id: 'proxy', at: at(31), data: FORWARDED });
    expect(await committedUses()).toHaveLength(1);
  });

  it('masks the configured members of its payload, like every event', async () => {
    await temp.reopen({ mask: ['record.id'] });
    await temp.store.recordTokenUse({ jti: 'j-1', caller_id: 'proxy', at: at(30), data: FORWARDED });
    const data = JSON.parse((await committedUses())[0]?.['data'] as string) as TokenProxiedData;
    expect(data.record?.type).toBe('repo');
    expect(data.record?.id).toMatch(/^sha256:[0-9a-f]{64}$/);
  });
});

describe('the decision chain of a token used through the proxy', () => {
  beforeEach(async () => {
    temp = await tempStore();
  });
  afterEach(async () => {
    await temp.cleanup();
  });

  it('lists every use in seq order, in the store and in `agent-pdp audit chain`, and the chain verifies', async () => {
    await issue('j-1');
    await temp.store.recordTokenUse({ jti: 'j-1', caller_id: 'proxy', at: at(30), data: FORWARDED });
    await temp.store.recordTokenUse({ jti: 'j-1', caller_id: 'proxy', at: at(31), data: REFUSED });
    const unmapped: TokenProxiedData = { ...REFUSED, method: 'POST', path_template: '', scope: null, record: null, code: 'endpoint_not_mapped' };
    await temp.store.recordTokenUse({ jti: 'j-1', caller_id: 'proxy', at: at(32), data: unmapped });
    await temp.store.recordTokenUse({ jti: 'j-1', caller_id: 'crm-api', at: at(33), data: { action: 'introspect', active: true } });
    // A call on a record whose id holds a terminal escape (it comes from the request).
    const escape: TokenProxiedData = { ...REFUSED, record: { type: 'channel', id: 'C1\u001b]0;pwned\u0007' }, code: 'token_record_mismatch' };
    await temp.store.recordTokenUse({ jti: 'j-1', caller_id: 'proxy', at: at(34), data: escape });
    await temp.store.completeTask({ task_id: 't-1', by: 'orchestrator-1', at: at(40) });

    const chain = await temp.store.decisionChain('d-1');
    expect(chain.map((e) => [e.type, (e.data as { action?: string }).action ?? null])).toEqual([
      ['decision', null],
      ['token.issued', null],
      ['token.used', 'proxy'],
      ['token.used', 'proxy'],
      ['token.used', 'proxy'],
      ['token.used', 'introspect'],
      ['token.used', 'proxy'],
      ['task.completed', null],
      ['token.revoked', null],
    ]);
    expect(chain[2]).toMatchObject({ jti: 'j-1', decision_id: 'd-1', caller_id: 'proxy', data: FORWARDED });
    expect(await temp.store.verifyStoredChain()).toMatchObject({ ok: true, count: chain.length + 1 });

    await temp.store.close();
    const config = join(temp.dir, 'config.yaml');
    const storeConfig = temp.engine === 'postgres' ? `store: { url: "${postgresUrl()}", schema: ${temp.path} }` : `store: { url: "sqlite:${temp.path}" }`;
    writeFileSync(config, [storeConfig, 'callers:', `  - { id: ops, role: admin, key_sha256: ${sha256Hex('proxy-use-admin')} }`, ''].join('\n'));
    const text = await runAudit(['chain', 'd-1', '--config', config]);
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.trim().split('\n').filter((l) => l.includes('token.used'));
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatch(/by proxy {2}jti j-1 github GET \/repos\/\{owner\}\/\{repo\}\/pulls\/\{pull_number\} needs pr:read on repo "acme\/app": forwarded, upstream 200, 0 B in, 5120 B out, 12 ms$/);
    expect(lines[1]).toMatch(/github PUT \/repos\/\{owner\}\/\{repo\}\/contents\/\{path\+\} needs repo:write on repo "acme\/app": refused token_scope_insufficient, 0 B in, 131 B out, 1 ms$/);
    expect(lines[2]).toMatch(/github POST \(unmapped\): refused endpoint_not_mapped, 0 B in, 131 B out, 1 ms$/);
    expect(lines[3]).toMatch(/by crm-api {2}jti j-1 introspect: active$/);
    expect(lines[4]).toContain('on channel "C1\\u001b]0;pwned\\u0007": refused token_record_mismatch');
    expect(text.stdout).not.toContain('\u001b');
    const json = await runAudit(['chain', 'd-1', '--config', config, '--json']);
    expect(json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; data: unknown })[2]).toMatchObject({ type: 'token.used', data: FORWARDED });
    temp.store = await temp.reopen();
  });
});
