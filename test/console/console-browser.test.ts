/**
 * The web console end to end (issue 22, docs/console.md): Debian's headless Chromium (test/support/browser.ts)
 * against a real PDP on 127.0.0.1 whose trail was made through the API: tasks, decisions (allowed, denied, one an
 * approver can lift), tokens and their uses, a completed task, an access request, suggestions computed from the
 * usage. Each role signs in with its key; what the console shows and does is checked against the API and the store.
 * Every page's screenshot is written to docs/console/ (linked from the README).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveScreenshot, useBrowser } from '../support/browser.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';
import { cli, cliConfig } from '../suggest/cli-world.js';

type Json = Record<string, any>;

const SECRET = 'console-browser-webhook-secret-0123456789abcdef';
process.env['AGENTPDP_TEST_CONSOLE_BROWSER_SECRET'] = SECRET;
const SHOTS = resolve('docs/console');

// Agent and task ids are held to a strict pattern at the API's edge: hostile markup arrives in free text, the
// access request's reason and the task's context (which the decision's input and the record carry).
const SCRIPT_TAG = '<script>alert(1)</script>';
const BREAKOUT = '"><img src=x onerror=alert(1)>';
// A right-to-left override would make the rest of the reason read backwards: the console spells it out.
const RLO = '\u202E';
const REASON = `hotfix for the outage ${SCRIPT_TAG} ${BREAKOUT} ${RLO}exe.txt`;
const CUSTOMER = `acme${BREAKOUT}`;

const session = useBrowser();
let receiver: WebhookReceiver;
let t: TestPdp;
let policies: string;
let configPath: string;
let allowed: string; // a decision of code-review-agent whose task completed: the fullest chain
let denied: string; // code-review-agent asking for a scope its policy denies
let requestId: string;

async function post(path: string, key: string, body: unknown): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${t.url}${path}`, { method: 'POST', headers: { ...auth(key), 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as Json };
}

async function must(path: string, key: string, body: unknown, status: number): Promise<Json> {
  const res = await post(path, key, body);
  expect(res.status, `${path} ${JSON.stringify(res.body)}`).toBe(status);
  return res.body;
}

beforeAll(async () => {
  // The escalation tests' policies (release-bot: tickets:write needs an on-call approver) and the code-review-agent
  // of the fixtures (github and slack), in one folder.
  policies = mkdtempSync(join(tmpdir(), 'console-policies-'));
  cpSync('test/escalation/policies', policies, { recursive: true });
  cpSync('test/fixtures/policies/agents/code-review-agent.yaml', join(policies, 'agents/code-review-agent.yaml'));
  for (const i of ['github', 'slack']) cpSync(`test/fixtures/policies/integrations/${i}.yaml`, join(policies, `integrations/${i}.yaml`));
  receiver = await startWebhookReceiver(SECRET);
  t = await startTestPdp({
    policies,
    issuerIsUrl: true,
    config: {
      suggestions: { min_days: 1, min_tokens: 2 },
      escalation: {
        outbox: { initial_backoff_ms: 50, max_backoff_ms: 200, timeout_ms: 1000 },
        webhooks: [{ id: 'oncall-hook', groups: ['platform-oncall'], format: 'generic', url: receiver.url, secret_env: 'AGENTPDP_TEST_CONSOLE_BROWSER_SECRET' }],
      },
    },
  });
  configPath = cliConfig(t, 'console-cli', { suggestions: { min_days: 1, min_tokens: 2 } });

  // Three review tasks: a token each with the agent's whole github ceiling; the resource server saw code and pull
  // requests read, never issues. The first task completes (its token is revoked).
  for (let i = 0; i < 3; i++) {
    const task = `console-review-${i}`;
    await must('/v1/tasks', KEYS.orchestrator, { id: task, agent_id: 'code-review-agent', type: 'review' }, 201);
    const decision = await must('/v1/decide', KEYS.pep, { agent_id: 'code-review-agent', task: { id: task }, integration: 'github', scopes: ['repo:read', 'pr:read', 'issues:read'] }, 200);
    expect(decision['allow']).toBe(true);
    if (i === 0) allowed = decision['decision_id'];
    const token = await must('/v1/tokens', KEYS.pep, { decision_id: decision['decision_id'] }, 201);
    const used = { jti: token['jti'], integration: 'github', used_at: t.clock.now.toISOString() };
    await must('/v1/usage', KEYS.resource, { reports: [{ ...used, scope: 'repo:read' }, { ...used, scope: 'pr:read' }] }, 202);
  }
  await must('/v1/tasks/console-review-0/complete', KEYS.orchestrator, {}, 200);
  const refused = await must('/v1/decide', KEYS.pep, { agent_id: 'code-review-agent', task: { id: 'console-review-1' }, integration: 'github', scopes: ['repo:write'] }, 200);
  expect(refused['allow']).toBe(false);
  denied = refused['decision_id'];

  // A denial an approver can lift, with markup in the reason and in the task's customer.
  await must('/v1/tasks', KEYS.orchestrator, { id: 'console-incident', agent_id: 'release-bot', type: 'incident', context: { customer_id: CUSTOMER } }, 201);
  const ask = { agent_id: 'release-bot', task: { id: 'console-incident' }, integration: 'crm', scopes: ['tickets:write'], resource: { type: 'customer', id: CUSTOMER } };
  const denial = await must('/v1/decide', KEYS.pep, ask, 200);
  expect(denial['reasons'].map((r: Json) => r['code'])).toContain('approval_required');
  requestId = (await must('/v1/access-requests', KEYS.pep, { decision_id: denial['decision_id'], reason: REASON, duration_seconds: 600 }, 202))['id'];

  // Suggestions from the usage, as an operator computes them.
  const run = await cli('suggest', '--config', configPath, '--format', 'json');
  expect(run.code, run.stderr).toBe(0);
});

afterAll(async () => {
  await t?.close();
  await receiver?.close();
  if (policies !== undefined) rmSync(policies, { recursive: true, force: true });
});

/** Dialogs (alert, confirm, prompt) the page opens, and script errors it raises: both must stay empty. */
function watch(page: Page): { dialogs: string[]; errors: string[] } {
  const seen = { dialogs: [] as string[], errors: [] as string[] };
  page.on('dialog', (d) => {
    seen.dialogs.push(`${d.type()}: ${d.message()}`);
    void d.dismiss();
  });
  page.on('pageerror', (e) => seen.errors.push(e.message));
  return seen;
}

