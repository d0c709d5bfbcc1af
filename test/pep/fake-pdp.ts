/**
 * A scripted stand-in for the PDP, for what a real one will not do on demand: answer 503, hang, redirect, send
 * garbage. Each request takes the next scripted reply for its path (the last one repeats); every request is
 * recorded, so tests can count attempts and see headers.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Reply =
  | { status: number; json?: unknown; text?: string; headers?: Record<string, string> }
  | { hang: true };

export interface Recorded {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface FakePdp {
  url: string;
  requests: Recorded[];
  /** Requests to `path`. */
  count(path: string): number;
  script(path: string, ...replies: Reply[]): void;
  close(): Promise<void>;
}

export async function startFakePdp(): Promise<FakePdp> {
  const scripts = new Map<string, Reply[]>();
  const requests: Recorded[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const path = req.url ?? '/';
      requests.push({ method: req.method ?? '', path, headers: req.headers, body });
      const queue = scripts.get(path) ?? [{ status: 404, json: { error: { code: 'not_found', message: 'no script' } } }];
      const reply = (queue.length > 1 ? queue.shift() : queue[0])!;
      if ('hang' in reply) return; // never answers; the client's timeout must end it
      res.writeHead(reply.status, { ...(reply.json === undefined ? {} : { 'content-type': 'application/json' }), ...reply.headers });
      res.end(reply.json === undefined ? (reply.text ?? '') : JSON.stringify(reply.json));
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise<void>((ok) => server.once('listening', ok));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    count: (path) => requests.filter((r) => r.path === path).length,
    script: (path, ...replies) => void scripts.set(path, replies),
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

/** A port on 127.0.0.1 that nothing listens on (it was bound a moment ago and released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await new Promise<void>((ok) => server.once('listening', ok));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((ok) => server.close(() => ok()));
  return port;
}

export const ALLOW_DECISION = {
  decision_id: 'dec-1',
  allow: true,
  outcome: 'allow',
  agent_id: 'support-resolver',
  integration: 'crm',
  granted_scopes: ['tickets:write'],
  denied_scopes: [],
  reasons: [{ code: 'allowed', message: 'granted tickets:write' }],
  token_ttl_seconds: 300,
  resource: { type: 'customer', id: '1234' },
  task_id: 'task-42',
  policy_revision: 'r.1',
  redeemable_until: '2030-01-01T00:00:00.000Z',
};

export const TOKEN_RESPONSE = {
  access_token: 'header.payload.signature',
  token_type: 'Bearer',
  expires_in: 300,
  scope: 'tickets:write',
  authorization_details: [{ type: 'crm', actions: ['tickets:write'], identifier: '1234', resource_type: 'customer' }],
  jti: 'jti-1',
};
