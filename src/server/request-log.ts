import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { RequestLogFields } from './logger.js';
import type { Metrics } from './metrics.js';

declare module 'express-serve-static-core' {
  interface Request {
    /** Set by a handler so the access log line names the decision it produced. */
    decisionId?: string;
  }
}

/** Request id, access log (allowlisted fields only) and the latency histogram. */
export function requestLog(logger: Logger, metrics: Metrics): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    const requestId = randomUUID();
    res.setHeader('x-request-id', requestId);
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      metrics.requestSeconds.observe({ route, method: req.method, status: String(res.statusCode) }, seconds);
      const fields: RequestLogFields = {
        request_id: requestId,
        method: req.method,
        route,
        status: res.statusCode,
        duration_ms: Math.round(seconds * 1e6) / 1e3,
        ...(req.caller ? { caller_id: req.caller.id } : {}),
        ...(req.decisionId ? { decision_id: req.decisionId } : {}),
        ...(req.traceId ? { trace_id: req.traceId } : {}),
      };
      logger.info(fields, 'request');
    });
    next();
  };
}
