/**
 * When the upstream cannot answer, the proxy answers with a code, never a stack: a slow upstream (no response
 * headers within `headers_timeout_ms`) is 504 upstream_timeout, a dead one (a closed port) 502 upstream_unreachable;
 * a response beyond `max_response_bytes` is cut (the caller never holds a complete one), a request beyond
 * `max_request_bytes` is 413 before the upstream sees it. Each of these calls, made with an admitted token, is one
 * token.used event saying what became of it.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleValue } from '../support/prometheus-text.js';
import { codeOf, codeReviewSlackToken, codeReviewToken, proxyEvents, send, startProxyWorld, type AgentToken, type ProxyWorld, type RawResponse } from './proxy-world.js';

const HEADERS_TIMEOUT_MS = 300;
const BODY_TIMEOUT_MS = 300;
const MAX_REQUEST_BYTES = 1024;
const MAX_RESPONSE_BYTES = 1024 * 1024;

let w: ProxyWorld;
let review: AgentToken;
let slackToken: AgentToken;
let deadPort: number;

/** A port that was listening a moment ago and is closed now: connecting to it is refused. */
async function closedPort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1');
  await new Promise<void>((ok) => probe.once('listening', ok));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((ok) => probe.close(() => ok()));
  return port;
}

beforeAll(async () => {
  deadPort = await closedPort();
  w = await startProxyWorld({
    proxy: { max_request_bytes: MAX_REQUEST_BYTES, max_response_bytes: MAX_RESPONSE_BYTES },
    github: { headers_timeout_ms: HEADERS_TIMEOUT_MS, body_timeout_ms: BODY_TIMEOUT_MS },
    slack: { origin: `http://127.0.0.1:${deadPort}`, connect_timeout_ms: 1000 },
  });
  review = await codeReviewToken(w.t, { repo: 'octo/hello' });
  slackToken = await codeReviewSlackToken(w.t);
});
afterAll(async () => {
  await w?.close();
});

const metric = async (labels: Record<string, string>): Promise<number> =>
  sampleValue((await request(w.t.url).get('/metrics').expect(200)).text, 'agentpdp_proxy_requests_total', labels);

/** Nothing of the upstream's or the proxy's internals in a 5xx body: only the code and a generic message. */
function expectOpaque(res: RawResponse, code: string): void {
  expect(res.json).toEqual({ error: { code, message: expect.any(String) } });
  expect((res.json as { error: { message: string } }).error.message).not.toMatch(/\n\s+at |Error|ECONN|UND_ERR|127\.0\.0\.1|localhost/);
  for (const leak of [String(deadPort), String(w.github.port), w.credentials.github, w.credentials.slack]) expect(res.text, leak).not.toContain(leak);
}

describe('a slow upstream', () => {
  it('no response headers in time: 504 upstream_timeout, the call audited as failed', async () => {
    const before = await metric({ integration: 'github', outcome: 'failed', code: 'upstream_timeout' });
    const mark = w.github.received.length;
    const res = await send(w.proxy.url, { path: '/github/repos/octo/hello/contents/slow', token: review.access_token });
    expect(res.status).toBe(504);
    expect(res.headers['cache-control']).toBe('no-store');
    expectOpaque(res, 'upstream_timeout');
    // It did reach the upstream (this is a timeout, not a refusal), with the credential.
    expect(w.github.since(mark).map((r) => r.url)).toEqual(['/repos/octo/hello/contents/slow']);
    const [event] = (await proxyEvents(w.t, review.jti)).slice(-1);
    expect(event?.data).toMatchObject({ path_template: '/repos/{owner}/{repo}/contents/{path+}', outcome: 'failed', code: 'upstream_timeout', upstream_status: null, bytes_out: 0 });
    expect(await metric({ integration: 'github', outcome: 'failed', code: 'upstream_timeout' })).toBe(before + 1);
  });

  it('a body that stalls after the headers: the response is cut, the call audited as failed upstream_timeout', async () => {
    const token = await codeReviewToken(w.t, { repo: 'octo/hello' });
    // The proxy holds one chunk back (the last goes out after the audit commit), and node sends the headers with
    // the first write: a body that stalls after one chunk is a connection reset without a status; after more, a
    // cut 200. Either way the caller holds no complete response.
    const res = await send(w.proxy.url, { path: '/github/repos/octo/hello/contents/stalled', token: token.access_token }).catch((err: NodeJS.ErrnoException) => err);
    if (res instanceof Error) expect(res.code).toBe('ECONNRESET');
    else expect({ status: res.status, complete: res.complete }).toEqual({ status: 200, complete: false });
    const [event] = await proxyEvents(w.t, token.jti);
    expect(event?.data).toMatchObject({ outcome: 'failed', code: 'upstream_timeout', upstream_status: 200 });
  });

  it('the upstream keeps serving other calls meanwhile (the timeout concerned that call only)', async () => {
    expect((await send(w.proxy.url, { path: '/github/repos/octo/hello/pulls/1', token: review.access_token })).status).toBe(200);
  });
});

describe('a dead upstream', () => {
  it('a closed port: 502 upstream_unreachable, the call audited as failed', async () => {
    const before = await metric({ integration: 'slack', outcome: 'failed', code: 'upstream_unreachable' });
    const res = await send(w.proxy.url, { method: 'POST', path: '/slack/chat.postMessage', token: slackToken.access_token, contentType: 'application/json', body: '{"channel":"C0REVIEWS","text":"x"}' });
    expect(res.status).toBe(502);
    expectOpaque(res, 'upstream_unreachable');
    const [event] = (await proxyEvents(w.t, slackToken.jti)).slice(-1);
    expect(event?.data).toMatchObject({ integration: 'slack', path_template: '/chat.postMessage', record: { type: 'channel', id: 'C0REVIEWS' }, outcome: 'failed', code: 'upstream_unreachable', upstream_status: null, bytes_out: 0 });
    expect(await metric({ integration: 'slack', outcome: 'failed', code: 'upstream_unreachable' })).toBe(before + 1);
  });
});

describe('size bounds', () => {
  it('a response beyond max_response_bytes is cut: the caller never holds a complete one', async () => {
    const token = await codeReviewToken(w.t, { repo: 'octo/hello' });
    const res = await send(w.proxy.url, { path: '/github/repos/octo/hello/contents/big.bin', token: token.access_token });
    expect(res.complete).toBe(false);
    expect(res.body.length).toBeLessThan(w.github.bigBody.length);
    const [event] = await proxyEvents(w.t, token.jti);
    expect(event?.data).toMatchObject({ outcome: 'failed', code: 'upstream_response_too_large', upstream_status: 200 });
  });

  it('a request body beyond max_request_bytes: 413 request_too_large, the upstream saw nothing', async () => {
    const mark = w.github.received.length;
    const body = JSON.stringify({ title: 'x', body: 'y'.repeat(MAX_REQUEST_BYTES * 2) });
    const res = await send(w.proxy.url, { method: 'PATCH', path: '/github/repos/octo/hello/issues/1', token: review.access_token, contentType: 'application/json', body });
    expect(res.status).toBe(413);
    expect(codeOf(res)).toBe('request_too_large');
    expect(w.github.since(mark)).toEqual([]);
  });
});
