/**
 * The server's scheduled suggestion run (config suggestions.schedule) on a settable clock, with a real webhook
 * receiver on loopback that verifies each delivery's signature: nothing before its time; at its time the run rolls
 * up, suggests and records, and its new suggestions arrive as one signed `policy.suggestions.new` webhook through
 * the escalation outbox; the next week's run, on the same evidence, notifies nobody (the suggestions are open, or
 * dismissed on the same evidence); when a scope is used after all, its open removal is withdrawn (listed so, and
 * apply refuses it). The config refuses to notify a group no generic or slack webhook serves.
 *
 * `Date` is faked (Date only: timers stay real) so the PDP, its outbox worker and the receiver's signature check
 * share the clock.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildConfig } from '../../src/config/config-loader.js';
import type { SuggestionRecord } from '../../src/store/index.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';
import { cli, cliConfig } from './cli-world.js';

const SECRET = 'schedule-test-webhook-secret-0123456789';
const START = Date.parse('2026-06-01T10:00:00.000Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let t: TestPdp;
let receiver: WebhookReceiver;
let config: string;
let secretDir: string;

const setTime = (ms: number): void => {
  vi.setSystemTime(new Date(ms));
};

beforeAll(async () => {
  vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
  setTime(START);
  receiver = await startWebhookReceiver(SECRET);
  secretDir = mkdtempSync(join(tmpdir(), 'agent-pdp-schedule-secret-'));
  const secretFile = join(secretDir, 'webhook-secret');
  writeFileSync(secretFile, SECRET);
  chmodSync(secretFile, 0o600);
  t = await startTestPdp({
    config: {
      escalation: { webhooks: [{ id: 'security-hook', groups: ['security'], format: 'generic', url: receiver.url, secret_file: secretFile }] },
      suggestions: { min_days: 1, min_tokens: 2, schedule: { every_days: 7, at: '03:00', notify: ['security'] } },
    },
  });
  Object.defineProperty(t.clock, 'now', { get: () => new Date(), set: () => undefined, configurable: true });
  config = cliConfig(t, 'schedule-config', { suggestions: { min_days: 1, min_tokens: 2 } });
});
afterAll(async () => {
  await t?.close();
  await receiver?.close();
  if (secretDir) rmSync(secretDir, { recursive: true, force: true });
  vi.useRealTimers();
});

async function post(path: string, key: string, body: unknown, status: number): Promise<Record<string, unknown>> {
  const res = await fetch(`${t.url}${path}`, { method: 'POST', headers: { ...auth(key), 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  expect(res.status, `${path}: ${text}`).toBe(status);
  return JSON.parse(text) as Record<string, unknown>;
}

/** A review task and a token with code-review-agent's whole GitHub ceiling, whose uses of `used` a resource server reports. */
async function review(name: string, used: string[]): Promise<void> {
  await post('/v1/tasks', KEYS.orchestrator, { id: name, agent_id: 'code-review-agent', type: 'review' }, 201);
  const decision = await post('/v1/decide', KEYS.pep, { agent_id: 'code-review-agent', task: { id: name }, integration: 'github', scopes: ['repo:read', 'pr:read', 'issues:read'] }, 200);
  const token = await post('/v1/tokens', KEYS.pep, { decision_id: decision['decision_id'] }, 201);
  const at = new Date().toISOString();
  await post('/v1/usage', KEYS.resource, { reports: used.map((scope) => ({ jti: token['jti'], integration: 'github', scope, used_at: at })) }, 202);
}

const schedule = () => {
  const s = t.pdp.suggestionSchedule;
  if (s === undefined) throw new Error('the PDP has no suggestion schedule');
  return s;
};

