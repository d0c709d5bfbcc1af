/**
 * The world of the 90-day end-to-end test (issue 18): a whole PDP on loopback on the shipped policies plus a
 * release bot of the source document's example, the enforcement proxy in front of a fake GitHub, a CRM-like
 * resource server behind the PEP SDK's middleware reporting usage (`POST /v1/usage`), and a settable clock that all
 * of them read: `Date` itself is faked (vitest, Date only: timers stay real), so the PDP, the proxy, the middleware
 * (token checks, `used_at`) and the CLI's `new Date()` agree on the day. `setDay(d)` moves it.
 *
 * The trail is made through the real API only: an orchestrator registers a task a day, the PEP asks for decisions
 * and redeems them, the agent calls GitHub through the proxy and the CRM through the middleware.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { createLocalJWKSet } from 'jose';
import { expect, vi } from 'vitest';
import { startPdpProxy } from '../../src/main.js';
import { createResourceServerAuth, PdpClient, type ResourceServerAuth } from '../../src/pep/index.js';
import type { EnforcementProxy } from '../../src/proxy/index.js';
import { startFakeGitHub, type FakeGitHub } from '../support/fake-upstreams.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';

export const DAY_MS = 86_400_000;
/** Day 0 of the trail, 09:00 UTC; the suggestions are asked for on day 90. */
export const DAY0 = Date.parse('2026-03-02T09:00:00.000Z');
export const RELEASE_FILE = 'agents/release-bot.yaml';
export const CRM_AUDIENCE = 'https://crm.example.com/api';

/**
 * The source document's example: repo:write "in case", only reads ever made. issues:read is in the ceiling but never
 * asked for (never granted); workflows:write is listed and denied (never granted); tickets:write is held on the CRM,
 * where only reads are made.
 */
export const RELEASE_BOT_YAML = `# The release bot. It was given repo:write when it was set up, "in case a release needs a tag".
agent_policy:
  id: release-bot
  description: Reads pull requests and code to write release notes.
  integrations:
    github:
      # Its ceiling: never more than this.
      max_scope: [repo:read, repo:write, pr:read, issues:read, workflows:write]
      deny_scope: [workflows:write, admin:org]   # .github/ writes run with the repository's secrets

    crm:
      max_scope: [tickets:read, tickets:write]   # it reads the release's customer tickets
  token_ttl: 3600  # 1 hour
`;

export interface NinetyDayWorld {
  t: TestPdp;
  proxy: EnforcementProxy;
  github: FakeGitHub;
  /** The CRM-like resource server (GET /tickets/:id needs tickets:read) and its middleware. */
  crm: { url: string; auth: ResourceServerAuth };
  policyPath: string;
  setDay(day: number, hour?: number): void;
  close(): Promise<void>;
}

export async function startNinetyDayWorld(): Promise<NinetyDayWorld> {
  vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
  const setDay = (day: number, hour = 0): void => {
    vi.setSystemTime(new Date(DAY0 + day * DAY_MS + hour * 3_600_000));
  };
  setDay(0);
  const policies = mkdtempSync(join(tmpdir(), 'agent-pdp-90d-policies-'));
  cpSync('policies', policies, { recursive: true });
  writeFileSync(join(policies, RELEASE_FILE), RELEASE_BOT_YAML);
  const secrets = mkdtempSync(join(tmpdir(), 'agent-pdp-90d-credential-'));
  const credentialFile = join(secrets, 'github-token');
  writeFileSync(credentialFile, `ghs_${randomBytes(18).toString('hex')}\n`);
  chmodSync(credentialFile, 0o600);
  const github = await startFakeGitHub();
  const t = await startTestPdp({
    policies,
    config: { proxy: { listen: '127.0.0.1:0', revocation_poll_ms: 50, upstreams: [{ integration: 'github', origin: github.origin, credential: { file: credentialFile } }] } },
  });
  rmSync(policies, { recursive: true, force: true }); // the PDP serves its own copy
  // The harness's clock follows the faked Date.
  Object.defineProperty(t.clock, 'now', { get: () => new Date(), set: () => undefined, configurable: true });
  const proxy = await startPdpProxy(t.pdp);
  const resource = new PdpClient({ url: t.url, apiKey: KEYS.resource });
  const requireToken = createResourceServerAuth({
    issuer: t.pdp.config.issuer.issuer,
    audience: CRM_AUDIENCE,
    jwks: createLocalJWKSet(t.pdp.keys.jwks),
    pdp: resource,
    reportUsage: { flushMs: 50 },
  });
  const app = express();
  app.get('/tickets/:id', requireToken({ integration: 'crm', scope: 'tickets:read' }), (_req, res) => void res.json({ id: 'T-1', status: 'open' }));
  const server: Server = app.listen(0, '127.0.0.1');
  await new Promise<void>((ok) => server.once('listening', ok));
  return {
    t,
    proxy,
    github,
    crm: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, auth: requireToken },
    policyPath: join(t.dir, 'policies', RELEASE_FILE),
    setDay,
    async close() {
      await requireToken.close();
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
      await proxy.close();
      await t.close();
      await github.close();
      rmSync(secrets, { recursive: true, force: true });
      vi.useRealTimers();
    },
  };
}

