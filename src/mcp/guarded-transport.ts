/**
 * The guard's place in a session: a `Transport` wrapping the server's own. Incoming `tools/call` requests wait for
 * the guard's decision and reach the server only when allowed; a refusal is answered here, on the inner transport,
 * as the request's result. Outgoing answers to `tools/list` are filtered. Everything else passes untouched, in
 * both directions.
 *
 * Only the public `Transport` contract of the SDK is used, so the guard works with any transport (stdio,
 * Streamable HTTP, in-memory) and any server built on the SDK's `Protocol` (`McpServer` or the low-level `Server`).
 */
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage, MessageExtraInfo, RequestId } from '@modelcontextprotocol/sdk/types.js';
import { TASK_META, type CallParams, type IdentitySource, type ListedTool, type McpGuard } from './mcp-guard.js';
import { REFUSAL_ERROR_CODE } from './tool-refusal.js';

type Message = JSONRPCMessage & { id?: RequestId; method?: string; params?: unknown; result?: unknown };

export class GuardedTransport implements Transport {
  readonly #inner: Transport;
  readonly #guard: McpGuard;
  /** `tools/list` requests awaiting their answer: request id → who asked. */
  readonly #listing = new Map<RequestId, { source: IdentitySource; namedTask: unknown }>();
  /** Allowed `tools/call` requests awaiting their answer: request id → grant handle. */
  readonly #granted = new Map<RequestId, string>();
  /** `tools/call` requests being decided; true once the client cancelled one. */
  readonly #deciding = new Map<RequestId, boolean>();

  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: (<T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void) | undefined;

