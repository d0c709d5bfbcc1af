const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * The trace id of a valid W3C `traceparent` header, else null. A valid header is kept with the decision and
 * echoed; an invalid one is ignored, as the Trace Context spec asks (all-zero ids are invalid).
 */
export function traceIdOf(header: string | string[] | undefined): string | null {
  const match = typeof header === 'string' ? TRACEPARENT.exec(header) : null;
  if (!match || /^0+$/.test(match[1] ?? '') || /^0+$/.test(match[2] ?? '')) return null;
  return match[1] ?? null;
}