export async function post(w: NinetyDayWorld, path: string, key: string, body: unknown, status: number): Promise<Record<string, unknown>> {
  const res = await fetch(`${w.t.url}${path}`, { method: 'POST', headers: { ...auth(key), 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  expect(res.status, `${path}: ${text}`).toBe(status);
  return text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
}

export interface Decided {
  outcome: string;
  decision_id: string;
  granted_scopes?: string[];
  denied_scopes?: Array<{ scope: string; reason: string; granted_instead?: string[] }>;
}

export async function decide(w: NinetyDayWorld, agent: string, task: string, integration: string, scopes: string[]): Promise<Decided> {
  return (await post(w, '/v1/decide', KEYS.pep, { agent_id: agent, task: { id: task }, integration, scopes }, 200)) as unknown as Decided;
}

/** A token through the real API: the decision must allow. */
export async function token(w: NinetyDayWorld, agent: string, task: string, integration: string, scopes: string[]): Promise<string> {
  const decision = await decide(w, agent, task, integration, scopes);
  expect(decision.outcome, `${agent} ${integration} ${scopes.join(' ')}`).toBe('allow');
  const redeemed = await post(w, '/v1/tokens', KEYS.pep, { decision_id: decision.decision_id }, 201);
  return redeemed['access_token'] as string;
}

/**
 * One call through the enforcement proxy to the fake GitHub; it must be forwarded (200). The proxy's revocation
 * list is as fresh as its last poll (every 50 ms, real time): right after the clock jumped a day it is stale and
 * the proxy refuses (503 revocation_unknown, failing closed) until its next poll; the call is made again then.
 */
export async function viaProxy(w: NinetyDayWorld, accessToken: string, path: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${w.proxy.url}/github${path}`, { headers: { authorization: `Bearer ${accessToken}` } });
    const text = await res.text();
    if (res.status === 503 && text.includes('revocation_unknown') && attempt < 100) {
      await new Promise((ok) => setTimeout(ok, 10));
      continue;
    }
    expect(res.status, `${path}: ${text}`).toBe(200);
    return;
  }
}

/** One call to the CRM through the PEP middleware (its usage report queued); it must be let through. */
export async function viaMiddleware(w: NinetyDayWorld, accessToken: string): Promise<void> {
  const res = await fetch(`${w.crm.url}/tickets/T-1`, { headers: { authorization: `Bearer ${accessToken}` } });
  expect(res.status, await res.text()).toBe(200);
}

export interface TrailCounts {
  /** release-bot's GitHub tokens (repo:read, repo:write, pr:read each). */
  githubTokens: number;
  /** release-bot's CRM tokens (tickets:read, tickets:write each). */
  crmTokens: number;
  /** code-review-agent's GitHub tokens (a sample below min_tokens). */
  fewTokens: number;
}

/**
 * The 90 days, one release task a day (days 0..89):
 * - release-bot takes a GitHub token with repo:read, repo:write and pr:read and reads the repository through the
 *   proxy (repo:read); on day 45 only it also reads a pull request (pr:read: used once in the window);
 * - every third day it takes a CRM token with tickets:read and tickets:write and reads a ticket through the
 *   middleware (tickets:read);
 * - on days 10 and 20 it asks for workflows:write (in its deny_scope: refused);
 * - on days 0, 20, 40, 60 and 80 code-review-agent takes a token with its whole GitHub ceiling and reads the
 *   repository (five tokens: too small a sample).
 */
export async function buildTrail(w: NinetyDayWorld): Promise<TrailCounts> {
  const counts: TrailCounts = { githubTokens: 0, crmTokens: 0, fewTokens: 0 };
  for (let day = 0; day < 90; day++) {
    w.setDay(day);
    const task = `release-${day}`;
    await post(w, '/v1/tasks', KEYS.orchestrator, { id: task, agent_id: 'release-bot', type: 'release_notes', expires_in_seconds: 3600 }, 201);
    const gh = await token(w, 'release-bot', task, 'github', ['repo:read', 'repo:write', 'pr:read']);
    counts.githubTokens++;
    await viaProxy(w, gh, '/repos/acme/api');
    if (day === 45) await viaProxy(w, gh, '/repos/acme/api/pulls/7');
    if (day % 3 === 0) {
      const crm = await token(w, 'release-bot', task, 'crm', ['tickets:read', 'tickets:write']);
      counts.crmTokens++;
      await viaMiddleware(w, crm);
      await w.crm.auth.usage?.flush(); // sent the same day (the PDP checks used_at against its clock and the token's life)
    }
    if (day === 10 || day === 20) expect((await decide(w, 'release-bot', task, 'github', ['workflows:write'])).outcome).toBe('deny');
    if (day % 20 === 0) {
      const review = `review-${day}`;
      await post(w, '/v1/tasks', KEYS.orchestrator, { id: review, agent_id: 'code-review-agent', type: 'review', expires_in_seconds: 3600 }, 201);
      const cr = await token(w, 'code-review-agent', review, 'github', ['repo:read', 'pr:read', 'issues:read']);
      counts.fewTokens++;
      await viaProxy(w, cr, '/repos/acme/api');
    }
  }
  expect(w.crm.auth.usage?.stats()).toMatchObject({ queued: 0, dropped: 0, failed: 0 });
  return counts;
}

export const readPolicy = (w: NinetyDayWorld): string => readFileSync(w.policyPath, 'utf8');
