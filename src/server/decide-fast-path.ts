import { randomUUID } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Express } from 'express';
import type { Logger } from 'pino';
import type { CallerConfig } from '../config/config-types.js';
import { PdpError } from '../errors/pdp-error.js';
import type { Decider } from '../pdp/decider.js';
import { callerResolver, type AuthFailure } from './authenticate.js';
import { errorResponse } from './error-handler.js';
import type { RequestLogFields } from './logger.js';
import type { Metrics } from './metrics.js';
import { parseDecisionRequest } from './routes/decide.js';
import { traceIdOf } from './trace-context.js';

export interface FastPathDeps {
  app: Express;
  callers: readonly CallerConfig[];
  decider: Decider;
  metrics: Metrics;
  logger: Logger;
  bodyLimitBytes: number;
  onAuthFailure?: (failure: AuthFailure) => void;
}

const ROUTE = '/v1/decide';
const JSON_TYPE = /^application\/json\s*(;\s*charset\s*=\s*"?utf-8"?\s*)?$/i;

/**
 * The HTTP entry point: `POST /v1/decide` with a plain JSON body is served on node:http directly (express costs
 * more per request than a whole decision: bench/results/profile.md); everything else, including any decide
 * request with an unusual encoding or content type, goes to the express app. Both paths share the API-key
 * resolver, the body validator, the decider, the error mapping and the access-log fields, and the same test
 * suites run against this listener.
 */
export function httpHandler(deps: FastPathDeps): RequestListener {
  const resolveCaller = callerResolver(deps.callers);
  return (req, res) => {
    if (!isPlainDecide(req)) {
      deps.app(req, res);
      return;
    }
    void serveDecide(deps, resolveCaller, req, res);
  };
}

function isPlainDecide(req: IncomingMessage): boolean {
  if (req.method !== 'POST' || req.url !== ROUTE) return false;
  const type = req.headers['content-type'];
  const encoding = req.headers['content-encoding'];
  return typeof type === 'string' && JSON_TYPE.test(type) && (encoding === undefined || encoding === 'identity');
}

async function serveDecide(
  deps: FastPathDeps,
  resolveCaller: ReturnType<typeof callerResolver>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const started = process.hrtime.bigint();
  const requestId = randomUUID();
  const traceId = traceIdOf(req.headers.traceparent);
  const headers: Record<string, string> = { 'x-request-id': requestId };
  if (traceId !== null) headers['traceparent'] = req.headers.traceparent as string;
  let caller: CallerConfig | undefined;
  let decisionId: string | undefined;
  let status: number;
  let payload: string;
  try {
    const resolved = resolveCaller(req.headers.authorization);
    if (typeof resolved === 'string') {
      deps.metrics.authFailures.inc({ reason: resolved });
      deps.onAuthFailure?.({ reason: resolved, path: ROUTE, ip: req.socket.remoteAddress });
      throw new PdpError('unauthenticated', 'missing or invalid API key');
    }
    caller = resolved;
    const body = await readJsonBody(req, deps.bodyLimitBytes);
    if (caller.role !== 'pep') throw new PdpError('forbidden_role', `role ${caller.role} may not use this endpoint`);
    const response = await deps.decider.decide(caller, parseDecisionRequest(body), traceId);
    decisionId = response.decision_id;
    status = 200;
    payload = JSON.stringify(response);
  } catch (err) {
    const mapped = errorResponse(err, deps.logger, requestId);
    Object.assign(headers, mapped.headers);
    status = mapped.status;
    payload = JSON.stringify(mapped.body);
    // A body we stopped reading cannot be left on a keep-alive connection.
    if (!req.complete) headers['connection'] = 'close';
  }
  headers['content-type'] = 'application/json; charset=utf-8';
  headers['content-length'] = String(Buffer.byteLength(payload));
  res.writeHead(status, headers);
  res.end(payload);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  deps.metrics.requestSeconds.observe({ route: ROUTE, method: 'POST', status: String(status) }, seconds);
  const fields: RequestLogFields = {
    request_id: requestId,
    method: 'POST',
    route: ROUTE,
    status,
    duration_ms: Math.round(seconds * 1e6) / 1e3,
    ...(caller ? { caller_id: caller.id } : {}),
    ...(decisionId ? { decision_id: decisionId } : {}),
    ...(traceId ? { trace_id: traceId } : {}),
  };
  deps.logger.info(fields, 'request');
}

/** Reads and parses the body as express.json({ strict: true }) would: objects and arrays only, within the limit. */
async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const tooLarge = (): PdpError =>
    new PdpError('body_too_large', 'request body exceeds the size limit', { details: [{ path: '(body)', message: 'too large' }] });
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  // Listeners, not for-await: leaving an async iterator early destroys the socket the error must be written to.
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve();
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new PdpError('invalid_request', 'request body could not be read', { cause: err, details: [{ path: '(body)', message: 'unreadable' }] }));
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
  const text = Buffer.concat(chunks, size).toString('utf8');
  if (size === 0) return {};
  const first = /^[\x20\x09\x0a\x0d]*(.)/.exec(text)?.[1];
  try {
    if (first !== '{' && first !== '[') throw new SyntaxError('not an object or array');
    return JSON.parse(text) as unknown;
  } catch {
    throw new PdpError('invalid_request', 'request body is not valid JSON', { details: [{ path: '(body)', message: 'not valid JSON' }] });
  }
}
