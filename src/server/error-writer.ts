import type { Logger } from 'pino';
import { isPdpError, PdpError, type ErrorDetail, type PdpErrorCode } from '../errors/pdp-error.js';
import { MethodNotAllowed } from './router.js';
import type { OAuthErrorV1 } from '../wire/token-v1.js';

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
 * The one place errors become HTTP: any thrown value as the response it becomes. A PdpError keeps its status and
 * code; anything else is a 500 `internal`. A 5xx never carries its message, cause or a stack trace; its cause is
 * logged by name and message.
 */
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
  // A 401's WWW-Authenticate names the scheme the client tried: the pipeline, which knows it, sets it.
  const headers: Record<string, string> = {};
  if (err instanceof MethodNotAllowed) headers['allow'] = err.allow.join(', ');
  return { status: error.status, body, headers };
}

function toPdpError(err: unknown): PdpError {
  return isPdpError(err) ? err : new PdpError('internal', 'unexpected error', { cause: err });
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
  const cause = error.cause instanceof Error ? `${error.cause.name}: ${error.cause.message}` : error.cause === undefined ? undefined : typeof error.cause;
  return { code: error.code, message: error.message, ...(cause ? { cause } : {}) };
}

/** Our codes as RFC 6749 §5.2 (and RFC 8707 §2) error codes; anything not listed is `invalid_request` (a 4xx). */
const OAUTH_ERRORS: Partial<Record<PdpErrorCode, OAuthErrorV1['error']>> = {
  unauthenticated: 'invalid_client',
  forbidden_role: 'unauthorized_client',
  decision_not_found: 'invalid_grant',
  decision_not_allowed: 'invalid_grant',
  decision_wrong_caller: 'invalid_grant',
  decision_expired: 'invalid_grant',
  decision_already_redeemed: 'invalid_grant',
  task_not_active: 'invalid_grant',
  provider_ttl_too_short: 'invalid_grant',
  redemption_in_progress: 'invalid_grant',
  unsupported_grant_type: 'unsupported_grant_type',
  invalid_target: 'invalid_target',
};

/**
 * The same error in the OAuth dialect (a form-encoded request to the token, introspection or revocation
 * endpoint): RFC 6749 §5.2's `{ error, error_description }` with status 400 (401 for `invalid_client`), our own
 * error kept whole in `pdp_error`. A 5xx keeps its status and says only `server_error` / `temporarily_unavailable`.
 */
export function oauthErrorResponse(
  err: unknown,
  logger: Logger,
  requestId: unknown,
): { status: number; body: OAuthErrorV1; headers: Record<string, string> } {
  const ours = errorResponse(err, logger, requestId);
  const code = ours.body.error.code as PdpErrorCode;
  const headers = { ...ours.headers, 'cache-control': 'no-store', pragma: 'no-cache' };
  if (ours.status >= 500) {
    const error = ours.status === 503 ? 'temporarily_unavailable' : 'server_error';
    return { status: ours.status, body: { error, error_description: oauthDescription(ours.body.error.message), pdp_error: ours.body.error }, headers };
  }
  const error = OAUTH_ERRORS[code] ?? 'invalid_request';
  return { status: error === 'invalid_client' ? 401 : 400, body: { error, error_description: oauthDescription(ours.body.error.message), pdp_error: ours.body.error }, headers };
}

/**
 * RFC 6749 §5.2: `error_description` is ASCII without `"` and `\` (%x20-21 / %x23-5B / %x5D-7E). A message may echo a
 * client's value (a decision id with a line break, a right-to-left override): `"` becomes `'`, a backslash `/`, any
 * other character outside the set `?`. The message as it was stays in `pdp_error` (JSON-escaped).
 */
function oauthDescription(message: string): string {
  return message.replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, (c) => (c === '"' ? "'" : c === '\\' ? '/' : '?'));
}

/** OPA's REST API error body (open-policy-agent/opa v1/server/types: `ErrorV1`), our own error kept in `pdp_error`. */
export interface OpaErrorV1 {
  code: 'invalid_parameter' | 'unauthorized' | 'resource_not_found' | 'undefined_document' | 'internal_error';
  message: string;
  errors?: Array<{ code: string; message: string }>;
  pdp_error: ErrorBodyV1['error'];
}

/**
 * The same error in OPA's dialect, for the routes of OPA's data API: OPA's `{ code, message, errors? }` with OPA's
 * codes (400 `invalid_parameter`, 401/403 `unauthorized`, 404 `resource_not_found`, or `undefined_document` for an
 * undefined default decision as OPA answers it, 5xx `internal_error`), the
 * status unchanged, our error whole in `pdp_error`. What an OPA client reads as a typed error.
 */
export function opaErrorResponse(
  err: unknown,
  logger: Logger,
  requestId: unknown,
): { status: number; body: OpaErrorV1; headers: Record<string, string> } {
  const ours = errorResponse(err, logger, requestId);
  const code: OpaErrorV1['code'] =
    ours.status === 401 || ours.status === 403
      ? 'unauthorized'
      : ours.status === 404
        ? ours.body.error.code === 'not_found' ? 'undefined_document' : 'resource_not_found'
        : ours.status >= 500 ? 'internal_error' : 'invalid_parameter';
  const details = ours.body.error.details;
  return {
    status: ours.status,
    body: {
      code,
      message: ours.body.error.message,
      ...(details.length === 0 ? {} : { errors: details.map((d) => ({ code: ours.body.error.code, message: `${d.path}: ${d.message}` })) }),
      pdp_error: ours.body.error,
    },
    headers: ours.headers,
  };
}

