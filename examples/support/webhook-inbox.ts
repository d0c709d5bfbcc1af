/**
 * The approvers' end of a notification: a webhook receiver on 127.0.0.1 (plain `node:http`) that keeps the raw
 * body of every delivery and checks its `X-AgentPDP-Signature` with the receiver-side helper
 * (`verifyWebhookSignature`: HMAC-SHA256 over timestamp + body, timestamp within 5 minutes). A delivery with a bad
 * signature is answered 401 and kept aside, never handed to the approver. Deliveries are at least once: a repeat
 * of an `X-AgentPDP-Delivery` id is answered 200 and dropped.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyWebhookSignature } from '../../src/notify/index.js';

export interface WebhookDelivery {
  deliveryId: string;
  event: string;
  /** The signature's timestamp (unix seconds), checked on arrival. */
  signedAt: number;
  body: string;
  json: Record<string, unknown>;
}

export interface WebhookInbox {
  /** Where the PDP posts: the webhook's `url` in the PDP config. */
  url: string;
  /** Verified deliveries, in arrival order, one per delivery id. */
  deliveries: WebhookDelivery[];
  /** Deliveries refused for a missing or bad signature (with why). */
  rejected: Array<{ reason: string }>;
  /** The next verified delivery after the first `seen` ones, waiting at most `timeoutMs`. */
  next(seen: number, timeoutMs?: number): Promise<WebhookDelivery>;
  close(): Promise<void>;
}

export async function startWebhookInbox(secret: string): Promise<WebhookInbox> {
  const deliveries: WebhookDelivery[] = [];
  const rejected: Array<{ reason: string }> = [];
  const seenIds = new Set<string>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const verdict = verifyWebhookSignature(secret, req.headers['x-agentpdp-signature'], body);
      if (!verdict.valid) {
        rejected.push({ reason: verdict.reason });
        res.writeHead(401, { 'content-type': 'text/plain' }).end('bad signature');
        return;
      }
      const deliveryId = String(req.headers['x-agentpdp-delivery'] ?? '');
      if (!seenIds.has(deliveryId)) {
        seenIds.add(deliveryId);
        deliveries.push({ deliveryId, event: String(req.headers['x-agentpdp-event'] ?? ''), signedAt: verdict.timestamp, body, json: JSON.parse(body) as Record<string, unknown> });
      }
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise<void>((ok, fail) => {
    server.once('listening', ok);
    server.once('error', fail);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/platform-oncall`,
    deliveries,
    rejected,
    async next(seen, timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs;
      while (deliveries.length <= seen) {
        if (Date.now() > until) throw new Error(`no webhook delivery within ${timeoutMs / 1000} s${rejected.length ? ` (${rejected.length} refused: ${rejected.map((r) => r.reason).join(', ')})` : ''}`);
        await new Promise((ok) => setTimeout(ok, 20));
      }
      return deliveries[seen] as WebhookDelivery;
    },
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
