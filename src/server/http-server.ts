import { createServer, type RequestListener, type Server } from 'node:http';

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
