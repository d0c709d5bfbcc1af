/**
 * The provider credential read from a file: rotating it is replacing the file (the proxy re-reads it when it
 * changes, checked at most once a second), and a credential that cannot be read refuses the call (503
 * credential_unavailable) rather than forwarding it without one. The agent never sees either credential.
 */
import { randomBytes } from 'node:crypto';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeOf, codeReviewToken, send, startProxyWorld, type AgentToken, type ProxyWorld, type RawResponse } from './proxy-world.js';

let w: ProxyWorld;
let review: AgentToken;

beforeAll(async () => {
  w = await startProxyWorld();
  review = await codeReviewToken(w.t, { repo: 'octo/hello' });
});
afterAll(async () => {
  await w?.close();
});

/** Calls until `done` says so, for at most `boundMs` (the proxy checks the file at most once a second). */
async function callUntil(done: (res: RawResponse, authorization: string | undefined) => boolean, boundMs: number): Promise<RawResponse> {
  const deadline = Date.now() + boundMs;
  for (;;) {
    const mark = w.github.received.length;
    const res = await send(w.proxy.url, { path: '/github/repos/octo/hello', token: review.access_token });
    const authorization = w.github.since(mark)[0]?.headers.authorization;
    if (done(res, authorization)) return res;
    if (Date.now() > deadline) throw new Error(`not seen within ${boundMs} ms: ${res.status} ${res.text}`);
    await new Promise((ok) => setTimeout(ok, 50));
  }
}

describe('the provider credential file', () => {
  it('is rotated by replacing the file: calls carry the new credential, never the old one again', async () => {
    expect((await send(w.proxy.url, { path: '/github/repos/octo/hello', token: review.access_token })).status).toBe(200);
    const old = w.credentials.github;
    const rotated = `ghs_${randomBytes(18).toString('hex')}`;
    writeFileSync(`${w.credentialFile}.new`, `${rotated}\n`, { mode: 0o600 });
    renameSync(`${w.credentialFile}.new`, w.credentialFile);
    await callUntil((res, authorization) => res.status === 200 && authorization === `Bearer ${rotated}`, 3000);
    const mark = w.github.received.length;
    const res = await send(w.proxy.url, { path: '/github/repos/octo/hello', token: review.access_token });
    expect(res.status).toBe(200);
    expect(w.github.since(mark).map((r) => r.headers.authorization)).toEqual([`Bearer ${rotated}`]);
    expect(w.github.transcript(w.github.since(mark))).not.toContain(old);
    expect(res.text + res.rawHeaders.join('\n')).not.toContain(rotated);
    w.credentials.github = rotated;
  });

  it('that cannot be read refuses calls with 503 credential_unavailable, forwarding nothing', async () => {
    rmSync(w.credentialFile);
    const res = await callUntil((r) => r.status !== 200, 3000);
    expect({ status: res.status, code: codeOf(res) }).toEqual({ status: 503, code: 'credential_unavailable' });
    const mark = w.github.received.length;
    const again = await send(w.proxy.url, { path: '/github/repos/octo/hello', token: review.access_token });
    expect(codeOf(again)).toBe('credential_unavailable');
    expect(w.github.since(mark)).toEqual([]);
    expect(again.text).not.toContain(w.credentials.github);
  });
});
