import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/config/dev-keys.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';

/**
 * Names an author may choose that are also keys of `Object.prototype`. Integrations called `constructor` or
 * `toString` passed the schema and decided allow, but every redemption failed with 500: the audience lookup
 * (config override, then the integration file) read `Object.prototype.constructor`, a function.
 */
const PROTOTYPE_NAMES = ['constructor', 'toString', 'hasOwnProperty', 'valueOf'] as const;

const policies = mkdtempSync(join(tmpdir(), 'agent-pdp-proto-'));
mkdirSync(join(policies, 'agents'));
mkdirSync(join(policies, 'integrations'));
writeFileSync(
  join(policies, 'agents', 'proto.yaml'),
  [
    'agent_policy:',
    '  id: proto-agent',
    '  integrations:',
    ...PROTOTYPE_NAMES.flatMap((name) => [`    ${name}:`, '      max_scope: [read, write, __proto__, constructor]', '      deny_scope: [toString]']),
    '  per_task_downscope: true',
    '  task_types:',
    '    valueOf:',
    ...PROTOTYPE_NAMES.map((name) => `      ${name}: [read, __proto__, constructor]`),
    '    toString:',
    '      constructor: [read]',
    '',
  ].join('\n'),
);
// An integration file without an audience: tokens fall back to the integration's name.
writeFileSync(join(policies, 'integrations', 'constructor.yaml'), 'integration:\n  id: constructor\n  implies:\n    write: [read]\n    constructor: [__proto__]\n');

let t: TestPdp;
beforeAll(async () => {
  t = await startTestPdp({
    policies,
    config: {
      callers: [
        { id: 'pep-proto', role: 'pep', key_sha256: sha256Hex(KEYS.pep), agents: ['proto-agent'], may_assert_context: true },
        { id: 'ops', role: 'admin', key_sha256: sha256Hex(KEYS.admin) },
      ],
      // A config override for one integration only: the lookup for the others must not find Object.prototype's.
      issuer: { issuer: 'http://127.0.0.1:8181', keys: 'data/keys', audiences: { toString: 'https://tostring.example' } },
    },
  });
});
afterAll(async () => {
  await t.close();
  rmSync(policies, { recursive: true, force: true });
});

const claimsOf = (jwt: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;

describe('integrations named like Object.prototype keys, over HTTP', () => {
  it.each(PROTOTYPE_NAMES.map((name) => ({ name, audience: name === 'toString' ? 'https://tostring.example' : name })))(
    '$name: decides allow and redeems a token with audience $audience',
    async ({ name, audience }) => {
      const decided = await request(t.url)
        .post('/v1/decide')
        .set(auth(KEYS.pep))
        .send({ agent_id: 'proto-agent', task: { id: `task-${name}`, type: 'valueOf', context: {} }, integration: name, scopes: ['read', '__proto__', 'constructor'] })
        .expect(200);
      expect(decided.body).toMatchObject({ outcome: 'allow', granted_scopes: ['__proto__', 'constructor', 'read'] });
      const token = await request(t.url).post('/v1/tokens').set(auth(KEYS.pep)).send({ decision_id: decided.body.decision_id });
      expect(token.status, JSON.stringify(token.body)).toBe(201);
      expect(claimsOf(token.body.access_token)).toMatchObject({ aud: audience, scope: '__proto__ constructor read' });
    },
  );

  it('keeps the denied toString scope out, and a toString task gets only its task type', async () => {
    const denied = await request(t.url)
      .post('/v1/decide')
      .set(auth(KEYS.pep))
      .send({ agent_id: 'proto-agent', task: { id: 'task-deny', type: 'valueOf', context: {} }, integration: 'valueOf', scopes: ['toString'] })
      .expect(200);
    expect(denied.body).toMatchObject({ outcome: 'deny', denied_scopes: [{ scope: 'toString', reason: 'deny_scope' }] });
    const typed = await request(t.url)
      .post('/v1/decide')
      .set(auth(KEYS.pep))
      .send({ agent_id: 'proto-agent', task: { id: 'task-typed', type: 'toString', context: {} }, integration: 'constructor', scopes: ['read', '__proto__'] })
      .expect(200);
    expect(typed.body).toMatchObject({ outcome: 'allow', granted_scopes: ['read'], denied_scopes: [{ scope: '__proto__', reason: 'task_type' }] });
  });
});
