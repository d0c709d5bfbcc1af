/**
 * What an allowed call through the enforcement proxy does: it reaches the fixed upstream with the provider
 * credential and never the agent's token; the upstream's status, rate-limit headers, pagination and errors come
 * back as they were, its cookies do not; headers a client sends to smuggle a host, a method or a credential never
 * reach the upstream; every call with an admitted token is one token.used event (fields checked, nothing secret in
 * it, the chain still verifies); the metrics move per integration and outcome; no log line holds a token or a
 * credential. Real fakes on loopback (test/support/fake-upstreams.ts) behind the real proxy on a real PDP.
 */
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/server/logger.js';
import { GITHUB_NOT_FOUND, GITHUB_PULLS_LINK, GITHUB_SET_COOKIE, GITHUB_STRIPPED_RESPONSE_HEADERS, SLACK_RATE_LIMITED_CHANNEL } from '../support/fake-upstreams.js';
import { sampleValue } from '../support/prometheus-text.js';
import {
  codeOf,
  codeReviewSlackToken,
  codeReviewToken,
  feedbackPostToken,
  proxyEvents,
  send,
  startProxyWorld,
  type AgentToken,
  type ProxyWorld,
} from './proxy-world.js';

const logLines: string[] = [];
let w: ProxyWorld;
/** Every access token a test obtained: none may reach an upstream, an event or a log line. */
const issued: string[] = [];
let review: AgentToken;

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString('utf8'));
      done();
    },
  });
  w = await startProxyWorld({ logger: createLogger('debug', sink) });
  review = await codeReviewToken(w.t, { repo: 'octo/hello' });
  issued.push(review.access_token);
});
afterAll(async () => {
  await w?.close();
});

/** The one header of a raw header list (name case-insensitive), every value it was sent with. */
const rawValues = (rawHeaders: readonly string[], name: string): string[] =>
  rawHeaders.flatMap((v, i) => (i % 2 === 0 && v.toLowerCase() === name ? [rawHeaders[i + 1] as string] : []));

