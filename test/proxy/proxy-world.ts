/**
 * The proxy's test world: a fake GitHub and a fake Slack (test/support/fake-upstreams.ts), a whole PDP on the
 * shipped policies (agents, integrations and the endpoint maps of policies/proxy/) with a `proxy` config section,
 * and the enforcement proxy listening on the PDP's parts (`startPdpProxy`, on the PDP's settable clock).
 *
 * The GitHub credential comes from a file (0600 in a temp folder), the Slack one from an environment variable.
 * Tokens are obtained the way an agent's PEP obtains them: an orchestrator registers a task, the PEP asks for a
 * decision and redeems it (POST /v1/tasks, /v1/decide, /v1/tokens).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { expect } from 'vitest';
import type { AuditEventV1 } from '../../src/audit/index.js';
import type { TokenProxiedData } from '../../src/audit/event-payloads.js';
import { startPdpProxy } from '../../src/main.js';
import type { EnforcementProxy } from '../../src/proxy/index.js';
import { startFakeGitHub, startFakeSlack, type FakeGitHub, type FakeUpstream } from '../support/fake-upstreams.js';
import { auth, KEYS, startTestPdp, type TestPdp, type TestPdpOptions } from '../support/pdp-harness.js';

export const SLACK_CREDENTIAL_ENV = 'AGENT_PDP_TEST_SLACK_BOT_TOKEN';

export interface ProxyWorld {
  t: TestPdp;
  proxy: EnforcementProxy;
  github: FakeGitHub;
  slack: FakeUpstream;
  /** The provider credentials the proxy injects (what the fakes must see, and the agent never). */
  credentials: { github: string; slack: string };
  /** The file the GitHub credential is read from (0600): replace it to rotate the credential. */
  credentialFile: string;
  close(): Promise<void>;
}

export interface ProxyWorldOptions {
  /** Replaces members of the `proxy` config section (not `upstreams`). */
  proxy?: Record<string, unknown>;
  /** Replaces members of the github upstream's config (e.g. `headers_timeout_ms`). */
  github?: Record<string, unknown>;
  /** Replaces members of the slack upstream's config (e.g. `origin` of a dead upstream). */
  slack?: Record<string, unknown>;
  logger?: TestPdpOptions['logger'];
}

export async function startProxyWorld(options: ProxyWorldOptions = {}): Promise<ProxyWorld> {
  const github = await startFakeGitHub();
  const slack = await startFakeSlack();
  const secrets = mkdtempSync(join(tmpdir(), 'agent-pdp-proxy-credential-'));
  const credentials = { github: `ghs_${randomBytes(18).toString('hex')}`, slack: `xoxb-${randomBytes(18).toString('hex')}` };
  const credentialFile = join(secrets, 'github-token');
  writeFileSync(credentialFile, `${credentials.github}\n`);
  chmodSync(credentialFile, 0o600);
  // Read once, when the config is built (the harness builds it with process.env).
  process.env[SLACK_CREDENTIAL_ENV] = credentials.slack;
  let t: TestPdp;
  try {
    t = await startTestPdp({
      policies: 'policies',
      ...(options.logger === undefined ? {} : { logger: options.logger }),
      config: {
        proxy: {
          listen: '127.0.0.1:0',
          revocation_poll_ms: 50,
          ...options.proxy,
          upstreams: [
            { integration: 'github', origin: github.origin, credential: { file: credentialFile }, ...options.github },
            { integration: 'slack', origin: slack.origin, base_path: '/api', credential: { env: SLACK_CREDENTIAL_ENV }, ...options.slack },
          ],
        },
      },
    });
  } finally {
    delete process.env[SLACK_CREDENTIAL_ENV];
  }
  const clock = t.clock;
  const proxy = await startPdpProxy(t.pdp, { now: () => clock.now });
  return {
    t,
    proxy,
    github,
    slack,
    credentials,
    credentialFile,
    async close() {
      await proxy.close();
      await t.close();
      await Promise.all([github.close(), slack.close()]);
      rmSync(secrets, { recursive: true, force: true });
    },
  };
}

export interface AgentToken {
  access_token: string;
  jti: string;
  task_id: string;
  scope: string;
}

let seq = 0;

/**
 * A token through the real API: a registered task, an allowed decision, its redemption. `resource` binds the
 * token to one record (the decision names it); `ttl` asks for a shorter lifetime.
 */