  constructor(inner: Transport, guard: McpGuard) {
    this.#inner = inner;
    this.#guard = guard;
    // Handlers the application set on its transport before wrapping it (the SDK's own session bookkeeping does:
    // `transport.onclose = () => delete transports[sid]`) still run, as the SDK's `connect` keeps them. Not a previous
    // `onmessage`: what reaches the application is what the guard let through.
    const appError = inner.onerror;
    const appClose = inner.onclose;
    inner.onmessage = (message, extra) => this.#receive(message as Message, extra);
    inner.onerror = (error) => {
      appError?.(error);
      this.onerror?.(error);
    };
    inner.onclose = () => {
      for (const handle of this.#granted.values()) guard.release(handle);
      this.#granted.clear();
      this.#listing.clear();
      this.#deciding.clear();
      appClose?.();
      this.onclose?.();
    };
    if (inner.setProtocolVersion !== undefined) {
      this.setProtocolVersion = (version: string) => inner.setProtocolVersion?.(version);
    }
  }

  setProtocolVersion?: (version: string) => void;

  get sessionId(): string | undefined {
    return this.#inner.sessionId;
  }

  start(): Promise<void> {
    return this.#inner.start();
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    const m = message as Message;
    if (m.id !== undefined && m.method === undefined) {
      const handle = this.#granted.get(m.id);
      if (handle !== undefined) {
        this.#granted.delete(m.id);
        this.#guard.release(handle);
      }
      const listing = this.#listing.get(m.id);
      if (listing !== undefined) {
        this.#listing.delete(m.id);
        const result = m.result as { tools?: unknown } | undefined;
        if (result !== undefined && Array.isArray(result.tools)) {
          const tools = await this.#guard.filterList(result.tools as ListedTool[], listing.source, listing.namedTask);
          return this.#inner.send({ ...m, result: { ...result, tools } } as JSONRPCMessage, options);
        }
      }
    }
    return this.#inner.send(message, options);
  }

  #receive(message: Message, extra: MessageExtraInfo | undefined): void {
    const guarded = message.method === 'tools/call' || message.method === 'tools/list';
    if (guarded && 'id' in message && !isRequestId(message.id)) {
      // MCP request ids are strings or numbers (never null): a call with another id is not decided, nor handed on.
      this.#answerError(null, -32600, 'Invalid Request: the id must be a string or a number');
      return;
    }
    if (message.method !== undefined && message.id !== undefined && this.#pending(message.id)) {
      // The guard's bookkeeping is per request id: a second request reusing the id of one still pending could take
      // over its grant or its list filter. JSON-RPC ids must be unique among requests in flight; refuse the reuse.
      this.#answerError(message.id, -32600, 'request id already in use by a request in flight');
      return;
    }
    if (guarded && message.id !== undefined && !validParams(message)) {
      // Malformed params are a protocol error (JSON-RPC -32602), as the SDK answers them, not a decision.
      this.#answerError(message.id, -32602, message.method === 'tools/call' ? 'Invalid params: tools/call needs params { name: string, arguments?: object }' : 'Invalid params: params must be an object');
      return;
    }
    if (message.method === 'tools/call' && message.id !== undefined) {
      this.#deciding.set(message.id, false);
      void this.#authorize(message, message.id, extra);
      return;
    }
    if (message.method === 'notifications/cancelled') {
      // A call cancelled while the guard decides it is never handed to the server (and, as the spec allows, not answered).
      const id = (message.params as { requestId?: RequestId } | undefined)?.requestId;
      if (id !== undefined && this.#deciding.has(id)) this.#deciding.set(id, true);
      // A call already handed to the server may never be answered once cancelled: drop its grant now.
      const handle = id === undefined ? undefined : this.#granted.get(id);
      if (handle !== undefined) {
        this.#granted.delete(id!);
        this.#guard.release(handle);
      }
    }
    if (message.method === 'tools/list' && message.id !== undefined) {
      const meta = (message.params as { _meta?: Record<string, unknown> } | undefined)?._meta;
      this.#listing.set(message.id, { source: this.#source(extra), namedTask: meta?.[TASK_META] });
    }
    this.onmessage?.(message, extra);
  }

  async #authorize(message: Message, id: RequestId, extra: MessageExtraInfo | undefined): Promise<void> {
    const params: CallParams = typeof message.params === 'object' && message.params !== null ? (message.params as CallParams) : {};
    const verdict = await this.#guard.authorizeCall(params, this.#source(extra));
    const cancelled = this.#deciding.get(id) === true;
    this.#deciding.delete(id);
    if (cancelled) {
      if (!('refusal' in verdict) && verdict.handle !== null) this.#guard.release(verdict.handle);
      return;
    }
    if ('refusal' in verdict) {
      // A task-augmented call (MCP tasks) expects a CreateTaskResult, which a refusal is not: it gets the refusal as
      // a JSON-RPC error instead, its details (decision id, reasons, hint) in `data`.
      const task = (message.params as { task?: unknown } | undefined)?.task;
      const answer =
        task === undefined
          ? { jsonrpc: '2.0', id, result: verdict.refusal }
          : { jsonrpc: '2.0', id, error: { code: REFUSAL_ERROR_CODE, message: verdict.refusal.content[0]?.text ?? 'refused', data: verdict.refusal._meta } };
      try {
        await this.#inner.send(answer as JSONRPCMessage, { relatedRequestId: id });
      } catch (err) {
        this.onerror?.(err instanceof Error ? err : new Error(String(err)));
      }
      return;
    }
    if (verdict.handle !== null) this.#granted.set(id, verdict.handle);
    this.onmessage?.({ ...message, params: verdict.params } as JSONRPCMessage, extra);
  }

  #answerError(id: RequestId | null, code: number, message: string): void {
    void this.#inner
      .send({ jsonrpc: '2.0', id, error: { code, message } } as unknown as JSONRPCMessage, id === null ? {} : { relatedRequestId: id })
      .catch((err: unknown) => this.onerror?.(err instanceof Error ? err : new Error(String(err))));
  }

  #pending(id: RequestId): boolean {
    return this.#deciding.has(id) || this.#granted.has(id) || this.#listing.has(id);
  }

  #source(extra: MessageExtraInfo | undefined): IdentitySource {
    return { authInfo: extra?.authInfo, sessionId: this.#inner.sessionId };
  }
}

const isRequestId = (id: unknown): id is RequestId => typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id));

/** A `tools/call` names its tool and passes its arguments as an object (or none); a `tools/list` has object params or none. */
function validParams(message: Message): boolean {
  const params = message.params;
  if (message.method === 'tools/list') return params === undefined || (typeof params === 'object' && params !== null && !Array.isArray(params));
  if (typeof params !== 'object' || params === null || Array.isArray(params)) return false;
  const { name, arguments: args } = params as { name?: unknown; arguments?: unknown };
  return typeof name === 'string' && (args === undefined || (typeof args === 'object' && args !== null && !Array.isArray(args)));
}
