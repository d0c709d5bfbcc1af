/**
 * Example 1 — a read-only mailbox agent. `mailbox-summarizer` reads and categorises the mail of one team mailbox,
 * the one its task names. Sending mail is denied by policy (`deny_scope`), reading another mailbox is denied by
 * the record binding, and a token for one mailbox presented for another is refused by the mail API itself.
 *
 * Run: `node dist-examples/examples/mailbox-agent.js [--pdp http://127.0.0.1:8181]` against `make run`.
 */
import { randomUUID } from 'node:crypto';
import { createResourceServerAuth, guardTool, isPermissionDenied, PdpClient, TokenCache, type RouteRequest, type ToolGrant } from '../src/pep/index.js';
import { callService, ServiceRefused } from './support/call-service.js';
import { isMain, runFromCommandLine } from './support/cli.js';
import { startService, stopAll, type LocalService } from './support/local-service.js';
import { plural, TranscriptWriter, type ExampleOptions, type Transcript } from './support/transcript.js';

export const title = 'Example 1: read-only mailbox agent (mailbox-summarizer)';

const TEAM_MAILBOX = 'support@example.com';
const OTHER_MAILBOX = 'sales@example.com';

interface Message {
  id: string;
  from: string;
  subject: string;
  labels: string[];
}

/** The mail API: mailboxes in memory, every route behind an access token for the mailbox in its path. */
async function startMailService(issuer: string, jwksUri: string): Promise<{ service: LocalService; sent: unknown[] }> {
  const mailboxes = new Map<string, Message[]>([
    [TEAM_MAILBOX, [
      { id: 'm1', from: 'anna@customer.example', subject: 'Invoice 2291 charged twice', labels: [] },
      { id: 'm2', from: 'alerts@status.example', subject: 'Login page down for EU customers', labels: [] },
      { id: 'm3', from: 'li@customer.example', subject: 'Refund for order 5512?', labels: [] },
    ]],
    [OTHER_MAILBOX, [{ id: 's1', from: 'cfo@example.com', subject: 'Q3 pipeline review', labels: [] }]],
  ]);
  const sent: unknown[] = [];
  const requireToken = createResourceServerAuth({ issuer, audience: 'https://mail.example.com', jwksUri });
  const mailbox = (req: RouteRequest) => ({ type: 'mailbox', id: String(req.params['mailbox']) });
  const service = await startService('mail', (app) => {
    app.get('/mailboxes/:mailbox/messages', requireToken({ integration: 'mail', scope: 'mail:read', record: mailbox }), (req, res) => {
      res.json({ messages: mailboxes.get(req.params.mailbox) ?? [] });
    });
    app.post('/mailboxes/:mailbox/messages/:id/labels', requireToken({ integration: 'mail', scope: 'mail:labels', record: mailbox }), (req, res) => {
      const message = mailboxes.get(req.params.mailbox)?.find((m) => m.id === req.params.id);
      if (!message) return void res.status(404).json({ error: { code: 'not_found', message: 'no such message' } });
      message.labels.push(String((req.body as { label?: unknown }).label));
      res.json(message);
    });
    app.post('/mailboxes/:mailbox/send', requireToken({ integration: 'mail', scope: 'mail:send', record: mailbox }), (req, res) => {
      sent.push(req.body);
      res.status(202).json({ queued: true });
    });
  });
  return { service, sent };
}

/** The agent's categorising rule: a keyword table, standing in for the model. */
function categorise(subject: string): string {
  if (/invoice|refund|charged/i.test(subject)) return 'billing';
  if (/down|outage|error/i.test(subject)) return 'outage';
  return 'other';
}

