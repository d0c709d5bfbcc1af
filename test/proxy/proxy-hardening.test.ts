import { request as httpRequest } from 'node:http';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueAccessToken } from '../../src/issuer/token-issuer.js';
import { startEnforcementProxy, type EnforcementProxy } from '../../src/proxy/index.js';
import { auth, KEYS } from '../support/pdp-harness.js';
import { codeOf, codeReviewToken, feedbackPostToken, proxyEvents, send, startProxyWorld, type ProxyWorld } from './proxy-world.js';

/**
 * What a security review of the proxy asked for: names parsers read two ways, encoded bodies, tokens the PDP never
 * issued, a revocation that lands while a body is being read, an audit trail that cannot be written, and a caller
 * that stops reading. Each is shown against the real proxy, PDP and fakes; the audit failure is injected into the
 * store the proxy writes to (the only fault injected).
 */
let w: ProxyWorld;
beforeAll(async () => {
  w = await startProxyWorld({ github: { connections: 1, body_timeout_ms: 500 } });
});
afterAll(async () => {
  await w.close();
});

describe('record fields upstreams read differently', () => {
  it.each([
    { note: 'a leading space (PHP/Hack strip it)', body: 'channel=C0GENERAL&+channel=C0SECRET&text=x' },
    { note: 'a NUL in the name (cut there)', body: 'channel=C0GENERAL&channel%00x=C0SECRET&text=x' },
    { note: 'brackets (folded into channel)', body: 'channel=C0GENERAL&channel%5B%5D=C0SECRET&text=x' },
  ])('refuses $note in a form body: ambiguous_request, nothing upstream', async ({ body }) => {
    const token = await feedbackPostToken(w.t, 'C0GENERAL');
    const mark = w.slack.received.length;
    const res = await send(w.proxy.url, { method: 'POST', path: '/slack/chat.postMessage', token: token.access_token, contentType: 'application/x-www-form-urlencoded', body });
    expect([res.status, codeOf(res)]).toEqual([400, 'ambiguous_request']);
    expect(w.slack.since(mark)).toEqual([]);
  });

  it.each([
    { note: 'a semicolon', path: '/slack/chat.postMessage?x=1;channel=C0SECRET' },
    { note: 'a leading space', path: '/slack/chat.postMessage?+channel=C0SECRET' },
  ])('refuses $note in the query of a body-read call: nothing upstream', async ({ path }) => {
    const token = await feedbackPostToken(w.t, 'C0GENERAL');
    const mark = w.slack.received.length;
    const res = await send(w.proxy.url, { method: 'POST', path, token: token.access_token, contentType: 'application/x-www-form-urlencoded', body: 'channel=C0GENERAL&text=x' });
    expect([res.status, codeOf(res)]).toEqual([400, 'ambiguous_request']);
    expect(w.slack.since(mark)).toEqual([]);
  });

  it('refuses a fragment in any request target', async () => {
    const token = await codeReviewToken(w.t, { repo: 'octo/hello' });
    const mark = w.github.received.length;
    const res = await send(w.proxy.url, { path: '/github/repos/octo/hello/pulls/1#x', token: token.access_token });
    expect([res.status, codeOf(res)]).toEqual([400, 'path_not_canonical']);
    expect(w.github.since(mark)).toEqual([]);
  });

  it('refuses an encoded body when the record is read from it (what was checked would not be what is sent)', async () => {
    const token = await feedbackPostToken(w.t, 'C0GENERAL');
    const mark = w.slack.received.length;
    const res = await send(w.proxy.url, {
      method: 'POST',
      path: '/slack/chat.postMessage',
      token: token.access_token,
      contentType: 'application/x-www-form-urlencoded',
      headers: [['Content-Encoding', 'gzip']],
      body: 'channel=C0GENERAL&text=x',
    });
    expect([res.status, codeOf(res)]).toEqual([400, 'body_unreadable']);
    expect(w.slack.since(mark)).toEqual([]);
  });
});

describe('tokens the PDP never issued', () => {
  it('refuses a well-signed token whose jti the store does not know (a leaked key), and one claiming a longer life than the issuer gives', async () => {
    const now = w.t.clock.now;
    const forge = async (ttl: number): Promise<string> =>
      (
        await issueAccessToken({
          keyRing: w.t.pdp.keys.ring,
          issuer: w.t.pdp.config.issuer.issuer,
          agent_id: 'code-review-agent',
          caller_id: 'pep-1',
          integration: 'github',
          audience: w.t.pdp.audienceFor('github'),
          scopes: ['repo:read', 'pr:read'],
          task_id: 'never-registered',
          decision_id: 'never-decided',
          ttl_seconds: ttl,
          now,
        })
      ).access_token;
    const mark = w.github.received.length;
    for (const token of [await forge(300), await forge(w.t.pdp.config.issuer.max_token_ttl_seconds + 3600)]) {
      const res = await send(w.proxy.url, { path: '/github/repos/octo/hello/pulls/1', token });
      expect([res.status, codeOf(res)]).toEqual([401, 'token_invalid']);
    }
    expect(w.github.since(mark)).toEqual([]);
  });
});

