/**
 * Example 6 — a CRM MCP server behind agent-pdp (`agent-pdp/mcp`, docs/mcp.md). The CRM's tools are served over
 * MCP's Streamable HTTP transport by the SDK's `McpServer`, deployed as the resource `https://crm-mcp.example.com/mcp`
 * (here on loopback). Two layers protect them:
 *
 * - `mcpResourceServer` at the HTTP edge: the MCP endpoint takes only an agent-pdp access token whose `aud` is that
 *   resource URI (RFC 8707), and the server publishes RFC 9728 metadata naming agent-pdp as its authorization
 *   server. The agent's PEP gets that *session* token from a decision of its own (integration `crm-mcp`, scope
 *   `mcp:tools`, policies/integrations/crm-mcp.yaml), redeemed with `resource` set to the resource URI. The token
 *   opens the session and says who the agent is and which task it works on; it lets no tool run.
 * - `createMcpGuard` on the server's transport: every `tools/call` is its own decision under the tool's mapping
 *   (`write_ticket` → crm `tickets:write` on the customer record the arguments name), so the task's record binding
 *   and the role's deny list hold inside the MCP session as they do for any tool. A refusal is a tool error with
 *   the decision id and reasons; the tool's handler never sees the call. `tools/list` shows each task only the
 *   tools its policy could allow.
 *
 * The transcript: a client without a token is refused 401 and pointed at the metadata; it reads the metadata, gets
 * a session token, connects and lists the tools; `write_ticket` for the task's customer 1234 is allowed (the handler
 * gets a token bound to 1234), 5678 is denied by the record binding, `delete_ticket` by the deny list; a triage
 * task's session lists fewer tools.
 *
 * Run: `node dist-examples/examples/mcp-crm.js [--pdp http://127.0.0.1:8181]` against `make run`.
 */
import { randomUUID } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { decodeJwt } from 'jose';
import { z } from 'zod';
import { createMcpGuard, mcpResourceServer, REFUSAL_META, type McpGuard, type McpRefusal } from '../src/mcp/index.js';
import { PdpClient, type ToolGrant } from '../src/pep/index.js';
import type { AuthorizationDetail } from '../src/wire/token-v1.js';
import { isMain, runFromCommandLine } from './support/cli.js';
import { startService, stopAll, type LocalService } from './support/local-service.js';
import { plural, TranscriptWriter, type ExampleOptions, type Transcript } from './support/transcript.js';

export const title = 'Example 6: a CRM MCP server behind agent-pdp (support-resolver over MCP)';

/** The MCP server's resource URI: the `aud` of its session tokens (crm-mcp's audience in policies/integrations/). */
export const MCP_RESOURCE = 'https://crm-mcp.example.com/mcp';

interface Ticket {
  id: string;
  customer_id: string;
  text: string;
}

/** What a tool handler saw: the tool, the customer its arguments name, and the grant the guard handed it. */
interface HandlerRun {
  tool: string;
  customerId: string;
  grant: ToolGrant;
}

interface CrmMcp {
  service: LocalService;
  /** The MCP endpoint on loopback (standing in for `MCP_RESOURCE`). */
  endpoint: string;
  /** The RFC 9728 document's path on the server (`/.well-known/oauth-protected-resource/mcp`). */
  metadataPath: string;
  tickets: Ticket[];
  runs: HandlerRun[];
}

