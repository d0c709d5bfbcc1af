/**
 * `createMcpGuard`: puts every tool of an MCP server behind the PDP. The guard sits on the server's transport
 * (`guard.wrap(transport)`), so it sees each JSON-RPC message before the server does and each answer before the
 * client does; nothing the server registers, however it registers it, is reachable without passing it.
 *
 * - `tools/call`: who (the session's verified token, or the identity configured for a stdio server) and which task
 *   → the tool's mapping → `POST /v1/decide` → redeem. On allow the call goes on to the server and its handler gets
 *   the token through `guard.grantFor(extra)`; on anything else the client gets a tool error (`tool-refusal.ts`)
 *   and the server never sees the call.
 * - `tools/list`: the answer is filtered to the tools the agent's policy could allow (`tool-visibility.ts`): a
 *   convenience for the model, never the enforcement.
 */
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { guardTool, isPepError, PermissionDenied, TokenCache, type PdpClient, type ToolGrant } from '../pep/index.js';
import { GuardedTransport } from './guarded-transport.js';
import { compileMapping, MappingFailed, type CompiledMapping, type McpToolMapping, type ToolArguments } from './tool-mapping.js';
import { refusalResult, type McpRefusalCode, type RefusalResult } from './tool-refusal.js';
import { ToolVisibility } from './tool-visibility.js';

/** `_meta` key a client (or the orchestrator driving it) names the call's registered task with. */
export const TASK_META = 'agent-pdp.dev/task_id';
/** `_meta` key the guard hands the handler its grant under (an opaque handle; a client's own value is removed). */
export const GRANT_META = 'agent-pdp.dev/grant';

/** Who is calling: the agent, and the registered task it works on (if the session fixes one). */
export interface McpIdentity {
  agentId: string;
  taskId?: string;
}

/** What an identity resolver sees of a message. */
export interface IdentitySource {
  /** The verified bearer token of an HTTP session (`mcpResourceServer`), when there is one. */
  authInfo: AuthInfo | undefined;
  /** The transport's session id, when it has one. */
  sessionId: string | undefined;
}

export interface McpGuardOptions {
  /** The client the guard asks; its API key must have role `pep` and may speak for the agents this server serves. */
  pdp: PdpClient;
  /** Tool name → mapping. More can be added next to each tool with `guard.registerTool` / `guard.map`. */
  tools?: Readonly<Record<string, McpToolMapping>>;
  /**
   * Who the agent is. Default `'token'`: from the session's verified access token (`authInfo.extra.agentId` and
   * `taskId`, as `mcpResourceServer` sets them). For a stdio server, the identity it runs for: `{ agentId, taskId? }`.
   * Or a function of the message's `authInfo` and session id.
   */
  identity?: 'token' | McpIdentity | ((source: IdentitySource) => McpIdentity | undefined);
  /**
   * Whether a call may name its task in `_meta["agent-pdp.dev/task_id"]` when the session fixes none. Default
   * true. A task the session fixes always wins; a call naming another one is refused (`task_mismatch`).
   */
  taskFromCall?: boolean;
  /** A tool with no mapping: `'refuse'` (default) every call, or `'allow'` it unguarded (listed, called freely). */
  unmapped?: 'refuse' | 'allow';
  /**
   * Token reuse. Default `false`: every `tools/call` is decided (and audited) on its own. A `TokenCache` (or `true`
   * for one of the guard's own) reuses a token for the same agent, task, tool scopes and record until it nears expiry.
   */
  tokens?: boolean | TokenCache;
  /** `tools/list` filtering. Default on; `false` lists every tool the server has. */
  listFilter?: boolean | { cacheMs?: number; includeRequestable?: boolean };
}

/** What a guarded tool's handler needs from the SDK's `extra`: the request's `_meta`. */
export interface HandlerExtra {
  _meta?: Record<string, unknown> | undefined;
}

/** A tool handler registered through the guard: it gets the grant with the arguments. */
export type GuardedHandler<A> = (args: A, grant: ToolGrant, extra: HandlerExtra) => unknown;

/** What `registerTool` needs of a server: the SDK's `McpServer`. */
export interface ToolRegistry {
  registerTool(name: string, config: never, handler: never): unknown;
}

export class McpGuard {
  readonly #pdp: PdpClient;
  readonly #mappings = new Map<string, CompiledMapping>();
  readonly #identity: NonNullable<McpGuardOptions['identity']>;
  readonly #taskFromCall: boolean;
  readonly #unmapped: 'refuse' | 'allow';
  readonly #tokens: TokenCache | false;
  readonly #visibility: ToolVisibility | null;
  /** Grant handles of calls let through and not yet answered. */
  readonly #grants = new Map<string, ToolGrant>();

