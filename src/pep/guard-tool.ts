/**
 * `guardTool`: puts one agent tool behind the PDP. The declaration says which integration, scopes and record a
 * call needs (derived from the call's arguments); before each call the guard asks the PDP, redeems the decision
 * for a token and hands that token to the tool. The tool runs only with a token that covers the call.
 *
 * Fails closed: a deny, an undefined outcome or a grant short of the needed scopes throws `PermissionDenied`; an
 * unreachable PDP throws `PepError('pdp_unavailable')`; an allow without a token throws
 * `PepError('token_unavailable')`. In each case the tool is not called.
 *
 * Break-glass (opt-in, `onApprovalRequired`): a denial an approver could lift (reason `approval_required`, with an
 * `access_request` hint) is submitted as an access request; the guard then either waits for the answer (bounded
 * polling) and, once approved, decides again and runs the tool with the elevated token, or throws
 * `ApprovalPending` at once so the caller resolves it later by id. The approval never allows by itself: the new
 * decision does, or the call stays denied.
 */
import type { AccessRequestV1, ApprovalRefV1 } from '../wire/access-request-v1.js';
import type { DecisionRequestV1 } from '../wire/decision-v1.js';
import type { ResourceRef } from '../wire/evaluation-v1.js';
import type { ProviderCredentialV1 } from '../wire/token-v1.js';
import type { PdpClient } from './pdp-client.js';
import { ApprovalPending, ApprovalRefused, isPepError, PepError, PermissionDenied } from './pep-error.js';
import { TokenCache, type CachedToken } from './token-cache.js';

/** The task a call belongs to: a registered task's id, or (for callers allowed to assert it) id, type and context. */
export type TaskRef = string | DecisionRequestV1['task'];

/** A value, or how to derive it from the call's arguments. */
export type FromArgs<A, T> = T | ((args: A) => T);

export interface ToolDeclaration<A> {
  /** The client the guard asks; its API key must be of role `pep` and may ask for `agentId`. Required. */
  pdp: PdpClient;
  /** The agent making the call. Required. */
  agentId: string;
  /** The task the call is part of. Required. */
  task: FromArgs<A, TaskRef>;
  /** The integration (tool API) the call uses, e.g. `crm`. Required. */
  integration: string;
  /** The scopes the call needs, all of them; a grant of fewer is a denial. Required, at least one. */
  scopes: FromArgs<A, readonly string[]>;
  /** The record the call touches (`{ type: 'customer', id: '1234' }`). Default: none. */
  resource?: FromArgs<A, ResourceRef | undefined>;
  /** Lifetime to ask for, in seconds; the policy's `token_ttl` caps it. Default: the policy's. */
  ttlSeconds?: number;
  /**
   * Where tokens are reused: share one `TokenCache` between guards to share tokens, or pass `false` to decide
   * and redeem on every call. Default: a cache of this guard's own, reusing a token until 30 s before expiry, except
   * a grant carrying a provider credential (AWS, Google): nothing refuses such a credential once its task ends, so by
   * default each call is decided again. A cache you pass reuses those too (call its `forgetTask` when a task ends).
   */
  tokens?: TokenCache | false;
  /**
   * What to do when the call is denied with `approval_required` (the policy lets an approver lift it). Default:
   * nothing, the call throws `PermissionDenied` whose `accessRequest` holds the hint.
   * - `'wait'` / `{ mode: 'wait', ... }`: submit an access request, wait for the approver (bounded polling); on
   *   approval decide again and run the tool with the elevated token; still pending at the timeout →
   *   `ApprovalPending`; denied or expired → `ApprovalRefused`.
   * - `'submit'` / `{ mode: 'submit', ... }`: submit and throw `ApprovalPending` (its `accessRequestId`) at once.
   *   Calling the guarded tool again later resumes: while that request is pending it is not submitted twice.
   * - a function: your own flow (`ApprovalHandler`); return `'retry'` to decide again and run the tool if the new
   *   decision allows, anything else to throw the denial.
   */
  onApprovalRequired?: 'wait' | 'submit' | ApprovalOptions<A> | ApprovalHandler<A>;
  /**
   * The enforcement proxy's base URL for this integration (`http://127.0.0.1:8282/github`, docs/proxy.md): the tool
   * then gets `grant.fetch(path, init)`, a `fetch` bound to the proxy and the token. Default: none (`grant.fetch`
   * throws).
   */
  proxy?: string;
}