describe('the scheduled suggestion run', () => {
  it('runs at the next 03:00 UTC, not before', async () => {
    expect(schedule().nextRunAt.toISOString()).toBe('2026-06-02T03:00:00.000Z');
    for (let i = 0; i < 3; i++) await review(`sched-${i}`, ['repo:read', 'pr:read']);
    setTime(START + 16 * HOUR); // 02:00 the next day
    expect(await schedule().check()).toBeNull();
    expect(await t.pdp.store.listSuggestions({})).toEqual([]);
    expect(await t.pdp.store.outboxCounts()).toEqual({ pending: 0, delivered: 0, dead: 0 });
  });

  let first: SuggestionRecord[] = [];
  it('records its suggestions and notifies the new ones: one signed webhook through the outbox', async () => {
    setTime(Date.parse('2026-06-02T03:00:30.000Z'));
    const run = await schedule().check();
    expect(run?.suggestions.map((s) => `${s.kind} ${s.target}`).sort()).toEqual(['remove_scope issues:read', 'shorten_ttl token_ttl']);
    expect(run?.saved.notification).toMatchObject({ kind: 'policy.suggestions' });
    expect(schedule().nextRunAt.toISOString()).toBe('2026-06-09T03:00:00.000Z');
    first = await t.pdp.store.listSuggestions({ status: 'open' });
    expect(first).toHaveLength(2);

    const [delivery] = await receiver.waitFor(1);
    expect(delivery?.signatureValid).toBe(true);
    expect(delivery?.headers['x-agentpdp-event']).toBe('policy.suggestions.new');
    expect(delivery?.json).toMatchObject({
      type: 'policy.suggestions.new',
      group: 'security',
      notification_id: run?.saved.notification?.id,
      links: { list_api: 'http://127.0.0.1:8181/v1/suggestions?status=open' },
    });
    const listed = (delivery?.json['suggestions'] as Array<Record<string, unknown>>).map((s) => s['id']).sort();
    expect(listed).toEqual(first.map((s) => s.id).sort());
    expect(delivery?.json['suggestions']).toContainEqual(
      expect.objectContaining({ agent_id: 'code-review-agent', kind: 'remove_scope', target: 'issues:read', status: 'open', apply: expect.stringMatching(/^agent-pdp suggest apply sg_/) }),
    );
    // The receiver has the request before the worker has its answer: the row says delivered once that is committed.
    await vi.waitFor(
      async () => {
        const rows = await t.pdp.store.listDeliveries({ limit: 10 });
        expect(rows).toEqual([expect.objectContaining({ access_request_id: null, notification_id: run?.saved.notification?.id, destination: 'security-hook', approver_group: 'security', status: 'delivered' })]);
      },
      { timeout: 10_000, interval: 20 },
    );
  });

  it('a week later, on the same evidence, notifies nobody: open ones stay open, a dismissed one stays dismissed', async () => {
    const ttl = first.find((s) => s.kind === 'shorten_ttl') as SuggestionRecord;
    const dismissed = await cli('suggest', 'dismiss', ttl.id, '--config', config, '--as', 'alice');
    expect(dismissed.code, dismissed.stderr).toBe(0);
    setTime(Date.parse('2026-06-09T03:01:00.000Z'));
    const run = await schedule().check();
    expect(run?.saved).toEqual({ new: [], withdrawn: [], notification: null });
    expect((await t.pdp.store.getSuggestion(ttl.id))?.status).toBe('dismissed');
    expect(await t.pdp.store.outboxCounts()).toEqual({ pending: 0, delivered: 1, dead: 0 });
    expect(receiver.arrivals).toHaveLength(1);
  });

  it('a suggestion the evidence stops supporting is withdrawn: listed so, and apply refuses it', async () => {
    const removal = first.find((s) => s.kind === 'remove_scope') as SuggestionRecord;
    await review('sched-issues', ['repo:read', 'issues:read']); // issues:read used after all
    setTime(Date.parse('2026-06-16T03:01:00.000Z'));
    const run = await schedule().check();
    expect(run?.saved.withdrawn).toEqual([removal.id]);
    expect(await t.pdp.store.getSuggestion(removal.id)).toMatchObject({ status: 'withdrawn', decided_by: null });
    const res = await fetch(`${t.url}/v1/suggestions?status=withdrawn`, { headers: auth(KEYS.auditor) });
    expect(((await res.json()) as { suggestions: SuggestionRecord[] }).suggestions.map((s) => s.id)).toEqual([removal.id]);
    const apply = await cli('suggest', 'apply', removal.id, '--config', config);
    expect(apply.code).toBe(1);
    expect(apply.stderr).toContain('suggestion_stale');
    expect(apply.stderr).toContain('withdrawn');
    // Whatever this run announced, it was not the withdrawn removal.
    expect(run?.saved.notification?.suggestion_ids ?? []).not.toContain(removal.id);
  });

  it('a run on other terms (a shorter window) withdraws nothing', async () => {
    const before = await t.pdp.store.listSuggestions({});
    const run = await cli('suggest', '--config', config, '--since', '3d', '--format', 'json');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).not.toContain('withdrawn');
    const after = await t.pdp.store.listSuggestions({});
    expect(after.filter((s) => s.status === 'withdrawn').map((s) => s.id)).toEqual(before.filter((s) => s.status === 'withdrawn').map((s) => s.id));
  });
});

describe('suggestions.schedule in the config', () => {
  const callers = [{ id: 'a', role: 'pep', key_sha256: '0'.repeat(64) }];
  it.each([
    { note: 'a group no webhook serves', webhooks: [], path: 'suggestions.schedule.notify[0]' },
    {
      note: 'a group only a PagerDuty webhook serves',
      webhooks: [{ id: 'pd', groups: ['security'], format: 'pagerduty', url: 'https://events.pagerduty.com/v2/enqueue', secret_env: 'S', routing_key_env: 'R' }],
      path: 'suggestions.schedule.notify[0]',
    },
  ])('refuses $note', ({ webhooks, path }) => {
    expect(() => buildConfig({ callers, escalation: { webhooks }, suggestions: { schedule: { notify: ['security'] } } }, '/etc/agent-pdp/c.yaml', '/etc/agent-pdp', { variables: { S: 'a-secret-of-16-chars!', R: 'rk' } })).toThrow(
      expect.objectContaining({ code: 'config_invalid', details: expect.arrayContaining([expect.objectContaining({ path })]) }),
    );
  });

  it.each([{ at: '24:00' }, { at: '3:00' }, { every_days: 0 }])('refuses schedule %o', (schedule) => {
    expect(() => buildConfig({ callers, suggestions: { schedule } }, '/etc/agent-pdp/c.yaml', '/etc/agent-pdp')).toThrow(expect.objectContaining({ code: 'config_invalid' }));
  });

  it('defaults: weekly at 03:00 UTC, nobody notified; no section, no schedule', () => {
    expect(buildConfig({ callers, suggestions: { schedule: {} } }, '/etc/agent-pdp/c.yaml', '/etc/agent-pdp').config.suggestions.schedule).toEqual({ every_days: 7, at: '03:00', notify: [] });
    expect(buildConfig({ callers }, '/etc/agent-pdp/c.yaml', '/etc/agent-pdp').config.suggestions.schedule).toBeNull();
  });
});
