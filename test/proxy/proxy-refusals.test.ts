/**
 * Every kind of refusal of the enforcement proxy reaches nothing upstream: the fake GitHub and the fake Slack record
 * every request, and after each refused call they have recorded nothing new. Each refusal answers its status and
 * code (`{ error: { code } }`, Cache-Control: no-store, never the token). Revocation and task completion are seen
 * within a second (the proxy polls the store's revocation feed every 50 ms here), and a proxy that cannot read that
 * feed refuses every call (503 revocation_unknown) once its list is older than its bound. Path tricks (dot segments
 * raw or encoded, encoded slashes, backslashes, double encoding) and duplicate query or body keys cannot reach an
 * unmapped endpoint or another record.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPdpProxy } from '../../src/main.js';
import type { AccessTokenClaims } from '../../src/issuer/token-claims.js';
import { signAccessToken } from '../../src/issuer/token-issuer.js';
import { startEnforcementProxy } from '../../src/proxy/index.js';
import { openStore } from '../../src/store/index.js';
import { auth, KEYS } from '../support/pdp-harness.js';
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
  type RawResponse,
} from './proxy-world.js';

let w: ProxyWorld;
/** Bound to octo/hello: repo:read, pr:read, issues:read. */
let review: AgentToken;
/** The code-review agent on Slack, bound to no channel. */
let slackAny: AgentToken;
/** The feedback workflow on Slack: chat:write on C0GENERAL only. */
let slackGeneral: AgentToken;

beforeAll(async () => {
  w = await startProxyWorld();
  review = await codeReviewToken(w.t, { repo: 'octo/hello' });
  slackAny = await codeReviewSlackToken(w.t);
  slackGeneral = await feedbackPostToken(w.t, 'C0GENERAL');
});
afterAll(async () => {
  await w?.close();
});

type Call = Parameters<typeof send>[1];

/** Sends a call that must be refused; asserts its answer and that neither upstream saw anything. */
async function refused(call: Call, status: number, code: string): Promise<RawResponse> {
  const marks = [w.github.received.length, w.slack.received.length] as const;
  const res = await send(w.proxy.url, call);
  expect({ status: res.status, code: codeOf(res) }, `${call.method ?? 'GET'} ${call.path}: ${res.text}`).toEqual({ status, code });
  expect(res.headers['cache-control']).toBe('no-store');
  if (call.token !== undefined) expect(res.text).not.toContain(call.token);
  expect(w.github.since(marks[0]), 'GitHub saw it').toEqual([]);
  expect(w.slack.since(marks[1]), 'Slack saw it').toEqual([]);
  return res;
}

/**
 * Calls until the proxy refuses (each call before that is forwarded). The bound is the cache's own, counted in reads of
 * the revocation feed rather than in milliseconds (revocation-cache.ts): a call sent once two reads have completed
 * since the revocation committed must be refused (the reads come every `revocation_poll_ms`, at most 500 ms by config).
 */
async function refusedWithin(call: Call, code: string): Promise<void> {
  const start = w.proxy.revocations.reads;
  for (;;) {
    const marks = [w.github.received.length, w.slack.received.length] as const;
    const readsBefore = w.proxy.revocations.reads - start;
    const res = await send(w.proxy.url, call);
    if (res.status !== 200) {
      expect({ status: res.status, code: codeOf(res) }).toEqual({ status: 401, code });
      expect(w.github.since(marks[0])).toEqual([]);
      expect(w.slack.since(marks[1])).toEqual([]);
      return;
    }
    expect(readsBefore, 'still forwarded once two reads of the revocation feed had completed after the revocation').toBeLessThanOrEqual(1);
    await new Promise((ok) => setTimeout(ok, 10));
  }
}

