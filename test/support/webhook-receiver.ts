/**
 * A real webhook receiver on 127.0.0.1 for the escalation tests: it records every delivery (headers, raw body),
 * verifies its signature with the receiver-side helper, and answers as the test tells it (200, an error status, or
 * never). Close it (or `stop()` it) like any server a test starts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyWebhookSignature } from '../../src/notify/index.js';

export interface Delivery {
  headers: IncomingMessage['headers'];
  body: string;
  json: Record<string, unknown>;
  /** The signature checked with the receiver's secret at arrival. */
  signatureValid: boolean;
  /** The request's path (and query), e.g. `/hook`: a Slack-like URL carries its secret token here. */
  path: string;
}

/** Any request that arrived, whatever it was answered (an error status, or nothing while hanging). */
export interface Arrival {
  headers: IncomingMessage['headers'];
  body: string;
  path: string;
  /** How it was answered: the status, or 'hang'. */
  answer: number | 'hang';
}

export type ReceiverMode = { status: number } | 'hang';

export interface WebhookReceiver {
  url: string;
  port: number;
  deliveries: Delivery[];
  /** Every request that arrived, in order, including those answered with an error status or left hanging. */
  arrivals: Arrival[];
  /** How the next requests are answered. Default 200. */
  mode: ReceiverMode;
  /** Resolves when `count` deliveries were answered 2xx (bounded by `timeoutMs`). */
  waitFor(count: number, timeoutMs?: number): Promise<Delivery[]>;
  /** Stops listening (a receiver that is down); `start()` listens again on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(secret: string, port = 0): Promise<WebhookReceiver> {
  const accepted: Delivery[] = [];
  const arrivals: Arrival[] = [];
  const hanging = new Set<ServerResponse>();
  let server: Server | undefined;
  const receiver: WebhookReceiver = {
    url: '',
    port,
    deliveries: accepted,
    arrivals,
    mode: { status: 200 },
    async waitFor(count, timeoutMs = 15_000) {
      const until = Date.now() + timeoutMs;
      while (accepted.length < count) {
        if (Date.now() > until) throw new Error(`only ${accepted.length} of ${count} deliveries arrived`);
        await new Promise((ok) => setTimeout(ok, 20));
      }
      return accepted;
    },
    async stop() {
      for (const res of hanging) res.destroy();
      hanging.clear();
      if (!server) return;
      const s = server;
      server = undefined;
      s.closeAllConnections();
      await new Promise<void>((ok) => s.close(() => ok()));
    },
    async start() {
      server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          const mode = receiver.mode;
          const path = req.url ?? '';
          arrivals.push({ headers: req.headers, body, path, answer: mode === 'hang' ? 'hang' : mode.status });
          if (mode === 'hang') {
            hanging.add(res);
            return;
          }
          if (mode.status >= 200 && mode.status < 300) {
            const header = req.headers['x-agentpdp-signature'];
            const verdict = verifyWebhookSignature(secret, typeof header === 'string' ? header : undefined, body);
            accepted.push({ headers: req.headers, body, json: JSON.parse(body) as Record<string, unknown>, signatureValid: verdict.valid, path });
          }
          res.writeHead(mode.status, { 'content-type': 'text/plain' }).end('ok');
        });
      });
      server.listen(receiver.port, '127.0.0.1');
      await new Promise<void>((ok) => server!.once('listening', ok));
      receiver.port = (server.address() as AddressInfo).port;
      receiver.url = `http://127.0.0.1:${receiver.port}/hook`;
    },
    async close() {
      await receiver.stop();
    },
  };
  await receiver.start();
  return receiver;
}
