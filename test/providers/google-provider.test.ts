/**
 * Native downscoping for Google Workspace (docs/providers.md), end to end: a real PDP on 127.0.0.1 whose
 * `providers[]` names a service account key file and a fake Google token endpoint on 127.0.0.1. The fake verifies
 * the RS256 assertion with the account's public key and its claims. Shown: the assertion asks exactly the granted
 * scopes' Google scope URLs for the task's user; a request above the ceiling never reaches the endpoint; an error
 * is a 502 with the decision still redeemable; below Google's one hour nothing is minted; a subject that is not a
 * plain address is refused; the key and the tokens never reach a log, an error or the trail.
 */
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { guardTool, PdpClient } from '../../src/pep/index.js';
import { createLogger } from '../../src/server/logger.js';
import { auth, KEYS, startTestPdp, TEST_CALLERS, type TestPdp } from '../support/pdp-harness.js';
import { startFakeGoogleToken, type FakeGoogleToken } from '../../examples/support/fake-google-token.js';

const SA_EMAIL = 'agent-pdp@acme-prod.iam.gserviceaccount.com';
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PRIVATE_PEM = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const READONLY = 'https://www.googleapis.com/auth/calendar.readonly';

const INTEGRATION = `integration:
  id: calendar
  scopes: [calendar:read, calendar:write]
`;
const MAP = `provider_map:
  integration: calendar
  kind: google_workspace
  subject: "{task.user_email}"
  scopes:
    calendar:read: ["${READONLY}"]
    calendar:write: ["https://www.googleapis.com/auth/calendar.events", "${READONLY}"]
`;
const GCS_INTEGRATION = `integration:
  id: reports-gcs
  scopes: [objects:read]
`;
const GCS_MAP = `provider_map:
  integration: reports-gcs
  kind: gcp_storage
  scopes:
    objects:read:
      - { bucket: acme-reports, role: roles/storage.objectViewer, object_prefix: "customers/{record.id}/" }
`;
/** Eleven access boundary rules for one scope: more than Google STS takes (10). */
const MANY_INTEGRATION = `integration:
  id: many-gcs
  scopes: [objects:read]
`;
const MANY_MAP = `provider_map:
  integration: many-gcs
  kind: gcp_storage
  scopes:
    objects:read:
${Array.from({ length: 11 }, (_, i) => `      - { bucket: acme-archive-${i}, role: roles/storage.objectViewer }\n`).join('')}`;
const AGENT = `agent_policy:
  id: calendar-agent
  integrations:
    many-gcs:
      max_scope: [objects:read]
    calendar:
      max_scope: [calendar:read]
    reports-gcs:
      max_scope: [objects:read]
      bind:
        objects:read: { resource: customer, context: customer_id }
  token_ttl: 3600
  per_task_downscope: false
`;

const logLines: string[] = [];
const errorBodies: string[] = [];
let google: FakeGoogleToken;
let t: TestPdp;
let policies: string;
let seq = 0;

beforeAll(async () => {
  google = await startFakeGoogleToken(new Map([[SA_EMAIL, publicKey]]));
  policies = mkdtempSync(join(tmpdir(), 'agent-pdp-google-'));
  cpSync('test/fixtures/policies', policies, { recursive: true });
  mkdirSync(join(policies, 'providers'));
  writeFileSync(join(policies, 'integrations', 'calendar.yaml'), INTEGRATION);
  writeFileSync(join(policies, 'providers', 'calendar.yaml'), MAP);
  writeFileSync(join(policies, 'agents', 'calendar-agent.yaml'), AGENT);
  writeFileSync(join(policies, 'integrations', 'reports-gcs.yaml'), GCS_INTEGRATION);
  writeFileSync(join(policies, 'providers', 'reports-gcs.yaml'), GCS_MAP);
  writeFileSync(join(policies, 'integrations', 'many-gcs.yaml'), MANY_INTEGRATION);
  writeFileSync(join(policies, 'providers', 'many-gcs.yaml'), MANY_MAP);
  const keyFile = join(policies, 'sa.json');
  writeFileSync(keyFile, JSON.stringify({ type: 'service_account', client_email: SA_EMAIL, private_key_id: 'k-1', private_key: PRIVATE_PEM }));
  chmodSync(keyFile, 0o600);
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString('utf8'));
      done();
    },
  });
  t = await startTestPdp({
    policies,
    // Google's expiry is timed by the real clock: the token's must be too (a standing clock made a slow run's tokens
    // end before the credential, refused as outliving them).
    realClock: true,
    logger: createLogger('debug', sink),
    config: {
      callers: TEST_CALLERS.map((c) => (c.id === 'pep-1' ? { ...c, agents: [...(c.agents ?? []), 'calendar-agent'] } : c)),
      providers: [
        { integration: 'calendar', kind: 'google_workspace', token_endpoint: google.url, credential: { file: keyFile } },
        { integration: 'reports-gcs', kind: 'gcp_storage', token_endpoint: google.url, sts_endpoint: google.stsUrl, credential: { file: keyFile } },
        { integration: 'many-gcs', kind: 'gcp_storage', token_endpoint: google.url, sts_endpoint: google.stsUrl, credential: { file: keyFile } },
      ],
    },
  });
});
afterAll(async () => {
  await t?.close();
  await google?.close();
  rmSync(policies, { recursive: true, force: true });
});
beforeEach(() => {
  google.failWith = null;
});