describe('an allowed call', () => {
  it('reaches GitHub with the provider credential and without the agent token, and comes back as GitHub answered', async () => {
    const mark = w.github.received.length;
    const res = await send(w.proxy.url, { path: '/github/repos/octo/hello/pulls?state=open&per_page=5', token: review.access_token, headers: [['Accept', 'application/vnd.github+json']] });
    expect(res.status).toBe(200);
    expect(res.json).toEqual([{ number: 1, title: 'Fix the build', state: 'open' }]);

    const seen = w.github.since(mark);
    expect(seen).toHaveLength(1);
    const [call] = seen;
    expect(call?.method).toBe('GET');
    expect(call?.url).toBe('/repos/octo/hello/pulls?state=open&per_page=5');
    expect(rawValues(call?.rawHeaders ?? [], 'authorization')).toEqual([`Bearer ${w.credentials.github}`]);
    expect(call?.headers.accept).toBe('application/vnd.github+json');
    expect(w.github.transcript(seen)).not.toContain(review.access_token);
    // Not even a piece of it: the signature alone would let the upstream replay nothing, but it has no business there.
    expect(w.github.transcript(seen)).not.toContain(review.access_token.split('.')[2]);

    // GitHub's rate limit and pagination come back; its cookies do not; the credential never does.
    expect(res.headers).toMatchObject({ 'x-ratelimit-limit': '5000', 'x-ratelimit-resource': 'core', link: GITHUB_PULLS_LINK });
    expect(res.headers['x-ratelimit-remaining']).toMatch(/^\d+$/);
    expect(res.headers['x-ratelimit-used']).toMatch(/^\d+$/);
    expect(res.headers['x-ratelimit-reset']).toBe('1893456000');
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(res.rawHeaders.join('\n')).not.toContain(GITHUB_SET_COOKIE.split(';')[0]);
    expect(res.rawHeaders.join('\n') + res.text).not.toContain(w.credentials.github);
  });

  it('preserves the upstream status and its error body byte for byte (a 404 is GitHub\'s, not ours)', async () => {
    const mark = w.github.received.length;
    const res = await send(w.proxy.url, { path: '/github/repos/octo/hello/issues/404', token: review.access_token });
    expect(res.status).toBe(404);
    expect(res.text).toBe(GITHUB_NOT_FOUND);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers['x-ratelimit-limit']).toBe('5000');
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(w.github.since(mark)).toHaveLength(1);
  });

  it('reaches Slack with its credential; the body forwarded is the one whose channel was checked', async () => {
    const token = await feedbackPostToken(w.t, 'C0GENERAL');
    issued.push(token.access_token);
    const mark = w.slack.received.length;
    const body = JSON.stringify({ channel: 'C0GENERAL', text: 'Weekly feedback digest' });
    const res = await send(w.proxy.url, { method: 'POST', path: '/slack/chat.postMessage', token: token.access_token, contentType: 'application/json; charset=utf-8', body });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ ok: true, channel: 'C0GENERAL' });
    const seen = w.slack.since(mark);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.method).toBe('POST');
    expect(seen[0]?.url).toBe('/api/chat.postMessage');
    expect(rawValues(seen[0]?.rawHeaders ?? [], 'authorization')).toEqual([`Bearer ${w.credentials.slack}`]);
    expect(JSON.parse(seen[0]?.body.toString('utf8') ?? '')).toEqual({ channel: 'C0GENERAL', text: 'Weekly feedback digest' });
    expect(seen[0]?.headers['content-length']).toBe(String(seen[0]?.body.length));
    expect(w.slack.transcript(seen)).not.toContain(token.access_token);

    const [event] = (await proxyEvents(w.t, token.jti)).slice(-1);
    expect(event?.data).toMatchObject({ integration: 'slack', method: 'POST', path_template: '/chat.postMessage', scope: 'chat:write', record: { type: 'channel', id: 'C0GENERAL' }, outcome: 'forwarded', upstream_status: 200, bytes_in: seen[0]?.body.length });
  });

  it('Expect: 100-continue: a refused upload gets its refusal before sending a byte; an admitted one gets 100 Continue, then the answer', async () => {
    const token = await feedbackPostToken(w.t, 'C0GENERAL');
    issued.push(token.access_token);
    const port = Number(new URL(w.proxy.url).port);
    /** Sends the head, waits for the first answer line, then (when it is 100) the body; resolves with everything read. */
    const exchangeExpecting = (path: string, body: string, announced = Buffer.byteLength(body), bearer = token.access_token): Promise<{ first: string; all: string }> =>
      new Promise((resolve, reject) => {
        const socket = connect(port, '127.0.0.1');
        let all = '';
        let first = '';
        socket.setEncoding('latin1');
        socket.on('data', (chunk: string) => {
          all += chunk;
          if (first === '' && all.includes('\r\n')) {
            first = all.slice(0, all.indexOf('\r\n'));
            if (first.startsWith('HTTP/1.1 100')) socket.write(body);
          }
          if (/\r\n\r\n[\s\S]*\}$/.test(all) && !first.startsWith('HTTP/1.1 100 ') || (first.startsWith('HTTP/1.1 100') && /HTTP\/1\.1 200[\s\S]*\}$/.test(all))) socket.end();
        });
        socket.on('end', () => resolve({ first, all }));
        socket.on('error', reject);
        socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${bearer}\r\nContent-Type: application/json\r\nContent-Length: ${announced}\r\nExpect: 100-continue\r\n\r\n`);
      });
    const mark = w.slack.received.length;
    // A body streamed to the upstream (the record is not read from it): 100 Continue once the call is admitted too.
    const lister = await codeReviewSlackToken(w.t);
    issued.push(lister.access_token);
    const streamed = await exchangeExpecting('/slack/conversations.list', '{"limit":5}', undefined, lister.access_token);
    expect(streamed.first).toBe('HTTP/1.1 100 Continue');
    expect(streamed.all).toMatch(/HTTP\/1\.1 200 /);
    const refused = await exchangeExpecting('/slack/admin.users.remove', '{}', 20_000_000);
    expect(refused.first).toMatch(/^HTTP\/1\.1 4\d\d /);
    expect(refused.all).not.toContain('100 Continue');
    const body = JSON.stringify({ channel: 'C0GENERAL', text: 'after a 100' });
    const admitted = await exchangeExpecting('/slack/chat.postMessage', body);
    expect(admitted.first).toBe('HTTP/1.1 100 Continue');
    expect(admitted.all).toMatch(/HTTP\/1\.1 200 /);
    const seen = w.slack.since(mark);
    expect(seen.map((c) => c.url)).toEqual(['/api/conversations.list', '/api/chat.postMessage']);
    expect(seen[0]?.body.toString('utf8')).toBe('{"limit":5}');
    expect(JSON.parse(seen[1]?.body.toString('utf8') ?? '')).toMatchObject({ channel: 'C0GENERAL' });
  });

  it('forwards a form body re-encoded from what was checked, and reads a Slack GET channel from the query', async () => {
    const token = await codeReviewSlackToken(w.t);
    issued.push(token.access_token);
    const mark = w.slack.received.length;
    const posted = await send(w.proxy.url, { method: 'POST', path: '/slack/chat.postMessage', token: token.access_token, contentType: 'application/x-www-form-urlencoded', body: 'channel=C0REVIEWS&text=LGTM%20%F0%9F%91%8D' });
    expect(posted.status).toBe(200);
    const history = await send(w.proxy.url, { path: '/slack/conversations.history?channel=C0REVIEWS&limit=10', token: token.access_token });
    expect(history.status).toBe(200);
    expect(history.json).toMatchObject({ ok: true, channel: 'C0REVIEWS' });
    const seen = w.slack.since(mark);
    expect(seen.map((r) => `${r.method} ${r.url}`)).toEqual(['POST /api/chat.postMessage', 'GET /api/conversations.history?channel=C0REVIEWS&limit=10']);
    expect(Object.fromEntries(new URLSearchParams(seen[0]?.body.toString('utf8')))).toEqual({ channel: 'C0REVIEWS', text: 'LGTM 👍' });
    expect((await proxyEvents(w.t, token.jti)).map((e) => e.data.record)).toEqual([
      { type: 'channel', id: 'C0REVIEWS' },
      { type: 'channel', id: 'C0REVIEWS' },
    ]);
  });

  it('keeps its connection to the upstream alive across calls (one pooled connection for calls in sequence)', async () => {
    const mark = w.github.received.length;
    for (let i = 0; i < 3; i++) expect((await send(w.proxy.url, { path: '/github/repos/octo/hello', token: review.access_token })).status).toBe(200);
    const ports = new Set(w.github.since(mark).map((r) => r.remotePort));
    expect(ports.size).toBe(1);
  });

  it('a GET with a body forwards no body', async () => {
    const mark = w.github.received.length;
    const res = await send(w.proxy.url, { path: '/github/repos/octo/hello', token: review.access_token, contentType: 'application/json', body: '{"smuggled":"DELETE /repos/octo/hello"}' });
    expect(res.status).toBe(200);
    const [call] = w.github.since(mark);
    expect(call?.body.length).toBe(0);
    expect(call?.headers['content-length']).toBeUndefined();
    expect(call?.headers['transfer-encoding']).toBeUndefined();
  });
});

describe('the headers of the upstream\'s answer', () => {
  it('keep GitHub\'s rate limit; lose hop-by-hop headers, the one Connection names, and those describing the credential', async () => {
    const res = await send(w.proxy.url, { path: '/github/repos/octo/hello/contents/hop-by-hop', token: review.access_token });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ name: 'hop-by-hop', size: 0 });
    expect(res.headers).toMatchObject({ 'x-ratelimit-limit': '5000', 'x-ratelimit-reset': '1893456000', 'x-ratelimit-resource': 'core', 'content-type': 'application/json; charset=utf-8' });
    expect(res.headers['x-ratelimit-remaining']).toMatch(/^\d+$/);
    expect(res.headers['x-github-request-id']).toMatch(/^F00D:\d+$/);
    // The proxy frames its own answer (its Connection, Transfer-Encoding): none of the upstream's values may show.
    for (const [name, value] of Object.entries(GITHUB_STRIPPED_RESPONSE_HEADERS)) {
      expect(rawValues(res.rawHeaders, name), name).toEqual([]);
      expect(res.rawHeaders.join('\n'), name).not.toContain(value);
    }
    expect(res.rawHeaders.join('\n').toLowerCase()).not.toContain('x-upstream-hop');
    expect(rawValues(res.rawHeaders, 'set-cookie')).toEqual([]);
  });

  it('keep Slack\'s 429 and its Retry-After, with Slack\'s own body', async () => {
    const token = await codeReviewSlackToken(w.t);
    issued.push(token.access_token);
    const mark = w.slack.received.length;
    const res = await send(w.proxy.url, { path: `/slack/conversations.history?channel=${SLACK_RATE_LIMITED_CHANNEL}`, token: token.access_token });
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toBe('30');
    expect(res.json).toEqual({ ok: false, error: 'ratelimited' });
    expect(codeOf(res)).toBeUndefined(); // Slack's answer, not a refusal of the proxy
    expect(w.slack.since(mark)).toHaveLength(1);
    const [event] = (await proxyEvents(w.t, token.jti)).slice(-1);
    expect(event?.data).toMatchObject({ path_template: '/conversations.history', outcome: 'forwarded', code: null, upstream_status: 429 });
  });
});

describe('headers a client sends to smuggle a host, a method or a credential', () => {
  const SMUGGLED: Array<[string, string]> = [
    ['Host', 'evil.example.com'],
    ['X-Forwarded-Host', 'evil.example.com'],
    ['X-Forwarded-For', '10.0.0.1'],
    ['X-Forwarded-Proto', 'https'],
    ['Forwarded', 'for=10.0.0.1;host=evil.example.com;proto=https'],
    ['X-Real-IP', '10.0.0.1'],
    ['X-Original-URL', '/orgs/octo/members'],
    ['X-Rewrite-URL', '/orgs/octo/members'],
    ['X-HTTP-Method-Override', 'DELETE'],
    ['X-HTTP-Method', 'DELETE'],
    ['X-Method-Override', 'DELETE'],
    ['Cookie', 'user_session=stolen-session; logged_in=yes'],
    ['Proxy-Authorization', 'Basic c211Z2dsZWQ6Y3JlZGVudGlhbA=='],
    ['X-Custom-Header', 'not on the allowlist'],
  ];

  it('are stripped: the upstream sees none of them, its own Host, and one Authorization, the credential', async () => {
    const mark = w.github.received.length;
    const res = await send(w.proxy.url, {
      path: '/github/repos/octo/hello/pulls/7',
      token: review.access_token,
      headers: [...SMUGGLED, ['Accept', 'application/vnd.github+json'], ['X-GitHub-Api-Version', '2022-11-28'], ['User-Agent', 'code-review-agent/1.0']],
    });
    expect(res.status).toBe(200);
    const seen = w.github.since(mark);
    expect(seen).toHaveLength(1);
    const call = seen[0];
    expect(call?.method).toBe('GET');
    expect(call?.url).toBe('/repos/octo/hello/pulls/7');
    expect(rawValues(call?.rawHeaders ?? [], 'host')).toEqual([`127.0.0.1:${w.github.port}`]);
    expect(rawValues(call?.rawHeaders ?? [], 'authorization')).toEqual([`Bearer ${w.credentials.github}`]);
    for (const [name] of SMUGGLED.filter(([n]) => n !== 'Host' && n !== 'Authorization')) {
      expect(rawValues(call?.rawHeaders ?? [], name.toLowerCase()), name).toEqual([]);
    }
    const transcript = w.github.transcript(seen);
    for (const needle of ['evil.example.com', '10.0.0.1', '/orgs/octo/members', 'DELETE', 'stolen-session', 'c211Z2dsZWQ6Y3JlZGVudGlhbA', 'ghp_SmuggledSecondCredential', review.access_token]) {
      expect(transcript, needle).not.toContain(needle);
    }
    // The allowlisted ones do cross.
    expect(call?.headers).toMatchObject({ accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28', 'user-agent': 'code-review-agent/1.0' });
  });

  it('an allowlisted header the caller names in Connection is hop-by-hop for that call: not forwarded (RFC 9110 §7.6.1)', async () => {
    const mark = w.github.received.length;
    const res = await send(w.proxy.url, {
      path: '/github/repos/octo/hello/pulls/7',
      token: review.access_token,
      headers: [['Connection', 'keep-alive, X-GitHub-Api-Version , accept'], ['Accept', 'application/vnd.github+json'], ['X-GitHub-Api-Version', '2022-11-28'], ['User-Agent', 'code-review-agent/1.0']],
    });
    expect(res.status).toBe(200);
    const call = w.github.since(mark)[0];
    expect(rawValues(call?.rawHeaders ?? [], 'x-github-api-version')).toEqual([]);
    expect(rawValues(call?.rawHeaders ?? [], 'accept')).not.toContain('application/vnd.github+json');
    expect(call?.headers['user-agent']).toBe('code-review-agent/1.0');
  });

  it('Connection naming a header that describes the body is refused: the upstream could read other bytes than those judged', async () => {
    const token = await feedbackPostToken(w.t, 'C0GENERAL');
    issued.push(token.access_token);
    const mark = w.slack.received.length;
    // Judged as JSON (channel C0GENERAL); forwarded without its Content-Type, a form reading would say C0OTHER.
    const body = JSON.stringify({ channel: 'C0GENERAL', text: 'x', z: '&channel=C0OTHER&y=' });
    for (const named of ['content-type', 'Content-Encoding, keep-alive', 'content-length']) {
      const res = await send(w.proxy.url, { method: 'POST', path: '/slack/chat.postMessage', token: token.access_token, contentType: 'application/json', body, headers: [['Connection', named]] });
      expect(res.status, named).toBe(400);
      expect(codeOf(res)).toBe('ambiguous_request');
    }
    expect(w.slack.since(mark)).toEqual([]);
  });

  it('a second credential beside the token, before or after it, is not taken for the token: refused, nothing forwarded', async () => {
    const mark = w.github.received.length;
    for (const headers of [
      [['Authorization', 'token ghp_SmuggledSecondCredential'], ['Authorization', `Bearer ${review.access_token}`]],
      [['Authorization', `Bearer ${review.access_token}`], ['Authorization', 'token ghp_SmuggledSecondCredential']],
    ] as Array<Array<[string, string]>>) {
      const res = await send(w.proxy.url, { path: '/github/repos/octo/hello/pulls/7', headers });
      expect(res.status).toBe(400);
      expect(codeOf(res)).toBe('token_malformed');
    }
    expect(w.github.since(mark)).toEqual([]);
  });

  it('an absolute-form request target cannot name the upstream host', async () => {
    const mark = w.github.received.length;
    const res = await send(w.proxy.url, { path: 'http://evil.example.com/github/repos/octo/hello', token: review.access_token });
    expect(res.status).toBe(404);
    expect(codeOf(res)).toBe('integration_unknown');
    expect(w.github.since(mark)).toEqual([]);
  });
});

describe('the audit trail of proxied calls', () => {
  it('one token.used event per call with an admitted token, with what the call was, and none for a token not admitted', async () => {
    const token = await codeReviewToken(w.t, { repo: 'octo/hello' });
    issued.push(token.access_token);
    const slackToken = await codeReviewSlackToken(w.t);
    issued.push(slackToken.access_token);
    const before = (await proxyEvents(w.t)).length;
    const calls = [
      { method: 'GET', path: '/github/repos/octo/hello/pulls/1', status: 200 },
      { method: 'GET', path: '/github/repos/octo/hello/issues/404', status: 404 },
      { method: 'PUT', path: '/github/repos/octo/hello/contents/src/app.ts', status: 403, body: '{"message":"push","content":"Ym9vbQ=="}' },
      { method: 'GET', path: '/github/repos/octo/other', status: 403 },
      { method: 'GET', path: '/github/orgs/octo/members', status: 403 },
      { method: 'GET', path: '/github/repos/octo/hello/../../orgs/octo', status: 400 },
      { method: 'POST', path: '/github/graphql', status: 403, body: '{"query":"{ viewer { login } }"}' },
    ];
    for (const c of calls) {
      const res = await send(w.proxy.url, { method: c.method, path: c.path, token: token.access_token, ...(c.body === undefined ? {} : { body: c.body, contentType: 'application/json' }) });
      expect(res.status, c.path).toBe(c.status);
    }
    // Tokens not admitted (none, wrong audience) leave no token.used event: there is no token to account it to.
    expect((await send(w.proxy.url, { path: '/github/repos/octo/hello' })).status).toBe(401);
    expect((await send(w.proxy.url, { path: '/github/repos/octo/hello', token: slackToken.access_token })).status).toBe(401);

    const events = await proxyEvents(w.t, token.jti);
    expect(events.map((e) => e.data)).toEqual([
      { action: 'proxy', integration: 'github', method: 'GET', path_template: '/repos/{owner}/{repo}/pulls/{pull_number}', scope: 'pr:read', record: { type: 'repo', id: 'octo/hello' }, outcome: 'forwarded', code: null, upstream_status: 200, bytes_in: 0, bytes_out: expect.any(Number), latency_ms: expect.any(Number) },
      { action: 'proxy', integration: 'github', method: 'GET', path_template: '/repos/{owner}/{repo}/issues/{issue_number}', scope: 'issues:read', record: { type: 'repo', id: 'octo/hello' }, outcome: 'forwarded', code: null, upstream_status: 404, bytes_in: 0, bytes_out: Buffer.byteLength(GITHUB_NOT_FOUND), latency_ms: expect.any(Number) },
      { action: 'proxy', integration: 'github', method: 'PUT', path_template: '/repos/{owner}/{repo}/contents/{path+}', scope: 'repo:write', record: { type: 'repo', id: 'octo/hello' }, outcome: 'refused', code: 'token_scope_insufficient', upstream_status: null, bytes_in: 0, bytes_out: 0, latency_ms: expect.any(Number) },
      { action: 'proxy', integration: 'github', method: 'GET', path_template: '/repos/{owner}/{repo}', scope: 'repo:read', record: { type: 'repo', id: 'octo/other' }, outcome: 'refused', code: 'token_wrong_resource', upstream_status: null, bytes_in: 0, bytes_out: 0, latency_ms: expect.any(Number) },
      { action: 'proxy', integration: 'github', method: 'GET', path_template: '', scope: null, record: null, outcome: 'refused', code: 'endpoint_not_mapped', upstream_status: null, bytes_in: 0, bytes_out: 0, latency_ms: expect.any(Number) },
      { action: 'proxy', integration: 'github', method: 'GET', path_template: '', scope: null, record: null, outcome: 'refused', code: 'path_not_canonical', upstream_status: null, bytes_in: 0, bytes_out: 0, latency_ms: expect.any(Number) },
      { action: 'proxy', integration: 'github', method: 'POST', path_template: '', scope: null, record: null, outcome: 'refused', code: 'endpoint_not_mapped', upstream_status: null, bytes_in: 0, bytes_out: 0, latency_ms: expect.any(Number) },
    ]);
    for (const e of events) {
      expect(e).toMatchObject({ type: 'token.used', jti: token.jti, task_id: token.task_id, agent_id: 'code-review-agent', caller_id: 'proxy' });
      expect(Number.isSafeInteger(e.data.latency_ms) && e.data.latency_ms >= 0).toBe(true);
    }
    expect(events[0]?.data.bytes_out).toBeGreaterThan(0);
    expect((await proxyEvents(w.t)).length - before).toBe(calls.length);
  });

  it('no event holds a token, a credential, a query string or a body, and the chain verifies', async () => {
    const token = await codeReviewSlackToken(w.t);
    issued.push(token.access_token);
    const QUERY_MARK = 'q-marker-4f1d';
    const BODY_MARK = 'body-marker-9c2e';
    expect((await send(w.proxy.url, { path: `/github/repos/octo/hello/pulls?per_page=3&cursor=${QUERY_MARK}`, token: review.access_token })).status).toBe(200);
    expect((await send(w.proxy.url, { path: `/slack/conversations.history?channel=C0REVIEWS&oldest=${QUERY_MARK}`, token: token.access_token })).status).toBe(200);
    expect((await send(w.proxy.url, { method: 'POST', path: '/slack/chat.postMessage', token: token.access_token, contentType: 'application/json', body: JSON.stringify({ channel: 'C0REVIEWS', text: BODY_MARK }) })).status).toBe(200);

    const all: unknown[] = [];
    for await (const e of w.t.pdp.store.iterateEvents()) all.push(e);
    const text = JSON.stringify(all);
    for (const secret of [...issued, w.credentials.github, w.credentials.slack, QUERY_MARK, BODY_MARK, 'per_page', 'cursor=']) {
      expect(text.includes(secret), `the trail holds ${secret.slice(0, 12)}…`).toBe(false);
    }
    expect(await w.t.pdp.store.verifyStoredChain()).toMatchObject({ ok: true });
  });

  it('no log line holds a token or a credential', () => {
    const text = logLines.join('');
    expect(logLines.length).toBeGreaterThan(0);
    for (const secret of [...issued, w.credentials.github, w.credentials.slack]) expect(text.includes(secret)).toBe(false);
  });
});

describe('metrics', () => {
  const count = async (labels: Record<string, string>): Promise<number> =>
    sampleValue((await request(w.t.url).get('/metrics').expect(200)).text, 'agentpdp_proxy_requests_total', labels);

  it('agentpdp_proxy_requests_total moves per integration, outcome and code', async () => {
    const slackToken = await codeReviewSlackToken(w.t);
    const series = [
      { integration: 'github', outcome: 'forwarded', code: '200' },
      { integration: 'github', outcome: 'forwarded', code: '404' },
      { integration: 'github', outcome: 'refused', code: 'endpoint_not_mapped' },
      { integration: 'github', outcome: 'refused', code: 'token_missing' },
      { integration: 'slack', outcome: 'forwarded', code: '200' },
      { integration: 'slack', outcome: 'refused', code: 'ambiguous_request' },
    ];
    const before = await Promise.all(series.map(count));
    expect((await send(w.proxy.url, { path: '/github/repos/octo/hello', token: review.access_token })).status).toBe(200);
    expect((await send(w.proxy.url, { path: '/github/repos/octo/hello', token: review.access_token })).status).toBe(200);
    expect((await send(w.proxy.url, { path: '/github/repos/octo/hello/issues/404', token: review.access_token })).status).toBe(404);
    expect((await send(w.proxy.url, { path: '/github/user', token: review.access_token })).status).toBe(403);
    expect((await send(w.proxy.url, { path: '/github/repos/octo/hello' })).status).toBe(401);
    expect((await send(w.proxy.url, { path: '/slack/conversations.info?channel=C0REVIEWS', token: slackToken.access_token })).status).toBe(200);
    expect((await send(w.proxy.url, { path: '/slack/conversations.info?channel=C0REVIEWS&channel=C0OTHER', token: slackToken.access_token })).status).toBe(400);
    const after = await Promise.all(series.map(count));
    expect(after.map((v, i) => v - (before[i] as number))).toEqual([2, 1, 1, 1, 1, 1]);
  });
});
