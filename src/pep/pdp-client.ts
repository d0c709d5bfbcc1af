/**
 * A client for the PDP's HTTP API, as a PEP, an orchestrator or a resource server speaks it
 * (docs/pep-integration.md). One instance per API key; it holds no state besides its options.
 *
 * Every method either resolves with a checked answer or throws a `PepError`: `pdp_unavailable` when the PDP
 * could not be reached or could not decide, `pdp_error` when it refused the request, `token_unavailable` when
 * a redemption failed. A decision is returned as it is, deny included; enforcing it is the caller's job
 * (`guardTool` does it).
 */
import type { AccessRequestSubmissionV1, AccessRequestV1 } from '../wire/access-request-v1.js';
import type { DecisionRequestV1, DecisionResponseV1, TaskRegistrationV1, TaskV1 } from '../wire/decision-v1.js';
import type { GrantableScopesRequestV1, GrantableScopesResponseV1 } from '../wire/grantable-scopes-v1.js';
import type { UsageAnswerV1, UsageReportV1 } from '../wire/usage-v1.js';
import {
  checkAccessRequest,
  checkDecisionFor,
  checkGrantableScopes,
  checkIntrospection,
  checkMetadata,
  checkTask,
  checkTokenResponse,
  checkUsageAnswer,
} from './answer-checks.js';
import { isPepError, PepError } from './pep-error.js';
import { pdpExchange, pdpRequest, type PdpTransport } from './pdp-request.js';
import type { AuthorizationServerMetadataV1, IntrospectionResponseV1, TokenResponseV1 } from '../wire/token-v1.js';

export interface PdpClientOptions {
  /** Base URL of the PDP, e.g. `http://127.0.0.1:8181`. Required. */
  url: string;
  /** This caller's API key, sent as `Authorization: Bearer <key>`. Required. Never logged or put in a message. */
  apiKey: string;
  /** Timeout of one attempt, in milliseconds, covering connect, answer and body. Default 2000. */
  timeoutMs?: number;
  /**
   * Attempts per call, first one included. Decide, grantable scopes, introspect and metadata are retried on a
   * network error, a timeout or a 503; redeem, register and complete only when the connection could not even be
   * opened. Never on another 4xx/5xx. Default 3.
   */
  maxAttempts?: number;
  /** Backoff before the second attempt, in milliseconds; doubled for each further one, with jitter. Default 100. */
  retryDelayMs?: number;
  /** The `fetch` to use. Default `globalThis.fetch`. */
  fetch?: typeof fetch;
}

export interface SubmitAccessRequestOptions {
  /**
   * `Idempotency-Key` header (1–255 printable ASCII): the same key with the same body answers the request made
   * the first time, so a submission whose answer was lost can be sent again safely. Default: a fresh random key
   * per call (the SDK's own retries reuse it).
   */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

export interface WaitForAccessRequestOptions {
  /** Stop waiting after this long, in milliseconds, and resolve with the request as last seen. Default 300000 (5 min). */
  timeoutMs?: number;
  /**
   * Pause between two polls, in milliseconds; a longer `Retry-After` from the PDP is honoured (capped by what is
   * left of `timeoutMs`). Default 2000; at least 10.
   */
  intervalMs?: number;
  /** Cancels the wait: the signal's reason is thrown. */
  signal?: AbortSignal;
}

export class PdpClient {
  /** The base URL, without a trailing slash. */
  readonly url: string;
  readonly #transport: PdpTransport;

