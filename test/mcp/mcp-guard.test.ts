/**
 * `agent-pdp/mcp`'s guard end to end: a real MCP client (the SDK's `Client` over Streamable HTTP) against a real
 * MCP server (the SDK's `McpServer`) on loopback, guarded by the real PDP (`startTestPdp`: the real OPA bundle,
 * store and issuer). Each case checks what the client got back and whether the tool's handler ran.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createMcpGuard, MappingFailed, REFUSAL_ERROR_CODE, REFUSAL_META, TASK_META, type McpGuard, type McpGuardOptions, type McpRefusal } from '../../src/mcp/index.js';
import { PdpClient, type ToolGrant } from '../../src/pep/index.js';
import { KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';
import { closedPort } from '../pep/fake-pdp.js';

interface HandlerRun {
  tool: string;
  args: unknown;
  grant: { scopes: readonly string[]; decisionId: string; taskId: string; resource: unknown; hasToken: boolean };
}

/** The CRM MCP server of these tests: three guarded tools and one registered without a mapping. */
interface CrmMcp {
  url: string;
  guard: McpGuard;
  runs: HandlerRun[];
  close(): Promise<void>;
}

let pdp: TestPdp;
let pep: PdpClient;
let orchestrator: PdpClient;
let seq = 0;

beforeAll(async () => {
  pdp = await startTestPdp();
  pep = new PdpClient({ url: pdp.url, apiKey: KEYS.pep });
  orchestrator = new PdpClient({ url: pdp.url, apiKey: KEYS.orchestrator });
});
afterAll(async () => {
  await pdp.close();
});

async function registerTask(type = 'complaint_resolution', customer = '1234'): Promise<string> {
  const id = `mcp-${++seq}`;
  await orchestrator.registerTask({ id, agent_id: 'support-resolver', type, context: { customer_id: customer }, expires_in_seconds: 900 });
  return id;
}

