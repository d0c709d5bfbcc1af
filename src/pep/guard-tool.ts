/**
 * `guardTool`: puts one agent tool behind the PDP. The declaration says which integration, scopes and record a
 * call needs (derived from the call's arguments); before each call the guard asks the PDP, redeems the decision
 * for a token and hands that token to the tool. The tool runs only with a token that covers the call.
 *
 * Fails closed: a deny, an undefined outcome or a grant short of the needed scopes throws `PermissionDenied`; an
 * unreachable PDP throws `PepError('pdp_unavailable')`; an allow without a token throws
 * `PepError('token_unavailable')`. In each case the tool is not called.
 */
import type { DecisionRequestV1 } from '../wire/decision-v1.js';
import type { ResourceRef } from '../wire/evaluation-v1.js';
import type { PdpClient } from './pdp-client.js';
import { PepError, PermissionDenied } from './pep-error.js';
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
   * and redeem on every call. Default: a cache of this guard's own, reusing a token until 30 s before expiry.
   */
  tokens?: TokenCache | false;
}

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
  readonly #accessToken: string;

  constructor(token: CachedToken, resource: ResourceRef | null, reused: boolean) {
    this.#accessToken = token.accessToken;
    this.scopes = token.scopes;
    this.expiresAt = token.expiresAt;
    this.decisionId = token.decisionId;
    this.taskId = token.taskId;
    this.jti = token.jti;
    this.resource = resource;
    this.reused = reused;
    Object.freeze(this);
  }

  /** The bearer token to send to the tool API. */
  get accessToken(): string {
    return this.#accessToken;
  }

  /** `Bearer <token>`, for an `Authorization` header. */
  get authorization(): string {
    return `Bearer ${this.#accessToken}`;
  }
}

export type GuardedTool<A, R> = (args: A) => Promise<R>;

/** Wraps `tool` so that every call is decided, and runs with a token covering exactly what it needs. */
export function guardTool<A, R>(declaration: ToolDeclaration<A>, tool: (args: A, grant: ToolGrant) => Promise<R>): GuardedTool<A, R> {
  checkDeclaration(declaration, tool);
  const { pdp, agentId, integration, ttlSeconds } = declaration;
  const cache = declaration.tokens === false ? undefined : (declaration.tokens ?? new TokenCache());
  const now = cache === undefined ? () => new Date() : () => cache.now();

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
    const mint = () => decideAndRedeem(pdp, request, now);
    const { token, reused } = cache === undefined
      ? { token: await mint(), reused: false }
      : await cache.obtain(cacheKey(request), task.id, mint);
    return tool(args, new ToolGrant(token, resource ?? null, reused));
  };
}

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
  return {
    accessToken: issued.access_token,
    scopes: Object.freeze(carried),
    expiresAt: new Date(now().getTime() + issued.expires_in * 1000),
    decisionId: decision.decision_id,
    taskId: request.task.id,
    jti: issued.jti,
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
}
