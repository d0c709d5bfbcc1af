import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';
import { parseForm } from '../../src/server/body-reader.js';

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

describe('compressed bodies that go wrong never take the server down', () => {
  const raw = (head: string, body: Buffer): Promise<string> =>
    new Promise((resolve, reject) => {
      const { port } = new URL(t.url);
      const socket = connect(Number(port), '127.0.0.1');
      let got = '';
      socket.setEncoding('utf8');
      socket.on('data', (c: string) => (got += c));
      socket.on('close', () => resolve(got));
      socket.on('error', reject);
      socket.setTimeout(5000, () => socket.destroy());
      socket.write(head);
      socket.write(body); // no FIN: the server closes after its answer (Connection: close)
    });
  const alive = async (): Promise<void> => {
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
  };

  it.each([
    { note: 'invalid gzip declared over the limit, to an OAuth endpoint (read before authentication)', path: '/v1/introspect', length: 2_000_000, body: randomBytes(60_000), status: '400' },
    { note: 'invalid gzip within the limit', path: '/v1/decide', length: undefined, body: randomBytes(5_000), status: '400' },
    { note: 'a gzip bomb: small on the wire, over the limit inflated', path: '/v1/decide', length: undefined, body: gzipSync(Buffer.alloc(5_000_000, 0x20)), status: '400' },
  ])('$note → $status, and the server keeps serving', async ({ path, length, body, status }) => {
    const head =
      `POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEYS.pep}\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nConnection: close\r\n` +
      `Content-Length: ${length ?? body.length}\r\n\r\n`;
    const answer = await raw(head, body);
    expect(answer.split(' ')[1]).toBe(status);
    await new Promise((resolve) => setTimeout(resolve, 50)); // a late decoder error would surface here
    await alive();
  });

  it('a client that aborts mid-way through a gzip body leaves the server serving', async () => {
    const { port } = new URL(t.url);
    const socket = connect(Number(port), '127.0.0.1');
    const body = gzipSync(JSON.stringify({ agent_id: 'x'.repeat(20_000) }));
    socket.write(`POST /v1/decide HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEYS.pep}\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: ${body.length}\r\n\r\n`);
    socket.write(body.subarray(0, Math.floor(body.length / 2)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await alive();
  });
});

describe('form bodies decode as UTF-8 or are refused', () => {
  it('a percent-encoded byte sequence that is not UTF-8 is invalid_request; a real U+FFFD and a stray % are read as sent', () => {
    expect(() => parseForm('grant_type=client_credentials&scope=a%FFb')).toThrow(expect.objectContaining({ code: 'invalid_request', details: [{ path: '(body)', message: 'not valid UTF-8' }] }));
    expect(() => parseForm('%C3=x')).toThrow(expect.objectContaining({ code: 'invalid_request' }));
    expect(parseForm('note=%EF%BF%BD&pct=100%&plus=a+b')).toEqual({ note: '\ufffd', pct: '100%', plus: 'a b' });
  });
});
