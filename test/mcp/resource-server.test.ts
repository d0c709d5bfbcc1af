/**
 * The resource-server side of a remote MCP server: a real MCP server (the SDK's McpServer over its Streamable HTTP
 * transport) behind express on 127.0.0.1 with `requireToken()`, a real SDK client, and real tokens from the real
 * PDP, whose issuer gives integration `crm` the MCP server's resource URI as its audience.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import express from 'express';
import { decodeJwt, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createMcpGuard, REFUSAL_META, TASK_META, type McpRefusal } from '../../src/mcp/index.js';
import { mcpResourceServer, type McpResourceServer, type McpResourceServerOptions } from '../../src/mcp/resource-server.js';
import { PdpClient } from '../../src/pep/index.js';
import { closedPort } from '../pep/fake-pdp.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';

let pdp: TestPdp;
let pep: PdpClient;
let orchestrator: PdpClient;
let issuer: string;
/** The MCP server's listener; each test mounts its own app on it (`serve`). */
let mcpHttp: Server;
let app: express.Express | undefined;
/** The MCP endpoint's URL, which is also its resource URI and the audience of `crm` tokens. */
let RESOURCE: string;
let seq = 0;

beforeAll(async () => {
  mcpHttp = createServer((req, res) => {
    if (app === undefined) return void res.writeHead(503).end();
    app(req, res);
  }).listen(0, '127.0.0.1');
  await new Promise<void>((ok) => mcpHttp.once('listening', ok));
  RESOURCE = `http://127.0.0.1:${(mcpHttp.address() as AddressInfo).port}/mcp`;
  pdp = await startTestPdp({ config: { issuer: { issuer: 'http://127.0.0.1:8181', keys: 'data/keys', audiences: { crm: RESOURCE } } } });
  pep = new PdpClient({ url: pdp.url, apiKey: KEYS.pep });
  orchestrator = new PdpClient({ url: pdp.url, apiKey: KEYS.orchestrator });
  ({ issuer } = await pep.metadata());
});
afterAll(async () => {
  mcpHttp?.closeAllConnections();
  await new Promise<void>((ok) => (mcpHttp === undefined ? ok() : mcpHttp.close(() => ok())));
  await pdp?.close();
});

interface TokenOptions {
  agent?: string;
  type?: string;
  context?: Record<string, string>;
  integration?: string;
  scopes?: string[];
  resource?: { type: string; id: string };
  /** RFC 8707 `resource` of the redemption. Default: RESOURCE for crm, none otherwise. */
  audience?: string | null;
}

/** A token from a real decision: registers a task, decides, redeems (with RFC 8707 `resource`). */
async function token(opts: TokenOptions = {}): Promise<{ taskId: string; token: string; decisionId: string }> {
  const taskId = `mcp-rs-${++seq}`;
  const agent = opts.agent ?? 'support-resolver';
  await orchestrator.registerTask({
    id: taskId, agent_id: agent, type: opts.type ?? 'complaint_resolution', context: opts.context ?? { customer_id: '1234' }, expires_in_seconds: 900,
  });
  const decision = await pep.decide({
    agent_id: agent, task: { id: taskId }, integration: opts.integration ?? 'crm',
    scopes: opts.scopes ?? ['tickets:write'], resource: opts.resource ?? { type: 'customer', id: '1234' },
  });
  expect(decision.allow).toBe(true);
  const audience = opts.audience === undefined ? (opts.integration ?? 'crm') === 'crm' ? RESOURCE : null : opts.audience;
  const res = await fetch(`${pdp.url}/v1/tokens`, {
    method: 'POST',
    headers: { ...auth(KEYS.pep), 'content-type': 'application/json' },
    body: JSON.stringify({ decision_id: decision.decision_id, ...(audience === null ? {} : { resource: audience }) }),
  });
  expect(res.status).toBe(201);
  const body = (await res.json()) as { access_token: string };
  return { taskId, token: body.access_token, decisionId: decision.decision_id };
}

/** The options every test starts from: this MCP server, our issuer, the PDP's JWKS. */
const base = (): McpResourceServerOptions => ({ resource: RESOURCE, issuer, pdp: pep, scopesSupported: ['tickets:write'], resourceName: 'CRM tools' });

/**
 * Serves a stateless MCP server at /mcp behind `requireToken()`, with one tool, `whoami`, that answers what its
 * handler sees of the token (`extra.authInfo`), and the metadata at its RFC 9728 path.
 */
