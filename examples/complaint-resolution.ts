/**
 * Example 3 — complaint resolution. An orchestrator registers a task for customer 1234; `support-resolver` may
 * write a CRM ticket for 1234 and is refused for 5678 (the task context, not the agent, names the customer).
 * Completing the task revokes its token: the agent's retry with the old token is refused by the CRM, which
 * introspects every token at the PDP, and a new decision for the closed task is denied.
 *
 * Run: `node dist-examples/examples/complaint-resolution.js [--pdp http://127.0.0.1:8181]` against `make run`.
 */
import { randomUUID } from 'node:crypto';
import { accessTokenClaims, createResourceServerAuth, guardTool, isPermissionDenied, PdpClient, TokenCache } from '../src/pep/index.js';
import { callService, ServiceRefused } from './support/call-service.js';
import { isMain, runFromCommandLine } from './support/cli.js';
import { startService, stopAll, type LocalService } from './support/local-service.js';
import { plural, TranscriptWriter, type ExampleOptions, type Transcript } from './support/transcript.js';

export const title = 'Example 3: complaint resolution (support-resolver)';

interface Ticket {
  id: string;
  customer_id: string;
  summary: string;
  created_by: string;
}

/** The CRM's ticket API. It introspects every token, so a revoked one is refused before it expires. */
async function startCrm(issuer: string, resourceServer: PdpClient): Promise<{ service: LocalService; tickets: Ticket[] }> {
  const tickets: Ticket[] = [];
  const requireToken = createResourceServerAuth({ issuer, audience: 'https://crm.example.com/api', pdp: resourceServer, introspect: true });
  const service = await startService('crm', (app) => {
    app.post('/customers/:id/tickets', requireToken({
      integration: 'crm',
      scope: 'tickets:write',
      record: (req) => ({ type: 'customer', id: String(req.params['id']) }),
    }), (req, res) => {
      const ticket: Ticket = {
        id: `T-${tickets.length + 1}`,
        customer_id: req.params.id,
        summary: String((req.body as { summary?: unknown }).summary),
        created_by: accessTokenClaims(res).sub,
      };
      tickets.push(ticket);
      res.status(201).json(ticket);
    });
  });
  return { service, tickets };
}

export async function run(options: ExampleOptions): Promise<Transcript> {
  const t = new TranscriptWriter(title, options.log);
  const orchestrator = new PdpClient({ url: options.pdpUrl, apiKey: options.keys.orchestrator });
  const pep = new PdpClient({ url: options.pdpUrl, apiKey: options.keys.pep });
  const crmClient = new PdpClient({ url: options.pdpUrl, apiKey: options.keys.resource });
  const { issuer } = await pep.metadata();
  const { service: crm, tickets } = await startCrm(issuer, crmClient);
  try {
    const taskId = `complaint-${randomUUID().slice(0, 8)}`;
    await orchestrator.registerTask({
      id: taskId, agent_id: 'support-resolver', type: 'complaint_resolution', context: { customer_id: '1234' }, expires_in_seconds: 900,
    });
    t.add('info', `orchestrator registered task ${taskId}: complaint_resolution, customer_id 1234`);

    const tokens = new TokenCache();
    const writeTicket = guardTool({
      pdp: pep, agentId: 'support-resolver', task: taskId, integration: 'crm', scopes: ['tickets:write'], tokens,
      resource: (a: { customerId: string; summary: string }) => ({ type: 'customer', id: a.customerId }),
    }, async (args, grant) => {
      if (grant.reused) t.add('info', `the PEP reuses its cached token (decision ${grant.decisionId}) for customer ${args.customerId}`);
      else t.allowed(`tickets:write on customer ${args.customerId}`, grant);
      const url = `${crm.url}/customers/${encodeURIComponent(args.customerId)}/tickets`;
      return callService<Ticket>({ service: 'crm', method: 'POST', url, token: grant.accessToken, body: { summary: args.summary } });
    });

    // 1. The task's own customer.
    const ticket = await writeTicket({ customerId: '1234', summary: 'Charged twice for invoice 2291: refund the duplicate' });
    t.add('ok', `CRM created ticket ${ticket.id} for customer ${ticket.customer_id} (by ${ticket.created_by})`);

    // 2. Another customer: the binding to the task's customer_id refuses it.
    try {
      await writeTicket({ customerId: '5678', summary: 'Unrelated note' });
      t.add('ok', 'UNEXPECTED: a ticket for customer 5678 was allowed');
    } catch (err) {
      if (!isPermissionDenied(err)) throw err;
      t.denied('tickets:write on customer 5678', err);
    }

    // 3. The orchestrator closes the task; every token issued for it is revoked.
    const done = await orchestrator.completeTask(taskId);
    t.add('info', `orchestrator completed task ${taskId} (${plural(done.revoked_tokens ?? 0, 'token')} revoked)`);

    // 4. The agent retries; its PEP still holds the old token, which is unexpired but revoked.
    try {
      await writeTicket({ customerId: '1234', summary: 'Follow-up: refund confirmed' });
      t.add('ok', 'UNEXPECTED: the CRM accepted the revoked token');
    } catch (err) {
      if (!(err instanceof ServiceRefused)) throw err;
      t.add('refused', `retry with the old token for customer 1234: CRM answered ${err.status} ${err.code}`);
    }

    // 5. Without the cached token, the PEP asks again, and the closed task is denied by the PDP.
    tokens.forgetTask(taskId);
    try {
      await writeTicket({ customerId: '1234', summary: 'Follow-up: refund confirmed' });
      t.add('ok', 'UNEXPECTED: a new decision for the completed task was allowed');
    } catch (err) {
      if (!isPermissionDenied(err)) throw err;
      t.denied('tickets:write on customer 1234 after completion', err);
    }
    t.add('info', `CRM holds ${plural(tickets.length, 'ticket')}: ${tickets.map((x) => `${x.id} for ${x.customer_id}`).join(', ')}`);
    return t.done();
  } finally {
    await stopAll([crm]);
  }
}

if (isMain(import.meta.url)) await runFromCommandLine(run);
