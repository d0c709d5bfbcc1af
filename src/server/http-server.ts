import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';

/** How long a client may take to send a request, and how often node:http checks (RFC 9110 §15.5.9, 408). */
export interface RequestTimeouts {
  /** From the connection's first byte to the end of the request's headers. */
  headersMs: number;
  /** From the first byte to the end of the request's body (bodies are at most `server.body_limit_bytes`). */
  requestMs: number;
  /** How often open connections are checked against the two limits. */
  checkIntervalMs: number;
}

/**
 * The limits of the API server: a client trickling its headers or body (a form body is read before its client is
 * authenticated, for `client_secret_post`) gets a 408 and its connection closed after seconds, not after node:http's
 * defaults of 60 s and 5 min checked every 30 s. They bound the sending of a request only, never an answer being
 * streamed (an audit export).
 */
export const REQUEST_TIMEOUTS: RequestTimeouts = Object.freeze({ headersMs: 10_000, requestMs: 30_000, checkIntervalMs: 1_000 });

/** The API's HTTP server (not yet listening), with the request timeouts and the keep-alive idle time set. */
export function createApiServer(handler: RequestListener, timeouts: RequestTimeouts = REQUEST_TIMEOUTS): Server {
  const server = createServer({ connectionsCheckingInterval: timeouts.checkIntervalMs, headersTimeout: timeouts.headersMs, requestTimeout: timeouts.requestMs }, handler);
  // Longer than the usual load balancer's idle timeout (60 s), so the balancer, not the PDP, closes idle connections.
  server.keepAliveTimeout = 65_000;
  return server;
}

/** While a server drains, idle connections are closed this often; whatever is still open at the deadline is cut. */
export const DRAIN_SWEEP_MS = 200;
export const DRAIN_DEADLINE_MS = 20_000;

/**
 * Graceful stop for a server, set up when it starts: `drain()` stops accepting connections, makes every answer from
 * then on (and those being written, whose headers are not out yet) close its connection, closes connections as they
 * go idle, and cuts whatever is still open at the deadline; it resolves once the server is closed. A keep-alive
 * client can then not hold the process open by asking on.
 */
export function drainable(server: Server, options: { sweepMs?: number; deadlineMs?: number; onDeadline?: () => void } = {}): () => Promise<void> {
  let draining = false;
  const answering = new Set<ServerResponse>();
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    if (draining) {
      res.shouldKeepAlive = false;
      return;
    }
    answering.add(res);
    res.once('close', () => answering.delete(res));
  });
  let drained: Promise<void> | undefined;
  return () => {
    drained ??= new Promise<void>((resolve) => {
      draining = true;
      for (const res of answering) if (!res.headersSent) res.shouldKeepAlive = false;
      answering.clear();
      const sweep = setInterval(() => server.closeIdleConnections(), options.sweepMs ?? DRAIN_SWEEP_MS);
      const deadline = setTimeout(() => {
        options.onDeadline?.();
        server.closeAllConnections();
      }, options.deadlineMs ?? DRAIN_DEADLINE_MS);
      server.close(() => {
        clearInterval(sweep);
        clearTimeout(deadline);
        resolve();
      });
      server.closeIdleConnections();
    });
    return drained;
  };
}
