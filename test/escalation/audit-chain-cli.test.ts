/**
 * `agent-pdp audit chain DECISION_ID`: a requestable denial's story from a shell, on the store a running PDP writes:
 * the denial, the request, the approval, the elevated decision and its token, the elevation's end.
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runAudit } from '../audit-e2e/cli.js';
import { auth, KEYS, startTestPdp, TEST_CALLERS, type TestPdp } from '../support/pdp-harness.js';

let t: TestPdp;
beforeAll(async () => {
  t = await startTestPdp({ policies: 'test/escalation/policies' });
});
afterAll(async () => {
  await t.close();
});

const post = async (path: string, key: string, body: unknown) => {
  const res = await fetch(`${t.url}${path}`, { method: 'POST', headers: { ...auth(key), 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return (await res.json()) as Record<string, any>;
};

it('prints the chain of a denial from the first decision to the end of its elevation', async () => {
  await post('/v1/tasks', KEYS.orchestrator, { id: 'chain-task', agent_id: 'release-bot', type: 'incident', context: { customer_id: '1234' } });
  const decide = () => post('/v1/decide', KEYS.pep, { agent_id: 'release-bot', task: { id: 'chain-task' }, integration: 'crm', scopes: ['tickets:write'], resource: { type: 'customer', id: '1234' } });
  const denial = await decide();
  const request = await post('/v1/access-requests', KEYS.pep, { decision_id: denial['decision_id'], reason: 'incident 7' });
  await post(`/v1/access-requests/${request['id']}/approve`, KEYS.approver, { duration_seconds: 120, note: 'go' });
  const elevated = await decide();
  await post('/v1/tokens', KEYS.pep, { decision_id: elevated['decision_id'] });
  t.clock.advance(121);
  await t.pdp.accessRequests.sweep();

  const config = join(t.dir, 'chain-config.yaml');
  writeFileSync(config, stringify({ policy: { bundle: resolve('opa-bundle/bundle.tar.gz'), agents: 'policies' }, store: { url: 'sqlite:data/pdp.db' }, issuer: { keys: 'data/keys' }, callers: TEST_CALLERS }));
  const text = await runAudit(['chain', denial['decision_id'], '--config', config]);
  expect(text.code).toBe(0);
  const types = text.stdout.trim().split('\n').map((line) => line.split(/\s+/)[2]);
  expect(types).toEqual(['decision', 'access_request.submitted', 'access_request.approved', 'decision', 'token.issued', 'elevation.ended']);
  expect(text.stdout).toContain('by oncall-1');
  expect(text.stdout).toContain('incident 7');

  const json = await runAudit(['chain', denial['decision_id'], '--config', config, '--json']);
  expect(json.stdout.trim().split('\n').map((l) => JSON.parse(l).type)).toEqual(types);
  expect((await runAudit(['chain', 'no-such-decision', '--config', config])).code).toBe(1);
});
