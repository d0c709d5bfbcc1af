import { Writable } from 'node:stream';
import request from 'supertest';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createLogger } from '../../src/server/logger.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';

/**
 * A policy's token_ttl above the issuer's cap (`issuer.max_token_ttl_seconds`): the load warns, naming the agents,
 * and the decision reports the lifetime its token really gets, not the policy's.
 */
const lines: Array<Record<string, unknown>> = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
    done();
  },
});

let t: TestPdp;
beforeAll(async () => {
  // code-review-agent's policy says token_ttl: 3600 (policies/agents/code-review-agent.yaml).
  t = await startTestPdp({ logger: createLogger('info', sink), config: { issuer: { issuer: 'http://127.0.0.1:8181', keys: 'data/keys', max_token_ttl_seconds: 600 } } });
});
afterAll(async () => {
  await t.close();
});

it('warns at load, naming the agents whose token_ttl the issuer will cap', () => {
  const warning = lines.find((l) => typeof l['msg'] === 'string' && (l['msg'] as string).includes('exceeds issuer.max_token_ttl_seconds'));
  expect(warning).toMatchObject({ max_token_ttl_seconds: 600, agents: expect.arrayContaining(['code-review-agent']) });
  expect(warning?.['agents']).not.toContain('feedback-workflow'); // token_ttl 300
});

it('the decision reports the effective TTL, and the token lives exactly that long', async () => {
  const decision = await request(t.url)
    .post('/v1/decide')
    .set(auth(KEYS.pep))
    .send({ agent_id: 'code-review-agent', task: { id: 'ttl-1' }, integration: 'github', scopes: ['repo:read'] })
    .expect(200);
  expect(decision.body).toMatchObject({ allow: true, token_ttl_seconds: 600 });
  const token = await request(t.url).post('/v1/tokens').set(auth(KEYS.pep)).send({ decision_id: decision.body.decision_id }).expect(201);
  expect(token.body.expires_in).toBe(600);
});
