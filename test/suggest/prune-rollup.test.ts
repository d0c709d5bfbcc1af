/**
 * `agent-pdp audit prune` rolls the usage aggregates up before it deletes anything: the aggregates (what
 * `agent-pdp suggest` reads) keep every token and use of the pruned events. Without the rollup first, the events
 * would be gone before the aggregates had counted them (the rollup skips pruned history).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';
import { cli, cliConfig } from './cli-world.js';

let t: TestPdp;
let config: string;

beforeAll(async () => {
  // The history starts two days ago, so its tokens have expired by the real clock the CLI reads.
  t = await startTestPdp({ clockStart: new Date(Date.now() - 2 * 86_400_000) });
  config = cliConfig(t, 'prune-config');
});
afterAll(async () => t.close());

async function call(path: string, key: string, body: unknown, status: number): Promise<Record<string, unknown>> {
  const res = await fetch(`${t.url}${path}`, { method: 'POST', headers: { ...auth(key), 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (res.status !== status) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

describe('agent-pdp audit prune', () => {
  it('rolls the usage aggregates up first: the pruned tokens and uses are still counted', async () => {
    // Four tokens made two days ago (expired now: nothing live holds their decisions), each reported used for
    // repo:read by a resource server; nothing rolled up yet.
    for (let i = 0; i < 4; i++) {
      const task = `prune-rollup-${i}`;
      await call('/v1/tasks', KEYS.orchestrator, { id: task, agent_id: 'code-review-agent', type: 'review' }, 201);
      const decision = await call('/v1/decide', KEYS.pep, { agent_id: 'code-review-agent', task: { id: task }, integration: 'github', scopes: ['repo:read', 'pr:read'] }, 200);
      const token = await call('/v1/tokens', KEYS.pep, { decision_id: decision['decision_id'] }, 201);
      await call('/v1/usage', KEYS.resource, { reports: [{ jti: token['jti'], integration: 'github', scope: 'repo:read', used_at: t.clock.now.toISOString() }] }, 202);
    }
    const before = new Date(t.clock.now.getTime() + 1000).toISOString();
    const run = await cli('audit', 'prune', '--config', config, '--before', before);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/^usage aggregates rolled up first: \d+ events \(cursor at seq \d+\)\n/);
    expect(run.stdout).toMatch(/^pruned \d+ events/);
    // The events are gone; the aggregates kept them.
    const left = [];
    for await (const e of t.pdp.store.iterateEvents({ types: ['token.issued', 'token.used'] })) left.push(e);
    expect(left).toEqual([]);
    const day = 86_400_000;
    const summary = await t.pdp.store.usageSummary({
      since: new Date(t.clock.now.getTime() - day).toISOString(),
      until: new Date(t.clock.now.getTime() + day).toISOString(),
      agent_id: 'code-review-agent',
    });
    const count = (scope: string, source: string): number =>
      summary.rows.filter((r) => r.scope === scope && r.source === source).reduce((n, r) => n + r.n, 0);
    expect({ granted: count('pr:read', 'granted'), used: count('repo:read', 'resource_server'), unused: count('pr:read', 'resource_server') }).toEqual({ granted: 4, used: 4, unused: 0 });
  });

  it('stops before the decision of a live token, which still redeems its usage reports', async () => {
    t.clock.now = new Date();
    await call('/v1/tasks', KEYS.orchestrator, { id: 'prune-live', agent_id: 'code-review-agent', type: 'review' }, 201);
    const decision = await call('/v1/decide', KEYS.pep, { agent_id: 'code-review-agent', task: { id: 'prune-live' }, integration: 'github', scopes: ['repo:read'] }, 200);
    const token = await call('/v1/tokens', KEYS.pep, { decision_id: decision['decision_id'] }, 201);
    const run = await cli('audit', 'prune', '--config', config, '--before', new Date(Date.now() + 1000).toISOString());
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^nothing to prune/);
    // Made a moment ago, the decision is inside its redeem window as well as held by its live token.
    expect(run.stderr).toMatch(/stopped before seq \d+ \(.+\): (the decision there is still read by a token|decisions from there on may still be inside)/);
    expect(await t.pdp.store.getDecision(String(decision['decision_id']))).toMatchObject({ redeemed_jti: token['jti'] });
    const report = { jti: token['jti'], integration: 'github', scope: 'repo:read', used_at: t.clock.now.toISOString() };
    expect(await call('/v1/usage', KEYS.resource, { reports: [report] }, 202)).toMatchObject({ accepted: 1 });
  });
});