function serve(options: Partial<McpResourceServerOptions> = {}): McpResourceServer {
  const rs = mcpResourceServer({ ...base(), ...options });
  const next = express();
  next.use(rs.metadataPath, rs.metadataHandler());
  next.post('/mcp', express.json(), rs.requireToken(), async (req, res) => {
    const server = new McpServer({ name: 'crm-test', version: '1.0.0' });
    server.registerTool('whoami', { description: 'what the handler sees of the caller' }, async (extra) => {
      const info = extra.authInfo;
      const seen = {
        clientId: info?.clientId, scopes: info?.scopes, expiresAt: info?.expiresAt, resource: info?.resource?.href,
        extra: info?.extra, hasToken: typeof info?.token === 'string' && info.token.length > 0,
      };
      return { content: [{ type: 'text', text: JSON.stringify(seen) }] };
    });
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  app = next;
  return rs;
}

/** An SDK client over Streamable HTTP, sending `Authorization: Bearer <token>` on every request. */
async function connect(bearer: string | undefined): Promise<Client> {
  const client = new Client({ name: 'test-agent', version: '1.0.0' });
  const headers: Record<string, string> = bearer === undefined ? {} : { Authorization: `Bearer ${bearer}` };
  await client.connect(new StreamableHTTPClientTransport(new URL(RESOURCE), { requestInit: { headers } }));
  return client;
}

/** A JSON-RPC `initialize`, as an MCP client's first request. */
function initialize(authorization?: string): Promise<Response> {
  return fetch(RESOURCE, {
    method: 'POST',
    headers: {
      'content-type': 'application/json', accept: 'application/json, text/event-stream',
      ...(authorization === undefined ? {} : { authorization }),
    },
    body: JSON.stringify({
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } },
    }),
  });
}

/** Everything a response says, for checking that the token is never echoed. */
async function everything(res: Response): Promise<string> {
  return `${JSON.stringify([...res.headers.entries()])} ${await res.text()}`;
}