describe('token refusals', () => {
  it('no token: 401 token_missing with a Bearer challenge', async () => {
    const res = await refused({ path: '/github/repos/octo/hello/pulls/1' }, 401, 'token_missing');
    expect(res.headers['www-authenticate']).toBe('Bearer realm="agent-pdp proxy github"');
  });

  it('a token that is not a bearer token, or not a JWT: refused', async () => {
    await refused({ path: '/github/repos/octo/hello', headers: [['Authorization', `Basic ${Buffer.from('x:y').toString('base64')}`]] }, 401, 'token_missing');
    await refused({ path: '/github/repos/octo/hello', token: 'not-a-jwt' }, 401, 'token_invalid');
    // Two Authorization headers, the first a good token: no token is trusted (node would keep only the first).
    const twice = await refused({ path: '/github/repos/octo/hello', token: review.access_token, headers: [['Authorization', 'Bearer other']] }, 400, 'token_malformed');
    expect(twice.headers['www-authenticate']).toBeUndefined();
    // Bearer with two words, or with nothing: malformed, as the resource-server middleware answers them.
    await refused({ path: '/github/repos/octo/hello', headers: [['Authorization', `Bearer ${review.access_token} extra`]] }, 400, 'token_malformed');
    await refused({ path: '/github/repos/octo/hello', headers: [['Authorization', 'Bearer']] }, 400, 'token_malformed');
  });

  it('a token whose payload was changed (another repository, more scopes): 401 token_invalid', async () => {
    const [header, payload, signature] = review.access_token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    const widened = { ...claims, scope: 'repo:read repo:write pr:read pr:write', authorization_details: [{ type: 'github', actions: ['pr:write', 'repo:write'] }] };
    const forged = `${header}.${Buffer.from(JSON.stringify(widened)).toString('base64url')}.${signature}`;
    await refused({ method: 'PUT', path: '/github/repos/octo/other/pulls/1/merge', token: forged }, 401, 'token_invalid');
  });

  it('a real token widened (another repository, more scopes, a later exp) and re-signed with the PDP\'s own key: 401 token_invalid', async () => {
    // What a leaked signing key could do with a token the store did issue: the proxy compares the claims with it.
    const claims = JSON.parse(Buffer.from(review.access_token.split('.')[1] as string, 'base64url').toString('utf8')) as AccessTokenClaims;
    const detail = claims.authorization_details[0] as AccessTokenClaims['authorization_details'][number];
    const variants: AccessTokenClaims[] = [
      { ...claims, authorization_details: [{ ...detail, identifier: 'octo/other' }] },
      { ...claims, scope: [...detail.actions, 'pr:write'].sort().join(' '), authorization_details: [{ ...detail, actions: [...detail.actions, 'pr:write'].sort() }] },
      { ...claims, exp: claims.exp + 3600 },
    ];
    for (const widened of variants) {
      const forged = (await signAccessToken(w.t.pdp.keys.ring, widened)).access_token;
      await refused({ path: '/github/repos/octo/other', token: forged }, 401, 'token_invalid');
      await refused({ path: '/github/repos/octo/hello', token: forged }, 401, 'token_invalid');
    }
    // The real one still passes.
    expect((await send(w.proxy.url, { path: '/github/repos/octo/hello', token: review.access_token })).status).toBe(200);
  });

  it('a token of another integration (wrong audience): 401 token_wrong_audience, both ways', async () => {
    const res = await refused({ path: '/github/repos/octo/hello', token: slackAny.access_token }, 401, 'token_wrong_audience');
    expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="agent-pdp proxy github", error="invalid_token"/);
    await refused({ path: '/slack/conversations.info?channel=C0GENERAL', token: review.access_token }, 401, 'token_wrong_audience');
  });

  it('a write with a read token (the push the code-review agent must not make): 403 token_scope_insufficient', async () => {
    const push = JSON.stringify({ message: 'push', content: Buffer.from('rm -rf /').toString('base64'), branch: 'main' });
    const res = await refused({ method: 'PUT', path: '/github/repos/octo/hello/contents/deploy.sh', token: review.access_token, contentType: 'application/json', body: push }, 403, 'token_scope_insufficient');
    expect(res.headers['www-authenticate']).toContain('error="insufficient_scope"');
    expect(res.headers['www-authenticate']).toContain('scope="repo:write"');
    await refused({ method: 'PUT', path: '/github/repos/octo/hello/pulls/1/merge', token: review.access_token, contentType: 'application/json', body: '{}' }, 403, 'token_scope_insufficient');
    await refused({ method: 'POST', path: '/github/repos/octo/hello/issues', token: review.access_token, contentType: 'application/json', body: '{"title":"x"}' }, 403, 'token_scope_insufficient');
    // A scope of the same integration the token does not hold, on Slack: chat:write does not read history.
    await refused({ path: '/slack/conversations.history?channel=C0GENERAL', token: slackGeneral.access_token }, 403, 'token_scope_insufficient');
  });

  it('a record the token is not bound to: 403 token_wrong_resource (GitHub repository, Slack channel)', async () => {
    await refused({ path: '/github/repos/octo/other/pulls/1', token: review.access_token }, 403, 'token_wrong_resource');
    // The id is compared as spelt: GitHub ignores case, the proxy does not let another spelling through.
    await refused({ path: '/github/repos/Octo/Hello/pulls/1', token: review.access_token }, 403, 'token_wrong_resource');
    await refused({ method: 'POST', path: '/slack/chat.postMessage', token: slackGeneral.access_token, contentType: 'application/json', body: '{"channel":"C0SECRET","text":"x"}' }, 403, 'token_wrong_resource');
    await refused({ method: 'POST', path: '/slack/chat.postMessage', token: slackGeneral.access_token, contentType: 'application/x-www-form-urlencoded', body: 'channel=C0SECRET&text=x' }, 403, 'token_wrong_resource');
  });

  it('an unmapped endpoint: 403 endpoint_not_mapped; GitHub GraphQL too', async () => {
    await refused({ path: '/github/orgs/octo/members', token: review.access_token }, 403, 'endpoint_not_mapped');
    await refused({ method: 'DELETE', path: '/github/repos/octo/hello', token: review.access_token }, 403, 'endpoint_not_mapped');
    await refused({ path: '/github/', token: review.access_token }, 403, 'endpoint_not_mapped');
    await refused({ method: 'POST', path: '/slack/admin.users.remove', token: slackAny.access_token, contentType: 'application/x-www-form-urlencoded', body: 'user=U1' }, 403, 'endpoint_not_mapped');
    const graphql = JSON.stringify({ query: 'mutation { deleteRepository(input: {repositoryId: "R_1"}) { clientMutationId } }' });
    const res = await refused({ method: 'POST', path: '/github/graphql', token: review.access_token, contentType: 'application/json', body: graphql }, 403, 'endpoint_not_mapped');
    expect((res.json as { error: { field?: string } }).error.field).toBe('path');
    await refused({ method: 'GET', path: '/github/graphql?query=%7Bviewer%7Blogin%7D%7D', token: review.access_token }, 403, 'endpoint_not_mapped');
  });

  it('a path naming no upstream: 404 integration_unknown', async () => {
    await refused({ path: '/gitlab/projects/1', token: review.access_token }, 404, 'integration_unknown');
    await refused({ path: '/GITHUB/repos/octo/hello', token: review.access_token }, 404, 'integration_unknown');
    await refused({ path: '//github/repos/octo/hello', token: review.access_token }, 404, 'integration_unknown');
  });
});

