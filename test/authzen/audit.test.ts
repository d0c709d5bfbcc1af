/**
 * No decision escapes the chain through the AuthZEN door (issue 21): against the real server with the certification
 * pack routed for `user`, each answer is an audit event in the OPA-format export, under its path, with the bundle's
 * revision and the caller; a search is recorded once, not once per candidate; an agent decision is a `decision`
 * event like /v1/decide's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packBundle } from '../support/pack-bundle.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';

let t: TestPdp;

beforeAll(async () => {
  t = await startTestPdp({
    bundle: await packBundle(['examples/packs/authzen-certification']),
    config: { authzen: { subjects: { user: { decision: 'authzen/certification/decision', entities: 'authzen/certification/entities' } } } },
  });
});
afterAll(async () => {
  await t?.close();
});

type Json = Record<string, any>;
interface OpaLine {
  decision_id: string;
  path: string;
  requested_by: string;
  bundles?: Record<string, { revision?: string }>;
  input?: Json;
  result?: unknown;
}

async function post(path: string, body: unknown, key: string = KEYS.pep): Promise<Json> {
  const res = await fetch(`${t.url}${path}`, { method: 'POST', headers: { ...auth(key), 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status, path).toBe(200);
  return (await res.json()) as Json;
}

async function exported(): Promise<OpaLine[]> {
  const res = await fetch(`${t.url}/v1/audit/export?format=opa`, { headers: auth(KEYS.auditor) });
  expect(res.status).toBe(200);
  return (await res.text()).split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as OpaLine);
}

const alice = { type: 'user', id: 'alice' };
const record1 = { type: 'record', id: 'record-1' };
const DECISION = 'authzen/certification/decision';

describe('the AuthZEN door in the audit trail', () => {
  it("a pack evaluation, each batch item and a search: one export line each, under the pack's path, with the revision", async () => {
    const before = await exported();
    const one = await post('/access/v1/evaluation', { subject: alice, action: { name: 'read' }, resource: record1 });
    const batch = await post('/access/v1/evaluations', { subject: alice, resource: record1, evaluations: [{ action: { name: 'read' } }, { action: { name: 'delete' } }] });
    const search = await post('/access/v1/search/action', { subject: alice, resource: record1 });
    const added = (await exported()).slice(before.length);
    const ids = [one['context'].decision_id, ...batch['evaluations'].map((e: Json) => e['context'].decision_id), search['context'].decision_id] as string[];
    expect(new Set(ids).size).toBe(4);
    // Exactly these four lines: the search's candidates were evaluated without a line each.
    expect(added.map((l) => l.decision_id).sort()).toEqual([...ids].sort());
    const revision = t.pdp.engine.active?.revision;
    expect(revision).toEqual(expect.any(String));
    for (const line of added) {
      expect(line).toMatchObject({ path: DECISION, requested_by: 'pep-1', bundles: { 'agent-pdp': { revision } } });
    }
    const byId = (id: string): OpaLine | undefined => added.find((l) => l.decision_id === id);
    expect(byId(ids[0]!)).toMatchObject({ input: { subject: alice, action: { name: 'read' }, resource: record1 } });
    expect(byId(ids[2]!)).toMatchObject({ input: { subject: alice, action: { name: 'delete' }, resource: record1 } });
    expect(byId(ids[3]!)).toMatchObject({ input: { search: 'action', request: { subject: alice, resource: record1 } }, result: { results: search['results'] } });
  });

  it('an agent decision through the door is a decision like /v1/decide\'s: path agentpdp/decision, redeemable id', async () => {
    await fetch(`${t.url}/v1/tasks`, { method: 'POST', headers: { ...auth(KEYS.orchestrator), 'content-type': 'application/json' }, body: JSON.stringify({ id: 'az-audit-1', agent_id: 'support-resolver', type: 'complaint_resolution', context: { customer_id: '1234' } }) });
    const res = await post('/access/v1/evaluation', { subject: { type: 'agent', id: 'support-resolver' }, action: { name: 'tickets:write' }, resource: { type: 'customer', id: '1234' }, context: { integration: 'crm', task_id: 'az-audit-1' } });
    expect(res['decision']).toBe(true);
    const line = (await exported()).find((l) => l.decision_id === res['context'].decision_id);
    expect(line).toMatchObject({ path: 'agentpdp/decision', requested_by: 'pep-1', input: { agent_id: 'support-resolver', scopes: ['tickets:write'] } });
  });
});
