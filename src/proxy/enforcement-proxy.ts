/**
 * The enforcement proxy assembled from its parts and listening: the revocation cache (started before the first
 * call is accepted), the token gate, one upstream per configured integration, and the handler. `main.ts` builds it
 * inside `serve` (config `proxy.serve`) or alone (`agent-pdp proxy`) from the parts of a PDP it injects.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWTVerifyGetKey } from 'jose';
import type { Logger } from 'pino';
import type { ProxyConfig } from '../config/config-types.js';
import { issuedToken, type IssuedToken } from '../issuer/issued-claims.js';
import type { PolicySet } from '../policy/policy-types.js';
import type { TokenIds, TokenUseInput } from '../store/index.js';
import { continueFirst, createProxyHandler, type ProxyObserver } from './proxy-server.js';
import { RevocationCache, type RevocationFeed } from './revocation-cache.js';
import { TokenGate } from './token-gate.js';
import { Upstream } from './upstream.js';

export interface EnforcementProxyParts {
  config: ProxyConfig;
  /** The issuer (`iss`) tokens must carry. */
  issuer: string;
  /** The issuer's public keys in force. */
  jwks: () => JWTVerifyGetKey;
  policy: () => PolicySet | undefined;
  audienceFor: (integration: string) => string;
  store: RevocationFeed & {
    recordTokenUse(input: TokenUseInput): Promise<void>;
    getToken(jti: string): Promise<({ revoked_at: string | null } & Omit<IssuedToken, 'resource'> & TokenIds) | undefined>;
    getDecision(decisionId: string): Promise<{ integration: string; token_grant: unknown } | undefined>;
  };
  /** `issuer.max_token_ttl_seconds`: no token of this issuer claims a longer lifetime. */
  maxTokenTtlSeconds: number;
  logger: Logger;
  observer?: ProxyObserver;
  /** Served at `GET /-/metrics` on the proxy's listener (the standalone proxy); default none. */
  metrics?: () => Promise<{ contentType: string; text: string }>;
  now?: () => Date;
}

export interface EnforcementProxy {
  server: Server;
  /** `http://host:port` of the listener. */
  url: string;
  revocations: RevocationCache;
  gate: TokenGate;
  /** Stops accepting calls, lets those in flight finish, closes the upstream pools and the revocation poll. */
  close(): Promise<void>;
}

export async function startEnforcementProxy(parts: EnforcementProxyParts): Promise<EnforcementProxy> {
  const { config, logger } = parts;
  const revocations = new RevocationCache({
    feed: parts.store,
    pollMs: config.revocation_poll_ms,
    ...(parts.now === undefined ? {} : { now: parts.now }),
    onError: (err) => logger.error({ err: err instanceof Error ? { name: err.name, message: err.message } : String(err) }, 'proxy: the revocation feed could not be read'),
  });
  await revocations.start();
  const gate = new TokenGate({
    jwks: parts.jwks,
    issuer: parts.issuer,
    revocations,
    lookup: async (jti) => {
      let token: Awaited<ReturnType<typeof parts.store.getToken>>;
      let decision: Awaited<ReturnType<typeof parts.store.getDecision>>;
      try {
        token = await parts.store.getToken(jti);
        // Its integration and bound record are the decision's: read once per token (the gate caches what it admits).
        decision = token === undefined ? undefined : await parts.store.getDecision(token.decision_id);
      } catch (err) {
        // The gate refuses the call (503); the store's message goes to the log, never the token.
        logger.error({ err: err instanceof Error ? { name: err.name, message: err.message } : String(err) }, 'proxy: a token could not be looked up in the store');
        throw err;
      }
      if (token === undefined) return undefined;
      return { revoked: token.revoked_at !== null, decision_id: token.decision_id, task_id: token.task_id, agent_id: token.agent_id, issued: issuedToken(token, decision) };
    },
    maxTokenTtlSeconds: parts.maxTokenTtlSeconds,
    cacheEntries: config.token_cache_entries,
    ...(parts.now === undefined ? {} : { now: parts.now }),
  });
  const upstreams = new Map(config.upstreams.map((u) => [u.integration, new Upstream(u)] as const));
  const handler = createProxyHandler({
    upstreams,
    gate,
    policy: parts.policy,
    audienceFor: parts.audienceFor,
    store: parts.store,
    proxyId: config.id,
    maxRequestBytes: config.max_request_bytes,
    maxResponseBytes: config.max_response_bytes,
    logger,
    ...(parts.observer === undefined ? {} : { observer: parts.observer }),
    ...(parts.metrics === undefined ? {} : { metrics: parts.metrics }),
    ...(parts.now === undefined ? {} : { now: parts.now }),
  });
  const server = createServer(handler);
  // `Expect: 100-continue`: answered by the handler once the body is wanted (a refusal comes before the upload).
  server.on('checkContinue', continueFirst(handler));
  server.keepAliveTimeout = 65_000;
  // A caller gets 10 s for its headers and two minutes for its whole request (a streamed upload included).
  server.headersTimeout = 10_000;
  server.requestTimeout = 120_000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    revocations.stop();
    await Promise.all([...upstreams.values()].map((u) => u.close()));
    throw err;
  }
  const address = server.address() as AddressInfo;
  const url = `http://${address.address}:${address.port}`;
  logger.info({ url, upstreams: [...upstreams.keys()] }, 'agent-pdp proxy listening');
  let closing: Promise<void> | undefined;
  return {
    server,
    url,
    revocations,
    gate,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        revocations.stop();
        await Promise.all([...upstreams.values()].map((u) => u.close()));
      })();
      return closing;
    },
  };
}
