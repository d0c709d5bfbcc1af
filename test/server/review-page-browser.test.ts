/**
 * The approval page a notification links to (src/server/routes/review-page.ts), rendered by a real browser
 * (Debian's headless Chromium, test/support/browser.ts) from a real server on 127.0.0.1: hostile text in the request
 * shows as text and runs nothing, and the page's Content-Security-Policy stops any script that gets in anyway.
 * Also the proof that the browser harness of the console's tests works.
 */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveScreenshot, useBrowser } from '../support/browser.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

const SECRET = 'review-page-browser-webhook-secret-0123456789';
process.env['AGENTPDP_TEST_REVIEW_BROWSER_SECRET'] = SECRET;

// Agent, task and decision ids are held to a strict pattern at the API's edge; the request's reason and its record
// (the task's customer) are free text, so that is where an attacker's markup reaches the page.
const SCRIPT_TAG = '<script>alert(1)</script>';
const ATTRIBUTE_BREAKOUT = '"><img src=x onerror=alert(1)>';
const REASON = `hotfix ${SCRIPT_TAG} ${ATTRIBUTE_BREAKOUT}`;
const CUSTOMER = `${ATTRIBUTE_BREAKOUT}${SCRIPT_TAG}`;

type Json = Record<string, any>;

const session = useBrowser();
let receiver: WebhookReceiver;
let t: TestPdp;
let request: Json;
let reviewLink: string;

async function post(path: string, key: string, body: unknown): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${t.url}${path}`, { method: 'POST', headers: { ...auth(key), 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Json };
}

beforeAll(async () => {
  receiver = await startWebhookReceiver(SECRET);
  t = await startTestPdp({
    policies: 'test/escalation/policies',
    issuerIsUrl: true,
    config: {
      escalation: {
        outbox: { initial_backoff_ms: 50, max_backoff_ms: 200, timeout_ms: 1000 },
        webhooks: [{ id: 'oncall-hook', groups: ['platform-oncall'], format: 'generic', url: receiver.url, secret_env: 'AGENTPDP_TEST_REVIEW_BROWSER_SECRET' }],
      },
    },
  });
  const task = await post('/v1/tasks', KEYS.orchestrator, { id: 'review-browser-task', agent_id: 'release-bot', type: 'incident', context: { customer_id: CUSTOMER } });
  expect(task.status).toBe(201);
  const denial = await post('/v1/decide', KEYS.pep, {
    agent_id: 'release-bot',
    task: { id: 'review-browser-task' },
    integration: 'crm',
    scopes: ['tickets:write'],
    resource: { type: 'customer', id: CUSTOMER },
  });
  expect(denial.status).toBe(200);
  expect(denial.body['reasons'].map((r: Json) => r['code'])).toContain('approval_required');
  const submitted = await post('/v1/access-requests', KEYS.pep, { decision_id: denial.body['decision_id'], reason: REASON, duration_seconds: 600 });
  expect(submitted.status).toBe(202);
  request = submitted.body;
  // The link as an approver gets it: from the signed notification.
  const [delivery] = await receiver.waitFor(1);
  reviewLink = (delivery!.json as Json)['links']['review'] as string;
});

afterAll(async () => {
  await t?.close();
  await receiver?.close();
});

/** Every dialog the page opens (alert, confirm, prompt), dismissed so the page goes on. */
function recordDialogs(page: Page): string[] {
  const dialogs: string[] = [];
  page.on('dialog', (dialog) => {
    dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    void dialog.dismiss();
  });
  return dialogs;
}

describe('the review page in Chromium', () => {
  it('shows the request’s facts, hostile markup as literal text, and runs nothing', async () => {
    const page = session.page;
    const dialogs = recordDialogs(page);
    const response = await page.goto(reviewLink);
    expect(response?.status()).toBe(200);

    // Nothing in the request became an element, and no script ran.
    expect(await page.locator('img').count(), 'img elements on the page').toBe(0);
    expect(await page.locator('script').count(), 'script elements on the page').toBe(0);
    expect(dialogs).toEqual([]);

    await expect(page.title()).resolves.toBe(`Access request ${request['id']}`);
    const keys = await page.locator('table th').allTextContents();
    const values = await page.locator('table td').allTextContents();
    const facts = Object.fromEntries(keys.map((k, i) => [k, values[i]]));
    expect(facts).toMatchObject({
      Agent: 'release-bot',
      Task: 'review-browser-task',
      Integration: 'crm',
      Scopes: 'tickets:write',
      Record: `customer ${CUSTOMER}`,
      Reason: REASON,
      'Requested duration': '600 s (at most 3600 s)',
      'Requested by': 'pep-1',
      'Approver group': 'platform-oncall',
      Status: 'pending',
    });
    // Rendered, not only in the DOM: the text a reader sees holds the markup as written.
    const shown = await page.locator('body').innerText();
    expect(shown).toContain(SCRIPT_TAG);
    expect(shown).toContain(ATTRIBUTE_BREAKOUT);
    // The form is there to decide with.
    await expect(page.locator('form button').allTextContents()).resolves.toEqual(['Approve', 'Deny']);
    expect(dialogs).toEqual([]);

    const png = await saveScreenshot(page, join(tmpdir(), 'review-page-browser', 'review.png'));
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(readFileSync(join(tmpdir(), 'review-page-browser', 'review.png')).equals(png)).toBe(true);
    expect(png.readUInt32BE(16)).toBe(1280); // the IHDR width: the harness's viewport
  });

  it('has a Content-Security-Policy that blocks injected inline script and inline event handlers', async () => {
    const page = session.page;
    const dialogs = recordDialogs(page);
    const response = await page.goto(reviewLink);

    // Playwright's evaluate goes through the DevTools protocol, which the page's CSP does not govern: it only
    // records the violations the browser reports, and injects what a successful XSS would.
    await page.evaluate(`(() => {
      window.__violations = [];
      document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.effectiveDirective + ' ' + e.blockedURI));
    })()`);
    // An inline <script> element (Playwright itself rejects the call when the browser logs the CSP refusal).
    await page.addScriptTag({ content: 'window.__ran = "script"; alert("script")' }).catch(() => undefined);
    // An inline event handler, the other way markup runs script.
    await page.evaluate(`(() => {
      const div = document.createElement('div');
      div.innerHTML = '<img id="injected" src="x" onerror="window.__ran = \\'handler\\'; alert(\\'handler\\')">';
      document.body.append(div);
    })()`);
    // Until the browser has reported both refusals (the image's error, and so its handler's refusal, comes later),
    // or injected script ran: a page without the policy fails here at once rather than at the test's timeout.
    const seen = (await page.evaluate(`new Promise((resolve) => {
      const check = () => {
        const v = window.__violations;
        const both = v.some((x) => x.startsWith('script-src-elem')) && v.some((x) => x.startsWith('script-src-attr'));
        if (both || window.__ran !== undefined) resolve({ ran: window.__ran ?? null, violations: v });
        else setTimeout(check, 10);
      };
      check();
    })`)) as { ran: string | null; violations: string[] };
    expect(seen.ran, 'the injected script that ran').toBeNull();
    expect(seen.violations).toEqual(expect.arrayContaining(['script-src-elem inline', 'script-src-attr inline']));
    expect(dialogs).toEqual([]);
    expect(response?.headers()['content-security-policy']).toMatch(/default-src 'none'/);
  });
});