async function registerTask(userEmail: string, expiresIn = 7200): Promise<string> {
  const id = `cal-task-${++seq}`;
  await request(t.url).post('/v1/tasks').set(auth(KEYS.orchestrator)).send({ id, agent_id: 'calendar-agent', type: 'digest', context: { user_email: userEmail }, expires_in_seconds: expiresIn }).expect(201);
  return id;
}

async function decide(taskId: string, scopes: string[], ttl?: number): Promise<{ decision_id: string; allow: boolean }> {
  const res = await request(t.url)
    .post('/v1/decide')
    .set(auth(KEYS.pep))
    .send({ agent_id: 'calendar-agent', task: { id: taskId }, integration: 'calendar', scopes, ...(ttl === undefined ? {} : { ttl_seconds: ttl }) })
    .expect(200);
  return res.body as { decision_id: string; allow: boolean };
}

async function redeem(decisionId: string): Promise<request.Response> {
  const res = await request(t.url).post('/v1/tokens').set(auth(KEYS.pep)).send({ decision_id: decisionId });
  if (res.status >= 400) errorBodies.push(res.text);
  return res;
}

async function events(decisionId: string): Promise<Array<{ type: string; data: Record<string, unknown> }>> {
  const res = await request(t.url).get(`/v1/audit/decisions/${decisionId}`).set(auth(KEYS.auditor)).expect(200);
  return (res.body as { events: Array<{ type: string; data: Record<string, unknown> }> }).events;
}

