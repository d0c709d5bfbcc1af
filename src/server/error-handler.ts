import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { isPdpError, PdpError, type ErrorDetail } from '../errors/pdp-error.js';

/** The wire shape of every error: `{ error: { code, message, details } }`. */
export interface ErrorBodyV1 {
  error: { code: string; message: string; details: WireErrorDetail[] };
}

/** One offending field; policy errors also say where in which file (`file` relative to the policy folder). */
export interface WireErrorDetail {
  path: string;
  message: string;
  file?: string;
  line?: number;
  column?: number;
}

/**
 * The one place errors become HTTP. A PdpError keeps its status and code; body-parser failures get their own
 * 4xx codes; anything else is a 500 `internal`. A 5xx never carries its message, cause or a stack trace.
 */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const { status, body, headers } = errorResponse(err, logger, res.getHeader('x-request-id'));
    if (res.headersSent) {
      req.socket.destroy();
      return;
    }
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    res.status(status).json(body);
  };
}

/** Any thrown value as the response it becomes; logs 5xx causes (never their text to the caller). */
export function errorResponse(
  err: unknown,
  logger: Logger,
  requestId: unknown,
): { status: number; body: ErrorBodyV1; headers: Record<string, string> } {
  const error = toPdpError(err);
  if (error.status >= 500) {
    logger.error({ request_id: requestId, code: error.code, err: describeCause(error) }, 'request failed');
  }
  const body: ErrorBodyV1 = {
    error: {
      code: error.code,
      message: error.expose ? error.message : 'the PDP could not answer this request; nothing was allowed',
      details: error.expose ? error.details.map(toWireDetail) : [],
    },
  };
  const headers: Record<string, string> = error.code === 'unauthenticated' ? { 'www-authenticate': 'Bearer realm="agent-pdp"' } : {};
  return { status: error.status, body, headers };
}

export const notFound: RequestHandler = (req, _res, next) => {
  next(new PdpError('not_found', `no route for ${req.method} ${req.path}`));
};

function toPdpError(err: unknown): PdpError {
  if (isPdpError(err)) return err;
  const e = err as { type?: string; status?: number; expose?: boolean } | undefined;
  switch (e?.type) {
    case 'entity.too.large':
      return new PdpError('body_too_large', 'request body exceeds the size limit', {
        details: [{ path: '(body)', message: 'too large' }],
      });
    case 'entity.parse.failed':
      return new PdpError('invalid_request', 'request body is not valid JSON', {
        details: [{ path: '(body)', message: 'not valid JSON' }],
      });
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new PdpError('unsupported_media_type', 'unsupported body encoding or charset');
    default:
      if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500 && e.expose) {
        return new PdpError('invalid_request', 'malformed request', { details: [{ path: '(body)', message: 'unreadable' }] });
      }
      return new PdpError('internal', 'unexpected error', { cause: err });
  }
}

/** An allowlist: a detail carries its field path and message, and a file location when it has one. */
function toWireDetail(d: ErrorDetail): WireErrorDetail {
  return {
    path: d.path,
    message: d.message,
    ...(d.file !== undefined ? { file: d.file } : {}),
    ...(d.line !== undefined ? { line: d.line } : {}),
    ...(d.column !== undefined ? { column: d.column } : {}),
  };
}

/** Causes are logged by name and message only: a stack or a request object could carry a secret. */
function describeCause(error: PdpError): { code: string; message: string; cause?: string } {
  const cause = error.cause instanceof Error ? `${error.cause.name}: ${error.cause.message}` : undefined;
  return { code: error.code, message: error.message, ...(cause ? { cause } : {}) };
}
