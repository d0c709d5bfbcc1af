import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';

/**
 * The pipeline's body reader (src/server/body-reader.ts): plain, gzip-encoded and `+json` bodies decide, record
 * and answer alike; the edge cases of JSON reading are refused with their codes.
 */
let t: TestPdp;
beforeAll(async () => {
  t = await startTestPdp();
});
afterAll(async () => {
  await t.close();
});

const body = {
  agent_id: 'code-review-agent',
  task: { id: 'fast-1', type: 'review', context: {} },
  integration: 'github',
  scopes: ['issues:write'],
};

async function decide(init: { body: Buffer | string; headers: Record<string, string> }): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${t.url}/v1/decide`, { method: 'POST', headers: { ...auth(KEYS.pep), ...init.headers }, body: init.body });
  return { status: res.status, json: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

it.each([
  { note: 'plain JSON', init: () => ({ body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }) },
  { note: 'gzip-encoded JSON', init: () => ({ body: gzipSync(JSON.stringify(body)), headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } }) },
  { note: 'a +json media type', init: () => ({ body: JSON.stringify(body), headers: { 'content-type': 'application/vnd.agent-pdp+json' } }) },
])('$note: the same capped allow, recorded, with a request id', async ({ init }) => {
  const { status, json, headers } = await decide(init());
  expect(status).toBe(200);
  expect(json).toMatchObject({ allow: true, granted_scopes: ['issues:read'], denied_scopes: [{ scope: 'issues:write', reason: 'capped' }] });
  expect(headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  expect(await t.pdp.store.getDecision(json['decision_id'] as string)).toMatchObject({ outcome: 'allow' });
});

it.each([
  { note: 'whitespace-only body', body: '\t', status: 400, code: 'invalid_request' },
  { note: 'a JSON string', body: '"x"', status: 400, code: 'invalid_request' },
  { note: 'over the size limit', body: `{"agent_id":"${'a'.repeat(70_000)}"}`, status: 400, code: 'body_too_large' },
])('refuses $note ($code)', async ({ body: raw, status, code }) => {
  const res = await decide({ body: raw, headers: { 'content-type': 'application/json' } });
  expect(res.status).toBe(status);
  expect((res.json['error'] as { code: string }).code).toBe(code);
});