describe('Google Workspace: a service account assertion for the task user, with exactly the granted scopes', () => {
  it('mints a token whose assertion names the task user and the granted Google scopes only', async () => {
    const taskId = await registerTask('ana@example.com');
    const decision = await decide(taskId, ['calendar:read']);
    expect(decision.allow).toBe(true);
    const res = await redeem(decision.decision_id);
    expect(res.status).toBe(201);
    const seen = google.seen.at(-1)!;
    expect(seen.header).toEqual({ alg: 'RS256', typ: 'JWT', kid: 'k-1' });
    expect(seen.claims['iss']).toBe(SA_EMAIL);
    expect(seen.claims['sub']).toBe('ana@example.com');
    expect(seen.claims['aud']).toBe(google.url);
    expect(seen.claims['scope']).toBe(READONLY);
    expect(Number(seen.claims['exp']) - Number(seen.claims['iat'])).toBeLessThanOrEqual(3600);
    const body = res.body as { expires_in: number; provider_credential: { provider: string; expires_at: string; google: { access_token: string; subject: string; scopes: string[] } } };
    expect(body.provider_credential.provider).toBe('google_workspace');
    expect(body.provider_credential.google).toEqual({ access_token: seen.issued!.access_token, token_type: 'Bearer', subject: 'ana@example.com', scopes: [READONLY] });
    expect(body.expires_in).toBe(3600);
    const issued = (await events(decision.decision_id)).find((e) => e.type === 'token.issued')!;
    expect(issued.data['provider_credential']).toEqual({ provider: 'google_workspace', request_id: null, expires_at: body.provider_credential.expires_at, service_account: SA_EMAIL, subject: 'ana@example.com', scopes: [READONLY] });
  });

  it('a scope above the ceiling is denied and never reaches the token endpoint', async () => {
    const hits = google.hits;
    const taskId = await registerTask('ana@example.com');
    const decision = await decide(taskId, ['calendar:write']);
    expect(decision.allow).toBe(false);
    expect((await redeem(decision.decision_id)).status).toBe(409);
    expect(google.hits).toBe(hits);
  });

  it('an error of the token endpoint is 502 provider_failed, and the decision stays redeemable', async () => {
    const taskId = await registerTask('ana@example.com');
    const decision = await decide(taskId, ['calendar:read']);
    google.failWith = { status: 401, error: 'unauthorized_client', description: 'Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.' };
    const failed = await redeem(decision.decision_id);
    expect(failed.status).toBe(502);
    expect((failed.body as { error: { code: string } }).error.code).toBe('provider_failed');
    expect((await events(decision.decision_id)).map((e) => e.type)).toEqual(['decision']);
    expect(logLines.some((l) => l.includes('unauthorized_client'))).toBe(true);
    google.failWith = null;
    expect((await redeem(decision.decision_id)).status).toBe(201);
  });

  it('below Google one-hour token, or with the task ending sooner, nothing is minted', async () => {
    const hits = google.hits;
    const short = await decide(await registerTask('ana@example.com'), ['calendar:read'], 900);
    expect(((await redeem(short.decision_id)).body as { error: { code: string } }).error.code).toBe('provider_ttl_too_short');
    const ending = await decide(await registerTask('ana@example.com', 1800), ['calendar:read']);
    expect((await redeem(ending.decision_id)).status).toBe(409);
    expect(google.hits).toBe(hits);
  });

  it('a task user that is not a plain address is refused before the endpoint', async () => {
    const hits = google.hits;
    const decision = await decide(await registerTask('ana@example.com bob@example.com'), ['calendar:read']);
    expect((await redeem(decision.decision_id)).status).toBe(502);
    expect(google.hits).toBe(hits);
  });

  it('guardTool hands the tool an Authorization header for Google APIs', async () => {
    const taskId = await registerTask('ana@example.com');
    const pdp = new PdpClient({ url: t.url, apiKey: KEYS.pep });
    const listEvents = guardTool({ pdp, agentId: 'calendar-agent', task: taskId, integration: 'calendar', scopes: ['calendar:read'] }, async (_a: Record<string, never>, grant) => grant.googleAuthorization);
    expect(await listEvents({})).toBe(`Bearer ${google.seen.at(-1)!.issued!.access_token}`);
  });

  it('GCS: the service account token is exchanged for one whose access boundary is the bound customer prefix', async () => {
    const id = `gcs-task-${++seq}`;
    await request(t.url).post('/v1/tasks').set(auth(KEYS.orchestrator)).send({ id, agent_id: 'calendar-agent', type: 'digest', context: { customer_id: '1234' }, expires_in_seconds: 7200 }).expect(201);
    const res = await request(t.url).post('/v1/decide').set(auth(KEYS.pep)).send({ agent_id: 'calendar-agent', task: { id }, integration: 'reports-gcs', scopes: ['objects:read'], resource: { type: 'customer', id: '1234' } }).expect(200);
    const decision = res.body as { decision_id: string; allow: boolean };
    expect(decision.allow).toBe(true);
    const redeemed = await redeem(decision.decision_id);
    expect(redeemed.status).toBe(201);
    const source = google.seen.at(-1)!;
    expect(source.claims['sub']).toBeUndefined();
    expect(source.claims['scope']).toBe('https://www.googleapis.com/auth/cloud-platform');
    const exchange = google.exchanges.at(-1)!;
    expect(exchange.form['subject_token']).toBe(source.issued!.access_token);
    const boundary = {
      accessBoundary: {
        accessBoundaryRules: [
          {
            availableResource: '//storage.googleapis.com/projects/_/buckets/acme-reports',
            availablePermissions: ['inRole:roles/storage.objectViewer'],
            availabilityCondition: {
              title: 'objects:read: customers/1234/',
              expression:
                "resource.name.startsWith('projects/_/buckets/acme-reports/objects/customers/1234/') || " +
                "api.getAttribute('storage.googleapis.com/objectListPrefix', '').startsWith('customers/1234/')",
            },
          },
        ],
      },
    };
    expect(exchange.boundary).toEqual(boundary);
    const body = redeemed.body as { provider_credential: { provider: string; google: { access_token: string } } };
    expect(body.provider_credential.provider).toBe('gcp_storage');
    expect(body.provider_credential.google.access_token).toBe(exchange.issued!.access_token);
    // The source token is neither returned nor recorded; the boundary is.
    expect(redeemed.text).not.toContain(source.issued!.access_token);
    const issued = (await events(decision.decision_id)).find((e) => e.type === 'token.issued')!;
    expect(issued.data['provider_credential']).toMatchObject({ provider: 'gcp_storage', service_account: SA_EMAIL, access_boundary: boundary });
    expect(JSON.stringify(issued)).not.toContain(source.issued!.access_token);
  });

  it('GCS: more access boundary rules than Google STS takes is refused before Google, the reason in the failure log', async () => {
    const hits = google.hits;
    const id = `gcs-task-${++seq}`;
    await request(t.url).post('/v1/tasks').set(auth(KEYS.orchestrator)).send({ id, agent_id: 'calendar-agent', type: 'digest', context: {}, expires_in_seconds: 7200 }).expect(201);
    const res = await request(t.url).post('/v1/decide').set(auth(KEYS.pep)).send({ agent_id: 'calendar-agent', task: { id }, integration: 'many-gcs', scopes: ['objects:read'] }).expect(200);
    const decision = res.body as { decision_id: string; allow: boolean };
    expect(decision.allow).toBe(true);
    const failed = await redeem(decision.decision_id);
    expect(failed.status).toBe(502);
    expect(google.hits).toBe(hits);
    expect(logLines.find((l) => l.includes('provider credential not minted') && l.includes(decision.decision_id))).toMatch(/refused before sending: the access boundary for scopes objects:read has 11 rules: Google STS takes at most 10/);
  });

  it('neither the key nor a minted token in a log line, an error body or the trail', async () => {
    const trail = await request(t.url).get('/v1/audit/export').set(auth(KEYS.auditor)).expect(200);
    const tokens = google.seen.flatMap((s) => (s.issued ? [s.issued.access_token] : []));
    expect(tokens.length).toBeGreaterThan(1);
    const keyLine = PRIVATE_PEM.split('\n')[1]!;
    for (const text of [logLines.join('\n'), errorBodies.join('\n'), trail.text]) {
      for (const secret of [keyLine, ...tokens]) expect(text).not.toContain(secret);
    }
  });
});