describe('mcpResourceServer: RFC 9728 metadata', () => {
  it('serves the document at the path RFC 9728 §3.1 gives the resource URI, to any origin, GET only', async () => {
    const rs = serve();
    const origin = new URL(RESOURCE).origin;
    expect(rs.metadataPath).toBe('/.well-known/oauth-protected-resource/mcp');
    expect(rs.metadataUrl).toBe(`${origin}/.well-known/oauth-protected-resource/mcp`);
    const expected = {
      resource: RESOURCE, authorization_servers: [issuer], bearer_methods_supported: ['header'],
      scopes_supported: ['tickets:write'], resource_name: 'CRM tools',
    };
    expect(rs.metadata).toEqual(expected);

    const res = await fetch(rs.metadataUrl, { headers: { origin: 'https://agent.example.com' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(await res.json()).toEqual(expected);
    expect((await fetch(rs.metadataUrl, { method: 'POST' })).status).toBe(405);
  });

  it('names the PDP as the authorization server whose own metadata a client then reads', async () => {
    const rs = serve();
    const { authorization_servers: servers } = rs.metadata;
    expect(servers).toEqual([issuer]);
    expect((await pep.metadata()).issuer).toBe(servers?.[0]);
  });

  it('leaves out the optional fields not given', () => {
    const rs = mcpResourceServer({ resource: 'https://crm-mcp.example.com/mcp', issuer, jwksUri: pep.jwksUri });
    expect(rs.metadata).toEqual({ resource: 'https://crm-mcp.example.com/mcp', authorization_servers: [issuer], bearer_methods_supported: ['header'] });
    expect(rs.metadataUrl).toBe('https://crm-mcp.example.com/.well-known/oauth-protected-resource/mcp');
    expect(mcpResourceServer({ resource: 'https://mcp.example.com', issuer, jwksUri: pep.jwksUri }).metadataPath).toBe('/.well-known/oauth-protected-resource');
  });

  it.each<{ note: string; options: Partial<McpResourceServerOptions>; message: RegExp }>([
    { note: 'a relative resource', options: { resource: '/mcp' }, message: /"resource" must be an absolute URL/ },
    { note: 'a resource with a fragment', options: { resource: 'https://mcp.example.com/mcp#x' }, message: /no query and no fragment/ },
    { note: 'a resource with a query', options: { resource: 'https://mcp.example.com/mcp?tenant=1' }, message: /no query and no fragment/ },
    { note: 'a resource that is not http(s)', options: { resource: 'urn:example:mcp' }, message: /http\(s\) URL/ },
    { note: 'no issuer', options: { issuer: '' }, message: /"issuer" must be a non-empty string/ },
    { note: 'no keys', options: { pdp: undefined }, message: /give "pdp", "jwksUri" or "jwks"/ },
    { note: 'introspection without a PDP client', options: { pdp: undefined, jwksUri: 'http://127.0.0.1:1/jwks', introspect: true }, message: /"introspect" needs "pdp"/ },
    { note: 'a JWKS that is not one', options: { jwks: { nope: [] } as never }, message: /"jwks" must be a JWKS/ },
    { note: 'a resource name that is no string', options: { resourceName: 42 as never }, message: /metadata is invalid at "resource_name"/ },
  ])('refuses $note at construction', ({ options, message }) => {
    expect(() => mcpResourceServer({ ...base(), ...options })).toThrow(TypeError);
    expect(() => mcpResourceServer({ ...base(), ...options })).toThrow(message);
  });
});

describe('mcpResourceServer: requireToken on the MCP endpoint', () => {
  it('refuses a request without a token with 401 and a challenge naming the metadata', async () => {
    const rs = serve();
    const res = await initialize();
    expect(res.status).toBe(401);
    const challenge = res.headers.get('www-authenticate') ?? '';
    expect(challenge).toMatch(/^Bearer /);
    expect(challenge).toContain(`resource_metadata="${rs.metadataUrl}"`);
    expect(await res.json()).toMatchObject({ error: 'invalid_token' });
  });

  it('the SDK client cannot connect without a token', async () => {
    serve();
    await expect(connect(undefined)).rejects.toThrow();
  });

  it.each<{ note: string; bearer: (t: string, other: string, forged: string) => string; code: string }>([
    { note: 'a token for another audience', bearer: (_t, other) => `Bearer ${other}`, code: 'token_wrong_audience' },
    { note: 'garbage', bearer: () => 'Bearer not-a-jwt', code: 'token_invalid' },
    // Read as the proxy and the resource-server middleware read it (the SDK alone would take the first word).
    { note: 'a good token followed by another word', bearer: (t) => `Bearer ${t} extra`, code: 'token_malformed' },
    { note: 'two credentials in one header', bearer: (t, other) => `Bearer ${t}, Bearer ${other}`, code: 'token_malformed' },
    { note: 'a tampered signature', bearer: (t) => `Bearer ${t.slice(0, -4)}AAAA`, code: 'token_invalid' },
    { note: 'a token signed by a key the issuer does not publish', bearer: (_t, _o, forged) => `Bearer ${forged}`, code: 'token_unknown_key' },
  ])('refuses $note with 401 invalid_token, never echoing it', async ({ bearer, code }) => {
    const rs = serve();
    const { token: t } = await token();
    const { token: other } = await token({
      agent: 'mailbox-summarizer', type: 'categorize', context: { mailbox: 'support@example.com' },
      integration: 'mail', scopes: ['mail:read'], resource: { type: 'mailbox', id: 'support@example.com' },
    });
    const forged = await forge(t);
    const res = await initialize(bearer(t, other, forged));
    expect(res.status).toBe(401);
    const challenge = res.headers.get('www-authenticate') ?? '';
    expect(challenge).toMatch(/^Bearer error="invalid_token", error_description="[^"]*", resource_metadata="[^"]*"$/);
    expect(challenge).toContain(`(${code})`);
    expect(challenge).toContain(`resource_metadata="${rs.metadataUrl}"`);
    const text = await everything(res.clone());
    for (const secret of [t, other, forged]) expect(text).not.toContain(secret);
    expect(await res.json()).toEqual({ error: 'invalid_token', error_description: expect.stringContaining(`(${code})`) });
  });

  it('refuses an expired token with 401 invalid_token', async () => {
    serve();
    pdp.clock.advance(-2 * 3600); // issued two hours ago: long expired now
    let t: string;
    try {
      ({ token: t } = await token());
    } finally {
      pdp.clock.advance(2 * 3600);
    }
    const res = await initialize(`Bearer ${t}`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/error="invalid_token".*\(token_expired\)/);
    expect(await everything(res)).not.toContain(t);
  });

  it('lets a good token through: the client connects, calls a tool, and the handler sees the agent and task', async () => {
    serve();
    const { token: t, taskId, decisionId } = await token();
    const client = await connect(t);
    try {
      expect((await client.listTools()).tools.map((tool) => tool.name)).toEqual(['whoami']);
      const result = await client.callTool({ name: 'whoami', arguments: {} });
      const content = result.content as Array<{ type: string; text: string }>;
      const seen = JSON.parse(content[0]!.text) as Record<string, unknown>;
      expect(seen).toMatchObject({
        clientId: 'pep-1', scopes: ['tickets:write'], resource: RESOURCE, hasToken: true,
        extra: { agentId: 'support-resolver', taskId, decisionId, jti: expect.any(String), integration: 'crm' },
      });
      expect(seen['expiresAt']).toBe(decodeJwt(t).exp); // the token's own expiry, as AuthInfo carries it
    } finally {
      await client.close();
    }
  });
});

describe('mcpResourceServer: verifyAccessToken (the OAuthTokenVerifier)', () => {
  it('maps the claims onto the SDK AuthInfo the guard relies on', async () => {
    const rs = mcpResourceServer(base());
    const { token: t, taskId, decisionId } = await token();
    const claims = (await pep.introspect(t)) as unknown as { jti: string; exp: number };
    expect(await rs.verifyAccessToken(t)).toEqual({
      token: t,
      clientId: 'pep-1',
      scopes: ['tickets:write'],
      expiresAt: claims.exp,
      resource: new URL(RESOURCE),
      extra: { agentId: 'support-resolver', taskId, decisionId, jti: claims.jti, integration: 'crm' },
    });
  });

  it('takes the keys as a JWKS document too', async () => {
    const jwks = (await (await fetch(pep.jwksUri)).json()) as { keys: [] };
    const rs = mcpResourceServer({ resource: RESOURCE, issuer, jwks });
    const { token: t } = await token();
    expect((await rs.verifyAccessToken(t)).extra?.['agentId']).toBe('support-resolver');
  });

  it('refuses a token of the right audience from another issuer', async () => {
    const rs = mcpResourceServer({ ...base(), issuer: 'https://other-issuer.example.com' });
    const { token: t } = await token();
    await expect(rs.verifyAccessToken(t)).rejects.toMatchObject({ errorCode: 'invalid_token', message: expect.stringContaining('(token_wrong_issuer)') });
  });
});

describe('mcpResourceServer: revocation needs introspection', () => {
  it('with introspect: true a revoked token is refused 401; without it a JWT alone cannot know', async () => {
    const resource = new PdpClient({ url: pdp.url, apiKey: KEYS.resource });
    const { token: t } = await token();
    serve({ introspect: true, pdp: resource });
    expect((await initialize(`Bearer ${t}`)).status).toBe(200);

    const revoked = await fetch(`${pdp.url}/v1/revoke`, {
      method: 'POST', headers: { ...auth(KEYS.pep), 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: t }),
    });
    expect(revoked.status).toBe(200);

    const refused = await initialize(`Bearer ${t}`);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toMatch(/error="invalid_token".*\(token_inactive\).*resource_metadata=/);
    expect(await everything(refused)).not.toContain(t);

    serve({ introspect: false });
    expect((await initialize(`Bearer ${t}`)).status).toBe(200);
  });

  it('a token of a completed task is refused the same way', async () => {
    const { token: t, taskId } = await token();
    serve({ introspect: true, pdp: new PdpClient({ url: pdp.url, apiKey: KEYS.resource }) });
    await orchestrator.completeTask(taskId);
    const res = await initialize(`Bearer ${t}`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('(token_inactive)');
  });

  it('fails closed when the PDP cannot be asked: 500 server_error with a generic message, nothing let through', async () => {
    const { token: t } = await token();
    const gone = new PdpClient({ url: `http://127.0.0.1:${await closedPort()}`, apiKey: KEYS.resource, maxAttempts: 1 });
    serve({ introspect: true, pdp: gone, jwksUri: pep.jwksUri });
    const res = await initialize(`Bearer ${t}`);
    expect(res.status).toBe(500);
    const text = await everything(res.clone());
    expect(text).not.toContain(t);
    expect(await res.json()).toEqual({ error: 'server_error', error_description: 'the access token could not be checked; nothing was allowed' });
  });
});

/** The payload of `token`, signed by a key of our own with a `kid` the issuer does not publish. */
async function forge(token: string): Promise<string> {
  const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
  const { privateKey } = await generateKeyPair('EdDSA');
  return new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: 'attacker-key' }).sign(privateKey);
}

describe('the guard behind the resource server: who is calling comes from the verified token', () => {
  /** `serve`, with the tools behind `createMcpGuard` in its default identity mode (`'token'`). */
  function serveGuarded(): { grants: Array<{ taskId: string; scopes: readonly string[]; resource: unknown }> } {
    const grants: Array<{ taskId: string; scopes: readonly string[]; resource: unknown }> = [];
    const rs = mcpResourceServer(base());
    const guard = createMcpGuard({ pdp: pep });
    const next = express();
    next.post('/mcp', express.json(), rs.requireToken(), async (req, res) => {
      const server = new McpServer({ name: 'crm-guarded', version: '1.0.0' });
      guard.registerTool(server, 'write_ticket', { inputSchema: { customer_id: z.string() } },
        { integration: 'crm', scopes: ['tickets:write'], record: { type: 'customer', id: 'customer_id' } },
        async (_args, grant) => {
          grants.push({ taskId: grant.taskId, scopes: grant.scopes, resource: grant.resource });
          return { content: [{ type: 'text', text: 'written' }] };
        });
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      res.on('close', () => void server.close());
      await server.connect(guard.wrap(transport));
      await transport.handleRequest(req, res, req.body);
    });
    app = next;
    return { grants };
  }

  it('decides for the token\'s agent and task; a call naming another task is refused; tools/list follows the token\'s task', async () => {
    const { grants } = serveGuarded();
    const session = await token({ scopes: ['tickets:read'], resource: { type: 'customer', id: '1234' } });
    const other = await token({ scopes: ['tickets:read'] });
    const client = await connect(session.token);
    try {
      const ok = await client.callTool({ name: 'write_ticket', arguments: { customer_id: '1234' } });
      expect(ok.isError).toBeFalsy();
      expect(grants).toEqual([{ taskId: session.taskId, scopes: ['tickets:write'], resource: { type: 'customer', id: '1234' } }]);
      const mismatch = await client.callTool({ name: 'write_ticket', arguments: { customer_id: '1234' }, _meta: { [TASK_META]: other.taskId } });
      expect((mismatch._meta?.[REFUSAL_META] as McpRefusal).code).toBe('task_mismatch');
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['write_ticket']);
    } finally {
      await client.close();
    }
    // A triage task's token: the same tool is hidden from the list, and a call is denied by the PDP.
    const triage = await token({ type: 'triage', scopes: ['tickets:read'], resource: { type: 'customer', id: '1234' } });
    const reader = await connect(triage.token);
    try {
      expect((await reader.listTools()).tools).toEqual([]);
      const denied = await reader.callTool({ name: 'write_ticket', arguments: { customer_id: '1234' } });
      expect((denied._meta?.[REFUSAL_META] as McpRefusal)).toMatchObject({ code: 'permission_denied' });
      expect(grants).toHaveLength(1);
    } finally {
      await reader.close();
    }
  });
});

