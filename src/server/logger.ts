import { pino, type Logger } from 'pino';

/**
 * JSON logs through pino. Redaction is by allowlist: request logs name the fields they keep, and the
 * `authorization` header, API keys and tokens are never among them. `redact` below is a second belt.
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const options = {
    level,
    base: { service: 'agent-pdp' },
    redact: {
      paths: ['authorization', '*.authorization', 'headers', '*.headers', 'token', '*.token', 'access_token', '*.access_token', 'api_key', '*.api_key'],
      censor: '[redacted]',
    },
  };
  return destination ? pino(options, destination as pino.DestinationStream) : pino(options);
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