/** How `guardTool` asks for an approval. */
export interface ApprovalOptions<A> {
  /** Default `'wait'`. */
  mode?: 'wait' | 'submit';
  /** Why the agent needs the access: the approver reads it. Required when the hint says `require_reason`. */
  reason?: string | ((args: A, denied: PermissionDenied) => string | undefined);
  /** Elevation to ask for, in seconds, at most the hint's `max_duration_seconds`. Default: that maximum. */
  durationSeconds?: number | ((args: A, denied: PermissionDenied) => number | undefined);
  /** `'wait'`: how long to wait for the approver, in milliseconds. Default 300000 (5 min). */
  timeoutMs?: number;
  /** `'wait'`: pause between polls, in milliseconds (a longer `Retry-After` is honoured). Default 2000. */
  intervalMs?: number;
  /** `'wait'`: cancels the wait (the signal's reason is thrown; the request stays pending at the PDP). */
  signal?: AbortSignal;
}

/** What an `ApprovalHandler` gets: the denial (with its hint), the call, and the means to ask and wait. */
export interface ApprovalContext<A> {
  args: A;
  /** The denial; `denied.accessRequest` is the hint (defined). */
  denied: PermissionDenied;
  /** The decision request that was denied. */
  request: DecisionRequestV1;
  pdp: PdpClient;
  /** Submits the access request for this denial (idempotent: the same denial is submitted once). */
  submit(terms?: { reason?: string; durationSeconds?: number }): Promise<AccessRequestV1>;
}

/**
 * Your own approval flow. Return `'retry'` once the request is approved: the guard decides again and runs the
 * tool if that decision allows (else `PermissionDenied`). Return `'deny'` (or throw, e.g. `new
 * ApprovalPending(request, denied)` to resolve later) to not run it.
 */
export type ApprovalHandler<A> = (context: ApprovalContext<A>) => Promise<'retry' | 'deny'>;

/**
 * What the tool receives: the token and what it grants. The token is readable through `accessToken` but is not
 * an own enumerable property, so logging or serialising a grant does not print it.
 */
export class ToolGrant {
  /** Granted scopes, as the token carries them. */
  readonly scopes: readonly string[];
  readonly expiresAt: Date;
  /** The decision the token redeems: the key to its audit record. */
  readonly decisionId: string;
  readonly taskId: string;
  readonly jti: string;
  readonly resource: ResourceRef | null;
  /** True when the token came from the cache (or a concurrent call) rather than from a new decision. */
  readonly reused: boolean;
  /** The access request whose elevation this grant used (`approval` of the decision), else null. */
  readonly approval: ApprovalRefV1 | null;
  /** The policy revision the decision was made under (null for a token cached by an older client). */
  readonly policyRevision: string | null;
  readonly #accessToken: string;
  readonly #proxy: string | null;
  readonly #provider: ProviderCredentialV1 | null;

  constructor(token: CachedToken, resource: ResourceRef | null, reused: boolean, proxy: string | null = null) {
    this.#accessToken = token.accessToken;
    this.#provider = token.providerCredential ?? null;
    this.#proxy = proxy === null ? null : proxy.replace(/\/+$/, '');
    this.scopes = token.scopes;
    this.expiresAt = token.expiresAt;
    this.decisionId = token.decisionId;
    this.taskId = token.taskId;
    this.jti = token.jti;
    this.resource = resource;
    this.reused = reused;
    this.approval = token.approval ?? null;
    this.policyRevision = token.policyRevision ?? null;
    Object.freeze(this);
  }

  /**
   * What `util.inspect` (console.log, a logger's object formatting) shows of a grant, whatever its options: the
   * public facts, never the token or a provider credential (with `showHidden` and `getters` it would otherwise call
   * the getters that return them).
   */
  [Symbol.for('nodejs.util.inspect.custom')](depth: number, options: { stylize?: unknown }, inspect: (value: unknown, options: object) => string): string {
    const shown = {
      scopes: this.scopes,
      expiresAt: this.expiresAt,
      decisionId: this.decisionId,
      taskId: this.taskId,
      jti: this.jti,
      resource: this.resource,
      reused: this.reused,
      approval: this.approval,
      policyRevision: this.policyRevision,
      accessToken: '[redacted]',
      providerCredential: this.#provider === null ? null : `[redacted ${this.#provider.provider} credential]`,
    };
    return `ToolGrant ${inspect(shown, { ...options, depth: depth < 0 ? 0 : depth, showHidden: false, getters: false })}`;
  }

  /** The bearer token to send to the tool API. */
  get accessToken(): string {
    return this.#accessToken;
  }