/** The CRM's three tools, each registered on the SDK's server with its mapping next to it. */
function crmTools(server: McpServer, guard: McpGuard, crm: { tickets: Ticket[]; runs: HandlerRun[]; onRun: (run: HandlerRun) => void }): void {
  const ran = (tool: string, customerId: string, grant: ToolGrant): void => {
    const run = { tool, customerId, grant };
    crm.runs.push(run);
    crm.onRun(run);
  };
  guard.registerTool(
    server,
    'read_customer',
    { description: 'Read a customer and their open tickets', inputSchema: { customer_id: z.string() } },
    { integration: 'crm', scopes: ['tickets:read'], record: { type: 'customer', id: 'customer_id' } },
    async (args: { customer_id: string }, grant) => {
      ran('read_customer', args.customer_id, grant);
      const open = crm.tickets.filter((x) => x.customer_id === args.customer_id);
      return { content: [{ type: 'text', text: `customer ${args.customer_id}: ${plural(open.length, 'open ticket')}` }] };
    },
  );
  guard.registerTool(
    server,
    'write_ticket',
    { description: 'Open a ticket on a customer', inputSchema: { customer_id: z.string(), text: z.string() } },
    { integration: 'crm', scopes: ['tickets:write'], record: { type: 'customer', id: 'customer_id' } },
    async (args: { customer_id: string; text: string }, grant) => {
      // A real server would call the CRM's API with grant.accessToken (audience https://crm.example.com/api).
      ran('write_ticket', args.customer_id, grant);
      const ticket = { id: `T-${crm.tickets.length + 1}`, customer_id: args.customer_id, text: args.text };
      crm.tickets.push(ticket);
      return { content: [{ type: 'text', text: `ticket ${ticket.id} opened for customer ${ticket.customer_id}` }] };
    },
  );
  guard.registerTool(
    server,
    'delete_ticket',
    { description: 'Delete a ticket of a customer', inputSchema: { customer_id: z.string(), ticket_id: z.string() } },
    { integration: 'crm', scopes: ['tickets:delete'], record: { type: 'customer', id: 'customer_id' } },
    async (args: { customer_id: string; ticket_id: string }, grant) => {
      ran('delete_ticket', args.customer_id, grant);
      const at = crm.tickets.findIndex((x) => x.id === args.ticket_id);
      if (at >= 0) crm.tickets.splice(at, 1);
      return { content: [{ type: 'text', text: `ticket ${args.ticket_id} deleted` }] };
    },
  );
}

/**
 * The CRM MCP server: express on loopback, the RFC 9728 document at its well-known path, and the MCP endpoint behind
 * `requireToken()`. Stateless Streamable HTTP: a server and transport per request, all behind the one guard, which
 * reads the agent and task of each request from its verified token (`req.auth`, identity `'token'`).
 */
async function startCrmMcp(issuer: string, pep: PdpClient, jwks: PdpClient, onRun: (run: HandlerRun) => void): Promise<CrmMcp> {
  const tickets: Ticket[] = [];
  const runs: HandlerRun[] = [];
  const rs = mcpResourceServer({ resource: MCP_RESOURCE, issuer, pdp: jwks, scopesSupported: ['mcp:tools'], resourceName: 'CRM tools (example)' });
  const guard = createMcpGuard({ pdp: pep });
  const service = await startService('crm-mcp', (app) => {
    app.use(rs.metadataPath, rs.metadataHandler());
    app.post('/mcp', rs.requireToken(), async (req, res) => {
      const server = new McpServer({ name: 'crm', version: '1.0.0' });
      crmTools(server, guard, { tickets, runs, onRun });
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      res.on('close', () => {
        void transport.close();
        void server.close();
      });
      try {
        await server.connect(guard.wrap(transport));
        await transport.handleRequest(req, res, req.body);
      } catch {
        if (!res.headersSent) res.status(500).json({ error: { code: 'internal', message: 'the MCP request failed' } });
      }
    });
  });
  return { service, endpoint: `${service.url}/mcp`, metadataPath: rs.metadataPath, tickets, runs };
}

/**
 * The agent's session token: a decision for crm-mcp `mcp:tools` on its task, redeemed with RFC 8707 `resource`
 * naming the MCP server (`pep.redeem(id, { resource })`). The PDP refuses a `resource` that is not the
 * integration's audience (`invalid_target`), so the token cannot be aimed at another server.
 */