describe('revocation, task completion and expiry', () => {
  it('a revoked token is refused within a second of POST /v1/revoke, though it was admitted (and cached) before', async () => {
    const token = await codeReviewToken(w.t, { repo: 'octo/hello' });
    const call = { path: '/github/repos/octo/hello/pulls/1', token: token.access_token };
    expect((await send(w.proxy.url, call)).status).toBe(200);
    await request(w.t.url).post('/v1/revoke').set(auth(KEYS.pep)).type('form').send({ token: token.access_token }).expect(200);
    await refusedWithin(call, 'token_revoked');
    await refused(call, 401, 'token_revoked');
    // Refused, but the token was ours: the refusal is in the trail.
    expect((await proxyEvents(w.t, token.jti)).slice(-1)[0]?.data).toMatchObject({ outcome: 'refused', code: 'token_revoked', upstream_status: null });
  });

  it('completing the task refuses its tokens within a second', async () => {
    const token = await codeReviewToken(w.t, { repo: 'octo/hello' });
    const call = { path: '/github/repos/octo/hello/issues/3', token: token.access_token };
    expect((await send(w.proxy.url, call)).status).toBe(200);
    const done = await request(w.t.url).post(`/v1/tasks/${token.task_id}/complete`).set(auth(KEYS.orchestrator)).send({}).expect(200);
    expect(done.body.revoked_tokens).toBe(1);
    await refusedWithin(call, 'token_revoked');
    await refused(call, 401, 'token_revoked');
  });

  it('an expired token is refused from its exp on (no tolerance, as introspection answers it), though it was cached', async () => {
    const token = await codeReviewToken(w.t, { repo: 'octo/hello', ttl: 60 });
    const call = { path: '/github/repos/octo/hello', token: token.access_token };
    expect((await send(w.proxy.url, call)).status).toBe(200);
    w.t.clock.advance(59);
    expect((await send(w.proxy.url, call)).status).toBe(200);
    w.t.clock.advance(1.5);
    await refused(call, 401, 'token_expired');
  });

  it('a proxy that cannot read the revocation list refuses a token it admitted before: 503 revocation_unknown, nothing upstream', async () => {
    // A proxy on a store connection of its own, as `agent-pdp proxy` runs; closing that connection makes every read of
    // the revocation feed fail for real. Once the last successful read is older than the staleness bound, the list
    // cannot say the token was not revoked meanwhile: every call is refused, the token cached or not.
    const config = w.t.pdp.config;
    const store = await openStore(config.store.url, { mask: config.audit.mask });
    const proxy = await startEnforcementProxy({
      config: { ...(config.proxy as NonNullable<typeof config.proxy>), port: 0 },
      issuer: config.issuer.issuer,
      jwks: () => w.t.pdp.keys.resolver,
      policy: () => w.t.pdp.engine.active?.policySet,
      audienceFor: w.t.pdp.audienceFor,
      store,
      maxTokenTtlSeconds: config.issuer.max_token_ttl_seconds,
      logger: w.t.pdp.logger,
      now: () => w.t.clock.now,
    });
    try {
      const token = await codeReviewToken(w.t, { repo: 'octo/hello' });
      const call = { path: '/github/repos/octo/hello/pulls/1', token: token.access_token };
      // Admitted (and its verification cached) while the store was readable: it needs no store read to be admitted again.
      expect((await send(proxy.url, call)).status).toBe(200);
      await store.close();
      // No call meanwhile: one forwarded now would be cut, its event refused by the closed store (audit_unavailable).
      while (proxy.revocations.state(token.jti) !== 'unknown') await new Promise((ok) => setTimeout(ok, 20));
      const mark = w.github.received.length;
      for (let i = 0; i < 3; i++) {
        const res = await send(proxy.url, call);
        expect({ status: res.status, code: codeOf(res) }).toEqual({ status: 503, code: 'revocation_unknown' });
        expect(res.text).not.toContain(token.access_token);
      }
      // A token this proxy never saw needs its row read to be admitted: the store cannot answer, so it is refused the same way.
      const unseen = await codeReviewToken(w.t, { repo: 'octo/hello' });
      const fresh = await send(proxy.url, { ...call, token: unseen.access_token });
      expect({ status: fresh.status, code: codeOf(fresh) }).toEqual({ status: 503, code: 'revocation_unknown' });
      expect(w.github.since(mark)).toEqual([]);
    } finally {
      await proxy.close();
      await store.close();
    }
  });

  it('a proxy started just after a revoked token\'s exp (within the clock tolerance it accepts) still refuses it', async () => {
    // The gate accepts a token up to 5 s past its exp (clock skew); the revocation list it starts from must then
    // hold the tokens revoked and expired less than 5 s ago, or such a token is forwarded until the tolerance ends.
    const token = await codeReviewToken(w.t, { repo: 'octo/hello', ttl: 60 });
    const call = { path: '/github/repos/octo/hello', token: token.access_token };
    expect((await send(w.proxy.url, call)).status).toBe(200);
    await request(w.t.url).post('/v1/revoke').set(auth(KEYS.pep)).type('form').send({ token: token.access_token }).expect(200);
    w.t.clock.advance(62);
    const clock = w.t.clock;
    const restarted = await startPdpProxy(w.t.pdp, { now: () => clock.now });
    try {
      const mark = w.github.received.length;
      const res = await send(restarted.url, call);
      expect({ status: res.status, code: codeOf(res) }).toEqual({ status: 401, code: 'token_revoked' });
      expect(w.github.since(mark)).toEqual([]);
    } finally {
      await restarted.close();
    }
  });
});