async function startCrmMcp(options: Partial<McpGuardOptions> = {}, given?: McpGuard): Promise<CrmMcp> {
  const runs: HandlerRun[] = [];
  const guard = given ?? createMcpGuard({ pdp: pep, identity: { agentId: 'support-resolver' }, ...options });
  const note = (tool: string, args: unknown, grant: ToolGrant): void => {
    runs.push({ tool, args, grant: { scopes: grant.scopes, decisionId: grant.decisionId, taskId: grant.taskId, resource: grant.resource, hasToken: grant.accessToken.length > 20 } });
  };
  const build = (): McpServer => {
    const server = new McpServer({ name: 'crm', version: '1.0.0' });
    guard.registerTool(
      server,
      'read_customer',
      { description: 'Read a customer', inputSchema: { customer_id: z.string() } },
      { integration: 'crm', scopes: ['tickets:read'], record: { type: 'customer', id: 'customer_id' } },
      async (args: { customer_id: string }, grant) => {
        note('read_customer', args, grant);
        return { content: [{ type: 'text', text: `customer ${args.customer_id}` }] };
      },
    );
    guard.registerTool(
      server,
      'write_ticket',
      { description: 'Write a ticket on a customer', inputSchema: { customer: z.object({ id: z.union([z.string(), z.number()]) }), text: z.string() } },
      { integration: 'crm', scopes: ['tickets:write'], record: { type: 'customer', id: 'customer.id' } },
      async (args: { customer: { id: string | number }; text: string }, grant) => {
        note('write_ticket', args, grant);
        return { content: [{ type: 'text', text: 'ticket written' }] };
      },
    );
    guard.registerTool(
      server,
      'delete_ticket',
      { description: 'Delete a ticket', inputSchema: { ticket_id: z.string() } },
      { integration: 'crm', scopes: ['tickets:delete'] },
      async (args: { ticket_id: string }, grant) => {
        note('delete_ticket', args, grant);
        return { content: [{ type: 'text', text: 'deleted' }] };
      },
    );
    // Registered straight on the server, with no mapping: the guard must refuse it by default.
    server.registerTool('export_all', { description: 'Export every customer' }, async () => {
      runs.push({ tool: 'export_all', args: {}, grant: { scopes: [], decisionId: '', taskId: '', resource: null, hasToken: false } });
      return { content: [{ type: 'text', text: 'everything' }] };
    });
    return server;
  };
  // Stateless Streamable HTTP: a server and transport per request, all behind the one guard.
  const http: Server = createServer((req, res) => {
    const server = build();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => void server.close());
    server
      .connect(guard.wrap(transport))
      .then(() => transport.handleRequest(req, res))
      .catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`;
  return { url, guard, runs, close: () => new Promise<void>((resolve) => http.close(() => resolve())) };
}

async function connect(url: string): Promise<Client> {
  const client = new Client({ name: 'test-agent', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

function refusalOf(result: { isError?: boolean; _meta?: Record<string, unknown> }): McpRefusal {
  expect(result.isError).toBe(true);
  return result._meta?.[REFUSAL_META] as McpRefusal;
}

function call(client: Client, name: string, args: Record<string, unknown>, taskId?: string) {
  return client.callTool({ name, arguments: args, ...(taskId === undefined ? {} : { _meta: { [TASK_META]: taskId } }) }) as Promise<{
    isError?: boolean;
    content: Array<{ type: string; text?: string }>;
    _meta?: Record<string, unknown>;
  }>;
}

describe('a guarded MCP server (real client, real server, real PDP)', () => {
  let crm: CrmMcp;
  let client: Client;
  beforeAll(async () => {
    crm = await startCrmMcp();
    client = await connect(crm.url);
  });
  afterAll(async () => {
    await client.close();
    await crm.close();
  });
  beforeEach(() => {
    crm.runs.length = 0;
  });

  it('an allowed call reaches the handler with a token bound to the record, the task and exactly the scopes', async () => {
    const task = await registerTask();
    const result = await call(client, 'write_ticket', { customer: { id: 1234 }, text: 'refund issued' }, task);
    expect(result.isError).toBeFalsy();
    expect(result.content[0]?.text).toBe('ticket written');
    expect(crm.runs).toHaveLength(1);
    const run = crm.runs[0]!;
    expect(run.grant).toMatchObject({ scopes: ['tickets:write'], taskId: task, resource: { type: 'customer', id: '1234' }, hasToken: true });
    // The decision is in the audit trail, as an allow for this agent, task and record.
    const chain = await fetch(`${pdp.url}/v1/audit/decisions/${run.grant.decisionId}`, { headers: { authorization: `Bearer ${KEYS.auditor}` } });
    expect(chain.status).toBe(200);
    expect(JSON.stringify(await chain.json())).toContain(task);
  });

  it('a denied scope is a tool error with the decision id and reasons; the handler never runs', async () => {
    const task = await registerTask();
    const refusal = refusalOf(await call(client, 'delete_ticket', { ticket_id: 't-9' }, task));
    expect(refusal).toMatchObject({ code: 'permission_denied', tool: 'delete_ticket', outcome: 'deny', retryable: false, missing_scopes: ['tickets:delete'] });
    expect(refusal.decision_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(refusal.reasons?.map((r) => r.code)).toContain('deny_scope');
    expect(crm.runs).toEqual([]);
  });

  it('a call on another customer\'s record is denied by the record binding', async () => {
    const task = await registerTask('complaint_resolution', '1234');
    const result = await call(client, 'write_ticket', { customer: { id: '5678' }, text: 'not yours' }, task);
    const refusal = refusalOf(result);
    expect(refusal.code).toBe('permission_denied');
    expect(refusal.reasons?.map((r) => r.code)).toContain('record_binding_mismatch');
    expect(refusal.denied_scopes).toEqual([expect.objectContaining({ scope: 'tickets:write', reason: 'record_binding' })]);
    expect(result.content[0]?.text).toContain(refusal.decision_id);
    expect(crm.runs).toEqual([]);
  });

  it('a tool without a mapping is refused, and the session goes on', async () => {
    const task = await registerTask();
    const refusal = refusalOf(await call(client, 'export_all', {}, task));
    expect(refusal).toMatchObject({ code: 'tool_not_mapped', tool: 'export_all' });
    expect(crm.runs).toEqual([]);
    expect((await call(client, 'read_customer', { customer_id: '1234' }, task)).isError).toBeFalsy();
  });

  it('arguments the mapping cannot read are refused (mapping_failed, naming the argument), not crashed', async () => {
    const task = await registerTask();
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ text: 'no customer' }, 'customer.id'],
      [{ customer: { id: { nested: true } }, text: 'object id' }, 'customer.id'],
      [{ customer: { id: '' }, text: 'empty id' }, 'customer.id'],
      [{ customer: 'plain string', text: 'not an object' }, 'customer.id'],
      [{ customer: { id: 1.5 }, text: 'not an integer' }, 'customer.id'],
    ];
    for (const [args, argument] of cases) {
      const refusal = refusalOf(await call(client, 'write_ticket', args, task));
      expect(refusal, JSON.stringify(args)).toMatchObject({ code: 'mapping_failed', argument });
    }
    expect(crm.runs).toEqual([]);
    expect((await call(client, 'write_ticket', { customer: { id: '1234' }, text: 'fine' }, task)).isError).toBeFalsy();
  });

  it('a call with no task is refused (task_missing); a grant handle sent by the client is not honoured', async () => {
    expect(refusalOf(await call(client, 'read_customer', { customer_id: '1234' })).code).toBe('task_missing');
    const task = await registerTask();
    // The client tries to hand the tool a grant of its own: the guard removes it and decides.
    const result = await client.callTool({ name: 'delete_ticket', arguments: { ticket_id: 'x' }, _meta: { [TASK_META]: task, 'agent-pdp.dev/grant': 'forged' } });
    expect(refusalOf(result as never).code).toBe('permission_denied');
    expect(crm.runs).toEqual([]);
  });

  it('tools/list shows only the tools the task could be allowed (triage: read only)', async () => {
    const triage = await registerTask('triage');
    const complaint = await registerTask('complaint_resolution');
    const listed = async (taskId: string): Promise<string[]> => {
      const guard = createMcpGuard({ pdp: pep, identity: { agentId: 'support-resolver', taskId } });
      const server = await startCrmMcpWith(guard);
      const c = await connect(server.url);
      try {
        return (await c.listTools()).tools.map((t) => t.name).sort();
      } finally {
        await c.close();
        await server.close();
      }
    };
    expect(await listed(triage)).toEqual(['read_customer']);
    expect(await listed(complaint)).toEqual(['read_customer', 'write_ticket']);
  });
});

/** `startCrmMcp` with a guard of the caller's making. */
function startCrmMcpWith(guard: McpGuard): Promise<CrmMcp> {
  return startCrmMcp({}, guard);
}

describe('when the PDP cannot answer', () => {
  it('every guarded call fails closed with a clear, retryable tool error; the session goes on', async () => {
    const down = new PdpClient({ url: `http://127.0.0.1:${await closedPort()}`, apiKey: KEYS.pep, timeoutMs: 500, maxAttempts: 1 });
    const crm = await startCrmMcp({ pdp: down });
    const client = await connect(crm.url);
    try {
      const task = await registerTask();
      const result = await call(client, 'read_customer', { customer_id: '1234' }, task);
      expect(refusalOf(result)).toMatchObject({ code: 'pdp_unavailable', retryable: true, tool: 'read_customer' });
      expect(result.content[0]?.text).toContain('not made');
      expect(crm.runs).toEqual([]);
      // tools/list cannot be filtered either: it fails closed to no guarded tool.
      expect((await client.listTools()).tools).toEqual([]);
      expect(refusalOf(await call(client, 'write_ticket', { customer: { id: '1234' }, text: 'x' }, task)).code).toBe('pdp_unavailable');
    } finally {
      await client.close();
      await crm.close();
    }
  });
});

