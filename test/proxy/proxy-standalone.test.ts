/**
 * `agent-pdp proxy` (startProxy): the enforcement proxy alone, from its own config file, on the PDP's store, key
 * folder and policy folder. Tokens the PDP issues are admitted; a revocation the PDP writes reaches it through the
 * shared store's revocation feed within a second; its token.used events land in the PDP's audit chain, which still
 * verifies; its own listener serves /-/healthz and /-/metrics.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxy, type RunningProxy } from '../../src/main.js';
import { sampleValue } from '../support/prometheus-text.js';
import { auth, KEYS, TEST_CALLERS } from '../support/pdp-harness.js';
import { codeOf, codeReviewToken, proxyEvents, send, startProxyWorld, type ProxyWorld } from './proxy-world.js';

let w: ProxyWorld;
let standalone: RunningProxy;

beforeAll(async () => {
  // The world's PDP (and its in-process proxy, unused here) provides the store, keys, policies and fakes.
  w = await startProxyWorld();
  const credentialFile = join(w.t.dir, 'github-token');
  writeFileSync(credentialFile, w.credentials.github, { mode: 0o600 });
  const configPath = join(w.t.dir, 'proxy.yaml');
  writeFileSync(
    configPath,
    JSON.stringify({
      policy: { bundle: 'bundle.tar.gz', agents: 'policies', watch: false },
      store: { url: 'sqlite:data/pdp.db' },
      issuer: { issuer: 'http://127.0.0.1:8181', keys: 'data/keys' },
      log: { level: 'silent' },
      callers: TEST_CALLERS,
      proxy: {
        listen: '127.0.0.1:0',
        id: 'proxy-standalone',
        revocation_poll_ms: 50,
        upstreams: [{ integration: 'github', origin: w.github.origin, credential: { file: 'github-token' } }],
      },
    }),
  );
  standalone = await startProxy({ configPath });
});
afterAll(async () => {
  await standalone?.close();
  await w?.close();
});

describe('agent-pdp proxy, standalone on the PDP\'s store', () => {
  it('admits a token the PDP issued, forwards with the credential, and audits into the PDP\'s chain', async () => {
    const token = await codeReviewToken(w.t, { repo: 'octo/hello' });
    const mark = w.github.received.length;
    const res = await send(standalone.url, { path: '/github/repos/octo/hello/pulls/2', token: token.access_token });
    expect(res.status).toBe(200);
    const seen = w.github.since(mark);
    expect(seen.map((r) => r.headers.authorization)).toEqual([`Bearer ${w.credentials.github}`]);
    expect(w.github.transcript(seen)).not.toContain(token.access_token);
    const events = await proxyEvents(w.t, token.jti);
    expect(events.map((e) => [e.caller_id, e.data.outcome, e.data.path_template])).toEqual([['proxy-standalone', 'forwarded', '/repos/{owner}/{repo}/pulls/{pull_number}']]);
    expect(await w.t.pdp.store.verifyStoredChain()).toMatchObject({ ok: true });
  });

  it('refuses a token the PDP revoked within a second (the revocation crosses through the store)', async () => {
    const token = await codeReviewToken(w.t, { repo: 'octo/hello' });
    const call = { path: '/github/repos/octo/hello', token: token.access_token };
    expect((await send(standalone.url, call)).status).toBe(200);
    await request(w.t.url).post('/v1/revoke').set(auth(KEYS.pep)).type('form').send({ token: token.access_token }).expect(200);
    // Counted in the cache's reads of the feed, not in milliseconds (see refusedWithin in proxy-refusals.test.ts).
    const start = standalone.proxy.revocations.reads;
    for (;;) {
      const mark = w.github.received.length;
      const readsBefore = standalone.proxy.revocations.reads - start;
      const res = await send(standalone.url, call);
      if (res.status !== 200) {
        expect({ status: res.status, code: codeOf(res) }).toEqual({ status: 401, code: 'token_revoked' });
        expect(w.github.since(mark)).toEqual([]);
        break;
      }
      expect(readsBefore, 'still forwarded once two reads of the revocation feed had completed after the revocation').toBeLessThanOrEqual(1);
      await new Promise((ok) => setTimeout(ok, 10));
    }
  });

  it('serves its own health and metrics', async () => {
    expect((await request(standalone.url).get('/-/healthz').expect(200)).body).toEqual({ status: 'ok' });
    const text = (await request(standalone.url).get('/-/metrics').expect(200)).text;
    expect(sampleValue(text, 'agentpdp_proxy_requests_total', { integration: 'github', outcome: 'forwarded', code: '200' })).toBeGreaterThanOrEqual(2);
    expect(sampleValue(text, 'agentpdp_proxy_requests_total', { integration: 'github', outcome: 'refused', code: 'token_revoked' })).toBe(1);
  });
});