async function sessionToken(pep: PdpClient, taskId: string, t: TranscriptWriter): Promise<string> {
  const decision = await pep.decide({ agent_id: 'support-resolver', task: { id: taskId }, integration: 'crm-mcp', scopes: ['mcp:tools'] });
  if (!decision.allow) throw new Error(`the session decision was ${decision.outcome} (${decision.reasons.map((r) => r.code).join(', ')})`);
  const body = await pep.redeem(decision.decision_id, { resource: MCP_RESOURCE });
  const aud = decodeJwt(body.access_token).aud;
  t.add('allow', `session token (crm-mcp mcp:tools, task ${taskId}): decision ${decision.decision_id}, token [${body.scope}] for ${body.expires_in} s, aud ${String(aud)}`);
  return body.access_token;
}

/** An SDK client on the MCP endpoint, sending the session token on every request. */
async function connect(endpoint: string, token: string | undefined, onResponse?: (response: Response) => void): Promise<Client> {
  const client = new Client({ name: 'support-resolver', version: '1.0.0' });
  const headers: Record<string, string> = token === undefined ? {} : { Authorization: `Bearer ${token}` };
  const seen = async (url: string | URL, init?: RequestInit): Promise<Response> => {
    const response = await fetch(url, init);
    onResponse?.(response);
    return response;
  };
  await client.connect(new StreamableHTTPClientTransport(new URL(endpoint), { requestInit: { headers }, fetch: seen }));
  return client;
}

interface CallResult {
  isError?: boolean;
  content: Array<{ type: string; text?: string }>;
  _meta?: Record<string, unknown>;
}

function callTool(client: Client, name: string, args: Record<string, unknown>): Promise<CallResult> {
  return client.callTool({ name, arguments: args }) as Promise<CallResult>;
}

/** A tool error's refusal as a transcript line: the decision and the policy's reasons (as `TranscriptWriter.denied`). */
function refusal(t: TranscriptWriter, what: string, result: CallResult): void {
  const r = result._meta?.[REFUSAL_META] as McpRefusal | undefined;
  if (result.isError !== true || r === undefined) {
    t.add('ok', `UNEXPECTED: ${what} was not refused (${result.content[0]?.text ?? ''})`);
    return;
  }
  if (r.code !== 'permission_denied') {
    t.add('refused', `${what}: the guard refused it: ${r.code} (${r.message})`);
    return;
  }
  const why = (r.reasons ?? []).map((x) => `${x.code} (${x.message})`).join('; ') || `outcome ${r.outcome ?? 'unknown'}`;
  t.add('deny', `${what}: decision ${r.decision_id}: ${why}`);
}

/** The bound record of a grant's token, read from its `authorization_details` as the CRM's API would see it. */
function boundRecord(grant: ToolGrant): string {
  const details = decodeJwt(grant.accessToken)['authorization_details'] as AuthorizationDetail[] | undefined;
  const d = details?.[0];
  return d?.identifier === undefined ? 'no record' : `${d.resource_type} ${d.identifier}`;
}

async function listed(client: Client): Promise<string[]> {
  return (await client.listTools()).tools.map((x) => x.name).sort();
}

