/**
 * The export route streams with backpressure: memory stays flat for any size because the store is read only as
 * fast as the client takes the response. A chain far larger than the socket buffers, generated lazily, is served
 * by the real route on loopback; the test counts how much of it has been read.
 */
import { createServer, get, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENESIS_HASH, GENESIS_HEAD, sealEvent, verifyExportLines } from '../../src/audit/index.js';
import type { AuditEventV1, ChainHead } from '../../src/audit/index.js';
import type { CallerConfig } from '../../src/config/config-types.js';
import { PdpError } from '../../src/errors/pdp-error.js';
import { sha256Hex } from '../../src/config/dev-keys.js';
import { createLogger } from '../../src/server/logger.js';
import { Metrics } from '../../src/server/metrics.js';
import { requestPipeline } from '../../src/server/request-pipeline.js';
import { auditRoutes, type AuditStore } from '../../src/server/routes/audit.js';
import { AuditOverview } from '../../src/pdp/audit-overview.js';
import { AuditVerification } from '../../src/pdp/audit-verification.js';
import type { Store } from '../../src/store/index.js';

const TOTAL = 100_000;
const T0 = Date.parse('2026-01-01T00:00:00.000Z');

/** A chain of TOTAL events, built once; the source counts what it hands out and whether its cursor was closed. */
const chain: AuditEventV1[] = [];
let head: ChainHead = GENESIS_HEAD;
for (let i = 1; i <= TOTAL; i++) {
  const event = sealEvent(head, { type: 'policy.loaded', time: new Date(T0 + i).toISOString(), data: { revision: `rev-${i}`, pad: 'x'.repeat(100) } });
  chain.push(event);
  head = event;
}

const counters: { read: number; open: number; closed: number; failAt?: number } = { read: 0, open: 0, closed: 0 };
const source = {
  chainStart: async () => ({ start_seq: 1, start_prev_hash: GENESIS_HASH, checkpoint: null }),
  chainHead: async () => head,
  async *iterateEvents(query: { from_seq?: number; to_seq?: number } = {}) {
    counters.open++;
    try {
      for (let seq = query.from_seq ?? 1; seq <= (query.to_seq ?? TOTAL); seq++) {
        if (seq === counters.failAt) throw new PdpError('store_unavailable', 'the store could not be read');
        counters.read++;
        yield chain[seq - 1] as AuditEventV1;
        // A real store hands out pages between turns of the event loop.
        if (seq % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      counters.closed++;
    }
  },
} as unknown as AuditStore;

const KEY = 'export-stream-auditor-key';
const AUDITOR: CallerConfig = { id: 'compliance', role: 'auditor', key_sha256: sha256Hex(KEY), agents: [], may_assert_context: false };
let server: Server;
let url: string;

beforeAll(async () => {
  const handler = requestPipeline({
    routes: auditRoutes(source, () => new Date(), {
      verification: new AuditVerification({ store: source as unknown as Store, now: () => new Date() }),
      overview: new AuditOverview({ store: source, now: () => new Date() }),
    }),
    callers: [AUDITOR],
    metrics: new Metrics({ defaultMetrics: false }),
    logger: createLogger('silent'),
    bodyLimitBytes: 65_536,
  });
  server = createServer(handler).listen(0, '127.0.0.1');
  await new Promise<void>((ok) => server.once('listening', ok));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((ok) => server.close(() => ok()));
});

function open(path: string): Promise<IncomingMessage> {
  return new Promise((ok, fail) => get(`${url}${path}`, { headers: { authorization: `Bearer ${KEY}` } }, ok).once('error', fail));
}

/** Waits until `counters.read` stops moving (the server is blocked on the socket). */
async function settled(): Promise<number> {
  let last = -1;
  for (let still = 0; still < 5; ) {
    await new Promise((resolve) => setTimeout(resolve, 40));
    still = counters.read === last ? still + 1 : 0;
    last = counters.read;
  }
  return last;
}

describe('GET /v1/audit/export streams with backpressure', () => {
  it('reads the store only as fast as the client reads, and the whole export verifies', async () => {
    counters.read = 0;
    const res = await open('/v1/audit/export');
    expect(res.statusCode).toBe(200);
    res.pause();
    const whilePaused = await settled();
    // Socket buffers hold a few MB at most: a small part of a 100,000-event (~30 MB) export.
    expect(whilePaused).toBeGreaterThan(0);
    expect(whilePaused).toBeLessThan(TOTAL / 2);

    const result = await verifyExportLines(createInterface({ input: res.setEncoding('utf8'), crlfDelay: Infinity }));
    expect(result).toMatchObject({ ok: true, count: TOTAL, last_seq: TOTAL, last_hash: head.hash });
  });

  it('cuts the response short when the store fails half-way, which the export itself then shows', async () => {
    counters.failAt = 20_000;
    try {
      const res = await open('/v1/audit/export');
      expect(res.statusCode).toBe(200); // the headers went out with the first events
      const lines: string[] = [];
      const reading = (async () => {
        for await (const line of createInterface({ input: res.setEncoding('utf8'), crlfDelay: Infinity })) lines.push(line);
      })();
      await reading.catch(() => undefined); // the socket is destroyed: the body just ends
      // Cut after a whole line: no trailer ("cut short"); cut inside a line: that line is not JSON.
      const result = await verifyExportLines(lines);
      expect(result.ok).toBe(false);
      if (!result.ok) {
        expect(['removed', 'malformed']).toContain(result.kind);
        expect(result.message).toMatch(result.kind === 'removed' ? /without its trailer: it was cut short/ : /is not JSON/);
        expect(result.seq).toBeLessThanOrEqual(20_000);
      }
    } finally {
      delete counters.failAt;
    }
  });

  it('stops reading and closes the store cursor when the client goes away', async () => {
    counters.read = 0;
    const closedBefore = counters.closed;
    const res = await open('/v1/audit/export?format=csv');
    await new Promise((resolve) => res.once('data', resolve));
    res.destroy();
    await settled();
    expect(counters.closed).toBe(closedBefore + 1);
    expect(counters.read).toBeLessThan(TOTAL);
    // The server still answers.
    const next = await open('/v1/audit/export?from_seq=1&to_seq=3');
    expect(next.statusCode).toBe(200);
    next.resume();
  });
});
