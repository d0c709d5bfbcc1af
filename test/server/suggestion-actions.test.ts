/**
 * POST /v1/suggestions/{id}/apply | dismiss (role admin): the same apply and dismiss as `agent-pdp suggest apply |
 * dismiss` (src/suggest/suggestion-actions.ts), over HTTP for the web console. A real PDP on loopback, its real
 * SQLite store and a temp copy of the policy folder; the suggestions come from real usage (tokens issued through
 * the API, a resource server's reports), as in test/suggest/cli.test.ts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEventV1 } from '../../src/audit/index.js';
import type { SuggestionRecord } from '../../src/store/index.js';
import { loadPolicyFolder, runSuggestions, thresholdsOf } from '../../src/suggest/index.js';
import { OpenApiChecker } from '../support/openapi-check.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';

let t: TestPdp;
/** Every answer of these routes is checked against the served OpenAPI document too. */
let api: OpenApiChecker;
const FILE = 'agents/code-review-agent.yaml';
const DAY_MS = 86_400_000;
let seq = 0;

beforeAll(async () => {
  t = await startTestPdp({ config: { suggestions: { min_days: 1, min_tokens: 2 } } });
  api = await OpenApiChecker.fetch(t.url);
  // Three review tasks, a token each with the agent's whole github ceiling; the resource server saw reads of code
  // and pull requests, never of issues.
  for (let i = 0; i < 3; i++) {
    const task = await newTask();
    const decision = await call('/v1/decide', KEYS.pep, { agent_id: 'code-review-agent', task: { id: task }, integration: 'github', scopes: ['repo:read', 'pr:read', 'issues:read'] }, 200);
    const token = await call('/v1/tokens', KEYS.pep, { decision_id: decision['decision_id'] }, 201);
    const used = { jti: token['jti'], integration: 'github', used_at: t.clock.now.toISOString() };
    await call('/v1/usage', KEYS.resource, { reports: [{ ...used, scope: 'repo:read' }, { ...used, scope: 'pr:read' }] }, 202);
  }
});
afterAll(async () => t.close());

async function call(path: string, key: string, body: unknown, status: number): Promise<Record<string, unknown>> {
  const res = await request(t.url).post(path).set(auth(key)).send(body as object);
  expect(res.status, `${path}: ${res.text}`).toBe(status);
  return res.body as Record<string, unknown>;
}

async function newTask(): Promise<string> {
  const id = `sg-http-${++seq}`;
  await call('/v1/tasks', KEYS.orchestrator, { id, agent_id: 'code-review-agent', type: 'review' }, 201);
  return id;
}

/** A suggestion run as `agent-pdp suggest` makes it (90 days up to the test clock), saved in the server's store. */
async function suggest(): Promise<SuggestionRecord[]> {
  const folder = await loadPolicyFolder(join(t.dir, 'policies'));
  const until = t.clock.now.toISOString();
  const since = new Date(t.clock.now.getTime() - 90 * DAY_MS).toISOString();
  const { suggestions } = await runSuggestions({ store: t.pdp.store, folder, thresholds: thresholdsOf(t.pdp.config.suggestions), since, until });
  return suggestions;
}

async function byKind(kind: string): Promise<SuggestionRecord> {
  const all = await suggest();
  const found = all.find((s) => s.kind === kind);
  if (found === undefined) throw new Error(`no ${kind} in ${JSON.stringify(all.map((s) => s.kind))}`);
  return found;
}

const policyFile = (): string => readFileSync(join(t.dir, 'policies', FILE), 'utf8');
async function post(path: string, body: object | undefined, key: string): Promise<request.Response> {
  const req = request(t.url).post(path).set(auth(key));
  const res = await (body === undefined ? req : req.send(body));
  api.expectResponse(res);
  return res;
}
const apply = (id: string, body?: object, key: string = KEYS.admin) => post(`/v1/suggestions/${id}/apply`, body, key);
const dismiss = (id: string, body?: object, key: string = KEYS.admin) => post(`/v1/suggestions/${id}/dismiss`, body, key);

function expectStatus(res: request.Response, status: number): request.Response {
  expect(res.status, res.text).toBe(status);
  return res;
}

async function events(type: AuditEventV1['type']): Promise<AuditEventV1[]> {
  const out: AuditEventV1[] = [];
  for await (const e of t.pdp.store.iterateEvents({ types: [type] })) out.push(e);
  return out;
}

async function decideIssuesRead(): Promise<boolean> {
  const decision = await call('/v1/decide', KEYS.pep, { agent_id: 'code-review-agent', task: { id: await newTask() }, integration: 'github', scopes: ['issues:read'] }, 200);
  return decision['allow'] as boolean;
}

