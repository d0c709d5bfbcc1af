/**
 * The provider fakes are as strict as the providers they stand for (docs/providers.md, "Live verification"): a request
 * the real AWS STS or Google would refuse is refused here too, with the provider's error code, so a provider test
 * cannot pass on a request the real service would turn down. AWS through the real `@aws-sdk/client-sts` (which checks
 * none of these on the client side), Google with the real `fetch` and assertions signed with `jose`.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { AssumeRoleCommand, STSClient, type AssumeRoleCommandInput } from '@aws-sdk/client-sts';
import { startFakeSts, type FakeSts } from '../../examples/support/fake-sts.js';
import { startFakeGoogleToken, type FakeGoogleToken } from '../../examples/support/fake-google-token.js';

const SOURCE = { accessKeyId: 'AKIAFAKESTRICT000001', secretAccessKey: 'fake-strict-secret-wJalrXUtnFEMI/K7MDENG' };
const ROLE = 'arn:aws:iam::123456789012:role/strict';
const SA = 'strict@acme.iam.gserviceaccount.com';
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });

let sts: FakeSts;
let longRole: FakeSts;
let google: FakeGoogleToken;
beforeAll(async () => {
  sts = await startFakeSts(new Map([[SOURCE.accessKeyId, SOURCE.secretAccessKey]]));
  longRole = await startFakeSts(new Map([[SOURCE.accessKeyId, SOURCE.secretAccessKey]]), { maxSessionSeconds: 43200 });
  google = await startFakeGoogleToken(new Map([[SA, publicKey]]));
});
afterAll(async () => {
  await sts?.close();
  await longRole?.close();
  await google?.close();
});

async function assumeRole(fake: FakeSts, changes: Partial<AssumeRoleCommandInput>): Promise<string> {
  const client = new STSClient({ region: 'eu-west-1', endpoint: fake.url, credentials: SOURCE, maxAttempts: 1 });
  try {
    const input: AssumeRoleCommandInput = {
      RoleArn: ROLE,
      RoleSessionName: 'agentpdp-d-1',
      DurationSeconds: 900,
      Policy: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['s3:GetObject'], Resource: ['arn:aws:s3:::b/*'] }] }),
      SourceIdentity: 'reporting-agent',
      Tags: [{ Key: 'agent_id', Value: 'reporting-agent' }],
      ...changes,
    };
    await client.send(new AssumeRoleCommand(input));
    return 'minted';
  } catch (err) {
    return `${(err as { Code?: string; name: string }).Code ?? (err as Error).name}: ${(err as Error).message}`;
  } finally {
    client.destroy();
  }
}

const policyOf = (chars: number): string => {
  const base = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['s3:GetObject'], Resource: ['arn:aws:s3:::'] }] });
  return base.replace('arn:aws:s3:::', `arn:aws:s3:::${'a'.repeat(chars - base.length)}`);
};
const tags = (n: number) => Array.from({ length: n }, (_, i) => ({ Key: `k${i}`, Value: 'v' }));

describe('fake STS: AssumeRole as strict as STS documents it', () => {
  it.each([
    { note: 'a well-formed request', changes: {}, expected: /^minted$/ },
    { note: 'a policy of exactly 2048 characters', changes: { Policy: policyOf(2048) }, expected: /^minted$/ },
    { note: 'a policy of 2049 characters (the plaintext limit)', changes: { Policy: policyOf(2049) }, expected: /^ValidationError: .*'policy' failed to satisfy constraint: Member must have length less than or equal to 2048/ },
    { note: 'a policy that is not JSON', changes: { Policy: '{"Version":' }, expected: /^MalformedPolicyDocument/ },
    { note: '50 tags', changes: { Tags: tags(50) }, expected: /^minted$/ },
    { note: '51 tags', changes: { Tags: tags(51) }, expected: /^ValidationError: .*'tags' .*less than or equal to 50/ },
    { note: 'a tag key of 129 characters', changes: { Tags: [{ Key: 'k'.repeat(129), Value: 'v' }] }, expected: /^ValidationError: .*tags\.1\.member\.key.*less than or equal to 128/ },
    { note: 'a tag value of 257 characters', changes: { Tags: [{ Key: 'k', Value: 'v'.repeat(257) }] }, expected: /^ValidationError: .*tags\.1\.member\.value.*less than or equal to 256/ },
    { note: 'an empty tag value (allowed)', changes: { Tags: [{ Key: 'k', Value: '' }] }, expected: /^minted$/ },
    { note: 'a tag value with letters, spaces and _.:/=+-@ (allowed)', changes: { Tags: [{ Key: 'k', Value: 'Zoë ana@x.io/_.:=+-1' }] }, expected: /^minted$/ },
    { note: 'a tag value with #', changes: { Tags: [{ Key: 'k', Value: 'a#b' }] }, expected: /^ValidationError: .*tags\.1\.member\.value.*regular expression pattern/ },
    { note: 'a tag key with *', changes: { Tags: [{ Key: 'k*', Value: 'v' }] }, expected: /^ValidationError: .*tags\.1\.member\.key.*regular expression pattern/ },
    { note: 'DurationSeconds 899', changes: { DurationSeconds: 899 }, expected: /^ValidationError: .*greater than or equal to 900/ },
    { note: 'DurationSeconds 3600 (the role maximum)', changes: { DurationSeconds: 3600 }, expected: /^minted$/ },
    { note: 'DurationSeconds 3601, above the role maximum', changes: { DurationSeconds: 3601 }, expected: /^ValidationError: The requested DurationSeconds exceeds the MaxSessionDuration set for this role\.$/ },
    { note: 'a RoleSessionName of 1 character', changes: { RoleSessionName: 'a' }, expected: /^ValidationError: .*'roleSessionName'.*greater than or equal to 2/ },
    { note: 'a RoleSessionName of 65 characters', changes: { RoleSessionName: 'a'.repeat(65) }, expected: /^ValidationError: .*'roleSessionName'.*less than or equal to 64/ },
    { note: 'a RoleSessionName with a space', changes: { RoleSessionName: 'agent pdp' }, expected: /^ValidationError: .*'roleSessionName'.*regular expression pattern/ },
    { note: 'a SourceIdentity of 64 characters of [\\w+=,.@-]', changes: { SourceIdentity: `${'a'.repeat(56)}+=,.@-_9` }, expected: /^minted$/ },
    { note: 'a SourceIdentity of 65 characters', changes: { SourceIdentity: 'a'.repeat(65) }, expected: /^ValidationError: .*'sourceIdentity'.*less than or equal to 64/ },
    { note: 'a SourceIdentity of 1 character', changes: { SourceIdentity: 'a' }, expected: /^ValidationError: .*'sourceIdentity'.*greater than or equal to 2/ },
    { note: 'a SourceIdentity beginning with aws:', changes: { SourceIdentity: 'aws:agent' }, expected: /^ValidationError: .*'sourceIdentity'.*regular expression pattern/ },
    { note: 'a SourceIdentity with /', changes: { SourceIdentity: 'team/agent' }, expected: /^ValidationError: .*'sourceIdentity'.*regular expression pattern/ },
  ])('$note', async ({ changes, expected }) => {
    expect(await assumeRole(sts, changes)).toMatch(expected);
  });

  it("the role's maximum session duration is the fake's option (up to STS's 43200)", async () => {
    expect(await assumeRole(longRole, { DurationSeconds: 43200 })).toBe('minted');
    expect(await assumeRole(longRole, { DurationSeconds: 43201 })).toMatch(/^ValidationError: .*less than or equal to 43200/);
  });
});

async function token(claims: Record<string, unknown>, options: { sign?: typeof privateKey } = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const iat = Math.floor(Date.now() / 1000);
  const assertion = await new SignJWT({ iss: SA, aud: google.url, iat, exp: iat + 3600, scope: 'https://www.googleapis.com/auth/calendar.readonly', sub: 'ana@example.com', ...claims })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
    .sign(options.sign ?? privateKey);
  const res = await fetch(google.url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }).toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const now = () => Math.floor(Date.now() / 1000);

describe('fake Google token endpoint: the service account assertion as Google checks it', () => {
  it.each([
    { note: 'a delegation assertion for a user', claims: {}, expected: 'ok' },
    { note: 'the account own token for cloud-platform, no sub', claims: { sub: undefined, scope: 'https://www.googleapis.com/auth/cloud-platform' }, expected: 'ok' },
    { note: 'a Workspace scope without sub (the delegation lost its user)', claims: { sub: undefined }, expected: 'unauthorized_client' },
    { note: 'an empty sub', claims: { sub: '' }, expected: 'invalid_grant' },
    { note: 'exp 3601 s after iat', claims: { iat: now(), exp: now() + 3601 }, expected: 'invalid_grant' },
    { note: 'exp before iat', claims: { iat: now(), exp: now() - 1 }, expected: 'invalid_grant' },
    { note: 'iat in the future', claims: { iat: now() + 600, exp: now() + 1200 }, expected: 'invalid_grant' },
    { note: 'aud another endpoint', claims: { aud: 'https://oauth2.googleapis.com/token' }, expected: 'invalid_grant' },
    { note: 'an empty scope', claims: { scope: '' }, expected: 'invalid_scope' },
    { note: 'no scope', claims: { scope: undefined }, expected: 'invalid_scope' },
  ])('$note', async ({ claims, expected }) => {
    const { status, body } = await token(claims);
    expect(expected === 'ok' ? status : body['error']).toBe(expected === 'ok' ? 200 : expected);
    if (expected !== 'ok') expect(status).toBeGreaterThanOrEqual(400);
  });

  it('a signature by another key is invalid_grant', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    expect((await token({}, { sign: other })).body['error']).toBe('invalid_grant');
  });
});

describe('fake Google STS: the Credential Access Boundary as Google documents it', () => {
  const RULE = { availableResource: '//storage.googleapis.com/projects/_/buckets/acme-files', availablePermissions: ['inRole:roles/storage.objectViewer'] };
  async function exchange(options: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
    const source = await token({ sub: undefined, scope: 'https://www.googleapis.com/auth/cloud-platform' });
    expect(source.status).toBe(200);
    const res = await fetch(google.stsUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        subject_token: String(source.body['access_token']),
        options: typeof options === 'string' ? options : JSON.stringify(options),
      }).toString(),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }
  const boundary = (rules: unknown) => ({ accessBoundary: { accessBoundaryRules: rules } });

  it.each([
    { note: 'one rule without condition', options: boundary([RULE]), expected: 'ok' },
    { note: 'ten rules, with a condition of expression, title and description', options: boundary(Array.from({ length: 10 }, () => ({ ...RULE, availabilityCondition: { expression: "resource.name.startsWith('x')", title: 't', description: 'd' } }))), expected: 'ok' },
    { note: 'eleven rules', options: boundary(Array.from({ length: 11 }, () => RULE)), expected: /1 to 10 rules/ },
    { note: 'no rule', options: boundary([]), expected: /1 to 10 rules/ },
    { note: 'rules not a list', options: boundary(RULE), expected: /1 to 10 rules/ },
    { note: 'not JSON', options: '{"accessBoundary"', expected: /not JSON/ },
    { note: 'no accessBoundary', options: { accessBoundaryRules: [RULE] }, expected: /expected/ },
    { note: 'a resource outside GCS', options: boundary([{ ...RULE, availableResource: '//cloudresourcemanager.googleapis.com/projects/p' }]), expected: /availableResource/ },
    { note: 'a bucket named without the resource prefix', options: boundary([{ ...RULE, availableResource: 'acme-files' }]), expected: /availableResource/ },
    { note: 'a permission that is not inRole:roles/…', options: boundary([{ ...RULE, availablePermissions: ['storage.objects.get'] }]), expected: /availablePermissions/ },
    { note: 'no permission', options: boundary([{ ...RULE, availablePermissions: [] }]), expected: /availablePermissions/ },
    { note: 'a condition without expression', options: boundary([{ ...RULE, availabilityCondition: { title: 't' } }]), expected: /expression/ },
    { note: 'a condition expression of 2049 characters', options: boundary([{ ...RULE, availabilityCondition: { expression: 'x'.repeat(2049) } }]), expected: /expression/ },
    { note: 'a title that is not a string', options: boundary([{ ...RULE, availabilityCondition: { expression: 'true', title: 1 } }]), expected: /title/ },
    { note: 'an unknown member in a rule', options: boundary([{ ...RULE, availablePermission: ['inRole:roles/storage.objectViewer'] }]), expected: /unknown name "availablePermission"/ },
  ])('$note', async ({ options, expected }) => {
    const { status, body } = await exchange(options);
    if (expected === 'ok') {
      expect(status).toBe(200);
      return;
    }
    expect(status).toBe(400);
    expect(body['error']).toBe('invalid_request');
    expect(String(body['error_description'])).toMatch(expected);
  });

  it('takes only the account own cloud-platform token, never a delegated one', async () => {
    const delegated = await token({});
    const res = await fetch(google.stsUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        subject_token: String(delegated.body['access_token']),
        options: JSON.stringify(boundary([RULE])),
      }).toString(),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_grant');
  });
});
