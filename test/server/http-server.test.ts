import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiServer, REQUEST_TIMEOUTS } from '../../src/server/http-server.js';
import { startTestPdp, type TestPdp } from '../support/pdp-harness.js';

/**
 * The API server's own limits (src/server/http-server.ts): a client that trickles its request gets a 408 and loses
 * its connection after the configured time. The real PDP's handler behind it; the timeouts shortened for the test.
 */
let t: TestPdp;
let url: { host: string; port: number };
let close: () => Promise<void>;

beforeAll(async () => {
  t = await startTestPdp();
  const server = createApiServer(t.pdp.handler, { headersMs: 400, requestMs: 800, checkIntervalMs: 100 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = { host: '127.0.0.1', port: (server.address() as AddressInfo).port };
  close = () => new Promise<void>((resolve) => server.close(() => resolve()));
});
afterAll(async () => {
  await close();
  await t.close();
});

/** Sends `first`, then trickles one byte of `rest` every 100 ms; resolves with what the server wrote and when it closed. */
function trickle(first: string, rest: string): Promise<{ answer: string; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(url.port, url.host);
    let answer = '';
    let i = 0;
    socket.on('data', (d) => (answer += d.toString('latin1')));
    const timer = setInterval(() => {
      if (i < rest.length && !socket.destroyed) socket.write(rest[i++] as string);
    }, 100);
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ answer, ms: Date.now() - started });
    });
    socket.on('error', () => undefined);
    socket.write(first);
  });
}

describe('a client that sends its request too slowly', () => {
  it('trickling headers: 408 and the connection closed once the headers time is up', async () => {
    const { answer, ms } = await trickle('POST /v1/tokens HTTP/1.1\r\nHost: x\r\n', 'X-Slow: ' + 'a'.repeat(100));
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(ms).toBeLessThan(5_000);
  });

  it('trickling a form body before any authentication (client_secret_post): 408 once the request time is up', async () => {
    const body = 'grant_type=urn%3Aagent-pdp%3Aparams%3Agrant-type%3Adecision&client_id=pep&client_secret=x';
    const head = `POST /v1/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n`;
    const { answer, ms } = await trickle(head, body);
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(ms).toBeLessThan(5_000);
  });

  it('the defaults are seconds, not node:http\'s minutes', () => {
    expect(REQUEST_TIMEOUTS.headersMs).toBeLessThanOrEqual(10_000);
    expect(REQUEST_TIMEOUTS.requestMs).toBeLessThanOrEqual(30_000);
  });
});