describe('role gate and body', () => {
  it.each([
    { note: 'auditor', key: KEYS.auditor },
    { note: 'approver', key: KEYS.approver },
    { note: 'pep', key: KEYS.pep },
  ])('$note → 403 forbidden_role on both', async ({ key }) => {
    const removal = await byKind('remove_scope');
    for (const res of [await apply(removal.id, { dry_run: true }, key), await dismiss(removal.id, {}, key)]) {
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('forbidden_role');
    }
    expect((await t.pdp.store.getSuggestion(removal.id))?.status).toBe('open');
  });

  it.each([
    { note: 'dry_run not a boolean', body: { dry_run: 'yes' }, path: 'dry_run' },
    { note: 'a note over 1000 characters', body: { note: 'x'.repeat(1001) }, path: 'note' },
    { note: 'an unknown field', body: { dryrun: true }, path: 'dryrun' },
  ])('apply, $note → 400 invalid_request naming the field', async ({ body, path }) => {
    const removal = await byKind('remove_scope');
    const before = policyFile();
    const res = expectStatus(await apply(removal.id, body), 400);
    expect(res.body.error.code).toBe('invalid_request');
    expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain(path);
    expect(policyFile()).toBe(before);
  });

  it('dismiss, a note that is no string → 400 naming note', async () => {
    const res = expectStatus(await dismiss('sg_whatever', { note: 42 }), 400);
    expect(res.body.error.details.map((d: { path: string }) => d.path)).toEqual(['note']);
  });

  it('an unknown id → 404 not_found', async () => {
    expect(expectStatus(await apply('sg_nope', { dry_run: true }), 404).body.error.code).toBe('not_found');
    expect(expectStatus(await dismiss('sg_nope'), 404).body.error.code).toBe('not_found');
  });
});