  constructor(options: McpGuardOptions) {
    if (typeof options?.pdp?.decide !== 'function') throw new TypeError('agent-pdp/mcp: "pdp" must be a PdpClient');
    this.#pdp = options.pdp;
    this.#identity = checkIdentity(options.identity ?? 'token');
    if (options.taskFromCall !== undefined && typeof options.taskFromCall !== 'boolean') throw new TypeError('agent-pdp/mcp: "taskFromCall" must be a boolean');
    this.#taskFromCall = options.taskFromCall ?? true;
    if (options.unmapped !== undefined && options.unmapped !== 'refuse' && options.unmapped !== 'allow') {
      throw new TypeError('agent-pdp/mcp: "unmapped" must be \'refuse\' or \'allow\'');
    }
    this.#unmapped = options.unmapped ?? 'refuse';
    const tokens = options.tokens ?? false;
    if (tokens !== true && tokens !== false && !(tokens instanceof TokenCache)) throw new TypeError('agent-pdp/mcp: "tokens" must be a boolean or a TokenCache');
    this.#tokens = tokens === true ? new TokenCache() : tokens;
    const list = checkListFilter(options.listFilter ?? true);
    this.#visibility = list === false ? null : new ToolVisibility(this.#pdp, list === true ? {} : list);
    for (const [tool, mapping] of Object.entries(options.tools ?? {})) this.map(tool, mapping);
  }

  /** Declares (or replaces) the mapping of one tool. Throws a `TypeError` on a bad declaration. */
  map(tool: string, mapping: McpToolMapping): this {
    if (typeof tool !== 'string' || tool === '') throw new TypeError('agent-pdp/mcp: a tool name must be a non-empty string');
    // The visibility cache holds the PDP's answers (per agent and task), not mappings: nothing to drop here.
    this.#mappings.set(tool, compileMapping(tool, mapping));
    return this;
  }

  /**
   * Registers a tool on an SDK `McpServer` with its mapping next to it; the handler gets `(args, grant, extra)`.
   * `config` is the SDK's (`description`, `inputSchema`, ...).
   */
  registerTool<A>(server: ToolRegistry, name: string, config: object, mapping: McpToolMapping, handler: GuardedHandler<A>): this {
    if (typeof handler !== 'function') throw new TypeError(`agent-pdp/mcp: tool "${name}": the handler must be a function`);
    this.map(name, mapping);
    const run = (args: A, extra: HandlerExtra): unknown => {
      const grant = this.grantFor(extra);
      if (!this.#sameCall(name, args, grant)) {
        return refusalResult({
          code: 'arguments_changed',
          message: 'the arguments as the tool\'s input schema parsed them ask for another record or scopes than the call was decided for; not run',
          tool: name,
          decision_id: grant.decisionId,
        });
      }
      return handler(args, grant, extra);
    };
    // The SDK calls a tool without an input schema with `extra` alone.
    const hasSchema = (config as { inputSchema?: unknown }).inputSchema !== undefined;
    const callback = hasSchema ? run : (extra: HandlerExtra): unknown => run({} as A, extra);
    (server.registerTool as (name: string, config: object, handler: (...a: never[]) => unknown) => unknown).call(server, name, config, callback);
    return this;
  }

