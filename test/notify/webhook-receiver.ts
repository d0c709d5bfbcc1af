/** A real webhook receiver on 127.0.0.1 (node:http) for the outbox tests: records what arrives, answers as told. */
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  /** The raw body, as the signature covers it. */
  body: string;
}

/** A status, `hang` (never answer: the worker's timeout), or a status given later. */
export type Answer = number | 'hang' | Promise<number>;

export class WebhookReceiver {
  readonly received: Received[] = [];
  /** How to answer the n-th request (0-based, counted over the receiver's life). Default 200. */
  answer: (request: Received, n: number) => Answer = () => 200;
  #server: Server | undefined;
  #port = 0;
  readonly #hanging = new Set<ServerResponse>();

  static async start(port = 0): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver();
    await receiver.open(port);
    return receiver;
  }

  get port(): number {
    return this.#port;
  }

  url(path = '/hooks/agent-pdp'): string {
    return `http://127.0.0.1:${this.#port}${path}`;
  }

  /** The delivery ids received, with how often each arrived. */
  counts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const r of this.received) {
      const id = String(r.headers['x-agentpdp-delivery']);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    return counts;
  }

  /** Listens (again) on `port`, or on the port it had before. */
  async open(port = this.#port): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const request: Received = { path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
        const n = this.received.length;
        this.received.push(request);
        const answer = this.answer(request, n);
        if (answer === 'hang') {
          this.#hanging.add(res);
          res.on('close', () => this.#hanging.delete(res));
          return;
        }
        void Promise.resolve(answer).then((status) => {
          if (!res.destroyed) res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'no');
        });
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.#server = server;
    this.#port = (server.address() as AddressInfo).port;
  }

  /** Stops listening and drops every connection, answered or hanging: the receiver is down. */
  async close(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    for (const res of this.#hanging) res.destroy();
    this.#hanging.clear();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}