async function signIn(page: Page, key: string, shot?: string): Promise<void> {
  await page.goto(`${t.url}/console`);
  await page.getByTestId('signin-key').waitFor();
  if (shot !== undefined) await saveScreenshot(page, join(SHOTS, shot));
  await page.getByTestId('signin-key').fill(key);
  await page.getByTestId('signin-submit').click();
  await page.getByTestId('whoami').waitFor();
}

/** The page's own session (GET /console/session through the page, with its cookie): what a script on it could read. */
async function csrfOf(page: Page): Promise<string> {
  return page.evaluate(`fetch('/console/session').then((r) => r.json()).then((b) => b.csrf_token)`) as Promise<string>;
}

/** A POST from the page, with its cookie, as a script on it would make it. */
async function postFromPage(page: Page, path: string, headers: Record<string, string>, body: unknown): Promise<{ status: number; code?: string }> {
  return page.evaluate(`fetch(${JSON.stringify(path)}, { method: 'POST', headers: ${JSON.stringify({ 'content-type': 'application/json', ...headers })}, body: ${JSON.stringify(JSON.stringify(body))} })
    .then(async (r) => ({ status: r.status, code: (await r.json().catch(() => ({}))).error?.code }))`) as Promise<{ status: number; code?: string }>;
}

describe('an auditor', () => {
  it('signs in, finds a decision by agent and outcome, and opens its chain: decision → token → uses → task completion → revocation', async () => {
    const page = session.page;
    const seen = watch(page);
    await signIn(page, KEYS.auditor, 'signin.png');
    await expect(page.getByTestId('whoami-roles').textContent()).resolves.toContain('auditor');
    await page.getByTestId('page-overview').waitFor();
    await page.getByTestId('overview-chart').waitFor();
    await saveScreenshot(page, join(SHOTS, 'overview.png'));
    expect(await page.getByTestId('overview-outcome-allow').textContent()).toContain('3');

    await page.getByTestId('nav-decisions').click();
    await page.getByTestId('filter-agent-id').fill('code-review-agent');
    await page.getByTestId('filter-outcome').selectOption('allow');
    await page.getByTestId('filter-submit').click();
    await expect.poll(() => page.getByTestId('decision-row').count()).toBe(3);
    const ids = await page.getByTestId('decision-row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-decision-id')));
    expect(ids).toContain(allowed);
    expect(ids).not.toContain(denied);
    await saveScreenshot(page, join(SHOTS, 'decisions.png'));

    await page.locator(`[data-testid="decision-row"][data-decision-id="${allowed}"]`).click();
    await page.getByTestId('chain').waitFor();
    await expect.poll(() => page.getByTestId('chain-event').count()).toBeGreaterThan(3);
    const types = await page.getByTestId('chain-event').evaluateAll((events) => events.map((e) => e.getAttribute('data-event-type')));
    // Exactly the API's chain, in its order.
    const api = (await (await fetch(`${t.url}/v1/audit/decisions/${allowed}`, { headers: auth(KEYS.auditor) })).json()) as Json;
    expect(types).toEqual(api['events'].map((e: Json) => e['type']));
    expect(types).toEqual(expect.arrayContaining(['decision', 'token.issued', 'token.used', 'task.completed', 'token.revoked']));
    await expect(page.getByTestId('chain-policy-revision').textContent()).resolves.toContain(api['events'][0]['data']['policy_revision']);
    await expect(page.getByTestId('chain-decision-input').textContent()).resolves.toContain('console-review-0');
    await saveScreenshot(page, join(SHOTS, 'decision-chain.png'));
    expect(seen).toEqual({ dialogs: [], errors: [] });
  });

  it('exports the current filter, streamed, in the three formats: each holds exactly the filtered decisions', async () => {
    const page = session.page;
    await signIn(page, KEYS.auditor);
    await page.goto(`${t.url}/console#/decisions?agent_id=code-review-agent&outcome=deny`);
    await expect.poll(() => page.getByTestId('decision-row').count()).toBe(1);
    const downloaded: Record<string, string> = {};
    for (const format of ['jsonl', 'csv', 'opa']) {
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId(`export-${format}`).click()]);
      downloaded[format] = readFileSync(await download.path(), 'utf8');
    }
    const events = downloaded['jsonl']!.trim().split('\n').map((l) => JSON.parse(l) as Json).filter((e) => e['type'] === 'decision');
    expect(events.map((e) => e['decision_id'])).toEqual([denied]);
    expect(downloaded['csv']).toContain(denied);
    expect(downloaded['csv']).not.toContain(allowed);
    const opa = downloaded['opa']!.trim().split('\n').map((l) => JSON.parse(l) as Json);
    expect(opa.map((e) => e['decision_id'])).toEqual([denied]);
  });

  it('verifies the chain with progress and sees the result, which GET /v1/audit/integrity then reports', async () => {
    const page = session.page;
    await signIn(page, KEYS.auditor);
    await page.getByTestId('nav-integrity').click();
    await page.getByTestId('integrity-head').waitFor();
    await page.getByTestId('verify-button').click();
    const result = page.getByTestId('verify-result');
    await result.waitFor();
    await expect(result.getAttribute('data-ok')).resolves.toBe('true');
    await saveScreenshot(page, join(SHOTS, 'integrity.png'));
    const integrity = (await (await fetch(`${t.url}/v1/audit/integrity`, { headers: auth(KEYS.auditor) })).json()) as Json;
    expect(integrity['last_verification']).toMatchObject({ ok: true, by: 'compliance' });
  });

  it('sees access requests without an approve button, and the API refuses the approval anyway', async () => {
    const page = session.page;
    const seen = watch(page);
    await signIn(page, KEYS.auditor);
    await page.getByTestId('nav-requests').click();
    await page.locator(`[data-testid="request-row"][data-request-id="${requestId}"]`).waitFor();
    expect(await page.getByTestId('request-approve').count()).toBe(0);
    expect(await page.getByTestId('request-deny').count()).toBe(0);
    const refused = await postFromPage(page, `/v1/access-requests/${requestId}/approve`, { 'x-csrf-token': await csrfOf(page) }, { note: 'auditor tries' });
    expect(refused).toEqual({ status: 403, code: 'forbidden_role' });
    // The reason's markup is text on the page: no element, no dialog.
    const row = page.locator(`[data-testid="request-row"][data-request-id="${requestId}"]`);
    await expect(row.innerText()).resolves.toContain(SCRIPT_TAG);
    await expect(row.innerText()).resolves.toContain(BREAKOUT);
    await expect(row.innerText()).resolves.toContain('[U+202E]exe.txt');
    await expect(row.innerText()).resolves.not.toContain(RLO);
    expect(await page.locator('img[src="x"]').count()).toBe(0);
    expect(await page.locator('body script').count()).toBe(0);
    expect(seen).toEqual({ dialogs: [], errors: [] });
  });

  it("shows the release-bot decision's hostile record and context as text in its chain", async () => {
    const page = session.page;
    const seen = watch(page);
    await signIn(page, KEYS.auditor);
    await page.goto(`${t.url}/console#/decisions?agent_id=release-bot`);
    await page.getByTestId('decision-row').first().click();
    await page.getByTestId('chain-decision-input').waitFor();
    await expect(page.getByTestId('chain-decision-input').textContent()).resolves.toContain(BREAKOUT.replace(/"/g, '\\"'));
    expect(await page.locator('img[src="x"]').count()).toBe(0);
    expect(seen).toEqual({ dialogs: [], errors: [] });
  });
});