describe('stateful sessions belong to the token that opened them', () => {
  it('another agent\'s or task\'s token naming the session is answered as an unknown session; the owner goes on', async () => {
    const rs = mcpResourceServer(base());
    const transports = new Map<string, StreamableHTTPServerTransport>();
    const next = express();
    next.all('/mcp', express.json(), rs.requireToken(), async (req, res) => {
      const sid = req.headers['mcp-session-id'];
      let transport = typeof sid === 'string' ? transports.get(sid) : undefined;
      if (transport === undefined) {
        transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => crypto.randomUUID(), onsessioninitialized: (id) => void transports.set(id, transport!) });
        const server = new McpServer({ name: 'crm-stateful', version: '1.0.0' });
        server.registerTool('whoami', { description: 'the caller' }, async (extra) => ({ content: [{ type: 'text', text: String(extra.authInfo?.extra?.['taskId']) }] }));
        await server.connect(transport);
      }
      await transport.handleRequest(req, res, req.body);
    });
    app = next;
    const owner = await token({ scopes: ['tickets:read'] });
    const other = await token({ scopes: ['tickets:read'] });
    const client = await connect(owner.token);
    try {
      const transport = (client as unknown as { transport: StreamableHTTPClientTransport }).transport;
      const sessionId = transport.sessionId;
      expect(sessionId).toMatch(/^[0-9a-f-]{36}$/);
      // The other task's token, naming the owner's session: refused as an unknown session would be.
      const hijack = await fetch(RESOURCE, {
        method: 'POST',
        headers: { authorization: `Bearer ${other.token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId!, 'mcp-protocol-version': '2025-06-18' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'whoami', arguments: {} } }),
      });
      expect(hijack.status).toBe(404);
      expect(await hijack.json()).toEqual({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
      // A session id this server never handed out is refused the same way.
      const invented = await fetch(RESOURCE, { method: 'GET', headers: { authorization: `Bearer ${owner.token}`, accept: 'text/event-stream', 'mcp-session-id': 'not-a-session' } });
      expect(invented.status).toBe(404);
      // The owner's session goes on.
      const seen = await client.callTool({ name: 'whoami', arguments: {} });
      expect((seen.content as Array<{ text: string }>)[0]?.text).toBe(owner.taskId);
    } finally {
      await client.close();
      for (const t of transports.values()) await t.close();
    }
  });
});