  constructor(options: PdpClientOptions) {
    if (typeof options?.url !== 'string') throw new TypeError('PdpClient: "url" must be the PDP base URL');
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw new TypeError('PdpClient: "url" is not a URL');
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.search !== '' || url.hash !== '') {
      throw new TypeError('PdpClient: "url" must be an http(s) URL without query or fragment');
    }
    // Credentials in the URL never work (fetch refuses them) and would travel in every error's cause: the API key is
    // the only credential.
    if (url.username !== '' || url.password !== '') throw new TypeError('PdpClient: "url" must not carry a user name or password (the API key is "apiKey")');
    if (typeof options.apiKey !== 'string' || !/^[\x21-\x7e]{1,512}$/.test(options.apiKey)) {
      throw new TypeError('PdpClient: "apiKey" must be a non-empty printable ASCII string');
    }
    const timeoutMs = options.timeoutMs ?? 2000;
    const maxAttempts = options.maxAttempts ?? 3;
    const retryDelayMs = options.retryDelayMs ?? 100;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new TypeError('PdpClient: "timeoutMs" must be a positive integer');
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 10) {
      throw new TypeError('PdpClient: "maxAttempts" must be an integer from 1 to 10');
    }
    if (!Number.isFinite(retryDelayMs) || retryDelayMs < 0) throw new TypeError('PdpClient: "retryDelayMs" must be a non-negative number');
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== 'function') throw new TypeError('PdpClient: no fetch available (Node.js 20 or newer has one)');
    this.url = options.url.replace(/\/+$/, '');
    this.#transport = { baseUrl: this.url, apiKey: options.apiKey, timeoutMs, maxAttempts, retryDelayMs, fetch: fetchImpl };
  }

  /** The PDP's public keys, for `createRemoteJWKSet`: `<url>/.well-known/jwks.json`. */
  get jwksUri(): string {
    return `${this.url}/.well-known/jwks.json`;
  }

  /** `POST /v1/decide` (role pep). Resolves with allow, deny and undefined alike: check `allow`. */
  async decide(request: DecisionRequestV1): Promise<DecisionResponseV1> {
    const body = await pdpRequest(this.#transport, {
      method: 'POST', path: '/v1/decide', what: 'decide', body: request, authenticate: true, ok: [200], retry: 'safe',
    });
    return checkDecisionFor(body, request);
  }

  /**
   * `POST /v1/grantable-scopes` (role pep): per integration, the scopes a decision for this task could at most grant
   * (`grantable`, with the record-bound ones in `bound`) and those an approver could add (`requestable`). An upper
   * bound for hiding tools an agent can never use, not a decision: it allows nothing, and nothing is recorded.
   * Cache it per `policy_revision` (and task). A task a decision would deny answers `task_denial` and no
   * integrations. Retried like `decide`.
   */
  async grantableScopes(request: GrantableScopesRequestV1): Promise<GrantableScopesResponseV1> {
    const body = await pdpRequest(this.#transport, {
      method: 'POST', path: '/v1/grantable-scopes', what: 'grantable scopes', body: request, authenticate: true, ok: [200], retry: 'safe',
    });
    return checkGrantableScopes(body);
  }

  /**
   * `POST /v1/tokens` (role pep): an allowed decision, once, for a token bound to it. Every failure is
   * `token_unavailable`, with the PDP's code (`decision_expired`, `decision_already_redeemed`, ...) in `pdpCode`.
   */
  async redeem(decisionId: string, options: { resource?: string } = {}): Promise<TokenResponseV1> {
    try {
      // RFC 8707 `resource`: the audience the token is for (the integration's own, e.g. an MCP server's resource URI).
      const request = options.resource === undefined ? { decision_id: decisionId } : { decision_id: decisionId, resource: options.resource };
      const body = await pdpRequest(this.#transport, {
        method: 'POST', path: '/v1/tokens', what: 'redeem', body: request, authenticate: true, ok: [201], retry: 'unsent',
      });
      return checkTokenResponse(body);
    } catch (err) {
      if (!isPepError(err)) throw err;
      const options = { ...(err.status === undefined ? {} : { status: err.status }), ...(err.pdpCode === undefined ? {} : { pdpCode: err.pdpCode }), cause: err };
      throw new PepError('token_unavailable', `no token for decision ${decisionId}: ${err.message}`, options);
    }
  }

  /** `POST /v1/tasks` (role orchestrator): registers the trusted type and context of a task. */
  async registerTask(registration: TaskRegistrationV1): Promise<TaskV1> {
    const body = await pdpRequest(this.#transport, {
      method: 'POST', path: '/v1/tasks', what: 'register task', body: registration, authenticate: true, ok: [201], retry: 'unsent',
    });
    return checkTask(body, 'register task');
  }

  /** `POST /v1/tasks/{id}/complete` (role orchestrator): closes the task and revokes every token issued for it. */
  async completeTask(taskId: string): Promise<TaskV1> {
    const body = await pdpRequest(this.#transport, {
      method: 'POST', path: `/v1/tasks/${encodeURIComponent(taskId)}/complete`, what: 'complete task', authenticate: true, ok: [200], retry: 'unsent',
    });
    return checkTask(body, 'complete task');
  }

  /**
   * `POST /v1/introspect` (role resource_server or pep), RFC 7662: whether the token is still active (not
   * revoked, not expired, its task not closed). The token travels only in the request body.
   */
  async introspect(token: string): Promise<IntrospectionResponseV1> {
    const body = await pdpRequest(this.#transport, {
      method: 'POST', path: '/v1/introspect', what: 'introspect', body: { token }, authenticate: true, ok: [200], retry: 'safe',
    });
    return checkIntrospection(body);
  }

  /**
   * `POST /v1/usage` (role resource_server): reports requests this resource server let through with a token (1 to
   * 500), the evidence of the scopes agents used. Resolves with how many the PDP recorded (`accepted`), how many
   * named a token it does not know (`unknown`) and which it refused (`rejected`, by index). Retried only when the
   * connection could not be opened: a batch that may have arrived is not sent again (it would be recorded twice).
   * `createResourceServerAuth({ reportUsage })` calls this in the background; call it yourself to report from
   * another framework.
   */
  async reportUsage(reports: UsageReportV1[]): Promise<UsageAnswerV1> {
    if (!Array.isArray(reports) || reports.length < 1 || reports.length > 500) throw new TypeError('reportUsage: "reports" must be an array of 1 to 500 reports');
    const body = await pdpRequest(this.#transport, {
      method: 'POST', path: '/v1/usage', what: 'report usage', body: { reports }, authenticate: true, ok: [202], retry: 'unsent',
    });
    return checkUsageAnswer(body, reports.length);
  }

  /**
   * `POST /v1/access-requests` (role pep): asks an approver to lift a denial whose answer held `access_request`
   * (reason `approval_required`), made for this caller, before the hint's `expires_at`. Resolves with the request,
   * `pending`. The PDP's refusals are `pdp_error` with its code in `pdpCode` (`expired_denial`,
   * `not_requestable`, `access_request_exists`, `duplicate_request`, `invalid_request` for a missing reason or a
   * duration above the policy's cap). Always sent to this client's own URL, never to a URL from an answer.
   * Retried like `decide` (the `Idempotency-Key` makes a repeat answer the first request).
   */
  async submitAccessRequest(submission: AccessRequestSubmissionV1, options: SubmitAccessRequestOptions = {}): Promise<AccessRequestV1> {
    if (typeof submission?.decision_id !== 'string' || submission.decision_id === '') throw new TypeError('submitAccessRequest: "decision_id" is required');
    if (submission.reason !== undefined && typeof submission.reason !== 'string') throw new TypeError('submitAccessRequest: "reason" must be a string');
    if (submission.duration_seconds !== undefined && (!Number.isInteger(submission.duration_seconds) || submission.duration_seconds < 1)) {
      throw new TypeError('submitAccessRequest: "duration_seconds" must be a positive integer');
    }
    const key = options.idempotencyKey ?? `pep-${globalThis.crypto.randomUUID()}`;
    if (typeof key !== 'string' || !/^[\x21-\x7e]{1,255}$/.test(key)) throw new TypeError('submitAccessRequest: "idempotencyKey" must be 1 to 255 printable ASCII characters');
    const body: AccessRequestSubmissionV1 = {
      decision_id: submission.decision_id,
      ...(submission.reason === undefined ? {} : { reason: submission.reason }),
      ...(submission.duration_seconds === undefined ? {} : { duration_seconds: submission.duration_seconds }),
    };
    const answer = await pdpRequest(this.#transport, {
      method: 'POST', path: '/v1/access-requests', what: 'submit access request', body, authenticate: true, ok: [202], retry: 'safe',
      headers: { 'idempotency-key': key }, ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    return checkAccessRequest(answer, 'submit access request');
  }

  /** `GET /v1/access-requests/{id}` (role pep: the requests this caller made): the request's status. */
  async getAccessRequest(id: string, options: { signal?: AbortSignal } = {}): Promise<AccessRequestV1> {
    return (await this.#pollAccessRequest(id, options.signal)).request;
  }

  /**
   * Polls `GET /v1/access-requests/{id}` until it is no longer `pending` (approved, denied or expired) or
   * `timeoutMs` passed, and resolves with the request as last seen: check `status` (still `pending` after a
   * timeout). The approval alone allows nothing: on `approved`, decide again. A poll the PDP could not answer
   * (`pdp_unavailable`) does not end the wait; any other refusal does (thrown). Bounded: at most one poll per
   * `intervalMs` (or the PDP's `Retry-After`), none after the deadline.
   */
  async waitForAccessRequest(id: string, options: WaitForAccessRequestOptions = {}): Promise<AccessRequestV1> {
    const timeoutMs = options.timeoutMs ?? 300_000;
    const intervalMs = options.intervalMs ?? 2000;
    if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw new TypeError('waitForAccessRequest: "timeoutMs" must be a non-negative number');
    if (!Number.isFinite(intervalMs) || intervalMs < 10) throw new TypeError('waitForAccessRequest: "intervalMs" must be a number of at least 10');
    const { signal } = options;
    const deadline = Date.now() + timeoutMs;
    let last: AccessRequestV1 | undefined;
    let failure: unknown;
    for (;;) {
      let pause = intervalMs;
      try {
        const { request, retryAfterSeconds } = await this.#pollAccessRequest(id, signal);
        if (request.status !== 'pending') return request;
        last = request;
        failure = undefined;
        if (retryAfterSeconds !== undefined) pause = Math.max(pause, retryAfterSeconds * 1000);
      } catch (err) {
        if (signal?.aborted || !isPepError(err) || err.code !== 'pdp_unavailable') throw err;
        failure = err;
      }
      const left = deadline - Date.now();
      if (left <= 0) break;
      await sleep(Math.min(pause, left), signal);
    }
    if (last === undefined) throw failure;
    return last;
  }

  async #pollAccessRequest(id: string, signal: AbortSignal | undefined): Promise<{ request: AccessRequestV1; retryAfterSeconds: number | undefined }> {
    if (typeof id !== 'string' || id === '') throw new TypeError('an access request id is required');
    const answer = await pdpExchange(this.#transport, {
      method: 'GET', path: `/v1/access-requests/${encodeURIComponent(id)}`, what: 'get access request', authenticate: true, ok: [200], retry: 'safe',
      ...(signal === undefined ? {} : { signal }),
    });
    return { request: checkAccessRequest(answer.body, 'get access request'), retryAfterSeconds: answer.retryAfterSeconds };
  }

  /** `GET /.well-known/oauth-authorization-server` (public): the issuer a resource server must expect. */
  async metadata(): Promise<AuthorizationServerMetadataV1> {
    const body = await pdpRequest(this.#transport, {
      method: 'GET', path: '/.well-known/oauth-authorization-server', what: 'metadata', authenticate: false, ok: [200], retry: 'safe',
    });
    return checkMetadata(body);
  }
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