describe('path tricks cannot reach an unmapped endpoint or another record', () => {
  it.each([
    { note: 'dot segments', path: '/github/repos/a/b/../../orgs/x' },
    { note: 'dot segments into another repository', path: '/github/repos/octo/hello/../other/pulls/1' },
    { note: 'a single dot', path: '/github/repos/octo/hello/./pulls/1' },
    { note: 'percent-encoded dots (lower case)', path: '/github/repos/a/b/%2e%2e/%2e%2e/orgs/x' },
    { note: 'percent-encoded dots (upper case)', path: '/github/repos/octo/hello/%2E%2E/other/pulls/1' },
    { note: 'half-encoded dots', path: '/github/repos/octo/hello/.%2e/other/pulls/1' },
    { note: 'an encoded slash in the owner', path: '/github/repos/octo%2Fother/pulls/1' },
    { note: 'an encoded slash in the repository', path: '/github/repos/octo/hello%2F..%2F..%2Forgs%2Fx' },
    { note: 'an encoded slash (lower case)', path: '/github/repos/octo/hello%2f..%2fother' },
    { note: 'an encoded backslash', path: '/github/repos/octo/hello%5C..%5Cother' },
    { note: 'a raw backslash', path: '/github/repos/octo/hello\\..\\other' },
    { note: 'a double-encoded slash', path: '/github/repos/octo/hello%252F..%252Fother' },
    { note: 'an empty segment', path: '/github/repos/octo//hello' },
    { note: 'a trailing slash', path: '/github/repos/octo/hello/' },
    { note: 'an encoded letter', path: '/github/repos/octo/hell%6F/pulls/1' },
    { note: 'an encoded NUL', path: '/github/repos/octo/hello%00/pulls/1' },
    { note: 'an invalid percent-encoding', path: '/github/repos/octo/hello%zz' },
    { note: 'a prefix escape to the other integration', path: '/github/../slack/chat.postMessage' },
  ])('$note: 400 path_not_canonical', async ({ path }) => {
    await refused({ path, token: review.access_token }, 400, 'path_not_canonical');
  });

  it('a file path with an encoded slash is refused too; its real slashes pass and name the same repository', async () => {
    await refused({ path: '/github/repos/octo/hello/contents/src%2Fapp.ts', token: review.access_token }, 400, 'path_not_canonical');
    const mark = w.github.received.length;
    // Mapped, bound to the right repository, answered 404 by the fake (it has no such file): forwarded as sent.
    const res = await send(w.proxy.url, { path: '/github/repos/octo/hello/contents/src/app.ts', token: review.access_token });
    expect(res.status).toBe(404);
    expect(w.github.since(mark).map((r) => r.url)).toEqual(['/repos/octo/hello/contents/src/app.ts']);
  });

  it.each([
    { note: 'a duplicate query key', method: 'GET', path: '/slack/conversations.info?channel=C0GENERAL&channel=C0SECRET' },
    { note: 'a duplicate query key, one of them encoded', method: 'GET', path: '/slack/conversations.info?channel=C0GENERAL&%63hannel=C0SECRET' },
    { note: 'a duplicate form key', method: 'POST', path: '/slack/chat.postMessage', contentType: 'application/x-www-form-urlencoded', body: 'channel=C0GENERAL&text=x&channel=C0SECRET' },
    { note: 'a duplicate JSON key', method: 'POST', path: '/slack/chat.postMessage', contentType: 'application/json', body: '{"channel":"C0GENERAL","text":"x","channel":"C0SECRET"}' },
    { note: 'a duplicate JSON key, one of them escaped', method: 'POST', path: '/slack/chat.postMessage', contentType: 'application/json', body: '{"channel":"C0GENERAL","text":"x","chann\\u0065l":"C0SECRET"}' },
    { note: 'the channel in the query and in the body', method: 'POST', path: '/slack/chat.postMessage?channel=C0SECRET', contentType: 'application/x-www-form-urlencoded', body: 'channel=C0GENERAL&text=x' },
  ])('$note: 400 ambiguous_request', async ({ method, path, contentType, body }) => {
    const token = method === 'GET' ? slackAny : slackGeneral;
    const res = await refused({ method, path, token: token.access_token, ...(body === undefined ? {} : { body, contentType }) }, 400, 'ambiguous_request');
    expect((res.json as { error: { field?: string } }).error.field).toMatch(/^(query|body)\.channel$/);
  });

  it.each([
    { note: 'no channel at all', contentType: 'application/x-www-form-urlencoded', body: 'text=x', code: 'record_missing' },
    { note: 'an empty channel', contentType: 'application/x-www-form-urlencoded', body: 'channel=&text=x', code: 'record_missing' },
    { note: 'a channel that is an object', contentType: 'application/json', body: '{"channel":{"id":"C0GENERAL"},"text":"x"}', code: 'record_missing' },
    { note: 'a multipart body', contentType: 'multipart/form-data; boundary=b', body: '--b\r\nContent-Disposition: form-data; name="channel"\r\n\r\nC0SECRET\r\n--b--\r\n', code: 'body_unreadable' },
    { note: 'a JSON array', contentType: 'application/json', body: '[{"channel":"C0GENERAL"}]', code: 'body_unreadable' },
    { note: 'a body in another charset', contentType: 'application/x-www-form-urlencoded; charset=utf-16', body: 'channel=C0GENERAL', code: 'body_unreadable' },
  ])('a Slack body the record cannot be read from ($note): 400 $code', async ({ contentType, body, code }) => {
    await refused({ method: 'POST', path: '/slack/chat.postMessage', token: slackGeneral.access_token, contentType, body }, 400, code);
  });

  it('the bound channel itself, sent once, is forwarded (the refusals above are not refusing everything)', async () => {
    const mark = w.slack.received.length;
    const res = await send(w.proxy.url, { method: 'POST', path: '/slack/chat.postMessage', token: slackGeneral.access_token, contentType: 'application/x-www-form-urlencoded', body: 'channel=C0GENERAL&text=x' });
    expect(res.status).toBe(200);
    expect(w.slack.since(mark)).toHaveLength(1);
  });
});