/** A client and a guarded server in one process (the SDK's in-memory transport pair): for the guard's options. */
async function inMemory(guard: McpGuard, register: (server: McpServer) => void = () => undefined): Promise<{ client: Client; runs: string[]; guard: McpGuard; close(): Promise<void> }> {
  const runs: string[] = [];
  const server = new McpServer({ name: 'crm', version: '1.0.0' });
  guard.registerTool(server, 'read_customer', { inputSchema: { customer_id: z.string() } }, { integration: 'crm', scopes: ['tickets:read'], record: { type: 'customer', id: 'customer_id' } }, async (_args, grant) => {
    runs.push(`read_customer ${grant.reused ? 'reused' : 'new'} ${grant.decisionId}`);
    return { content: [{ type: 'text', text: 'ok' }] };
  });
  register(server);
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(guard.wrap(serverSide));
  const client = new Client({ name: 'agent', version: '1.0.0' });
  await client.connect(clientSide);
  return { client, runs, guard, close: () => client.close() };
}

describe('the guard\'s options', () => {
  it('checks mappings when they are declared, naming the tool and the field', () => {
    const guard = createMcpGuard({ pdp: pep });
    expect(() => guard.map('t', { integration: '', scopes: ['x'] })).toThrow(/tool "t": integration/);
    expect(() => guard.map('t', { integration: 'crm', scopes: [] })).toThrow(/tool "t": scopes/);
    expect(() => guard.map('t', { integration: 'crm', scopes: ['bad scope'] })).toThrow(/not a scope/);
    expect(() => guard.map('t', { integration: 'crm', scopes: ['x'], record: { type: 'customer', id: '' } })).toThrow(/record.id/);
    expect(() => guard.map('t', { integration: 'crm', scopes: ['x'], ttlSeconds: 0 })).toThrow(/ttlSeconds/);
    expect(() => createMcpGuard({ pdp: pep, tools: { t: { integration: 'crm', scopes: 'x' as never } } })).toThrow(/tool "t": scopes/);
    expect(() => createMcpGuard({ pdp: pep, identity: { agentId: '' } })).toThrow(/identity/);
    expect(() => createMcpGuard({ pdp: pep, unmapped: 'maybe' as never })).toThrow(/unmapped/);
  });

  it('options of the wrong type are refused at construction, never read as the permissive setting', () => {
    expect(() => createMcpGuard({ pdp: pep, taskFromCall: 'no' as never })).toThrow(/taskFromCall/);
    expect(() => createMcpGuard({ pdp: pep, listFilter: 'on' as never })).toThrow(/listFilter/);
    expect(() => createMcpGuard({ pdp: pep, listFilter: { includeRequestable: 'no' as never } })).toThrow(/includeRequestable/);
    expect(() => createMcpGuard({ pdp: pep, listFilter: { cacheMs: 0, includeRequestable: false } })).not.toThrow();
  });

  it('an identity naming a task that is not an id is no identity: the call cannot choose its own task instead', async () => {
    const task = await registerTask();
    const s = await inMemory(createMcpGuard({ pdp: pep, identity: () => ({ agentId: 'support-resolver', taskId: 42 as never }) }));
    try {
      expect(refusalOf(await call(s.client, 'read_customer', { customer_id: '1234' }, task) as never).code).toBe('identity_missing');
      expect(s.runs).toHaveLength(0);
    } finally {
      await s.close();
    }
  });

  it('a mapping function that throws or returns no scopes refuses the call', async () => {
    const task = await registerTask();
    const guard = createMcpGuard({ pdp: pep, identity: { agentId: 'support-resolver', taskId: task } });
    const s = await inMemory(guard, (server) => {
      guard.registerTool(server, 'by_kind', { inputSchema: { kind: z.string() } }, {
        integration: 'crm',
        scopes: (args) => {
          if (args.kind === 'boom') throw new Error('db password hunter2 rejected');
          if (args.kind === 'said') throw new MappingFailed('kind must be read or write', 'kind');
          return args.kind === 'none' ? [] : ['tickets:read'];
        },
        record: (args) => (args.kind === 'badrecord' ? ({ type: 'customer', id: 42.5 } as never) : undefined),
      }, async () => ({ content: [{ type: 'text', text: 'ran' }] }));
    });
    try {
      const boom = await s.client.callTool({ name: 'by_kind', arguments: { kind: 'boom' } });
      expect(refusalOf(boom as never)).toMatchObject({ code: 'mapping_failed' });
      // An internal error's text stays on the server; a MappingFailed the author threw is meant for the client.
      expect(JSON.stringify(boom)).not.toContain('hunter2');
      expect(refusalOf(await s.client.callTool({ name: 'by_kind', arguments: { kind: 'said' } }) as never)).toMatchObject({ code: 'mapping_failed', argument: 'kind', message: expect.stringContaining('kind must be read or write') });
      expect(refusalOf(await s.client.callTool({ name: 'by_kind', arguments: { kind: 'none' } }) as never)).toMatchObject({ code: 'mapping_failed' });
      expect(refusalOf(await s.client.callTool({ name: 'by_kind', arguments: { kind: 'badrecord' } }) as never)).toMatchObject({ code: 'mapping_failed', argument: 'record.id' });
      expect((await s.client.callTool({ name: 'by_kind', arguments: { kind: 'read' } })).isError).toBeFalsy();
    } finally {
      await s.close();
    }
  });

  it('the session\'s task wins: a call naming another is refused (task_mismatch)', async () => {
    const task = await registerTask();
    const other = await registerTask();
    const s = await inMemory(createMcpGuard({ pdp: pep, identity: { agentId: 'support-resolver', taskId: task } }));
    try {
      expect(refusalOf(await call(s.client, 'read_customer', { customer_id: '1234' }, other) as never).code).toBe('task_mismatch');
      expect((await call(s.client, 'read_customer', { customer_id: '1234' }, task)).isError).toBeFalsy();
      expect(s.runs).toHaveLength(1);
    } finally {
      await s.close();
    }
  });

  it('taskFromCall: false ignores a task named by the call', async () => {
    const task = await registerTask();
    const s = await inMemory(createMcpGuard({ pdp: pep, identity: { agentId: 'support-resolver' }, taskFromCall: false }));
    try {
      expect(refusalOf(await call(s.client, 'read_customer', { customer_id: '1234' }, task) as never).code).toBe('task_missing');
    } finally {
      await s.close();
    }
  });

  it('no identity (token mode without a verified token) refuses every guarded call', async () => {
    const s = await inMemory(createMcpGuard({ pdp: pep }));
    try {
      expect(refusalOf(await call(s.client, 'read_customer', { customer_id: '1234' }, 'any') as never).code).toBe('identity_missing');
      expect((await s.client.listTools()).tools).toEqual([]);
    } finally {
      await s.close();
    }
  });

  it('a PDP refusal of the request itself (this key may not speak for the agent) is pdp_error, never an allow', async () => {
    const task = await registerTask();
    const strict = new PdpClient({ url: pdp.url, apiKey: KEYS.strictPep });
    const s = await inMemory(createMcpGuard({ pdp: strict, identity: { agentId: 'code-review-agent', taskId: task } }));
    try {
      const refusal = refusalOf(await call(s.client, 'read_customer', { customer_id: '1234' }) as never);
      expect(refusal).toMatchObject({ code: 'pdp_error' });
      expect(refusal.message).toContain('forbidden_agent');
      expect(s.runs).toEqual([]);
    } finally {
      await s.close();
    }
  });

  it('unmapped: allow lets a tool without a mapping through, unguarded and listed', async () => {
    const s = await inMemory(createMcpGuard({ pdp: pep, identity: { agentId: 'support-resolver' }, unmapped: 'allow' }), (server) => {
      server.registerTool('ping', { description: 'ping' }, async () => ({ content: [{ type: 'text', text: 'pong' }] }));
    });
    try {
      const result = await call(s.client, 'ping', {});
      expect(result.isError).toBeFalsy();
      expect(result.content[0]?.text).toBe('pong');
      // No task here, so no guarded tool can be shown; the unguarded one is.
      expect((await s.client.listTools()).tools.map((t) => t.name)).toEqual(['ping']);
    } finally {
      await s.close();
    }
  });

  it('decides every call by default; tokens: true reuses a token for the same tool, task and record', async () => {
    const task = await registerTask();
    const each = await inMemory(createMcpGuard({ pdp: pep, identity: { agentId: 'support-resolver', taskId: task } }));
    const reuse = await inMemory(createMcpGuard({ pdp: pep, identity: { agentId: 'support-resolver', taskId: task }, tokens: true }));
    try {
      for (let i = 0; i < 2; i++) {
        await call(each.client, 'read_customer', { customer_id: '1234' });
        await call(reuse.client, 'read_customer', { customer_id: '1234' });
      }
      expect(each.runs.map((r) => r.split(' ')[1])).toEqual(['new', 'new']);
      expect(new Set(each.runs.map((r) => r.split(' ')[2])).size).toBe(2);
      expect(reuse.runs.map((r) => r.split(' ')[1])).toEqual(['new', 'reused']);
      // The task ends: the guard's reused token would still be handed out; forgetTask makes the next call decided
      // again, and the PDP refuses it (task_completed).
      await orchestrator.completeTask(task);
      expect(reuse.guard.forgetTask(task)).toBe(1);
      const after = refusalOf(await call(reuse.client, 'read_customer', { customer_id: '1234' }) as never);
      expect(after).toMatchObject({ code: 'permission_denied' });
      expect(after.reasons?.map((r) => r.code)).toContain('task_completed');
      expect(each.guard.forgetTask(task)).toBe(0);
    } finally {
      await each.close();
      await reuse.close();
    }
  });

  it('listFilter: false lists every tool; the filter can name the task in the request\'s _meta', async () => {
    const triage = await registerTask('triage');
    const register = (server: McpServer): void => {
      server.registerTool('export_all', {}, async () => ({ content: [] }));
    };
    const all = await inMemory(createMcpGuard({ pdp: pep, identity: { agentId: 'support-resolver' }, listFilter: false }), register);
    const filtered = await inMemory(createMcpGuard({ pdp: pep, identity: { agentId: 'support-resolver' }, tools: { write_ticket: { integration: 'crm', scopes: ['tickets:write'] } } }), (server) => {
      register(server);
      server.registerTool('write_ticket', {}, async () => ({ content: [] }));
    });
    try {
      expect((await all.client.listTools()).tools.map((t) => t.name).sort()).toEqual(['export_all', 'read_customer']);
      const named = await filtered.client.listTools({ _meta: { [TASK_META]: triage } });
      expect(named.tools.map((t) => t.name)).toEqual(['read_customer']);
    } finally {
      await all.close();
      await filtered.close();
    }
  });
});

