import { pino, type Logger } from 'pino';

/**
 * JSON logs through pino. Redaction is by allowlist: request logs name the fields they keep, and the
 * `authorization` header, API keys and tokens are never among them. `redactLogObject` below is a second belt (and,
 * for a child logger's bindings, one serializer per credential key).
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const options = {
    level,
    base: { service: 'agent-pdp' },
    formatters: { log: redactLogObject },
    // A child logger's bindings never pass through `formatters.log` (nor through a child's `formatters.bindings`):
    // pino serializes them by key, so each credential key also has a serializer that censors it.
    serializers: Object.fromEntries([...REDACTED_KEYS].map((key) => [key, censor])),
  };
  return destination ? pino(options, destination as pino.DestinationStream) : pino(options);
}

/** Keys whose value never reaches a log line, at a log object's top level or one level down. */
const REDACTED_KEYS: ReadonlySet<string> = new Set(['authorization', 'headers', 'token', 'access_token', 'api_key']);
export const REDACTED = '[redacted]';
const censor = (): string => REDACTED;

/**
 * A log object with the value of every REDACTED_KEYS member, at its top level and in each object it holds directly,
 * replaced by `[redacted]` (what pino's `redact` paths `key` and `*.key` did), in a copy: the caller's object is never
 * changed. Nothing is copied when nothing matches, which is every request line: pino's redaction cloned the object
 * and parsed its paths on every line (10 KB of garbage per request, more than the decision it logged).
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
    for (const k of Object.keys(value)) {
      if (REDACTED_KEYS.has(k)) (inner ??= copyOf(value as Record<string, unknown>))[k] = REDACTED;
    }
    if (inner !== undefined) (out ??= { ...object })[key] = inner;
  }
  return out ?? object;
}

/**
 * A copy to censor: an object's own members; an error stays an error of its class with its message and stack
 * (pino's error serializer still writes it as one; a spread would lose all three).
 */
function copyOf(value: Record<string, unknown>): Record<string, unknown> {
  if (!(value instanceof Error)) return { ...value };
  const copy = Object.assign(Object.create(Object.getPrototypeOf(value) as object) as Error, value);
  copy.message = value.message;
  if (value.stack !== undefined) copy.stack = value.stack;
  return copy as unknown as Record<string, unknown>;
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