describe('a revocation while the body is still arriving', () => {
  it('refuses the call once the body is read, before anything is forwarded', async () => {
    const token = await feedbackPostToken(w.t, 'C0GENERAL');
    const mark = w.slack.received.length;
    const url = new URL(w.proxy.url);
    const body = 'channel=C0GENERAL&text=after-revocation';
    const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpRequest(
        {
          host: url.hostname,
          port: url.port,
          method: 'POST',
          path: '/slack/chat.postMessage',
          headers: { authorization: `Bearer ${token.access_token}`, 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length) },
        },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.write(body.slice(0, 10)); // admitted with the first bytes; the rest comes after the task completed
      setTimeout(() => {
        void request(w.t.url)
          .post(`/v1/tasks/${token.task_id}/complete`)
          .set(auth(KEYS.orchestrator))
          .then(() => setTimeout(() => req.end(body.slice(10)), 300)); // past the revocation poll
      }, 100);
    });
    const res = await answer;
    expect(res.status).toBe(401);
    expect(JSON.parse(res.text)).toMatchObject({ error: { code: 'token_revoked' } });
    expect(w.slack.since(mark)).toEqual([]);
  });
});

describe('a caller that stops reading', () => {
  it('loses its response after body_timeout_ms without reading, and frees the upstream connection for others', async () => {
    const token = await codeReviewToken(w.t, { repo: 'octo/hello' });
    const url = new URL(w.proxy.url);
    // An endless download whose reader pauses at once: more than the socket buffers hold, so the proxy's writes stop.
    const stalled = httpRequest({ host: url.hostname, port: url.port, path: '/github/repos/octo/hello/contents/endless.bin', headers: { authorization: `Bearer ${token.access_token}` } }, (res) => {
      res.pause();
      res.on('error', () => undefined);
    });
    stalled.on('error', () => undefined);
    stalled.end();
    try {
      // With one connection to the upstream, this call can only be answered once the stalled one was cut.
      const next = await send(w.proxy.url, { path: '/github/repos/octo/hello/pulls/1', token: token.access_token });
      expect(next.status).toBe(200);
      const events = (await proxyEvents(w.t, token.jti)).map((e) => [e.data.path_template, e.data.outcome, e.data.code]);
      expect(events).toEqual([
        ['/repos/{owner}/{repo}/contents/{path+}', 'failed', 'client_stalled'],
        ['/repos/{owner}/{repo}/pulls/{pull_number}', 'forwarded', null],
      ]);
    } finally {
      stalled.destroy(); // a paused client sees the cut only when it reads again
    }
  });
});

describe('an audit trail that cannot be written', () => {
  let proxy: EnforcementProxy;
  let failing = false;
  beforeAll(async () => {
    const store = w.t.pdp.store;
    proxy = await startEnforcementProxy({
      config: { ...(w.t.pdp.config.proxy as NonNullable<typeof w.t.pdp.config.proxy>), port: 0 },
      issuer: w.t.pdp.config.issuer.issuer,
      jwks: () => w.t.pdp.keys.resolver,
      policy: () => w.t.pdp.engine.active?.policySet,
      audienceFor: w.t.pdp.audienceFor,
      store: {
        revocationFeed: (input) => store.revocationFeed(input),
        getToken: (jti) => store.getToken(jti),
        getDecision: (id) => store.getDecision(id),
        recordTokenUse: (input) => (failing ? Promise.reject(new Error('disk full')) : store.recordTokenUse(input)),
      },
      maxTokenTtlSeconds: w.t.pdp.config.issuer.max_token_ttl_seconds,
      logger: w.t.pdp.logger,
      now: () => w.t.clock.now,
    });
  });
  afterAll(async () => {
    await proxy.close();
  });

  it('cuts the response of a call whose event could not be committed, then refuses every call until a write succeeds', async () => {
    const token = await codeReviewToken(w.t, { repo: 'octo/hello' });
    failing = true;
    // The upstream answered, but no complete answer without its evidence. A small answer's status and headers go
    // out with its last chunk (one write), so the caller sees the connection reset; a larger one, a cut 200.
    const cut = await send(proxy.url, { path: '/github/repos/octo/hello/pulls/1', token: token.access_token }).catch((err: NodeJS.ErrnoException) => err);
    if (cut instanceof Error) expect(cut.code).toBe('ECONNRESET');
    else expect({ status: cut.status, complete: cut.complete }).toEqual({ status: 200, complete: false });

    const mark = w.github.received.length;
    const refused = await send(proxy.url, { path: '/github/repos/octo/hello/pulls/1', token: token.access_token });
    expect([refused.status, codeOf(refused)]).toEqual([503, 'audit_unavailable']);
    expect(w.github.since(mark)).toEqual([]);

    failing = false;
    // The first call after the store recovers is still refused, and its refusal is the write that proves recovery.
    const probe = await send(proxy.url, { path: '/github/repos/octo/hello/pulls/1', token: token.access_token });
    expect([probe.status, codeOf(probe)]).toEqual([503, 'audit_unavailable']);
    const ok = await send(proxy.url, { path: '/github/repos/octo/hello/pulls/1', token: token.access_token });
    expect(ok.status).toBe(200);
    const outcomes = (await proxyEvents(w.t, token.jti)).map((e) => [e.data.outcome, e.data.code]);
    expect(outcomes).toEqual([
      ['refused', 'audit_unavailable'],
      ['forwarded', null],
    ]);
  });
});