  /**
   * The guard decided on the raw arguments; the handler gets them as the tool's input schema parsed them (defaults
   * filled, values coerced or transformed). When those ask for another record or other scopes than the grant
   * covers, the handler is not run: the call is refused (`arguments_changed`) instead of acting on what was not decided.
   */
  #sameCall(tool: string, args: unknown, grant: ToolGrant): boolean {
    const mapping = this.#mappings.get(tool);
    let call: { scopes: string[]; resource: { type: string; id: string } | undefined } | undefined;
    try {
      call = mapping?.map(isPlainObject(args) ? args : {});
    } catch {
      call = undefined;
    }
    const granted = new Set(grant.scopes);
    const sameRecord = (call?.resource ?? null) === null ? grant.resource === null : grant.resource !== null && grant.resource.type === call?.resource?.type && grant.resource.id === call?.resource?.id;
    return call !== undefined && sameRecord && call.scopes.every((s) => granted.has(s));
  }

  /** The transport the server must connect to instead of `transport`: `server.connect(guard.wrap(transport))`. */
  wrap(transport: Transport): Transport {
    return new GuardedTransport(transport, this);
  }

  /**
   * The grant of the call a handler is running for (from `extra._meta`). Throws when there is none: a handler of a
   * guarded tool that runs without a grant means the server was not connected through `wrap`.
   */
  grantFor(extra: HandlerExtra): ToolGrant {
    const handle = extra?._meta?.[GRANT_META];
    const grant = typeof handle === 'string' ? this.#grants.get(handle) : undefined;
    if (grant === undefined) throw new Error('agent-pdp/mcp: this call carries no grant (connect the server with guard.wrap(transport))');
    return grant;
  }

  /** The tools with a mapping, sorted. */
  get tools(): string[] {
    return [...this.#mappings.keys()].sort();
  }

  /**
   * Decides one `tools/call`. Resolves with the params to hand the server (the grant's handle in `_meta`, and the
   * handle to release once answered) or with the tool error to answer instead. Never rejects.
   */
  async authorizeCall(params: CallParams, source: IdentitySource): Promise<{ params: CallParams; handle: string | null } | { refusal: RefusalResult }> {
    const tool = typeof params.name === 'string' ? params.name : '';
    const refuse = (code: McpRefusalCode, message: string, more: object = {}) => ({ refusal: refusalResult({ code, message, tool, ...more }) });
    const meta = withoutGrant(params._meta);
    const mapping = this.#mappings.get(tool);
    if (mapping === undefined) {
      if (this.#unmapped === 'allow') return { params: { ...params, _meta: meta }, handle: null };
      return refuse('tool_not_mapped', 'no authorization mapping is declared for this tool, so it cannot be called');
    }
    const identity = this.#resolve(source);
    if (identity === undefined) return refuse('identity_missing', 'the session has no verified agent identity');
    const task = this.#task(identity, meta?.[TASK_META]);
    if (task === 'mismatch') return refuse('task_mismatch', `${TASK_META} names a task other than the session's, or is not a task id`);
    if (task === undefined) return refuse('task_missing', 'no registered task is named for this call');
    const taskId = task;

    const args: ToolArguments = isPlainObject(params.arguments) ? params.arguments : {};
    let call;
    try {
      call = mapping.map(args);
    } catch (err) {
      if (err instanceof MappingFailed) return refuse('mapping_failed', err.message, err.path === null ? {} : { argument: err.path });
      return refuse('mapping_failed', 'the mapping could not read the arguments');
    }
    try {
      const guarded = guardTool<null, ToolGrant>(
        {
          pdp: this.#pdp,
          agentId: identity.agentId,
          task: taskId,
          integration: call.integration,
          scopes: call.scopes,
          resource: call.resource,
          ...(call.ttlSeconds === undefined ? {} : { ttlSeconds: call.ttlSeconds }),
          tokens: this.#tokens,
        },
        async (_args, grant) => grant,
      );
      const grant = await guarded(null);
      // A new decision says which policy is in force: a list filtered under another one is stale.
      if (!grant.reused && grant.policyRevision !== null) this.#visibility?.sawRevision(grant.policyRevision);
      const handle = crypto.randomUUID();
      this.#forgetExpired();
      this.#grants.set(handle, grant);
      return { params: { ...params, _meta: { ...meta, [GRANT_META]: handle } }, handle };
    } catch (err) {
      if (err instanceof PermissionDenied) {
        this.#visibility?.sawRevision(err.policyRevision);
        return refuse('permission_denied', err.message, {
          decision_id: err.decisionId,
          outcome: err.outcome,
          reasons: [...err.reasons],
          denied_scopes: [...err.deniedScopes],
          missing_scopes: [...err.missingScopes],
          ...(err.accessRequest === undefined ? {} : { access_request: err.accessRequest }),
        });
      }
      if (isPepError(err) && (err.code === 'pdp_unavailable' || err.code === 'token_unavailable')) {
        return refuse(err.code, err.code === 'pdp_unavailable' ? 'the PDP could not be reached, so the call was not made' : 'the call was allowed but no token could be issued for it');
      }
      // A PDP refusal of the request itself, or a declaration guardTool refused: never an allow.
      return refuse('pdp_error', isPepError(err) && err.pdpCode !== undefined ? `the PDP refused the request (${err.pdpCode})` : 'the PDP refused the request');
    }
  }

  /** Filters a `tools/list` answer to what the agent could be allowed. Never rejects; fails closed to unguarded tools. */
  async filterList(tools: readonly ListedTool[], source: IdentitySource, namedTask: unknown): Promise<ListedTool[]> {
    if (this.#visibility === null) return [...tools];
    const unguarded = (t: ListedTool): boolean => !this.#mappings.has(t.name) && this.#unmapped === 'allow';
    const identity = this.#resolve(source);
    const task = identity === undefined ? undefined : this.#task(identity, namedTask);
    if (identity === undefined || task === undefined || task === 'mismatch') return tools.filter(unguarded);
    const visible = await this.#visibility.visible(identity.agentId, task, this.#mappings).catch(() => new Set<string>());
    return tools.filter((t) => unguarded(t) || visible.has(t.name));
  }

  /** Grants whose token has expired: a call never answered (a server that dropped it) must not keep one forever. */
  #forgetExpired(): void {
    if (this.#grants.size < 64) return;
    const now = Date.now();
    for (const [handle, grant] of this.#grants) if (grant.expiresAt.getTime() <= now) this.#grants.delete(handle);
  }

  /**
   * With `tokens: true`, forgets the guard's cached tokens of a task (call it when the task ends): its next call is
   * decided again, and refused once the task is completed. Returns how many were dropped. With a `TokenCache` of your
   * own, call its `forgetTask`; without token reuse every call is decided anyway (0).
   */
  forgetTask(taskId: string): number {
    return this.#tokens === false ? 0 : this.#tokens.forgetTask(taskId);
  }

  /** Drops a call's grant once its answer went out (or the call was cancelled or the transport closed). */
  release(handle: string): void {
    this.#grants.delete(handle);
  }

  /**
   * The task of a request: the session's; else, when calls may name theirs, the one `_meta` names. A request naming
   * a task other than the session's (or something that is not an id) is a mismatch.
   */
  #task(identity: McpIdentity, named: unknown): string | 'mismatch' | undefined {
    if (named !== undefined && (typeof named !== 'string' || named === '' || (identity.taskId !== undefined && named !== identity.taskId))) return 'mismatch';
    if (identity.taskId !== undefined) return identity.taskId;
    return this.#taskFromCall ? (named as string | undefined) : undefined;
  }

  #resolve(source: IdentitySource): McpIdentity | undefined {
    const id = this.#identity;
    let found: unknown;
    if (id === 'token') {
      const extra = source.authInfo?.extra;
      found = extra === undefined ? undefined : { agentId: extra.agentId, ...(extra.taskId === undefined ? {} : { taskId: extra.taskId }) };
    } else if (typeof id === 'function') {
      try {
        found = id(source);
      } catch {
        found = undefined;
      }
    } else {
      found = id;
    }
    if (typeof found !== 'object' || found === null) return undefined;
    const { agentId, taskId } = found as { agentId?: unknown; taskId?: unknown };
    if (typeof agentId !== 'string' || agentId === '') return undefined;
    if (taskId === undefined || taskId === null) return { agentId };
    // A task the identity names but not as an id: no identity (never the call's own choice of task instead).
    return typeof taskId === 'string' && taskId !== '' ? { agentId, taskId } : undefined;
  }
}

/** The params of a `tools/call` request, as far as the guard reads them. */
export interface CallParams {
  [key: string]: unknown;
  name?: unknown;
  arguments?: unknown;
  _meta?: unknown;
}

/** One entry of a `tools/list` answer, as far as the guard reads it. */
export interface ListedTool {
  [key: string]: unknown;
  name: string;
}

/** Creates a guard; connect the server with `server.connect(guard.wrap(transport))`. */
export function createMcpGuard(options: McpGuardOptions): McpGuard {
  return new McpGuard(options);
}

function checkIdentity(identity: NonNullable<McpGuardOptions['identity']>): NonNullable<McpGuardOptions['identity']> {
  if (identity === 'token' || typeof identity === 'function') return identity;
  if (typeof identity === 'object' && identity !== null && typeof identity.agentId === 'string' && identity.agentId !== '') {
    if (identity.taskId !== undefined && (typeof identity.taskId !== 'string' || identity.taskId === '')) {
      throw new TypeError('agent-pdp/mcp: "identity.taskId" must be a non-empty string');
    }
    return Object.freeze({ ...identity });
  }
  throw new TypeError('agent-pdp/mcp: "identity" must be \'token\', { agentId, taskId? } or a function');
}

function checkListFilter(list: NonNullable<McpGuardOptions['listFilter']>): NonNullable<McpGuardOptions['listFilter']> {
  if (typeof list === 'boolean') return list;
  if (typeof list !== 'object' || list === null || Array.isArray(list)) throw new TypeError('agent-pdp/mcp: "listFilter" must be a boolean or { cacheMs?, includeRequestable? }');
  if (list.includeRequestable !== undefined && typeof list.includeRequestable !== 'boolean') {
    throw new TypeError('agent-pdp/mcp: "listFilter.includeRequestable" must be a boolean');
  }
  return list;
}

/** The request's `_meta` without a grant handle the client may have put there. */
function withoutGrant(meta: unknown): Record<string, unknown> | undefined {
  if (!isPlainObject(meta)) return undefined;
  if (!Object.hasOwn(meta, GRANT_META)) return meta;
  const { [GRANT_META]: _dropped, ...rest } = meta;
  return rest;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