describe('apply', () => {
  it.each([
    { note: 'a form (curl -d\'s default)', type: 'application/x-www-form-urlencoded' },
    { note: 'text/plain', type: 'text/plain' },
  ])('a body sent as $note is 415, never read as no body (a real apply): nothing written or recorded', async ({ type }) => {
    const removal = await byKind('remove_scope');
    const before = policyFile();
    for (const path of [`/v1/suggestions/${removal.id}/apply`, `/v1/suggestions/${removal.id}/dismiss`]) {
      const res = await request(t.url).post(path).set(auth(KEYS.admin)).set('content-type', type).send('{"dry_run":true}');
      expect([res.status, res.body.error?.code]).toEqual([415, 'unsupported_media_type']);
    }
    expect(policyFile()).toBe(before);
    expect((await t.pdp.store.getSuggestion(removal.id))?.status).toBe('open');
    expect(await events('policy.suggestion.applied')).toEqual([]);
  });

  it('a dry run answers the diff and writes nothing', async () => {
    const removal = await byKind('remove_scope');
    const before = policyFile();
    const res = expectStatus(await apply(removal.id, { dry_run: true }), 200);
    expect(res.body).toMatchObject({ file: FILE, written: false, reloaded: false, reload_error: null, new_warnings: [], suggestion: { id: removal.id, status: 'open' } });
    expect(res.body.diff).toBe((removal.proposal as { diff: string }).diff);
    expect(res.body.diff).toContain('-      max_scope: [repo:read, pr:read, issues:read]\n+      max_scope: [repo:read, pr:read]\n');
    expect(res.body.revision_after).not.toBe(res.body.revision_before);
    expect(res.body.policy_revision).toBe(res.body.revision_before);
    expect(policyFile()).toBe(before);
    expect((await t.pdp.store.getSuggestion(removal.id))?.status).toBe('open');
    expect(await events('policy.suggestion.applied')).toEqual([]);
  });

  it('a file edited since the suggestion → 409 suggestion_stale, the file untouched, the suggestion still open', async () => {
    const removal = await byKind('remove_scope');
    const edited = `${policyFile()}# reviewed by hand\n`;
    writeFileSync(join(t.dir, 'policies', FILE), edited);
    try {
      const res = expectStatus(await apply(removal.id, {}), 409);
      expect(res.body.error.code).toBe('suggestion_stale');
      expect(policyFile()).toBe(edited);
      expect((await t.pdp.store.getSuggestion(removal.id))?.status).toBe('open');
    } finally {
      writeFileSync(join(t.dir, 'policies', FILE), edited.replace('# reviewed by hand\n', ''));
    }
  });

  it('applies: the file rewritten, policy.suggestion.applied by the caller, the policy reloaded (the next decision is denied); two at once write once', async () => {
    const removal = await byKind('remove_scope');
    const before = policyFile();
    expect(await decideIssuesRead()).toBe(true);
    // Two applies of the same suggestion at once: one applies, the other finds it decided.
    const [a, b] = await Promise.all([apply(removal.id, { note: 'CHG-1042' }), apply(removal.id, { note: 'CHG-1042' })]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    const ok = a.status === 200 ? a : b;
    expect((a.status === 200 ? b : a).body.error.code).toBe('suggestion_decided');
    expect(ok.body).toMatchObject({ file: FILE, written: true, reloaded: true, reload_error: null, suggestion: { id: removal.id, status: 'applied', decided_by: 'ops' } });
    expect(ok.body.policy_revision).toBe(ok.body.revision_after);
    expect(policyFile()).toBe(before.replace('[repo:read, pr:read, issues:read]', '[repo:read, pr:read]'));
    const applied = await events('policy.suggestion.applied');
    expect(applied).toHaveLength(1);
    expect(applied[0]).toMatchObject({
      agent_id: 'code-review-agent',
      caller_id: 'ops',
      data: { suggestion_id: removal.id, kind: 'remove_scope', target: 'issues:read', file: FILE, note: 'CHG-1042' },
    });
    expect(await decideIssuesRead()).toBe(false);

    const again = expectStatus(await apply(removal.id), 409);
    expect(again.body.error.code).toBe('suggestion_decided');
    expect(policyFile()).toBe(before.replace('[repo:read, pr:read, issues:read]', '[repo:read, pr:read]'));
  });

  it('a reload that fails after the write is said in the answer (reloaded false, reload_error), not hidden', async () => {
    // Slack tokens carrying both scopes; only chat:write reported used: channels:read is suggested away.
    for (let i = 0; i < 3; i++) {
      const decision = await call('/v1/decide', KEYS.pep, { agent_id: 'code-review-agent', task: { id: await newTask() }, integration: 'slack', scopes: ['channels:read', 'chat:write'] }, 200);
      const token = await call('/v1/tokens', KEYS.pep, { decision_id: decision['decision_id'] }, 201);
      await call('/v1/usage', KEYS.resource, { reports: [{ jti: token['jti'], integration: 'slack', scope: 'chat:write', used_at: t.clock.now.toISOString() }] }, 202);
    }
    const removal = (await suggest()).find((s) => s.kind === 'remove_scope' && s.target === 'channels:read');
    expect(removal?.status).toBe('open');
    // The bundle the server loads beside the folder breaks: the apply checks the folder, the reload refuses the bundle.
    const bundle = join(t.dir, 'bundle.tar.gz');
    const good = readFileSync(bundle);
    const served = t.pdp.engine.active?.evaluator.revisions.policies;
    writeFileSync(bundle, 'not a bundle');
    try {
      const res = expectStatus(await apply(removal?.id ?? '', {}), 200);
      expect(res.body).toMatchObject({ written: true, reloaded: false, suggestion: { status: 'applied' } });
      expect(res.body.reload_error.code).toBe('bundle_invalid');
      expect(res.body.reload_error.message).toContain(`${FILE} is written and the suggestion applied, but the reload failed`);
      expect(res.body.policy_revision).toBe(served);
      expect(policyFile()).toContain('max_scope: [chat:write]');
    } finally {
      writeFileSync(bundle, good);
    }
    await request(t.url).post('/v1/admin/reload').set(auth(KEYS.admin)).expect(200);
    expect(t.pdp.engine.active?.evaluator.revisions.policies).not.toBe(served);
  });
});

describe('dismiss', () => {
  it('records policy.suggestion.dismissed by the caller; not twice', async () => {
    const ttl = await byKind('shorten_ttl');
    const before = policyFile();
    const res = expectStatus(await dismiss(ttl.id, { note: 'batch jobs run long' }), 200);
    expect(res.body).toEqual({ suggestion: { ...ttl, status: 'dismissed', decided_by: 'ops', decided_at: res.body.suggestion.decided_at, updated_at: res.body.suggestion.decided_at } });
    expect(await events('policy.suggestion.dismissed')).toMatchObject([{ caller_id: 'ops', data: { suggestion_id: ttl.id, note: 'batch jobs run long' } }]);
    expect(policyFile()).toBe(before);
    // The next run shows it dismissed while its evidence holds.
    expect((await suggest()).find((s) => s.id === ttl.id)).toMatchObject({ status: 'dismissed', decided_by: 'ops' });

    const again = expectStatus(await dismiss(ttl.id), 409);
    expect(again.body.error.code).toBe('suggestion_decided');
  });
});