describe('a call the client cancels while it is being decided', () => {
  it('never reaches the server', async () => {
    // The real PDP behind a loopback relay that holds each decide for 400 ms, so the cancellation lands mid-decision.
    const relay = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const forward = async (): Promise<void> => {
          const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => !['host', 'content-length', 'connection'].includes(k))) as Record<string, string>;
          const upstream = await fetch(`${pdp.url}${req.url}`, { method: req.method, headers, ...(req.method === 'GET' ? {} : { body: Buffer.concat(chunks) }) });
          res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' }).end(Buffer.from(await upstream.arrayBuffer()));
        };
        setTimeout(() => void forward(), req.url === '/v1/decide' ? 400 : 0);
      });
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const slow = new PdpClient({ url: `http://127.0.0.1:${(relay.address() as AddressInfo).port}`, apiKey: KEYS.pep });
    const task = await registerTask();
    const s = await inMemory(createMcpGuard({ pdp: slow, identity: { agentId: 'support-resolver', taskId: task } }));
    try {
      const abort = new AbortController();
      const pending = s.client.callTool({ name: 'read_customer', arguments: { customer_id: '1234' } }, undefined, { signal: abort.signal });
      setTimeout(() => abort.abort(new Error('changed my mind')), 50);
      await expect(pending).rejects.toThrow();
      await new Promise((resolve) => setTimeout(resolve, 800));
      expect(s.runs).toEqual([]);
      // The session goes on: the next call is decided and runs.
      expect((await s.client.callTool({ name: 'read_customer', arguments: { customer_id: '1234' } })).isError).toBeFalsy();
      expect(s.runs).toHaveLength(1);
    } finally {
      await s.close();
      relay.closeAllConnections();
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    }
  });
});

