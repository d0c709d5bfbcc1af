import { pino, type Logger } from 'pino';

/**
 * JSON logs through pino. Redaction is by allowlist: request logs name the fields they keep, and the
 * `authorization` header, API keys and tokens are never among them. `redactLogObject` below is a second belt.
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const options = {
    level,
    base: { service: 'agent-pdp' },
    formatters: { log: redactLogObject },
  };
  return destination ? pino(options, destination as pino.DestinationStream) : pino(options);
}

/** Keys whose value never reaches a log line, at a log object's top level or one level down. */
const REDACTED_KEYS: ReadonlySet<string> = new Set(['authorization', 'headers', 'token', 'access_token', 'api_key']);
export const REDACTED = '[redacted]';

/**
 * A log object with the value of every REDACTED_KEYS member, at its top level and in each object it holds directly,
 * replaced by `[redacted]` (what pino's `redact` paths `key` and `*.key` did), in a copy: the caller's object is
 * never changed. Nothing is copied when nothing matches, which is every request line: pino's redaction cloned and
 * parsed its paths on every line (10 KB of garbage per request, more than the decision it logged).
 */
export function redactLogObject(object: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const key of Object.keys(object)) {
    if (REDACTED_KEYS.has(key)) {
      (out ??= { ...object })[key] = REDACTED;
      continue;
    }
    const value = object[key];
    if (typeof value !== 'object' || value === null || Array.isArray(value)) continue;
    let inner: Record<string, unknown> | undefined;
    for (const k of Object.keys(value)) if (REDACTED_KEYS.has(k)) (inner ??= { ...(value as Record<string, unknown>) })[k] = REDACTED;
    if (inner !== undefined) (out ??= { ...object })[key] = inner;
  }
  return out ?? object;
}

/** The fields of a finished request that a log line may carry. */
export interface RequestLogFields {
  request_id: string;
  method: string;
  route: string;
  status: number;
  duration_ms: number;
  caller_id?: string;
  decision_id?: string;
  agent_id?: string;
  trace_id?: string;
}