describe('an approver', () => {
  it('approves the pending request with a duration and a note, and the agent’s next decide is allowed', async () => {
    const page = session.page;
    const seen = watch(page);
    await signIn(page, KEYS.approver);
    await page.getByTestId('nav-requests').click();
    const row = page.locator(`[data-testid="request-row"][data-request-id="${requestId}"]`);
    await row.waitFor();
    await expect(row.getAttribute('data-status')).resolves.toBe('pending');
    await saveScreenshot(page, join(SHOTS, 'access-requests.png'));
    // The request's row and the row of its actions below it.
    const request = page.locator(`[data-request-id="${requestId}"]`);
    await request.getByTestId('request-duration').fill('900');
    await request.getByTestId('request-note').fill('approved from the console');
    await request.getByTestId('request-approve').click();
    await expect.poll(async () => ((await (await fetch(`${t.url}/v1/access-requests/${requestId}`, { headers: auth(KEYS.auditor) })).json()) as Json)['status']).toBe('approved');
    const stored = (await (await fetch(`${t.url}/v1/access-requests/${requestId}`, { headers: auth(KEYS.auditor) })).json()) as Json;
    expect(stored).toMatchObject({ status: 'approved', decided_by: 'oncall-1' });
    const again = await must('/v1/decide', KEYS.pep, { agent_id: 'release-bot', task: { id: 'console-incident' }, integration: 'crm', scopes: ['tickets:write'], resource: { type: 'customer', id: CUSTOMER } }, 200);
    expect(again['allow']).toBe(true);
    expect(again['approval']).toMatchObject({ id: requestId });
    expect(seen).toEqual({ dialogs: [], errors: [] });
  });

  it('a state change without the CSRF token is refused (403 csrf_failed), with it the route answers', async () => {
    const page = session.page;
    await signIn(page, KEYS.approver);
    expect(await postFromPage(page, '/v1/access-requests/ar_nope/deny', {}, {})).toEqual({ status: 403, code: 'csrf_failed' });
    expect(await postFromPage(page, '/v1/access-requests/ar_nope/deny', { 'x-csrf-token': 'forged' }, {})).toEqual({ status: 403, code: 'csrf_failed' });
    expect((await postFromPage(page, '/v1/access-requests/ar_nope/deny', { 'x-csrf-token': await csrfOf(page) }, {})).status).toBe(404);
  });
});