describe('what the handler gets is what was decided', () => {
  it('arguments the input schema changes (a default filled in) into another record are not run', async () => {
    const task = await registerTask();
    const guard = createMcpGuard({ pdp: pep, identity: { agentId: 'support-resolver', taskId: task } });
    const ran: string[] = [];
    const s = await inMemory(guard, (server) => {
      guard.registerTool(server, 'lookup', { inputSchema: { customer_id: z.string().default('5678') } }, {
        integration: 'crm',
        scopes: ['tickets:read'],
        record: (args) => (typeof args['customer_id'] === 'string' ? { type: 'customer', id: args['customer_id'] } : undefined),
      }, async (args: { customer_id: string }) => {
        ran.push(args.customer_id);
        return { content: [{ type: 'text', text: 'looked up' }] };
      });
      // A tool without an input schema: the SDK calls its handler with `extra` alone.
      guard.registerTool(server, 'ping', { description: 'no arguments' }, { integration: 'crm', scopes: ['tickets:read'] }, async (args: object, grant) => {
        ran.push(`ping ${JSON.stringify(args)} ${grant.scopes.join(' ')}`);
        return { content: [{ type: 'text', text: 'pong' }] };
      });
    });
    try {
      // Decided without a record (none was sent); the schema's default would make it customer 5678: refused.
      const changed = await s.client.callTool({ name: 'lookup', arguments: {} });
      expect(refusalOf(changed as never)).toMatchObject({ code: 'arguments_changed', retryable: false, tool: 'lookup' });
      expect((changed.content as Array<{ text: string }>)[0]?.text).toContain('not run');
      expect((await s.client.callTool({ name: 'lookup', arguments: { customer_id: '1234' } })).isError).toBeFalsy();
      expect((await s.client.callTool({ name: 'ping' })).isError).toBeFalsy();
      expect(ran).toEqual(['1234', 'ping {} tickets:read']);
    } finally {
      await s.close();
    }
  });
});