  /**
   * The provider's own credential minted with the token, narrowed to the same grant (docs/providers.md): for an
   * AWS integration, STS temporary credentials whose session policy is the grant. Null for other integrations.
   * Not an own enumerable property: logging a grant does not print it.
   */
  get providerCredential(): ProviderCredentialV1 | null {
    return this.#provider;
  }

  /**
   * For an AWS integration, the credentials in the shape the AWS SDK v3 takes (`credentials:` of any client, or an
   * `AwsCredentialIdentityProvider` returning it): `new S3Client({ region: grant.awsRegion, credentials:
   * grant.awsCredentials })`. Throws for a grant without an AWS credential.
   */
  get awsCredentials(): { accessKeyId: string; secretAccessKey: string; sessionToken: string; expiration: Date } {
    const aws = this.#provider?.provider === 'aws' ? this.#provider.aws : undefined;
    if (aws === undefined) throw new TypeError('grant.awsCredentials: this grant carries no AWS provider credential (is the integration configured as a provider?)');
    return { accessKeyId: aws.access_key_id, secretAccessKey: aws.secret_access_key, sessionToken: aws.session_token, expiration: new Date(aws.expiration) };
  }

  /**
   * For a Google Workspace integration, `Bearer <Google access token>` for the `Authorization` header of Google's
   * APIs (acting as the task's user, with exactly the granted Google scopes); for a GCS integration, the downscoped
   * token's. Throws for a grant without one.
   */
  get googleAuthorization(): string {
    if (this.#provider?.provider !== 'google_workspace' && this.#provider?.provider !== 'gcp_storage') {
      throw new TypeError('grant.googleAuthorization: this grant carries no Google credential');
    }
    return `Bearer ${this.#provider.google.access_token}`;
  }

  /** The region the AWS credential was minted for, or null. */
  get awsRegion(): string | null {
    return this.#provider?.provider === 'aws' ? this.#provider.aws.region : null;
  }

  /** `Bearer <token>`, for an `Authorization` header. */
  get authorization(): string {
    return `Bearer ${this.#accessToken}`;
  }

