/**
 * Native downscoping for AWS (docs/providers.md), end to end: a real PDP on 127.0.0.1 (real policies, bundle, SQLite
 * store) whose `providers[]` names a fake STS on 127.0.0.1, called by the real `@aws-sdk/client-sts`. The fake
 * recomputes each request's SigV4 signature with the source secret, parses the Query API and answers STS's XML.
 * Shown here: the session policy STS receives is exactly the granted scopes on the bound record; a request above
 * the ceiling never reaches STS; an STS error is a 502 with nothing issued and the decision still redeemable; the
 * TTL and STS's 900 s minimum; a record id that could widen an ARN is refused before STS; and no secret (source
 * or minted) in a log line, an error body or the trail.
 */
import { cpSync, mkdtempSync, rmSync, writeFileSync, mkdirSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { inspect } from 'node:util';
import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { guardTool, PdpClient } from '../../src/pep/index.js';
import { createLogger } from '../../src/server/logger.js';
import { auth, KEYS, startTestPdp, TEST_CALLERS, type TestPdp } from '../support/pdp-harness.js';
import { startFakeSts, type AssumeRoleSeen, type FakeSts } from '../../examples/support/fake-sts.js';
import { buildPolicySet } from '../../src/policy/policy-loader.js';
import { assumeRole } from '../../src/providers/aws-sts.js';
import { AwsSourceCredential } from '../../src/providers/source-credentials.js';

const SOURCE = { access_key_id: 'AKIAAGENTPDPTEST0001', secret_access_key: 'source-secret-wJalrXUtnFEMI/K7MDENG/bPxRfiCY' };
const ROLE = 'arn:aws:iam::123456789012:role/agent-pdp-reports';

const INTEGRATION = `integration:
  id: s3-reports
  description: Customer reports in S3.
  scopes: [reports:read, reports:write, reports:admin]
  implies:
    reports:write: [reports:read]
`;
const PROVIDER_MAP = `provider_map:
  integration: s3-reports
  kind: aws
  scopes:
    reports:read:
      - actions: [s3:GetObject]
        resources: ["arn:aws:s3:::acme-reports/customers/{record.id}/*"]
      - actions: [s3:ListBucket]
        resources: ["arn:aws:s3:::acme-reports"]
        conditions: { StringLike: { "s3:prefix": ["customers/{record.id}/*"] } }
    reports:write:
      - actions: [s3:PutObject]
        resources: ["arn:aws:s3:::acme-reports/customers/{record.id}/*"]
    reports:admin:
      - actions: ["s3:*"]
        resources: ["arn:aws:s3:::acme-reports", "arn:aws:s3:::acme-reports/*"]
`;
/** A map whose session policy is longer than STS takes (2048 characters), whatever the grant. */
const BIG_INTEGRATION = `integration:
  id: big-reports
  scopes: [big:read]
`;
const BIG_MAP = `provider_map:
  integration: big-reports
  kind: aws
  scopes:
    big:read:
${Array.from({ length: 20 }, (_, i) => `      - actions: [s3:GetObject]\n        resources: ["arn:aws:s3:::acme-archive-${i}/reports/quarterly/*", "arn:aws:s3:::acme-archive-${i}/reports/yearly/*"]\n`).join('')}`;
const AGENT = `agent_policy:
  id: reporting-agent
  description: Reads and writes the reports of the customer its task names.
  integrations:
    big-reports:
      max_scope: [big:read]
    s3-reports:
      max_scope: [reports:read, reports:write]
      bind:
        reports:read: { resource: customer, context: customer_id }
        reports:write: { resource: customer, context: customer_id }
  token_ttl: 900
  per_task_downscope: false
`;

/** The same grants for two hours: longer than the role's maximum session duration (3600 s unless raised). */
const LONG_AGENT = AGENT.replace('id: reporting-agent', 'id: long-reporting-agent').replace('token_ttl: 900', 'token_ttl: 7200');
/** Agent ids STS would refuse as SourceIdentity: one character; two of 68 sharing their first 64. */
const ODD_AGENTS = ['r', `reporting-${'x'.repeat(54)}-eu`, `reporting-${'x'.repeat(54)}-us`];

const logLines: string[] = [];
const errorBodies: string[] = [];
let sts: FakeSts;
let t: TestPdp;
let policies: string;
let seq = 0;

beforeAll(async () => {
  sts = await startFakeSts(new Map([[SOURCE.access_key_id, SOURCE.secret_access_key]]));
  policies = mkdtempSync(join(tmpdir(), 'agent-pdp-providers-'));
  cpSync('test/fixtures/policies', policies, { recursive: true });
  mkdirSync(join(policies, 'providers'));
  writeFileSync(join(policies, 'integrations', 's3-reports.yaml'), INTEGRATION);
  writeFileSync(join(policies, 'providers', 's3-reports.yaml'), PROVIDER_MAP);
  writeFileSync(join(policies, 'agents', 'reporting-agent.yaml'), AGENT);
  writeFileSync(join(policies, 'agents', 'long-reporting-agent.yaml'), LONG_AGENT);
  ODD_AGENTS.forEach((id, i) => writeFileSync(join(policies, 'agents', `odd-${i}.yaml`), AGENT.replace('id: reporting-agent', `id: ${id}`)));
  writeFileSync(join(policies, 'integrations', 'big-reports.yaml'), BIG_INTEGRATION);
  writeFileSync(join(policies, 'providers', 'big-reports.yaml'), BIG_MAP);
  const sourceFile = join(policies, 'aws-source.json');
  writeFileSync(sourceFile, JSON.stringify(SOURCE));
  chmodSync(sourceFile, 0o600);
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString('utf8'));
      done();
    },
  });
  t = await startTestPdp({
    policies,
    logger: createLogger('debug', sink),
    config: {
      callers: TEST_CALLERS.map((c) => (c.id === 'pep-1' ? { ...c, agents: [...(c.agents ?? []), 'reporting-agent', 'long-reporting-agent', ...ODD_AGENTS] } : c)),
      // Tokens may live two hours, longer than the role's maximum session duration.
      issuer: { issuer: 'http://127.0.0.1:8181', keys: 'data/keys', max_token_ttl_seconds: 7200 },
      providers: [
        { integration: 's3-reports', kind: 'aws', role_arn: ROLE, region: 'eu-west-1', endpoint: sts.url, credential: { file: sourceFile } },
        { integration: 'big-reports', kind: 'aws', role_arn: ROLE, region: 'eu-west-1', endpoint: sts.url, credential: { file: sourceFile } },
      ],
    },
  });
});
afterAll(async () => {
  await t?.close();
  await sts?.close();
  rmSync(policies, { recursive: true, force: true });
});
beforeEach(() => {
  sts.failWith = null;
  sts.extraSeconds = 0;
  sts.beforeAnswer = null;
});