describe('an admin', () => {
  it('reads a suggestion with its evidence, sees the YAML diff, applies it; the policy is reloaded and the scope is gone', async () => {
    const page = session.page;
    const seen = watch(page);
    await signIn(page, KEYS.admin);
    await page.getByTestId('nav-suggestions').click();
    const removal = page.locator('[data-testid="suggestion"][data-status="open"]').filter({ hasText: 'issues:read' });
    await removal.waitFor();
    await removal.getByTestId('suggestion-chart').waitFor();
    await saveScreenshot(page, join(SHOTS, 'suggestions.png'));
    await expect(removal.getByTestId('suggestion-diff').textContent()).resolves.toContain('issues:read');
    const file = join(t.dir, 'policies/agents/code-review-agent.yaml');
    const before = readFileSync(file, 'utf8');
    await removal.getByTestId('suggestion-apply').click();
    const diff = removal.getByTestId('suggestion-dry-run-diff');
    await diff.waitFor();
    await expect(diff.textContent()).resolves.toContain('issues:read');
    expect(readFileSync(file, 'utf8')).toBe(before); // the dry run wrote nothing
    const id = await removal.getAttribute('data-suggestion-id');
    await removal.getByTestId('suggestion-confirm').click();
    // Applied: the page says so and lists it in the history.
    await expect.poll(() => page.getByTestId('status').textContent()).toContain(`${id} applied`);
    await expect.poll(() => page.locator(`[data-testid="suggestion-history-row"][data-suggestion-id="${id}"]`).getAttribute('data-status')).toBe('applied');
    expect(readFileSync(file, 'utf8')).not.toContain('issues:read');
    const after = await must('/v1/decide', KEYS.pep, { agent_id: 'code-review-agent', task: { id: 'console-review-2' }, integration: 'github', scopes: ['issues:read'] }, 200);
    expect(after['allow']).toBe(false);
    expect(seen).toEqual({ dialogs: [], errors: [] });
  });

  it("sees the agents, each one's ceiling per integration after roles and its activity", async () => {
    const page = session.page;
    await signIn(page, KEYS.admin);
    await page.getByTestId('nav-agents').click();
    await page.locator('[data-testid="agent-row"][data-agent-id="code-review-agent"]').waitFor();
    await saveScreenshot(page, join(SHOTS, 'agents.png'));
    await page.locator('[data-testid="agent-row"][data-agent-id="code-review-agent"]').getByRole('link').first().click();
    const github = page.locator('[data-testid="agent-ceiling"][data-integration="github"]');
    await github.waitFor();
    await expect(github.textContent()).resolves.toContain('repo:read');
    await page.getByTestId('agent-activity-chart').waitFor();
    await saveScreenshot(page, join(SHOTS, 'agent.png'));
  });
});