/** An MCP server with one guarded tool, read_customer (crm tickets:read on the customer named), noting each run. */
function readCustomerServer(guard: McpGuard): { server: McpServer; ran: string[] } {
  const server = new McpServer({ name: 'crm', version: '1.0.0' });
  const ran: string[] = [];
  guard.registerTool(server, 'read_customer', { inputSchema: { customer_id: z.string() } }, { integration: 'crm', scopes: ['tickets:read'], record: { type: 'customer', id: 'customer_id' } }, async (args: { customer_id: string }) => {
    ran.push(args.customer_id);
    return { content: [{ type: 'text', text: 'ok' }] };
  });
  return { server, ran };
}

/** A raw JSON-RPC client on an in-memory pair, initialized, against `server` connected through the guard. */
async function rawSession(guard: McpGuard, server: McpServer): Promise<{ raw: InMemoryTransport; answers: Array<Record<string, any>> }> {
  const [raw, serverSide] = InMemoryTransport.createLinkedPair();
  const answers: Array<Record<string, any>> = [];
  raw.onmessage = (m) => void answers.push(m as Record<string, any>);
  await server.connect(guard.wrap(serverSide));
  await raw.start();
  await raw.send({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } } });
  await raw.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  return { raw, answers };
}

describe('request ids', () => {
  it('a request reusing the id of one still in flight is refused; the first is answered as decided', async () => {
    const task = await registerTask();
    const guard = createMcpGuard({ pdp: pep, identity: { agentId: 'support-resolver', taskId: task } });
    const { server, ran } = readCustomerServer(guard);
    const { raw, answers } = await rawSession(guard, server);
    // Two calls with one id, the second sent while the first is being decided (a different record).
    await raw.send({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'read_customer', arguments: { customer_id: '1234' } } });
    await raw.send({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'read_customer', arguments: { customer_id: '5678' } } });
    for (let i = 0; i < 100 && answers.filter((a) => a['id'] === 5).length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    const five = answers.filter((a) => a['id'] === 5);
    expect(five).toHaveLength(2);
    expect(five.find((a) => a['error'] !== undefined)?.['error']).toMatchObject({ code: -32600 });
    expect(five.find((a) => a['result'] !== undefined)?.['result']).toMatchObject({ content: [{ text: 'ok' }] });
    expect(ran).toEqual(['1234']);
    await raw.close();
  });

  it('a tools/call whose id is not a string or number, or whose params are malformed, is a protocol error and never decided', async () => {
    const task = await registerTask();
    const guard = createMcpGuard({ pdp: pep, identity: { agentId: 'support-resolver', taskId: task } });
    const { server, ran } = readCustomerServer(guard);
    const { raw, answers } = await rawSession(guard, server);
    const decisionsBefore = (await pdp.pdp.store.searchDecisions({ limit: 100, task_id: task })).events.length;
    await raw.send({ jsonrpc: '2.0', id: null, method: 'tools/call', params: { name: 'read_customer', arguments: { customer_id: '1234' } } } as never);
    await raw.send({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: null } as never);
    await raw.send({ jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 42, arguments: {} } } as never);
    await raw.send({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'read_customer', arguments: ['1234'] } } as never);
    await raw.send({ jsonrpc: '2.0', id: 10, method: 'tools/list', params: 'str' } as never);
    for (let i = 0; i < 100 && answers.length < 6; i++) await new Promise((r) => setTimeout(r, 20));
    const byId = (id: unknown) => answers.find((a) => a['id'] === id);
    expect(byId(null)?.['error']).toMatchObject({ code: -32600 });
    for (const id of [7, 8, 9, 10]) expect(byId(id)?.['error']).toMatchObject({ code: -32602 });
    // The ids are free again: a well-formed call with id 7 is decided and runs.
    await raw.send({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'read_customer', arguments: { customer_id: '1234' } } });
    for (let i = 0; i < 100 && answers.filter((a) => a['id'] === 7).length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(answers.filter((a) => a['id'] === 7).at(-1)?.['result']).toMatchObject({ content: [{ text: 'ok' }] });
    expect(ran).toEqual(['1234']);
    const decisionsAfter = (await pdp.pdp.store.searchDecisions({ limit: 100, task_id: task })).events.length;
    expect(decisionsAfter - decisionsBefore).toBe(1);
    await raw.close();
  });

  it('a refused task-augmented call (MCP tasks) is a JSON-RPC error carrying the refusal, not a result the client cannot read', async () => {
    const task = await registerTask();
    const guard = createMcpGuard({ pdp: pep, identity: { agentId: 'support-resolver', taskId: task } });
    const server = new McpServer({ name: 'crm', version: '1.0.0' });
    guard.registerTool(server, 'delete_ticket', { inputSchema: { ticket_id: z.string() } }, { integration: 'crm', scopes: ['tickets:delete'] }, async () => ({ content: [{ type: 'text', text: 'deleted' }] }));
    const { raw, answers } = await rawSession(guard, server);
    await raw.send({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'delete_ticket', arguments: { ticket_id: 't1' }, task: { ttl: 60000 } } } as never);
    for (let i = 0; i < 100 && answers.every((a) => a['id'] !== 3); i++) await new Promise((r) => setTimeout(r, 20));
    const error = answers.find((a) => a['id'] === 3)?.['error'];
    expect(error).toMatchObject({ code: REFUSAL_ERROR_CODE, data: { [REFUSAL_META]: { code: 'permission_denied', decision_id: expect.any(String) } } });
    await raw.close();
  });
});

describe('the application\'s own transport handlers', () => {
  it('onclose and onerror set before wrapping still run (the SDK\'s session cleanup)', async () => {
    const guard = createMcpGuard({ pdp: pep, identity: { agentId: 'support-resolver' } });
    const server = new McpServer({ name: 'crm', version: '1.0.0' });
    const [raw, serverSide] = InMemoryTransport.createLinkedPair();
    const seen: string[] = [];
    serverSide.onclose = () => void seen.push('app close');
    serverSide.onerror = (e) => void seen.push(`app error ${e.message}`);
    server.server.onclose = () => void seen.push('server close');
    await server.connect(guard.wrap(serverSide));
    await raw.start();
    serverSide.onerror?.(new Error('boom'));
    await serverSide.close();
    expect(seen).toContain('app error boom');
    expect(seen).toContain('app close');
    expect(seen).toContain('server close');
  });
});