/** Holds STS's answers until `release()`; `minting()` resolves once a mint is held. */
function holdSts(): { minting: () => Promise<AssumeRoleSeen>; release: () => void } {
  let release!: () => void;
  const gate = new Promise<void>((ok) => (release = ok));
  let held!: (seen: AssumeRoleSeen) => void;
  const minting = new Promise<AssumeRoleSeen>((ok) => (held = ok));
  sts.beforeAnswer = async (seen) => {
    held(seen);
    await gate;
  };
  return { minting: () => minting, release };
}

async function registerTask(context: Record<string, string>, expiresIn = 3600, agent = 'reporting-agent'): Promise<string> {
  const id = `report-task-${++seq}`;
  await request(t.url)
    .post('/v1/tasks')
    .set(auth(KEYS.orchestrator))
    .send({ id, agent_id: agent, type: 'monthly_report', context, expires_in_seconds: expiresIn })
    .expect(201);
  return id;
}

async function decide(taskId: string, scopes: string[], customer: string, ttl?: number, agent = 'reporting-agent'): Promise<{ decision_id: string; allow: boolean; granted_scopes: string[] }> {
  const res = await request(t.url)
    .post('/v1/decide')
    .set(auth(KEYS.pep))
    .send({ agent_id: agent, task: { id: taskId }, integration: 's3-reports', scopes, resource: { type: 'customer', id: customer }, ...(ttl === undefined ? {} : { ttl_seconds: ttl }) })
    .expect(200);
  return res.body as { decision_id: string; allow: boolean; granted_scopes: string[] };
}

async function redeem(decisionId: string): Promise<request.Response> {
  const res = await request(t.url).post('/v1/tokens').set(auth(KEYS.pep)).send({ decision_id: decisionId });
  if (res.status >= 400) errorBodies.push(res.text);
  return res;
}

