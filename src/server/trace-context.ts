import type { RequestHandler } from 'express';

declare module 'express-serve-static-core' {
  interface Request {
    traceId?: string | null;
  }
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * W3C `traceparent`: a valid header is kept with the decision and echoed; an invalid one is ignored, as the
 * Trace Context spec asks (all-zero ids are invalid).
 */
export const traceContext: RequestHandler = (req, res, next) => {
  const header = req.headers.traceparent;
  req.traceId = traceIdOf(header);
  if (req.traceId !== null) res.setHeader('traceparent', header as string);
  next();
};

/** The trace id of a valid `traceparent` header, else null. */
export function traceIdOf(header: string | string[] | undefined): string | null {
  const match = typeof header === 'string' ? TRACEPARENT.exec(header) : null;
  if (!match || /^0+$/.test(match[1] ?? '') || /^0+$/.test(match[2] ?? '')) return null;
  return match[1] ?? null;
}