export async function run(options: ExampleOptions): Promise<Transcript> {
  const t = new TranscriptWriter(title, options.log);
  const orchestrator = new PdpClient({ url: options.pdpUrl, apiKey: options.keys.orchestrator });
  const pep = new PdpClient({ url: options.pdpUrl, apiKey: options.keys.pep });
  const jwks = new PdpClient({ url: options.pdpUrl, apiKey: options.keys.resource });
  const { issuer } = await pep.metadata();
  const crm = await startCrmMcp(issuer, pep, jwks, ({ tool, customerId, grant }) => {
    t.allowed(`${tool} on customer ${customerId} (decided by the guard before the handler ran)`, grant);
    t.add('ok', `${tool} handler ran with a token [${grant.scopes.join(' ')}] bound to ${boundRecord(grant)}, task ${grant.taskId}`);
  });
  const clients: Client[] = [];
  try {
    // 1. An MCP client without a token: the resource server answers 401 and names its metadata document.
    let challenge = '';
    const keepChallenge = (r: Response): void => {
      if (r.status === 401) challenge = r.headers.get('www-authenticate') ?? '';
    };
    try {
      clients.push(await connect(crm.endpoint, undefined, keepChallenge));
      t.add('ok', 'UNEXPECTED: the MCP server accepted a session without a token');
    } catch (err) {
      if (!(err instanceof StreamableHTTPError)) throw err;
      const metadataUrl = /resource_metadata="([^"]+)"/.exec(challenge)?.[1] ?? 'none';
      const error = /error="([^"]+)"/.exec(challenge)?.[1] ?? 'none';
      t.add('refused', `MCP client without a token: the MCP server answered ${err.code} ${error}, resource_metadata ${metadataUrl}`);
    }

    // 2. The client reads the protected-resource metadata (RFC 9728): which authorization server, which resource.
    const metadata = (await (await fetch(`${crm.service.url}${crm.metadataPath}`)).json()) as { resource: string; authorization_servers: string[]; scopes_supported?: string[] };
    t.add('info', `metadata (${crm.metadataPath}): resource ${metadata.resource}, authorization_servers [${metadata.authorization_servers.join(' ')}], scopes_supported [${(metadata.scopes_supported ?? []).join(' ')}]`);

    // 3. The orchestrator registers the task; the agent's PEP gets a session token for it, aimed at that resource.
    const taskId = `mcp-complaint-${randomUUID().slice(0, 8)}`;
    await orchestrator.registerTask({ id: taskId, agent_id: 'support-resolver', type: 'complaint_resolution', context: { customer_id: '1234' }, expires_in_seconds: 900 });
    t.add('info', `orchestrator registered task ${taskId}: complaint_resolution, customer_id 1234`);
    const client = await connect(crm.endpoint, await sessionToken(pep, taskId, t));
    clients.push(client);
    t.add('ok', `connected over Streamable HTTP; tools/list: ${(await listed(client)).join(', ')} (delete_ticket hidden: tickets:delete is denied to the role)`);

    // 4. The task's own customer: the guard decides, the handler gets a token bound to customer 1234.
    const written = await callTool(client, 'write_ticket', { customer_id: '1234', text: 'Charged twice for invoice 2291: refund the duplicate' });
    if (written.isError === true) refusal(t, 'write_ticket on customer 1234', written);
    else t.add('ok', `the client got: ${written.content[0]?.text ?? ''}`);

    // 5. Another customer: the task's record binding refuses it, inside the same session.
    refusal(t, 'write_ticket on customer 5678', await callTool(client, 'write_ticket', { customer_id: '5678', text: 'Unrelated note' }));

    // 6. A tool the list hid, called anyway: the list is a convenience, the guard is the enforcement.
    refusal(t, 'delete_ticket on customer 1234 (not listed, called anyway)', await callTool(client, 'delete_ticket', { customer_id: '1234', ticket_id: 'T-1' }));

    // 7. A triage task's session: its policy could allow only reads, so it is shown only read_customer.
    const triageId = `mcp-triage-${randomUUID().slice(0, 8)}`;
    await orchestrator.registerTask({ id: triageId, agent_id: 'support-resolver', type: 'triage', context: { customer_id: '1234' }, expires_in_seconds: 900 });
    t.add('info', `orchestrator registered task ${triageId}: triage, customer_id 1234`);
    const triage = await connect(crm.endpoint, await sessionToken(pep, triageId, t));
    clients.push(triage);
    t.add('ok', `triage session's tools/list: ${(await listed(triage)).join(', ')}`);

    const names = crm.runs.map((r) => r.tool);
    t.add('info', `the MCP server's handlers ran ${plural(names.length, 'time')} (${names.join(', ') || 'never'}); CRM holds ${plural(crm.tickets.length, 'ticket')}: ${crm.tickets.map((x) => `${x.id} for ${x.customer_id}`).join(', ')}`);
    return t.done();
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()));
    await stopAll([crm.service]);
  }
}

if (isMain(import.meta.url)) await runFromCommandLine(run);