async function chain(decisionId: string): Promise<Array<{ type: string; data: Record<string, unknown> }>> {
  const res = await request(t.url).get(`/v1/audit/decisions/${decisionId}`).set(auth(KEYS.auditor)).expect(200);
  const body = res.body as { events: Array<{ type: string; data: Record<string, unknown> }> };
  return body.events;
}

interface Minted {
  access_token: string;
  expires_in: number;
  jti: string;
  provider_credential: { provider: string; integration: string; expires_at: string; aws: { access_key_id: string; secret_access_key: string; session_token: string; expiration: string; region: string } };
}

describe('AWS: AssumeRole with a session policy narrowed to the grant', () => {
  it('mints a credential whose session policy is exactly the granted scopes on the bound record', async () => {
    const taskId = await registerTask({ customer_id: '1234' });
    const decision = await decide(taskId, ['reports:read'], '1234');
    expect(decision.allow).toBe(true);
    const before = sts.requests.length;
    const res = await redeem(decision.decision_id);
    expect(res.status).toBe(201);
    const body = res.body as Minted;
    expect(sts.requests.length).toBe(before + 1);
    const seen = sts.requests.at(-1)!;
    // The wire format STS documents, as the fake parsed it from the signed form body.
    expect(seen.signedBy).toBe(SOURCE.access_key_id);
    expect(seen.region).toBe('eu-west-1');
    expect(seen.params['RoleArn']).toBe(ROLE);
    expect(seen.params['RoleSessionName']).toBe(`agentpdp-${decision.decision_id}`.slice(0, 64));
    expect(seen.params['DurationSeconds']).toBe('900');
    expect(seen.params['SourceIdentity']).toBe('reporting-agent');
    expect(seen.tags).toEqual({ agent_id: 'reporting-agent', decision_id: decision.decision_id, task_id: taskId });
    expect(seen.policy).toEqual({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: ['s3:GetObject'], Resource: ['arn:aws:s3:::acme-reports/customers/1234/*'] },
        { Effect: 'Allow', Action: ['s3:ListBucket'], Resource: ['arn:aws:s3:::acme-reports'], Condition: { StringLike: { 's3:prefix': ['customers/1234/*'] } } },
      ],
    });
    // What the caller gets is what STS minted, and it does not outlive our token.
    const issued = seen.issued!;
    expect(body.provider_credential).toEqual({
      provider: 'aws',
      integration: 's3-reports',
      expires_at: new Date(issued.expiration).toISOString(),
      aws: { access_key_id: issued.accessKeyId, secret_access_key: issued.secretAccessKey, session_token: issued.sessionToken, expiration: new Date(issued.expiration).toISOString(), region: 'eu-west-1' },
    });
    const exp = (JSON.parse(Buffer.from(body.access_token.split('.')[1]!, 'base64url').toString('utf8')) as { exp: number }).exp;
    expect(body.expires_in).toBe(900);
    expect(Date.parse(body.provider_credential.expires_at)).toBeLessThanOrEqual((exp + 60) * 1000);
    // The trail: what was minted, with the effective policy and STS's request id, never a secret.
    const issuedEvent = (await chain(decision.decision_id)).find((e) => e.type === 'token.issued')!;
    expect(issuedEvent.data['provider_credential']).toEqual({
      provider: 'aws',
      request_id: seen.requestId,
      expires_at: body.provider_credential.expires_at,
      role_arn: ROLE,
      session_name: seen.params['RoleSessionName'],
      source_identity: 'reporting-agent',
      session_tags: seen.tags,
      session_policy: seen.policy,
    });
  });

  it('a write grant maps to its own statement, on the same customer only', async () => {
    const taskId = await registerTask({ customer_id: '5678' });
    const decision = await decide(taskId, ['reports:write'], '5678');
    const res = await redeem(decision.decision_id);
    expect(res.status).toBe(201);
    const policy = sts.requests.at(-1)!.policy as { Statement: Array<{ Action: string[]; Resource: string[] }> };
    expect(policy.Statement.map((s) => [s.Action, s.Resource])).toEqual([[['s3:PutObject'], ['arn:aws:s3:::acme-reports/customers/5678/*']]]);
  });

  it('a request above the ceiling, or on another customer, is denied and never reaches STS', async () => {
    const taskId = await registerTask({ customer_id: '1234' });
    const hits = sts.hits;
    const above = await decide(taskId, ['reports:admin'], '1234');
    expect(above.allow).toBe(false);
    expect((await redeem(above.decision_id)).status).toBe(409);
    const other = await decide(taskId, ['reports:read'], '9999');
    expect(other.allow).toBe(false);
    expect((await redeem(other.decision_id)).status).toBe(409);
    expect(sts.hits).toBe(hits);
  });

  it('an STS error is 502 provider_failed: nothing issued, the decision still redeemable', async () => {
    const taskId = await registerTask({ customer_id: '1234' });
    const decision = await decide(taskId, ['reports:read'], '1234');
    sts.failWith = { status: 403, code: 'AccessDenied', message: `User: arn:aws:iam::123456789012:user/pdp is not authorized to perform: sts:AssumeRole on resource: ${ROLE}` };
    const failed = await redeem(decision.decision_id);
    expect(failed.status).toBe(502);
    expect((failed.body as { error: { code: string } }).error.code).toBe('provider_failed');
    expect(failed.text).not.toContain('access_token');
    expect((await chain(decision.decision_id)).map((e) => e.type)).toEqual(['decision']);
    expect(logLines.some((l) => l.includes('provider credential not minted') && l.includes('AccessDenied'))).toBe(true);
    // STS recovers: the same decision is redeemed once, as any other.
    sts.failWith = null;
    expect((await redeem(decision.decision_id)).status).toBe(201);
    expect((await redeem(decision.decision_id)).status).toBe(409);
  });

  it('a credential STS would let outlive the token is dropped (502), never returned, and recorded as discarded', async () => {
    const taskId = await registerTask({ customer_id: '1234' });
    const decision = await decide(taskId, ['reports:read'], '1234');
    sts.extraSeconds = 3600;
    const res = await redeem(decision.decision_id);
    expect(res.status).toBe(502);
    const seen = sts.requests.at(-1)!;
    expect(res.text).not.toContain(seen.issued!.secretAccessKey);
    const events = await chain(decision.decision_id);
    expect(events.map((e) => e.type)).toEqual(['decision', 'provider.credential_discarded']);
    expect(events[1]!.data).toMatchObject({ integration: 's3-reports', reason: 'provider_failed', provider_credential: { provider: 'aws', request_id: seen.requestId, session_policy: seen.policy } });
    expect(JSON.stringify(events)).not.toContain(seen.issued!.secretAccessKey);
  });

  it('a credential STS says has already expired is dropped (502) and recorded as discarded, the decision still redeemable', async () => {
    const taskId = await registerTask({ customer_id: '1234' });
    const decision = await decide(taskId, ['reports:read'], '1234');
    sts.extraSeconds = -7200;
    const res = await redeem(decision.decision_id);
    expect(res.status).toBe(502);
    expect((res.body as { error: { code: string } }).error.code).toBe('provider_failed');
    expect((await chain(decision.decision_id)).map((e) => e.type)).toEqual(['decision', 'provider.credential_discarded']);
    sts.extraSeconds = 0;
    expect((await redeem(decision.decision_id)).status).toBe(201);
  });

  it('concurrent redeems of one decision mint one credential: the others are refused while it mints', async () => {
    const taskId = await registerTask({ customer_id: '1234' });
    const decision = await decide(taskId, ['reports:read'], '1234');
    const before = sts.requests.length;
    const held = holdSts();
    const first = redeem(decision.decision_id);
    await held.minting();
    const others = await Promise.all([redeem(decision.decision_id), redeem(decision.decision_id), redeem(decision.decision_id)]);
    expect(others.map((r) => [r.status, (r.body as { error: { code: string } }).error.code])).toEqual(Array.from({ length: 3 }, () => [409, 'redemption_in_progress']));
    held.release();
    expect((await first).status).toBe(201);
    expect(sts.requests.length).toBe(before + 1);
    expect(((await redeem(decision.decision_id)).body as { error: { code: string } }).error.code).toBe('decision_already_redeemed');
    expect((await chain(decision.decision_id)).map((e) => e.type)).toEqual(['decision', 'token.issued']);
  });

  it('a credential minted while its task completed is never handed over, and the trail records it', async () => {
    const taskId = await registerTask({ customer_id: '1234' });
    const decision = await decide(taskId, ['reports:read'], '1234');
    const held = holdSts();
    const pending = redeem(decision.decision_id);
    const seen = await held.minting();
    await request(t.url).post(`/v1/tasks/${taskId}/complete`).set(auth(KEYS.orchestrator)).send({}).expect(200);
    held.release();
    const res = await pending;
    expect([res.status, (res.body as { error: { code: string } }).error.code]).toEqual([409, 'task_not_active']);
    expect(res.text).not.toContain(seen.issued!.secretAccessKey);
    const discarded = (await chain(decision.decision_id)).filter((e) => e.type === 'provider.credential_discarded');
    expect(discarded.map((e) => e.data)).toEqual([
      { integration: 's3-reports', reason: 'task_not_active', provider_credential: expect.objectContaining({ request_id: seen.requestId, expires_at: new Date(seen.issued!.expiration).toISOString() }) },
    ]);
  });

  it('below STS minimum of 900 s nothing is minted: the decision TTL, or the task ending sooner', async () => {
    const hits = sts.hits;
    const taskId = await registerTask({ customer_id: '1234' });
    const short = await decide(taskId, ['reports:read'], '1234', 300);
    expect(short.allow).toBe(true);
    const res = await redeem(short.decision_id);
    expect(res.status).toBe(409);
    expect((res.body as { error: { code: string } }).error.code).toBe('provider_ttl_too_short');
    const endingTask = await registerTask({ customer_id: '1234' }, 600);
    const ending = await decide(endingTask, ['reports:read'], '1234');
    expect((await redeem(ending.decision_id)).status).toBe(409);
    expect(sts.hits).toBe(hits);
  });

  it("a token living longer than the role's maximum session duration gets a credential of that maximum (3600 s by default), not an STS refusal", async () => {
    const taskId = await registerTask({ customer_id: '1234' }, 7200, 'long-reporting-agent');
    const decision = await decide(taskId, ['reports:read'], '1234', undefined, 'long-reporting-agent');
    expect(decision.allow).toBe(true);
    const res = await redeem(decision.decision_id);
    expect(res.status).toBe(201);
    expect((res.body as Minted).expires_in).toBe(7200);
    expect(sts.requests.at(-1)!.params['DurationSeconds']).toBe('3600');
  });

  it("an agent id STS would refuse as SourceIdentity is sent in a derived form STS takes, never cut into another agent's", async () => {
    const identities: string[] = [];
    for (const agent of ODD_AGENTS) {
      const taskId = await registerTask({ customer_id: '1234' }, 3600, agent);
      const decision = await decide(taskId, ['reports:read'], '1234', undefined, agent);
      expect(decision.allow).toBe(true);
      expect((await redeem(decision.decision_id)).status).toBe(201);
      const seen = sts.requests.at(-1)!;
      identities.push(seen.params['SourceIdentity'] ?? '');
      // The session tag keeps the whole agent id; the trail records the identity sent.
      expect(seen.tags['agent_id']).toBe(agent);
      const issuedEvent = (await chain(decision.decision_id)).find((e) => e.type === 'token.issued')!;
      expect((issuedEvent.data['provider_credential'] as { source_identity: string }).source_identity).toBe(seen.params['SourceIdentity']);
    }
    expect(identities[0]).toMatch(/^r\+[0-9a-f]{32}$/);
    expect(identities[1]).toMatch(/^reporting-x+\+[0-9a-f]{32}$/);
    expect(new Set(identities).size).toBe(3);
  });

  it('a session policy longer than STS takes is refused before STS: provider_failed, the reason in the failure log', async () => {
    const hits = sts.hits;
    const taskId = await registerTask({ customer_id: '1234' });
    const res = await request(t.url).post('/v1/decide').set(auth(KEYS.pep)).send({ agent_id: 'reporting-agent', task: { id: taskId }, integration: 'big-reports', scopes: ['big:read'] }).expect(200);
    const decision = res.body as { decision_id: string; allow: boolean };
    expect(decision.allow).toBe(true);
    const failed = await redeem(decision.decision_id);
    expect(failed.status).toBe(502);
    expect((failed.body as { error: { code: string } }).error.code).toBe('provider_failed');
    expect(sts.hits).toBe(hits);
    const line = logLines.find((l) => l.includes('provider credential not minted') && l.includes(decision.decision_id));
    expect(line).toMatch(/refused before sending: the session policy for scopes big:read is \d+ characters: STS takes at most 2048/);
  });

  it.each([
    { note: 'an agent id with a character outside the tag charset', grant: { agent_id: 'agent#1' }, refused: /session tag agent_id's value is not what STS takes/ },
    { note: 'a task id of 257 characters', grant: { task_id: 't'.repeat(257) }, refused: /session tag task_id's value is not what STS takes/ },
    { note: 'a decision id with a character outside the tag charset', grant: { decision_id: 'd;1' }, refused: /session tag decision_id's value/ },
    { note: 'letters, spaces and _.:/=+-@ are sent', grant: { task_id: 'Zoë task:1/a=b+c-d@e' }, refused: null },
  ])('session tags STS would refuse are refused before STS: $note', async ({ grant, refused }) => {
    const map = buildPolicySet([
      { file: 'integrations/s3.yaml', text: INTEGRATION },
      { file: 'providers/s3.yaml', text: PROVIDER_MAP },
    ]).providerMaps!['s3-reports']!;
    if (map.kind !== 'aws') throw new Error('expected an aws map');
    const provider = { integration: 's3-reports', kind: 'aws' as const, role_arn: ROLE, region: 'eu-west-1', endpoint: sts.url, max_session_seconds: 3600, timeout_ms: 5000, credential: { env: null, file: null } };
    const base = { integration: 's3-reports', agent_id: 'reporting-agent', task_id: 'task-1', decision_id: 'd-1', scopes: ['reports:read'], values: { record: { type: 'customer', id: '1234' }, context: null }, duration_seconds: 900 };
    const hits = sts.hits;
    const minting = assumeRole(provider, new AwsSourceCredential(SOURCE), map, { ...base, ...grant });
    if (refused === null) {
      await expect(minting).resolves.toMatchObject({ record: { session_tags: expect.objectContaining(grant) } });
      expect(sts.hits).toBe(hits + 1);
    } else {
      await expect(minting).rejects.toThrow(refused);
      expect(sts.hits).toBe(hits);
    }
  });

  it('a record id that could widen the ARN pattern is refused before STS', async () => {
    const hits = sts.hits;
    for (const id of ['*', '12/34']) {
      const taskId = await registerTask({ customer_id: id });
      const decision = await decide(taskId, ['reports:read'], id);
      expect(decision.allow).toBe(true);
      const res = await redeem(decision.decision_id);
      expect(res.status).toBe(502);
      expect((await chain(decision.decision_id)).map((e) => e.type)).toEqual(['decision']);
    }
    expect(sts.hits).toBe(hits);
  });

  it('guardTool hands the tool the provider credential, usable as is by the AWS SDK', async () => {
    const taskId = await registerTask({ customer_id: '4242' });
    const pdp = new PdpClient({ url: t.url, apiKey: KEYS.pep });
    const readReport = guardTool(
      { pdp, agentId: 'reporting-agent', task: taskId, integration: 's3-reports', scopes: ['reports:read'], resource: { type: 'customer', id: '4242' } },
      async (_args: Record<string, never>, grant) => {
        expect(JSON.stringify(grant)).not.toContain(grant.awsCredentials.secretAccessKey);
        // Even with every inspect option on (which would call the getters), the credential is redacted.
        const shown = inspect(grant, { showHidden: true, getters: true, depth: 9 });
        expect(shown).not.toContain(grant.awsCredentials.secretAccessKey);
        expect(shown).not.toContain(grant.awsCredentials.sessionToken);
        expect(shown).toContain('[redacted aws credential]');
        const client = new STSClient({ region: grant.awsRegion ?? '', endpoint: sts.url, credentials: grant.awsCredentials, maxAttempts: 1 });
        try {
          return { identity: await client.send(new GetCallerIdentityCommand({})), credential: grant.providerCredential };
        } finally {
          client.destroy();
        }
      },
    );
    const { identity, credential } = await readReport({});
    const seen = sts.requests.at(-1)!;
    expect(credential?.provider === 'aws' ? credential.aws.access_key_id : undefined).toBe(seen.issued!.accessKeyId);
    expect(identity.Arn).toBe(`arn:aws:sts::123456789012:assumed-role/agent-pdp-reports/${seen.params['RoleSessionName']}`);
    expect((seen.policy as { Statement: Array<{ Resource: string[] }> }).Statement[0]!.Resource).toEqual(['arn:aws:s3:::acme-reports/customers/4242/*']);
    // A tool whose integration mints nothing gets no AWS credential.
    const crmTask = `crm-${++seq}`;
    await request(t.url).post('/v1/tasks').set(auth(KEYS.orchestrator)).send({ id: crmTask, agent_id: 'support-resolver', type: 'complaint_resolution', context: { customer_id: '1234' } }).expect(201);
    const crm = guardTool({ pdp, agentId: 'support-resolver', task: crmTask, integration: 'crm', scopes: ['tickets:read'], resource: { type: 'customer', id: '1234' } }, async (_a: Record<string, never>, grant) => {
      expect(grant.providerCredential).toBeNull();
      expect(() => grant.awsCredentials).toThrow(/no AWS provider credential/);
      return 'ok';
    });
    expect(await crm({})).toBe('ok');
  });

  it('guardTool\'s own cache does not reuse a provider credential: once the task completes, the next call is refused', async () => {
    const taskId = await registerTask({ customer_id: '4343' });
    const pdp = new PdpClient({ url: t.url, apiKey: KEYS.pep });
    const keys: string[] = [];
    const readReport = guardTool(
      { pdp, agentId: 'reporting-agent', task: taskId, integration: 's3-reports', scopes: ['reports:read'], resource: { type: 'customer', id: '4343' } },
      async (_args: Record<string, never>, grant) => void keys.push(grant.awsCredentials.accessKeyId),
    );
    const hits = sts.hits;
    await readReport({});
    await readReport({});
    expect(sts.hits).toBe(hits + 2); // each call decided and minted again
    expect(new Set(keys).size).toBe(2);
    await request(t.url).post(`/v1/tasks/${taskId}/complete`).set(auth(KEYS.orchestrator)).expect(200);
    await expect(readReport({})).rejects.toMatchObject({ name: 'PermissionDenied' });
    expect(keys).toHaveLength(2);
  });

  it('no secret, source or minted, in any log line, error body or the trail', async () => {
    const trail = await request(t.url).get('/v1/audit/export').set(auth(KEYS.auditor)).expect(200);
    const minted = sts.requests.flatMap((r) => (r.issued ? [r.issued.secretAccessKey, r.issued.sessionToken] : []));
    expect(minted.length).toBeGreaterThan(2);
    const haystacks = [logLines.join('\n'), errorBodies.join('\n'), trail.text];
    expect(trail.text).toContain('provider_credential');
    for (const secret of [SOURCE.secret_access_key, ...minted]) for (const text of haystacks) expect(text).not.toContain(secret);
  });
});

describe('with audit.mask: values the session policy embeds are masked in the trail too', () => {
  let unmasked: TestPdp;
  beforeAll(async () => {
    unmasked = t;
    t = await startTestPdp({
      policies,
      config: {
        callers: TEST_CALLERS.map((c) => (c.id === 'pep-1' ? { ...c, agents: [...(c.agents ?? []), 'reporting-agent'] } : c)),
        providers: [{ integration: 's3-reports', kind: 'aws', role_arn: ROLE, region: 'eu-west-1', endpoint: sts.url, credential: { file: join(policies, 'aws-source.json') } }],
        audit: { mask: ['**.resource.id', 'input.task.context.customer_id'] },
      },
    });
  });
  afterAll(async () => {
    await t.close();
    t = unmasked;
  });

  it('token.issued and provider.credential_discarded carry the digest where the customer id was, never the id', async () => {
    const customer = '73519';
    const taskId = await registerTask({ customer_id: customer });
    const decision = await decide(taskId, ['reports:read'], customer);
    const res = await redeem(decision.decision_id);
    expect(res.status).toBe(201);
    // The caller gets the real credential: the session policy STS got names the customer.
    expect(JSON.stringify(sts.requests.at(-1)!.policy)).toContain(`customers/${customer}/`);
    const events = await chain(decision.decision_id);
    const issued = events.find((e) => e.type === 'token.issued')!;
    const digest = (issued.data['resource'] as { id: string }).id;
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const recorded = JSON.stringify(issued.data['provider_credential']);
    expect(recorded).not.toContain(customer);
    expect(recorded).toContain(`customers/${digest}/`);
    // A discarded credential's record is masked the same way.
    const second = await decide(taskId, ['reports:read'], customer);
    sts.extraSeconds = 3600;
    expect((await redeem(second.decision_id)).status).toBe(502);
    const discarded = (await chain(second.decision_id)).find((e) => e.type === 'provider.credential_discarded')!;
    expect(JSON.stringify(discarded.data)).not.toContain(customer);
    expect(JSON.stringify(discarded.data)).toContain(digest);
  });
});
