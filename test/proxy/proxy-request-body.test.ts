/**
 * A request body's length is known before anything leaves: the proxy judges a body's size from its Content-Length,
 * so a body without one (`Transfer-Encoding: chunked`) on a method that carries a body is refused with 411
 * `length_required` before the upstream sees a byte, audited like any refusal of an admitted token. Without that
 * rule a chunked body whose record is not read from it would stream to the upstream, with the provider credential,
 * until it passed max_request_bytes. GET, HEAD and OPTIONS keep forwarding no body at all. A body that announces its
 * length still goes through, its bytes and length as sent.
 *
 * The writes need a token that may write: an agent `release-bot` (repo:write on GitHub; the test PEP may ask for it)
 * is added to the world's copy of the shipped policies.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeOf, codeReviewSlackToken, codeReviewToken, feedbackPostToken, obtainToken, proxyEvents, send, startProxyWorld, type AgentToken, type ProxyWorld } from './proxy-world.js';

const WRITER_POLICY = `agent_policy:
  id: release-bot
  description: Writes files of one repository through the enforcement proxy (test/proxy/proxy-request-body.test.ts).
  integrations:
    github:
      max_scope: [repo:read, repo:write]
  token_ttl: 600
`;

let w: ProxyWorld;
/** repo:write on octo/hello. */
let writer: AgentToken;
/** Slack channels:read, bound to no channel: conversations.list (POST) names no record, so its body is streamed. */
let slackAny: AgentToken;
/** Slack chat:write on C0GENERAL: chat.postMessage reads its channel from the body. */
let slackGeneral: AgentToken;
/** GitHub reads on octo/hello. */
let review: AgentToken;

beforeAll(async () => {
  w = await startProxyWorld();
  writeFileSync(join(w.t.dir, 'policies', 'agents', 'release-bot.yaml'), WRITER_POLICY, { mode: 0o644 });
  await w.t.pdp.reload();
  writer = await obtainToken(w.t, { agent: 'release-bot', integration: 'github', scopes: ['repo:write'], resource: { type: 'repo', id: 'octo/hello' } });
  slackAny = await codeReviewSlackToken(w.t);
  slackGeneral = await feedbackPostToken(w.t, 'C0GENERAL');
  review = await codeReviewToken(w.t, { repo: 'octo/hello' });
});
afterAll(async () => {
  await w?.close();
});

const CONTENT = JSON.stringify({ message: 'docs: update', content: Buffer.from('# hello\n').toString('base64'), branch: 'main' });

describe('a body of unknown length', () => {
  it.each([
    { note: 'a GitHub PUT whose record is in the path (its body would stream)', method: 'PUT', path: '/github/repos/octo/hello/contents/README.md', token: () => writer, contentType: 'application/json', body: CONTENT },
    { note: 'a GitHub merge (PUT, its body would stream)', method: 'PUT', path: '/github/repos/octo/hello/pulls/1/merge', token: () => writer, contentType: 'application/json', body: '{"merge_method":"squash"}' },
    { note: 'a Slack POST naming no record (its body would stream)', method: 'POST', path: '/slack/conversations.list', token: () => slackAny, contentType: 'application/x-www-form-urlencoded', body: 'limit=10&types=public_channel' },
    { note: 'a Slack POST whose record is read from the body', method: 'POST', path: '/slack/chat.postMessage', token: () => slackGeneral, contentType: 'application/x-www-form-urlencoded', body: 'channel=C0GENERAL&text=chunked' },
  ])('$note, chunked: 411 length_required, audited, nothing upstream', async ({ method, path, token, contentType, body }) => {
    const t = token();
    const marks = [w.github.received.length, w.slack.received.length] as const;
    const res = await send(w.proxy.url, { method, path, token: t.access_token, contentType, body, chunked: true });
    expect({ status: res.status, code: codeOf(res), field: (res.json as { error?: { field?: string } }).error?.field }).toEqual({ status: 411, code: 'length_required', field: 'body' });
    expect(res.headers['cache-control']).toBe('no-store');
    expect(w.github.since(marks[0]), 'GitHub saw it').toEqual([]);
    expect(w.slack.since(marks[1]), 'Slack saw it').toEqual([]);
    const [event] = (await proxyEvents(w.t, t.jti)).slice(-1);
    expect(event?.data).toMatchObject({ method, outcome: 'refused', code: 'length_required', upstream_status: null, bytes_in: 0 });
  });

  it('a chunked GET still goes through, without its body (GET, HEAD and OPTIONS forward none)', async () => {
    const mark = w.github.received.length;
    const res = await send(w.proxy.url, { path: '/github/repos/octo/hello', token: review.access_token, contentType: 'application/json', body: '{"smuggled":"DELETE /repos/octo/hello"}', chunked: true });
    expect(res.status).toBe(200);
    const seen = w.github.since(mark);
    expect(seen.map((r) => [r.method, r.url, r.body.length, r.headers['transfer-encoding'], r.headers['content-length']])).toEqual([['GET', '/repos/octo/hello', 0, undefined, undefined]]);
  });
});

describe('a body that announces its length', () => {
  it('a PUT with Content-Length reaches GitHub whole, with the credential, its length as sent', async () => {
    const mark = w.github.received.length;
    const res = await send(w.proxy.url, { method: 'PUT', path: '/github/repos/octo/hello/contents/README.md', token: writer.access_token, contentType: 'application/json', body: CONTENT });
    expect(res.status).toBe(201);
    expect(res.json).toEqual({ received: Buffer.byteLength(CONTENT) });
    const seen = w.github.since(mark);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: 'PUT', url: '/repos/octo/hello/contents/README.md' });
    expect(seen[0]?.body.toString('utf8')).toBe(CONTENT);
    expect(seen[0]?.headers).toMatchObject({ authorization: `Bearer ${w.credentials.github}`, 'content-length': String(Buffer.byteLength(CONTENT)) });
    expect(seen[0]?.headers['transfer-encoding']).toBeUndefined();
    const [event] = (await proxyEvents(w.t, writer.jti)).slice(-1);
    expect(event?.data).toMatchObject({ method: 'PUT', scope: 'repo:write', record: { type: 'repo', id: 'octo/hello' }, outcome: 'forwarded', upstream_status: 201, bytes_in: Buffer.byteLength(CONTENT) });
  });

  it('a Slack POST naming no record, with Content-Length, streams through', async () => {
    const mark = w.slack.received.length;
    const res = await send(w.proxy.url, { method: 'POST', path: '/slack/conversations.list', token: slackAny.access_token, contentType: 'application/x-www-form-urlencoded', body: 'limit=10' });
    expect(res.status).toBe(200);
    expect(w.slack.since(mark).map((r) => [r.method, r.url, r.body.toString('utf8')])).toEqual([['POST', '/api/conversations.list', 'limit=10']]);
  });
});
