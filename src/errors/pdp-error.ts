/**
 * The one error type of agent-pdp. Every runtime failure that can reach a caller is a PdpError with a code
 * from the closed union below; the HTTP layer maps `status` and `code` to the wire in exactly one place.
 *
 * `expose` says whether `message` may be shown to the caller. A 5xx never exposes its message or cause.
 */
export const ERROR_CODES = {
  // 400: the request is malformed
  invalid_request: 400,
  body_too_large: 400,
  unsupported_media_type: 415,
  // 401 / 403: who is asking
  unauthenticated: 401,
  forbidden_role: 403,
  /** A state change made with a console session's cookie did not carry the session's `X-CSRF-Token`. */
  csrf_failed: 403,
  forbidden_agent: 403,
  context_assertion_forbidden: 403,
  // 404 / 405 / 409: the thing asked about
  not_found: 404,
  /** The path exists, with other methods (the response's `Allow` header names them). */
  method_not_allowed: 405,
  task_not_found: 404,
  task_exists: 409,
  task_not_active: 409,
  decision_not_found: 404,
  /** OPA's data API or an AuthZEN route named an entrypoint the policy bundle does not export. */
  entrypoint_not_found: 404,
  decision_not_allowed: 409,
  decision_wrong_caller: 403,
  decision_expired: 409,
  decision_already_redeemed: 409,
  /**
   * The decision's lifetime (its TTL, capped by the task) is below the provider's shortest credential (AWS STS: 900 s):
   * nothing is minted rather than a credential that outlives the grant; the decision stays unredeemed.
   */
  provider_ttl_too_short: 409,
  /**
   * Another redemption of the decision holds it while it mints its provider credential: nothing is minted for this
   * one. Retry after it ends (it issues the token, or fails and releases the decision).
   */
  redemption_in_progress: 409,
  // access requests (break-glass escalation; names follow the AuthZEN access-request profile where it has one)
  not_requestable: 400,
  expired_denial: 400,
  duplicate_request: 409,
  access_request_exists: 409,
  access_request_not_found: 404,
  access_request_not_pending: 409,
  access_request_expired: 409,
  self_approval: 403,
  forbidden_approver_group: 403,
  approval_link_invalid: 403,
  approval_link_expired: 410,
  // policy suggestions (src/suggest/)
  /** The agent's policy file changed since the suggestion was made (or is gone): nothing is written. */
  suggestion_stale: 409,
  /** Applied or dismissed already: a decided suggestion is not applied (or dismissed) again. */
  suggestion_decided: 409,
  // the audit console (src/pdp/audit-verification.ts)
  /** A verification of the stored chain is running in this process already: one at a time. */
  verification_running: 409,
  // OAuth token endpoint (RFC 6749 §5.2, RFC 8707 §2)
  unsupported_grant_type: 400,
  invalid_target: 400,
  // policy pipeline
  policy_invalid: 422,
  /** A config re-read at a reload did not load; the running callers stay (the admin endpoint's answer). */
  config_refused: 422,
  bundle_invalid: 503,
  bundle_missing: 503,
  evaluation_failed: 503,
  // runtime
  /** The provider refused or failed to mint the credential for a provider integration: nothing issued, the decision unredeemed. */
  provider_failed: 502,
  store_unavailable: 503,
  /** The web console's files are not built (`make build`). */
  console_unavailable: 503,
  issuer_unavailable: 503,
  config_invalid: 500,
  internal: 500,
} as const;

export type PdpErrorCode = keyof typeof ERROR_CODES;

/** One offending field: `path` is a JSON pointer-ish dotted path (`task.context.customer_id`), or a file location. */
export interface ErrorDetail {
  path: string;
  message: string;
  file?: string;
  line?: number;
  column?: number;
}

export interface PdpErrorOptions {
  /** Shown to the caller? Default: true for 4xx, false for 5xx (5xx are never exposed). */
  expose?: boolean;
  details?: ErrorDetail[];
  cause?: unknown;
}

export class PdpError extends Error {
  override readonly name = 'PdpError';
  readonly code: PdpErrorCode;
  readonly status: number;
  readonly expose: boolean;
  readonly details: ErrorDetail[];

  constructor(code: PdpErrorCode, message: string, options: PdpErrorOptions = {}) {
    if (!(code in ERROR_CODES)) throw new TypeError(`unknown PdpError code: ${String(code)}`);
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = ERROR_CODES[code];
    this.expose = this.status < 500 && (options.expose ?? true);
    this.details = options.details ?? [];
  }
}

export function isPdpError(err: unknown): err is PdpError {
  return err instanceof PdpError;
}

/**
 * A thrown value as one line for a log: an Error's name and message, a plain object's `code` and `message` (what
 * a worker thread or a driver throws), never the object itself, which could carry anything (a key, a row).
 */
export function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  if (typeof err === 'object' && err !== null) {
    const { code, message } = err as { code?: unknown; message?: unknown };
    const parts = [typeof code === 'string' ? code : undefined, typeof message === 'string' ? message : undefined].filter((p) => p !== undefined);
    return parts.length > 0 ? parts.join(': ') : 'an error object without a message';
  }
  return typeof err === 'string' ? err : `a thrown ${typeof err}`;
}

/**
 * `file:line:column path: message`, the one way a detail is printed (CLI, `/readyz`'s first error, policy tests):
 * the parts a detail lacks left out (a YAML syntax error has no field path).
 */
export function formatErrorDetail(d: ErrorDetail): string {
  const where = d.file === undefined ? '' : `${d.file}${d.line === undefined ? '' : `:${d.line}${d.column === undefined ? '' : `:${d.column}`}`} `;
  return `${where}${d.path === '' ? '' : `${d.path}: `}${d.message}`;
}
