/**
 * POST /v1/grantable-scopes on the real server (HTTP on loopback, the fixture policies, real bundle, real SQLite):
 * what it answers per agent and task type, the caller and task checks it shares with decide, that it writes
 * nothing, the SDK's client method, and a cross-check against real decisions: a scope is `grantable` exactly
 * when a decision asking for it alone (on its record when bound) grants it as asked.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPepError, PdpClient } from '../../src/pep/index.js';
import { checkGrantableScopes } from '../../src/pep/answer-checks.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';

type Json = Record<string, any>;

/** The test fixtures, plus two agents with break-glass scopes (one lifting its own deny for approved requests). */
const EXTRA_AGENTS: Record<string, string> = {
  'sibling-bot.yaml': `agent_policy:
  id: sibling-bot
  integrations:
    crm:
      max_scope: [tickets:read]
      deny_scope: [admin]
      escalation:
        scopes: [tickets:write, admin, tickets:read]
        override_deny: [admin]
        approvers: [platform-oncall]
`,
};

let t: TestPdp;
let policies: string;
let seq = 0;

beforeAll(async () => {
  policies = mkdtempSync(join(tmpdir(), 'agent-pdp-grantable-'));
  cpSync('test/fixtures/policies', policies, { recursive: true });
  cpSync('test/escalation/policies/agents/release-bot.yaml', join(policies, 'agents/release-bot.yaml'));
  for (const [file, text] of Object.entries(EXTRA_AGENTS)) writeFileSync(join(policies, 'agents', file), text);
  t = await startTestPdp({ policies });
});
afterAll(async () => {
  await t?.close();
  rmSync(policies, { recursive: true, force: true });
});

