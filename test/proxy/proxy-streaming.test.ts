/**
 * Large responses through the enforcement proxy: a 10 MiB download streamed by the fake GitHub (chunked, 64 KiB
 * chunks, with backpressure) arrives intact (same SHA-256) and its token.used event counts every byte; a client that
 * hangs up mid-download leaves a `failed` / `client_closed` event, not a `forwarded` one.
 */
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIG_BODY_BYTES } from '../support/fake-upstreams.js';
import { codeReviewToken, proxyEvents, send, startProxyWorld, type AgentToken, type ProxyWorld } from './proxy-world.js';

let w: ProxyWorld;
let review: AgentToken;

beforeAll(async () => {
  w = await startProxyWorld();
  review = await codeReviewToken(w.t, { repo: 'octo/hello' });
});
afterAll(async () => {
  await w?.close();
});

/** Polls the token's proxy events until `count` are there (the audit of a cut call is written after the cut). */
async function eventsOf(jti: string, count: number): Promise<Awaited<ReturnType<typeof proxyEvents>>> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const events = await proxyEvents(w.t, jti);
    if (events.length >= count || Date.now() > deadline) return events;
    await new Promise((ok) => setTimeout(ok, 20));
  }
}

describe('a 10 MiB streamed download', () => {
  it('arrives intact, and its token.used event says bytes_out = 10 MiB', async () => {
    const url = new URL(w.proxy.url);
    const { status, sha256, length, chunks } = await new Promise<{ status: number; sha256: string; length: number; chunks: number }>((resolve, reject) => {
      const req = httpRequest(
        { host: url.hostname, port: url.port, path: '/github/repos/octo/hello/contents/big.bin', headers: { authorization: `Bearer ${review.access_token}` } },
        (res) => {
          const hash = createHash('sha256');
          let length = 0;
          let chunks = 0;
          res.on('data', (c: Buffer) => {
            hash.update(c);
            length += c.length;
            chunks++;
          });
          res.once('error', reject);
          res.once('end', () => resolve({ status: res.statusCode ?? 0, sha256: hash.digest('hex'), length, chunks }));
        },
      );
      req.once('error', reject);
      req.end();
    });
    expect(status).toBe(200);
    expect(length).toBe(BIG_BODY_BYTES);
    expect(sha256).toBe(w.github.bigBodySha256);
    expect(chunks).toBeGreaterThan(1); // it came as a stream, not as one buffer
    const [event] = await eventsOf(review.jti, 1);
    expect(event?.data).toMatchObject({
      path_template: '/repos/{owner}/{repo}/contents/{path+}',
      scope: 'repo:read',
      record: { type: 'repo', id: 'octo/hello' },
      outcome: 'forwarded',
      code: null,
      upstream_status: 200,
      bytes_in: 0,
      bytes_out: BIG_BODY_BYTES,
    });
  });

  it('streams without piling listeners on the response (each wait for drain leaves none behind)', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning);
    process.on('warning', onWarning);
    try {
      // 10 MiB through a loopback socket: the proxy waits for 'drain' many times during the one response.
      const res = await send(w.proxy.url, { path: '/github/repos/octo/hello/contents/big.bin', token: review.access_token });
      expect(res.status).toBe(200);
      expect(res.body.length).toBe(BIG_BODY_BYTES);
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((x) => x.name === 'MaxListenersExceededWarning').map((x) => x.message)).toEqual([]);
  });

  it('a client that hangs up mid-download: the event says failed, client_closed, never forwarded', async () => {
    const token = await codeReviewToken(w.t, { repo: 'octo/hello' });
    const url = new URL(w.proxy.url);
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(
        { host: url.hostname, port: url.port, path: '/github/repos/octo/hello/contents/big.bin', headers: { authorization: `Bearer ${token.access_token}` } },
        (res) => {
          expect(res.statusCode).toBe(200);
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        },
      );
      req.once('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? resolve() : reject(err)));
      req.end();
    });
    const [event] = await eventsOf(token.jti, 1);
    expect(event?.data).toMatchObject({ outcome: 'failed', code: 'client_closed', upstream_status: 200 });
    expect(event?.data.bytes_out).toBeLessThan(BIG_BODY_BYTES);
  });
});