  /**
   * `fetch` through the enforcement proxy declared for the tool (`proxy`), with this grant's token:
   * `grant.fetch('/repos/acme/api/pulls/1042')`. Only a path (starting with one `/`) is accepted, so the token can
   * never be sent to another origin; an `Authorization` in `init` is replaced.
   */
  fetch(path: string, init: RequestInit = {}): Promise<Response> {
    if (this.#proxy === null) return Promise.reject(new TypeError('guardTool: no `proxy` was declared for this tool, so its grant has no fetch'));
    if (typeof path !== 'string' || !path.startsWith('/') || path.startsWith('//') || path.includes('\\')) {
      return Promise.reject(new TypeError('grant.fetch: pass a path starting with "/" (the proxy\'s origin is fixed)'));
    }
    const headers = new Headers(init.headers);
    headers.set('authorization', this.authorization);
    return fetch(`${this.#proxy}${path}`, { ...init, headers });
  }
}

export type GuardedTool<A, R> = (args: A) => Promise<R>;

/** Wraps `tool` so that every call is decided, and runs with a token covering exactly what it needs. */
export function guardTool<A, R>(declaration: ToolDeclaration<A>, tool: (args: A, grant: ToolGrant) => Promise<R>): GuardedTool<A, R> {
  checkDeclaration(declaration, tool);
  const { pdp, agentId, integration, ttlSeconds } = declaration;
  const cache = declaration.tokens === false ? undefined : (declaration.tokens ?? new TokenCache());
  const ownCache = declaration.tokens === undefined;
  const now = cache === undefined ? () => new Date() : () => cache.now();
  const approval = declaration.onApprovalRequired;
  /** Per cache key, the access request this guard submitted and has not seen end (so it is not submitted twice). */
  const outstanding = new Map<string, string>();

  return async (args: A): Promise<R> => {
    const task = toTask(derive(declaration.task, args));
    const scopes = toScopes(derive(declaration.scopes, args));
    const resource = toResource(declaration.resource === undefined ? undefined : derive(declaration.resource, args));
    const request: DecisionRequestV1 = {
      agent_id: agentId,
      task,
      integration,
      scopes,
      ...(resource === undefined ? {} : { resource }),
      ...(ttlSeconds === undefined ? {} : { ttl_seconds: ttlSeconds }),
    };
    const mint = async (): Promise<CachedToken> => {
      try {
        return await decideAndRedeem(pdp, request, now);
      } catch (err) {
        if (approval === undefined || !(err instanceof PermissionDenied) || err.accessRequest === undefined) throw err;
        if (typeof approval === 'function') {
          const verdict = await approval({ args, denied: err, request, pdp, submit: (terms = {}) => submit(pdp, err, terms) });
          if (verdict !== 'retry') throw err;
          return decideAndRedeem(pdp, request, now);
        }
        const options: ApprovalOptions<A> = typeof approval === 'string' ? { mode: approval } : approval;
        await awaitApproval(pdp, err, args, options, outstanding, cacheKey(request));
        return decideAndRedeem(pdp, request, now);
      }
    };
    const { token, reused } = cache === undefined
      ? { token: await mint(), reused: false }
      : await cache.obtain(cacheKey(request), task.id, mint, ownCache ? withoutProviderCredential : undefined);
    return tool(args, new ToolGrant(token, resource ?? null, reused, declaration.proxy ?? null));
  };
}

/**
 * Submits (or resumes) the access request for `denied` and, in mode `wait`, waits for its answer. Resolves when it
 * is approved; throws `ApprovalPending` while it is pending, `ApprovalRefused` once denied or expired.
 */
async function awaitApproval<A>(pdp: PdpClient, denied: PermissionDenied, args: A, o: ApprovalOptions<A>, outstanding: Map<string, string>, key: string): Promise<void> {
  let request: AccessRequestV1 | undefined;
  const known = outstanding.get(key);
  if (known !== undefined) {
    // A request submitted earlier for the same call: resume it rather than ask again.
    request = await pdp.getAccessRequest(known).catch((err: unknown) => {
      if (isPepError(err) && err.code === 'pdp_error') return undefined;
      throw err;
    });
    if (request === undefined || request.status === 'approved') {
      // Gone, or approved and yet this call was denied (the window ended, the policy changed): ask anew.
      outstanding.delete(key);
      request = undefined;
    }
  }
  if (request === undefined) {
    const reason = typeof o.reason === 'function' ? o.reason(args, denied) : o.reason;
    const durationSeconds = typeof o.durationSeconds === 'function' ? o.durationSeconds(args, denied) : o.durationSeconds;
    request = await submit(pdp, denied, { ...(reason === undefined ? {} : { reason }), ...(durationSeconds === undefined ? {} : { durationSeconds }) });
    remember(outstanding, key, request.id);
  }
  if (request.status === 'pending' && (o.mode ?? 'wait') === 'wait') {
    request = await pdp.waitForAccessRequest(request.id, {
      ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }),
      ...(o.intervalMs === undefined ? {} : { intervalMs: o.intervalMs }),
      ...(o.signal === undefined ? {} : { signal: o.signal }),
    });
  }
  if (request.status === 'pending') throw new ApprovalPending(request, denied);
  outstanding.delete(key);
  if (request.status !== 'approved') throw new ApprovalRefused(request, denied);
}

/** The submission for a denial, keyed by its decision so a repeat answers the same request. */
function submit(pdp: PdpClient, denied: PermissionDenied, terms: { reason?: string; durationSeconds?: number }): Promise<AccessRequestV1> {
  return pdp.submitAccessRequest(
    {
      decision_id: denied.decisionId,
      ...(terms.reason === undefined ? {} : { reason: terms.reason }),
      ...(terms.durationSeconds === undefined ? {} : { duration_seconds: terms.durationSeconds }),
    },
    { idempotencyKey: `guard-${denied.decisionId}` },
  );
}

/** Bounded: the oldest entry goes first. */
function remember(outstanding: Map<string, string>, key: string, id: string): void {
  outstanding.delete(key);
  outstanding.set(key, id);
  if (outstanding.size > 1000) outstanding.delete(outstanding.keys().next().value as string);
}

/** The guard's own cache keeps a token only without a provider credential (which no resource server can refuse later). */
const withoutProviderCredential = (token: CachedToken): boolean => token.providerCredential === undefined || token.providerCredential === null;