async function call(path: string, key: string, body: unknown): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${t.url}${path}`, { method: 'POST', headers: { ...auth(key), 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Json };
}

const grantable = (body: unknown, key: string = KEYS.pep) => call('/v1/grantable-scopes', key, body);

async function task(agent: string, type: string, context: Json = {}): Promise<string> {
  const id = `gs-${++seq}`;
  const res = await call('/v1/tasks', KEYS.orchestrator, { id, agent_id: agent, type, context });
  expect(res.status).toBe(201);
  return id;
}

const none = { grantable: [], requestable: [], bound: {} };

describe('what it answers', () => {
  it('a plain agent: its ceiling minus its deny list, on every integration; nothing bound, nothing requestable', async () => {
    const id = await task('code-review-agent', 'review');
    const res = await grantable({ agent_id: 'code-review-agent', task: { id } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      agent_id: 'code-review-agent',
      task_id: id,
      task_type: 'review',
      policy_revision: t.pdp.engine.active?.revision,
      task_denial: null,
      integrations: {
        github: { grantable: ['issues:read', 'pr:read', 'repo:read'], requestable: [], bound: {} },
        slack: { grantable: ['channels:read', 'chat:write'], requestable: [], bound: {} },
      },
    });
  });

  it.each([
    { note: 'support-resolver, complaint_resolution: its narrowed type, tickets:write bound to the customer', agent: 'support-resolver', type: 'complaint_resolution', expected: { crm: { grantable: ['tickets:read', 'tickets:write'], requestable: [], bound: { 'tickets:write': 'customer' } } } },
    { note: "support-resolver, triage: the role's type, read only", agent: 'support-resolver', type: 'triage', expected: { crm: { grantable: ['tickets:read'], requestable: [], bound: {} } } },
    { note: 'mailbox-summarizer, summarize: mail:read, bound to the mailbox', agent: 'mailbox-summarizer', type: 'summarize', expected: { mail: { grantable: ['mail:read'], requestable: [], bound: { 'mail:read': 'mailbox' } } } },
    { note: 'mailbox-summarizer, categorize: both mail scopes, both bound', agent: 'mailbox-summarizer', type: 'categorize', expected: { mail: { grantable: ['mail:labels', 'mail:read'], requestable: [], bound: { 'mail:labels': 'mailbox', 'mail:read': 'mailbox' } } } },
    { note: 'feedback-workflow, feedback_read: an integration its type does not list gets nothing', agent: 'feedback-workflow', type: 'feedback_read', expected: { database: { grantable: ['select:customer_feedback'], requestable: [], bound: { 'select:customer_feedback': 'table' } }, slack: none, translation: none } },
    { note: 'a task-restricted agent on a type that is not its own: nothing anywhere', agent: 'support-resolver', type: 'refund', expected: { crm: none } },
    { note: 'break-glass: the escalation scopes not already grantable are requestable', agent: 'release-bot', type: 'incident', expected: { crm: { grantable: ['tickets:read'], requestable: ['tickets:write'], bound: {} } } },
    { note: "break-glass lifting the agent's own deny (override_deny) is requestable; a grantable one is not repeated", agent: 'sibling-bot', type: 'incident', expected: { crm: { grantable: ['tickets:read'], requestable: ['admin', 'tickets:write'], bound: {} } } },
  ])('$note', async ({ agent, type, expected }) => {
    const id = await task(agent, type, { customer_id: '1234', mailbox: 'support@example.com', table: 'customer_feedback' });
    const res = await grantable({ agent_id: agent, task: { id } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ agent_id: agent, task_id: id, task_type: type, task_denial: null });
    expect(res.body['integrations']).toEqual(expected);
  });

  it('an unregistered task asserted by a caller that may assert: its asserted type; without a type a restricted agent gets nothing', async () => {
    const typed = await grantable({ agent_id: 'support-resolver', task: { id: 'gs-asserted', type: 'triage', context: { customer_id: '9' } } });
    expect(typed.body).toMatchObject({ task_type: 'triage', task_denial: null, integrations: { crm: { grantable: ['tickets:read'] } } });
    const bare = await grantable({ agent_id: 'support-resolver', task: { id: 'gs-bare' } });
    expect(bare.body).toMatchObject({ task_type: null, task_denial: null, integrations: { crm: none } });
  });

  it('an unknown agent: no integrations, not an error', async () => {
    const id = await task('nobody-bot', 'x');
    const res = await grantable({ agent_id: 'nobody-bot', task: { id } }, KEYS.pepApprover);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ agent_id: 'nobody-bot', task_id: id, task_type: 'x', policy_revision: t.pdp.engine.active?.revision, task_denial: null, integrations: {} });
  });

  it('`integrations` limits the answer to those names; names the agent does not have are simply absent', async () => {
    const id = await task('feedback-workflow', 'feedback_post', { channel: 'C1' });
    const res = await grantable({ agent_id: 'feedback-workflow', task: { id }, integrations: ['slack', 'github', 'nope'] });
    expect(res.body['integrations']).toEqual({ slack: { grantable: ['chat:write'], requestable: [], bound: { 'chat:write': 'channel' } } });
  });

  it('policy_revision is the revision a decision carries', async () => {
    const id = await task('code-review-agent', 'review');
    const decided = await call('/v1/decide', KEYS.pep, { agent_id: 'code-review-agent', task: { id }, integration: 'github', scopes: ['repo:read'] });
    const res = await grantable({ agent_id: 'code-review-agent', task: { id } });
    expect(decided.body['policy_revision']).toEqual(expect.any(String));
    expect(res.body['policy_revision']).toBe(decided.body['policy_revision']);
  });

  it('writes nothing: no decision record, no audit event', async () => {
    const id = await task('support-resolver', 'complaint_resolution', { customer_id: '1234' });
    const nobody = await task('nobody-bot', 'x');
    const before = await t.pdp.store.chainHead();
    const asked = [
      { key: KEYS.pep, body: { agent_id: 'support-resolver', task: { id } } },
      { key: KEYS.pep, body: { agent_id: 'support-resolver', task: { id: 'gs-unregistered', type: 'triage' } } },
      { key: KEYS.strictPep, body: { agent_id: 'support-resolver', task: { id: 'gs-unregistered' } } },
      { key: KEYS.pepApprover, body: { agent_id: 'nobody-bot', task: { id: nobody } } },
      { key: KEYS.pepApprover, body: { agent_id: 'nobody-bot', task: { id } } },
    ];
    for (const { key, body } of asked) expect((await grantable(body, key)).status).toBe(200);
    expect(await t.pdp.store.chainHead()).toEqual(before);
    // The same chain head moves for a decision: the comparison can fail.
    await call('/v1/decide', KEYS.pep, { agent_id: 'support-resolver', task: { id }, integration: 'crm', scopes: ['tickets:read'] });
    expect((await t.pdp.store.chainHead()).seq).toBeGreaterThan(before.seq);
  });
});

describe('the caller and task checks of a decision', () => {
  it.each([
    { note: 'a caller that may not speak for the agent', key: KEYS.strictPep, body: { agent_id: 'code-review-agent', task: { id: 'gs-x' } }, status: 403, code: 'forbidden_agent', path: 'agent_id' },
    { note: 'a caller that may not assert context, asserting it', key: KEYS.strictPep, body: { agent_id: 'support-resolver', task: { id: 'gs-x', type: 'triage' } }, status: 403, code: 'context_assertion_forbidden', path: 'task.type' },
    { note: 'a caller of another role', key: KEYS.orchestrator, body: { agent_id: 'support-resolver', task: { id: 'gs-x' } }, status: 403, code: 'forbidden_role' },
    { note: 'an unknown field', key: KEYS.pep, body: { agent_id: 'support-resolver', task: { id: 'gs-x' }, scopes: ['tickets:read'] }, status: 400, code: 'invalid_request', path: 'scopes' },
    { note: 'an empty integrations list', key: KEYS.pep, body: { agent_id: 'support-resolver', task: { id: 'gs-x' }, integrations: [] }, status: 400, code: 'invalid_request', path: 'integrations' },
    { note: 'no task', key: KEYS.pep, body: { agent_id: 'support-resolver' }, status: 400, code: 'invalid_request', path: 'task' },
  ])('$note → $status $code', async ({ key, body, status, code, path }) => {
    const res = await grantable(body, key);
    expect(res.status).toBe(status);
    expect(res.body['error']['code']).toBe(code);
    if (path !== undefined) expect(res.body['error']['details']).toContainEqual(expect.objectContaining({ path }));
  });

  it('a task a decision would deny before the policy: task_denial with its reason code, no integrations, no task type', async () => {
    const other = await task('mailbox-summarizer', 'summarize', { mailbox: 'a@example.com' });
    const completed = await task('support-resolver', 'triage');
    expect((await call(`/v1/tasks/${completed}/complete`, KEYS.orchestrator, {})).status).toBe(200);
    const mine = await task('support-resolver', 'triage');
    const cases = [
      { key: KEYS.strictPep, body: { agent_id: 'support-resolver', task: { id: 'gs-never-registered' } }, denial: 'task_not_registered' },
      { key: KEYS.pep, body: { agent_id: 'support-resolver', task: { id: other } }, denial: 'task_agent_mismatch' },
      { key: KEYS.pep, body: { agent_id: 'support-resolver', task: { id: completed } }, denial: 'task_completed' },
      { key: KEYS.pep, body: { agent_id: 'support-resolver', task: { id: mine, type: 'complaint_resolution' } }, denial: 'task_context_mismatch' },
    ];
    for (const { key, body, denial } of cases) {
      const res = await grantable(body, key);
      expect({ denial, status: res.status, body: res.body }).toEqual({
        denial,
        status: 200,
        body: { agent_id: 'support-resolver', task_id: body.task.id, task_type: null, policy_revision: t.pdp.engine.active?.revision, task_denial: denial, integrations: {} },
      });
      // The same reason a decision gives.
      const decided = await call('/v1/decide', key, { ...body, integration: 'crm', scopes: ['tickets:read'] });
      expect(decided.body['reasons']).toEqual([expect.objectContaining({ code: denial })]);
    }
  });

  it('an expired task: task_expired', async () => {
    const id = await task('support-resolver', 'triage');
    t.clock.advance(3 * 86_400);
    const res = await grantable({ agent_id: 'support-resolver', task: { id } });
    expect(res.body).toMatchObject({ task_denial: 'task_expired', integrations: {} });
  });
});

describe('PdpClient.grantableScopes', () => {
  it('answers what the endpoint answers, checked; a refusal is pdp_error with the PDP code', async () => {
    const id = await task('mailbox-summarizer', 'categorize', { mailbox: 'support@example.com' });
    const client = new PdpClient({ url: t.url, apiKey: KEYS.pep });
    const answer = await client.grantableScopes({ agent_id: 'mailbox-summarizer', task: { id }, integrations: ['mail'] });
    expect(answer).toEqual((await grantable({ agent_id: 'mailbox-summarizer', task: { id }, integrations: ['mail'] })).body);
    expect(answer.integrations['mail']?.bound).toEqual({ 'mail:labels': 'mailbox', 'mail:read': 'mailbox' });
    const strict = new PdpClient({ url: t.url, apiKey: KEYS.strictPep });
    const refused = await strict.grantableScopes({ agent_id: 'mailbox-summarizer', task: { id } }).catch((err: unknown) => err);
    expect(isPepError(refused) && { code: refused.code, pdpCode: refused.pdpCode, status: refused.status }).toEqual({ code: 'pdp_error', pdpCode: 'forbidden_agent', status: 403 });
  });

  const answer = { agent_id: 'a', task_id: 't', task_type: null, policy_revision: 'r', task_denial: null, integrations: { crm: { grantable: ['x'], requestable: [], bound: { x: 'customer' } } } };
  it.each([
    { note: 'a bound scope that is not grantable', value: { ...answer, integrations: { crm: { grantable: [], requestable: [], bound: { x: 'customer' } } } }, field: 'integrations' },
    { note: 'a task denial beside scopes', value: { ...answer, task_denial: 'task_completed' }, field: 'integrations' },
    { note: 'grantable not a list of scopes', value: { ...answer, integrations: { crm: { grantable: 'x', requestable: [], bound: {} } } }, field: 'integrations' },
    { note: 'no policy revision', value: { ...answer, policy_revision: undefined }, field: 'policy_revision' },
  ])('the answer check refuses $note', ({ value, field }) => {
    expect(checkGrantableScopes(answer)).toEqual(answer);
    const refused = (() => {
      try {
        checkGrantableScopes(value);
        return undefined;
      } catch (err) {
        return err;
      }
    })();
    expect(isPepError(refused) && { code: refused.code, message: refused.message }).toEqual({ code: 'pdp_error', message: expect.stringContaining(`("${field}")`) });
  });
});

/**
 * Every scope any fixture file names for an integration (its known scopes, implications, ceilings, denies,
 * task types, escalations): the scopes worth asking a decision for.
 */
function scopeUniverse(dir: string): Map<string, Set<string>> {
  const universe = new Map<string, Set<string>>();
  const add = (integration: string, scopes: unknown): void => {
    if (!Array.isArray(scopes)) return;
    const set = universe.get(integration) ?? new Set<string>();
    for (const s of scopes) set.add(String(s));
    universe.set(integration, set);
  };
  for (const sub of ['agents', 'roles', 'integrations']) {
    for (const file of readdirSync(join(dir, sub))) {
      const doc = parse(readFileSync(join(dir, sub, file), 'utf8')) as Json;
      const integration = doc['integration'] as Json | undefined;
      if (integration) {
        add(integration['id'], integration['scopes']);
        for (const [key, implied] of Object.entries((integration['implies'] ?? {}) as Json)) add(integration['id'], [key, ...(implied as string[])]);
        continue;
      }
      const policy = (doc['agent_policy'] ?? doc['role_policy']) as Json;
      for (const [name, grant] of Object.entries((policy['integrations'] ?? {}) as Json)) {
        add(name, grant['max_scope']);
        add(name, grant['deny_scope']);
        add(name, grant['escalation']?.['scopes']);
      }
      for (const lists of Object.values((policy['task_types'] ?? {}) as Json)) for (const [name, scopes] of Object.entries(lists as Json)) add(name, scopes);
    }
  }
  return universe;
}

describe('cross-check against real decisions', () => {
  const RECORDS: Record<string, string> = { customer: '1234', mailbox: 'support@example.com', table: 'customer_feedback', channel: 'C-support' };
  const CONTEXT = { customer_id: RECORDS['customer'], mailbox: RECORDS['mailbox'], table: RECORDS['table'], channel: RECORDS['channel'] };
  const CASES = [
    { agent: 'code-review-agent', types: ['review'] },
    { agent: 'support-resolver', types: ['complaint_resolution', 'triage', 'refund'] },
    { agent: 'mailbox-summarizer', types: ['summarize', 'categorize'] },
    { agent: 'feedback-workflow', types: ['feedback_read', 'feedback_translate', 'feedback_post'] },
    { agent: 'release-bot', types: ['incident'] },
    { agent: 'sibling-bot', types: ['incident'] },
  ].flatMap(({ agent, types }) => types.map((type) => ({ agent, type })));

  it.each(CASES)(
    '$agent, task type $type: grantable is exactly what a decision grants as asked, requestable is what it offers to an approver',
    async ({ agent, type }) => {
      const universe = scopeUniverse(policies);
      const id = await task(agent, type, CONTEXT);
      const res = await grantable({ agent_id: agent, task: { id } });
      expect(res.status).toBe(200);
      const integrations = res.body['integrations'] as Record<string, { grantable: string[]; requestable: string[]; bound: Record<string, string> }>;
      expect(Object.keys(integrations).length).toBeGreaterThan(0);
      let granted = 0;
      for (const [integration, bounds] of Object.entries(integrations)) {
        for (const scope of [...(universe.get(integration) ?? [])].sort()) {
          const type = bounds.bound[scope];
          const resource = type === undefined ? {} : { resource: { type, id: RECORDS[type] } };
          const decided = await call('/v1/decide', KEYS.pep, { agent_id: agent, task: { id }, integration, scopes: [scope], ...resource });
          expect(decided.status).toBe(200);
          const asAsked = decided.body['allow'] === true && (decided.body['granted_scopes'] as string[]).includes(scope);
          const offered = decided.body['access_request']?.scopes ?? [];
          expect({ integration, scope, grantable: asAsked, requestable: offered.includes(scope) }).toEqual({
            integration,
            scope,
            grantable: bounds.grantable.includes(scope),
            requestable: bounds.requestable.includes(scope),
          });
          if (asAsked) granted += 1;
        }
      }
      // A restricted agent on a type not its own is the one case with nothing to grant.
      if (!(agent === 'support-resolver' && type === 'refund')) expect(granted).toBeGreaterThan(0);
    },
  );
});