export async function obtainToken(
  t: TestPdp,
  o: { agent: string; integration: string; scopes: string[]; type?: string; context?: Record<string, string>; resource?: { type: string; id: string }; ttl?: number },
): Promise<AgentToken> {
  const taskId = `proxy-task-${process.pid}-${++seq}`;
  await request(t.url)
    .post('/v1/tasks')
    .set(auth(KEYS.orchestrator))
    .send({ id: taskId, agent_id: o.agent, type: o.type ?? 'proxy_test', context: o.context ?? {} })
    .expect(201);
  const decision = await request(t.url)
    .post('/v1/decide')
    .set(auth(KEYS.pep))
    .send({
      agent_id: o.agent,
      task: { id: taskId },
      integration: o.integration,
      scopes: o.scopes,
      ...(o.resource === undefined ? {} : { resource: o.resource }),
      ...(o.ttl === undefined ? {} : { ttl_seconds: o.ttl }),
    })
    .expect(200);
  expect(decision.body.outcome, JSON.stringify(decision.body.reasons)).toBe('allow');
  const redeemed = await request(t.url).post('/v1/tokens').set(auth(KEYS.pep)).send({ decision_id: decision.body.decision_id }).expect(201);
  const body = redeemed.body as { access_token: string; jti: string; scope: string };
  return { access_token: body.access_token, jti: body.jti, scope: body.scope, task_id: taskId };
}

/** The code-review agent of the source document on GitHub: repo:read, pr:read, issues:read (its whole ceiling). */
export const codeReviewToken = (t: TestPdp, o: { repo?: string; ttl?: number } = {}): Promise<AgentToken> =>
  obtainToken(t, {
    agent: 'code-review-agent',
    integration: 'github',
    scopes: ['repo:read', 'pr:read', 'issues:read'],
    ...(o.repo === undefined ? {} : { resource: { type: 'repo', id: o.repo } }),
    ...(o.ttl === undefined ? {} : { ttl: o.ttl }),
  });

/** The feedback workflow's Slack token: chat:write, bound to the task's channel (policies/agents/feedback-workflow.yaml). */
export const feedbackPostToken = (t: TestPdp, channel: string): Promise<AgentToken> =>
  obtainToken(t, {
    agent: 'feedback-workflow',
    integration: 'slack',
    type: 'feedback_post',
    context: { channel },
    scopes: ['chat:write'],
    resource: { type: 'channel', id: channel },
  });

/** The code-review agent on Slack: channels:read and chat:write, bound to no channel. */
export const codeReviewSlackToken = (t: TestPdp): Promise<AgentToken> =>
  obtainToken(t, { agent: 'code-review-agent', integration: 'slack', scopes: ['channels:read', 'chat:write'] });

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
  text: string;
  /** The parsed JSON body, or undefined. */
  json: unknown;
  /** False when the response was cut before its end (the proxy destroys a response it cannot complete). */
  complete: boolean;
}

/**
 * One HTTP call to the proxy exactly as written: the path is sent unnormalised (`..`, `%2e`, `%2F` reach the
 * proxy as they are), headers are name/value pairs (a name may repeat: two Authorization headers). The body goes
 * with its Content-Length, or, with `chunked`, as `Transfer-Encoding: chunked` in two chunks and no length.
 */
export function send(
  proxyUrl: string,
  o: { method?: string; path: string; headers?: Array<[string, string]>; token?: string; body?: string | Buffer; contentType?: string; chunked?: boolean },
): Promise<RawResponse> {
  const url = new URL(proxyUrl);
  const pairs: Array<[string, string]> = [];
  // With headers given as pairs node:http adds no Host of its own: the call names one unless the test sends its own.
  if (!(o.headers ?? []).some(([name]) => name.toLowerCase() === 'host')) pairs.push(['Host', url.host]);
  if (o.token !== undefined) pairs.push(['Authorization', `Bearer ${o.token}`]);
  if (o.contentType !== undefined) pairs.push(['Content-Type', o.contentType]);
  if (o.body !== undefined) pairs.push(o.chunked === true ? ['Transfer-Encoding', 'chunked'] : ['Content-Length', String(Buffer.byteLength(o.body))]);
  pairs.push(...(o.headers ?? []));
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, method: o.method ?? 'GET', path: o.path, headers: pairs.flat(), agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('error', () => undefined); // a cut response: `complete` says so
        res.once('close', () => {
          const body = Buffer.concat(chunks);
          const text = body.toString('utf8');
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body, text, json: parsed, complete: res.complete });
        });
      },
    );
    req.once('error', reject);
    if (o.chunked === true && o.body !== undefined) {
      const bytes = Buffer.from(o.body);
      req.write(bytes.subarray(0, bytes.length >> 1));
      req.end(bytes.subarray(bytes.length >> 1));
    } else req.end(o.body);
  });
}

/** The refusal code of a proxy answer (`{ error: { code } }`). */
export const codeOf = (res: RawResponse): string | undefined => (res.json as { error?: { code?: string } } | undefined)?.error?.code;

/** The token.used events of the proxy (action `proxy`) in the PDP's store, oldest first; of one token when `jti` is given. */
export async function proxyEvents(t: TestPdp, jti?: string): Promise<Array<AuditEventV1 & { data: TokenProxiedData }>> {
  const events: Array<AuditEventV1 & { data: TokenProxiedData }> = [];
  for await (const e of t.pdp.store.iterateEvents({ types: ['token.used'], ...(jti === undefined ? {} : { jti }) })) {
    if ((e.data as { action?: string }).action === 'proxy') events.push(e as AuditEventV1 & { data: TokenProxiedData });
  }
  return events;
}