describe('sessions in the browser', () => {
  it('a PEP key cannot sign in; the message says why', async () => {
    const page = session.page;
    await page.goto(`${t.url}/console`);
    await page.getByTestId('signin-key').fill(KEYS.pep);
    await page.getByTestId('signin-submit').click();
    await expect.poll(() => page.getByTestId('signin-message').textContent()).toContain('forbidden_role');
  });

  it('an idle session expires: the next click lands on the sign-in form, and the cookie no longer works', async () => {
    const page = session.page;
    await signIn(page, KEYS.auditor);
    // The home page (the overview) has loaded: no request of the page is in flight when the clock moves. One still
    // in flight would be answered 401 and show the sign-in form before the click (the nav link gone, the click
    // waiting for it): what CI saw on a loaded machine.
    await page.getByTestId('overview-rate').waitFor();
    t.clock.advance(931); // the default idle timeout is 900 s, honoured up to 30 s late (the last use is written every 30 s)
    await page.getByTestId('nav-integrity').click();
    await expect.poll(() => page.getByTestId('signin-message').textContent()).toContain('session expired');
    const cookies = await session.context.cookies(t.url);
    const id = cookies.find((c) => c.name === 'agentpdp_console');
    expect(id).toBeUndefined(); // the 401 deleted it
  });

  it('a sign-in in another tab as another caller: this tab notices at its next request and shows that session, never one caller\'s data under another\'s name', async () => {
    // Two tabs of one browser (one cookie jar), both on the sign-in form.
    const first = session.page;
    const second = await session.context.newPage();
    await second.goto(`${t.url}/console`);
    await second.getByTestId('signin-key').waitFor();
    await signIn(first, KEYS.approver);
    expect(await first.getByTestId('whoami').textContent()).toBe('oncall-1');
    // The second tab signs in as the auditor: the cookie now holds that session (the first one is replaced).
    await second.getByTestId('signin-key').fill(KEYS.auditor);
    await second.getByTestId('signin-submit').click();
    await second.getByTestId('whoami').waitFor();
    expect(await second.getByTestId('whoami').textContent()).toBe('compliance');
    // The first tab's next request (its history filter) carries its old session's token: refused (csrf_failed), and
    // the tab takes the session the cookie holds, saying so.
    await first.getByTestId('requests-history-status').selectOption('denied');
    await expect.poll(() => first.getByTestId('whoami').textContent()).toBe('compliance');
    await expect.poll(() => first.getByTestId('status').textContent()).toContain('replaced by a sign-in in another tab');
    expect(await first.getByTestId('whoami-roles').textContent()).toBe('auditor');
  });

  it('signs out: the session ends on the server', async () => {
    const page = session.page;
    await signIn(page, KEYS.auditor);
    const [cookie] = await session.context.cookies(t.url);
    await page.getByTestId('signout').click();
    await expect.poll(() => page.getByTestId('signin-message').textContent()).toContain('signed out');
    const replay = await fetch(`${t.url}/console/session`, { headers: { cookie: `${cookie?.name}=${cookie?.value}` } });
    expect(replay.status).toBe(401);
  });
});