async function decideAndRedeem(pdp: PdpClient, request: DecisionRequestV1, now: () => Date): Promise<CachedToken> {
  const decision = await pdp.decide(request);
  const granted = new Set(decision.granted_scopes);
  if (!decision.allow || decision.outcome !== 'allow' || !request.scopes.every((s) => granted.has(s))) {
    throw new PermissionDenied(decision, request.scopes);
  }
  const issued = await pdp.redeem(decision.decision_id);
  const carried = issued.scope.split(' ');
  if (!request.scopes.every((s) => carried.includes(s))) {
    throw new PepError('token_unavailable', `the token for decision ${decision.decision_id} does not carry [${request.scopes.join(', ')}]`);
  }
  // A provider credential may end before the token (it never ends after): the grant is reused only while both live.
  // The issuer counts `expires_in` from its `iat`, a whole second at or before the moment it signed: up to a second
  // before this answer arrived. Counted from now less that second, the token is never thought to live longer than it does.
  const tokenEnd = now().getTime() + issued.expires_in * 1000 - 1000;
  const providerEnd = issued.provider_credential === undefined ? tokenEnd : Date.parse(issued.provider_credential.expires_at);
  return {
    accessToken: issued.access_token,
    providerCredential: issued.provider_credential ?? null,
    scopes: Object.freeze(carried),
    expiresAt: new Date(Math.min(tokenEnd, providerEnd)),
    decisionId: decision.decision_id,
    taskId: request.task.id,
    jti: issued.jti,
    approval: decision.approval ?? null,
    policyRevision: decision.policy_revision,
  };
}

function derive<A, T>(value: FromArgs<A, T>, args: A): T {
  return typeof value === 'function' ? (value as (args: A) => T)(args) : value;
}

function toTask(task: TaskRef): DecisionRequestV1['task'] {
  if (typeof task === 'string' && task !== '') return { id: task };
  if (typeof task === 'object' && task !== null && typeof task.id === 'string' && task.id !== '') return task;
  throw new TypeError('guardTool: "task" must be a task id or { id, type?, context? }');
}

function toScopes(scopes: readonly string[]): string[] {
  if (!Array.isArray(scopes) || scopes.length === 0 || !scopes.every((s) => typeof s === 'string' && s !== '')) {
    throw new TypeError('guardTool: "scopes" must be a non-empty list of scope names');
  }
  return [...new Set(scopes)].sort();
}

function toResource(resource: ResourceRef | undefined): ResourceRef | undefined {
  if (resource === undefined) return undefined;
  if (typeof resource?.type === 'string' && typeof resource.id === 'string' && resource.type !== '' && resource.id !== '') {
    return { type: resource.type, id: resource.id };
  }
  throw new TypeError('guardTool: "resource" must be { type: string, id: string }');
}

/** Agent, task (with any asserted type and context), integration, sorted scopes, record. */
function cacheKey(r: DecisionRequestV1): string {
  const context = r.task.context === undefined ? null : Object.entries(r.task.context).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([r.agent_id, r.task.id, r.task.type ?? null, context, r.integration, r.scopes, r.resource?.type ?? null, r.resource?.id ?? null, r.ttl_seconds ?? null]);
}

function checkDeclaration<A>(d: ToolDeclaration<A>, tool: unknown): void {
  if (typeof tool !== 'function') throw new TypeError('guardTool: the tool must be a function (args, grant) => Promise');
  if (typeof d?.pdp?.decide !== 'function') throw new TypeError('guardTool: "pdp" must be a PdpClient');
  for (const name of ['agentId', 'integration'] as const) {
    if (typeof d[name] !== 'string' || d[name] === '') throw new TypeError(`guardTool: "${name}" must be a non-empty string`);
  }
  if (d.task === undefined) throw new TypeError('guardTool: "task" is required');
  if (d.scopes === undefined) throw new TypeError('guardTool: "scopes" is required');
  if (d.ttlSeconds !== undefined && (!Number.isInteger(d.ttlSeconds) || d.ttlSeconds < 1 || d.ttlSeconds > 86400)) {
    throw new TypeError('guardTool: "ttlSeconds" must be an integer from 1 to 86400');
  }
  if (d.tokens !== undefined && d.tokens !== false && !(d.tokens instanceof TokenCache)) {
    throw new TypeError('guardTool: "tokens" must be a TokenCache or false');
  }
  if (d.proxy !== undefined && (typeof d.proxy !== 'string' || !/^https?:\/\/[^\s?#]+$/.test(d.proxy))) {
    throw new TypeError('guardTool: "proxy" must be an http(s) URL without query or fragment');
  }
  const a = d.onApprovalRequired;
  if (a !== undefined && a !== 'wait' && a !== 'submit' && typeof a !== 'function') {
    if (typeof a !== 'object' || a === null || (a.mode !== undefined && a.mode !== 'wait' && a.mode !== 'submit')) {
      throw new TypeError('guardTool: "onApprovalRequired" must be \'wait\', \'submit\', { mode, reason, ... } or a function');
    }
  }
}
