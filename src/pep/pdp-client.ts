/**
 * A client for the PDP's HTTP API, as a PEP, an orchestrator or a resource server speaks it
 * (docs/pep-integration.md). One instance per API key; it holds no state besides its options.
 *
 * Every method either resolves with a checked answer or throws a `PepError`: `pdp_unavailable` when the PDP
 * could not be reached or could not decide, `pdp_error` when it refused the request, `token_unavailable` when
 * a redemption failed. A decision is returned as it is, deny included; enforcing it is the caller's job
 * (`guardTool` does it).
 */
import type { DecisionRequestV1, DecisionResponseV1, TaskRegistrationV1, TaskV1 } from '../wire/decision-v1.js';
import { checkDecision, checkIntrospection, checkMetadata, checkTask, checkTokenResponse } from './answer-checks.js';
import { isPepError, PepError } from './pep-error.js';
import { pdpRequest, type PdpTransport } from './pdp-request.js';
import type { AuthorizationServerMetadataV1, IntrospectionResponseV1, TokenResponseV1 } from '../wire/token-v1.js';

export interface PdpClientOptions {
  /** Base URL of the PDP, e.g. `http://127.0.0.1:8181`. Required. */
  url: string;
  /** This caller's API key, sent as `Authorization: Bearer <key>`. Required. Never logged or put in a message. */
  apiKey: string;
  /** Timeout of one attempt, in milliseconds, covering connect, answer and body. Default 2000. */
  timeoutMs?: number;
  /**
   * Attempts per call, first one included. Decide, introspect and metadata are retried on a network error, a
   * timeout or a 503; redeem, register and complete only when the connection could not even be opened.
   * Never on another 4xx/5xx. Default 3.
   */
  maxAttempts?: number;
  /** Backoff before the second attempt, in milliseconds; doubled for each further one, with jitter. Default 100. */
  retryDelayMs?: number;
  /** The `fetch` to use. Default `globalThis.fetch`. */
  fetch?: typeof fetch;
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
    return checkDecision(body);
  }

  /**
   * `POST /v1/tokens` (role pep): an allowed decision, once, for a token bound to it. Every failure is
   * `token_unavailable`, with the PDP's code (`decision_expired`, `decision_already_redeemed`, ...) in `pdpCode`.
   */
  async redeem(decisionId: string): Promise<TokenResponseV1> {
    try {
      const body = await pdpRequest(this.#transport, {
        method: 'POST', path: '/v1/tokens', what: 'redeem', body: { decision_id: decisionId }, authenticate: true, ok: [201], retry: 'unsent',
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

  /** `GET /.well-known/oauth-authorization-server` (public): the issuer a resource server must expect. */
  async metadata(): Promise<AuthorizationServerMetadataV1> {
    const body = await pdpRequest(this.#transport, {
      method: 'GET', path: '/.well-known/oauth-authorization-server', what: 'metadata', authenticate: false, ok: [200], retry: 'safe',
    });
    return checkMetadata(body);
  }
}