export async function run(options: ExampleOptions): Promise<Transcript> {
  const t = new TranscriptWriter(title, options.log);
  const orchestrator = new PdpClient({ url: options.pdpUrl, apiKey: options.keys.orchestrator });
  const pep = new PdpClient({ url: options.pdpUrl, apiKey: options.keys.pep });
  const { issuer } = await pep.metadata();
  const { service: mail, sent } = await startMailService(issuer, pep.jwksUri);
  try {
    const taskId = `mailbox-${randomUUID().slice(0, 8)}`;
    await orchestrator.registerTask({
      id: taskId, agent_id: 'mailbox-summarizer', type: 'categorize', context: { mailbox: TEAM_MAILBOX }, expires_in_seconds: 900,
    });
    t.add('info', `orchestrator registered task ${taskId}: categorize, mailbox ${TEAM_MAILBOX}`);

    // The agent's tools, each behind the PDP. One cache: the label calls share one token.
    const tokens = new TokenCache();
    const common = { pdp: pep, agentId: 'mailbox-summarizer', task: taskId, integration: 'mail', tokens } as const;
    const onMailbox = (args: { mailbox: string }) => ({ type: 'mailbox', id: args.mailbox });
    let lastReadGrant: ToolGrant | undefined;
    const announce = (what: string, grant: ToolGrant): void => {
      if (!grant.reused) t.allowed(what, grant);
    };

    const readMessages = guardTool({ ...common, scopes: ['mail:read'], resource: onMailbox }, async (args, grant) => {
      announce(`mail:read on ${args.mailbox}`, grant);
      lastReadGrant = grant;
      const url = `${mail.url}/mailboxes/${encodeURIComponent(args.mailbox)}/messages`;
      return (await callService<{ messages: Message[] }>({ service: 'mail', method: 'GET', url, token: grant.accessToken })).messages;
    });
    const applyLabel = guardTool(
      { ...common, scopes: ['mail:labels'], resource: onMailbox },
      async (args: { mailbox: string; id: string; label: string }, grant) => {
        announce(`mail:labels on ${args.mailbox}`, grant);
        const url = `${mail.url}/mailboxes/${encodeURIComponent(args.mailbox)}/messages/${args.id}/labels`;
        return callService<Message>({ service: 'mail', method: 'POST', url, token: grant.accessToken, body: { label: args.label } });
      },
    );
    const sendMail = guardTool(
      { ...common, scopes: ['mail:send'], resource: onMailbox },
      async (args: { mailbox: string; to: string; subject: string }, grant) => {
        announce(`mail:send from ${args.mailbox}`, grant);
        const url = `${mail.url}/mailboxes/${encodeURIComponent(args.mailbox)}/send`;
        return callService({ service: 'mail', method: 'POST', url, token: grant.accessToken, body: { to: args.to, subject: args.subject } });
      },
    );

    // 1. Read and categorise the team mailbox.
    const messages = await readMessages({ mailbox: TEAM_MAILBOX });
    t.add('ok', `read ${messages.length} messages from ${TEAM_MAILBOX}`);
    const counts = new Map<string, number>();
    for (const m of messages) {
      const label = categorise(m.subject);
      await applyLabel({ mailbox: TEAM_MAILBOX, id: m.id, label });
      counts.set(label, (counts.get(label) ?? 0) + 1);
    }
    const summary = [...counts].map(([label, n]) => `${label} ×${n}`).join(', ');
    t.add('ok', `labelled ${messages.length} messages (${summary}) with one token, reused for ${messages.length - 1} calls`);

    // 2. Sending is never allowed to this agent.
    await expectDenied(t, `mail:send from ${TEAM_MAILBOX}`, () => sendMail({ mailbox: TEAM_MAILBOX, to: 'anna@customer.example', subject: 'Re: Invoice 2291' }));
    // 3. Nor is reading a mailbox its task does not name.
    await expectDenied(t, `mail:read on ${OTHER_MAILBOX}`, () => readMessages({ mailbox: OTHER_MAILBOX }));
    // 4. Going around the PEP does not help: the mail API checks the token's record itself.
    if (lastReadGrant !== undefined) {
      try {
        const url = `${mail.url}/mailboxes/${encodeURIComponent(OTHER_MAILBOX)}/messages`;
        await callService({ service: 'mail', method: 'GET', url, token: lastReadGrant.accessToken });
        t.add('ok', `UNEXPECTED: the mail API accepted a ${TEAM_MAILBOX} token for ${OTHER_MAILBOX}`);
      } catch (err) {
        if (!(err instanceof ServiceRefused)) throw err;
        t.add('refused', `the ${TEAM_MAILBOX} token presented for ${OTHER_MAILBOX}: mail API answered ${err.status} ${err.code}`);
      }
    }
    t.add('info', `mail API: ${plural(sent.length, 'message')} sent`);

    const done = await orchestrator.completeTask(taskId);
    t.add('info', `orchestrator completed task ${taskId} (${plural(done.revoked_tokens ?? 0, 'token')} revoked)`);
    return t.done();
  } finally {
    await stopAll([mail]);
  }
}

async function expectDenied(t: TranscriptWriter, what: string, call: () => Promise<unknown>): Promise<void> {
  try {
    await call();
    t.add('ok', `UNEXPECTED: ${what} was allowed`);
  } catch (err) {
    if (!isPermissionDenied(err)) throw err;
    t.denied(what, err);
  }
}

if (isMain(import.meta.url)) await runFromCommandLine(run);
