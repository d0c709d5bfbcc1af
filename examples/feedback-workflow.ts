/**
 * Example 2 — a scoped token broker for a three-step workflow. `feedback-workflow` reads `customer_feedback` from
 * the database (that table only), translates it, and posts a digest to `#support` (that channel only). Each step
 * is its own registered task and holds its own token with only its own scope. When a step's token cannot be
 * had, the workflow stops there, says which step and why, and runs nothing after it.
 *
 * Three runs: as planned; one whose post step names `#general` (stops at step 3, nothing is posted); one whose
 * read step names the `customers` table (stops at step 1; translate and post never run).
 *
 * Run: `node dist-examples/examples/feedback-workflow.js [--pdp http://127.0.0.1:8181]` against `make run`.
 */
import { randomUUID } from 'node:crypto';
import { createResourceServerAuth, guardTool, isPepError, isPermissionDenied, PdpClient, type ToolGrant } from '../src/pep/index.js';
import { callService, ServiceRefused } from './support/call-service.js';
import { isMain, runFromCommandLine } from './support/cli.js';
import { startService, stopAll, type LocalService } from './support/local-service.js';
import { plural, TranscriptWriter, type ExampleOptions, type Transcript } from './support/transcript.js';

export const title = 'Example 2: scoped token broker for a workflow (feedback-workflow)';

const AGENT = 'feedback-workflow';

/** What the workflow sets out to do; the orchestrator's registered tasks say what it may do. */
export interface WorkflowPlan {
  label: string;
  table: string;
  channel: string;
}

export const PLANS: readonly WorkflowPlan[] = [
  { label: 'run 1: as planned', table: 'customer_feedback', channel: '#support' },
  { label: 'run 2: the post step asks for #general', table: 'customer_feedback', channel: '#general' },
  { label: 'run 3: the read step asks for the customers table', table: 'customers', channel: '#support' },
];

interface Row {
  id: number;
  lang: string;
  text: string;
}

interface Services {
  database: LocalService;
  translation: LocalService;
  chat: LocalService;
  posted: Array<{ channel: string; text: string }>;
  translateCalls: () => number;
}

const TRANSLATIONS: Record<string, string> = {
  'Die Lieferung kam zwei Wochen zu spät.': 'The delivery arrived two weeks late.',
  "L'application plante à chaque connexion.": 'The app crashes at every login.',
  'El soporte resolvió mi problema en minutos.': 'Support solved my problem in minutes.',
};

async function startServices(issuer: string, jwksUri: string): Promise<Services> {
  const tables = new Map<string, Row[]>([
    ['customer_feedback', Object.keys(TRANSLATIONS).map((text, i) => ({ id: i + 1, lang: ['de', 'fr', 'es'][i] ?? 'xx', text }))],
    ['customers', [{ id: 1, lang: 'en', text: 'Jane Doe, jane@example.com, +1 555 0100' }]],
  ]);
  const posted: Array<{ channel: string; text: string }> = [];
  let translateCalls = 0;
  const auth = (audience: string) => createResourceServerAuth({ issuer, audience, jwksUri });

  // The database gateway: one scope per statement and table, bound to the table in the path.
  const dbToken = auth('https://db-gateway.example.com');
  const database = await startService('database', (app) => {
    app.get('/tables/:table/rows', dbToken({
      integration: 'database',
      scope: (req) => `select:${String(req.params['table'])}`,
      record: (req) => ({ type: 'table', id: String(req.params['table']) }),
    }), (req, res) => {
      res.json({ rows: tables.get(req.params.table) ?? [] });
    });
  });
  const translation = await startService('translation', (app) => {
    app.post('/translate', auth('https://translate.example.com')({ integration: 'translation', scope: 'translate' }), (req, res) => {
      translateCalls++;
      const texts = (req.body as { texts?: string[] }).texts ?? [];
      res.json({ texts: texts.map((t) => TRANSLATIONS[t] ?? t) });
    });
  });
  const chat = await startService('chat', (app) => {
    app.post('/channels/:channel/messages', auth('https://slack.com/api')({
      integration: 'slack',
      scope: 'chat:write',
      record: (req) => ({ type: 'channel', id: String(req.params['channel']) }),
    }), (req, res) => {
      posted.push({ channel: req.params.channel, text: String((req.body as { text?: unknown }).text) });
      res.status(201).json({ ok: true });
    });
  });
  return { database, translation, chat, posted, translateCalls: () => translateCalls };
}

interface Step {
  name: string;
  run: () => Promise<void>;
}

/** One workflow run: register the three tasks, run the steps in order, stop at the first refusal. */
async function runWorkflow(t: TranscriptWriter, plan: WorkflowPlan, pep: PdpClient, orchestrator: PdpClient, s: Services): Promise<void> {
  t.add('info', `-- ${plan.label}`);
  const runId = randomUUID().slice(0, 8);
  const tasks = {
    read: { id: `feedback-${runId}-read`, type: 'feedback_read', context: { table: 'customer_feedback' } },
    translate: { id: `feedback-${runId}-translate`, type: 'feedback_translate', context: {} },
    post: { id: `feedback-${runId}-post`, type: 'feedback_post', context: { channel: '#support' } },
  };
  for (const task of Object.values(tasks)) {
    await orchestrator.registerTask({ ...task, agent_id: AGENT, expires_in_seconds: 900 });
  }
  t.add('info', 'orchestrator registered 3 tasks: feedback_read (table customer_feedback), feedback_translate, feedback_post (channel #support)');

  const announce = (what: string, grant: ToolGrant) => t.allowed(what, grant);
  const readRows = guardTool({
    pdp: pep, agentId: AGENT, task: tasks.read.id, integration: 'database',
    scopes: (a: { table: string }) => [`select:${a.table}`],
    resource: (a) => ({ type: 'table', id: a.table }),
  }, async (args, grant) => {
    announce(`step 1 read: select:${args.table}`, grant);
    const url = `${s.database.url}/tables/${encodeURIComponent(args.table)}/rows`;
    return (await callService<{ rows: Row[] }>({ service: 'database', method: 'GET', url, token: grant.accessToken })).rows;
  });
  const translate = guardTool({
    pdp: pep, agentId: AGENT, task: tasks.translate.id, integration: 'translation', scopes: ['translate'],
  }, async (args: { texts: string[] }, grant) => {
    announce(`step 2 translate: translate ${args.texts.length} texts`, grant);
    const url = `${s.translation.url}/translate`;
    return (await callService<{ texts: string[] }>({ service: 'translation', method: 'POST', url, token: grant.accessToken, body: { texts: args.texts, target: 'en' } })).texts;
  });
  const post = guardTool({
    pdp: pep, agentId: AGENT, task: tasks.post.id, integration: 'slack', scopes: ['chat:write'],
    resource: (a: { channel: string; text: string }) => ({ type: 'channel', id: a.channel }),
  }, async (args, grant) => {
    announce(`step 3 post: chat:write on ${args.channel}`, grant);
    const url = `${s.chat.url}/channels/${encodeURIComponent(args.channel)}/messages`;
    await callService({ service: 'chat', method: 'POST', url, token: grant.accessToken, body: { text: args.text } });
  });

  let rows: Row[] = [];
  let english: string[] = [];
  const steps: Step[] = [
    { name: 'read', run: async () => void (rows = await readRows({ table: plan.table })) },
    { name: 'translate', run: async () => void (english = await translate({ texts: rows.map((r) => r.text) })) },
    {
      name: 'post',
      run: () => post({ channel: plan.channel, text: `Customer feedback digest:\n${english.map((e) => `- ${e}`).join('\n')}` }),
    },
  ];
  const postedBefore = s.posted.length;
  const translatedBefore = s.translateCalls();
  let stopped = false;
  for (const [i, step] of steps.entries()) {
    try {
      await step.run();
    } catch (err) {
      if (isPermissionDenied(err)) {
        const on = err.resource === null ? '' : ` on ${err.resource.type} ${err.resource.id}`;
        t.denied(`step ${i + 1} ${step.name}: ${err.neededScopes.join(' ')}${on}`, err);
      } else if (!isPepError(err) && !(err instanceof ServiceRefused)) throw err;
      const reason = isPermissionDenied(err) ? ` (${err.reasons.map((r) => r.code).join(', ')})` : '';
      const code = isPepError(err) ? `${err.code}${reason}` : `${err.status} ${err.code}`;
      const rest = steps.slice(i + 1).map((x) => x.name);
      t.add('stop', `workflow stopped at step ${i + 1}/${steps.length} (${step.name}): ${code}; ${rest.length === 0 ? 'it was the last step' : `not run: ${rest.join(', ')}`}`);
      if (!isPermissionDenied(err)) t.add('info', err.message);
      stopped = true;
      break;
    }
  }
  const newPosts = s.posted.slice(postedBefore);
  if (!stopped) t.add('ok', `posted a digest of ${english.length} translated items to ${newPosts.map((p) => p.channel).join(', ')}`);
  else t.add('info', `chat received ${plural(newPosts.length, 'message')}; translation API called ${plural(s.translateCalls() - translatedBefore, 'time')} in this run`);

  let revoked = 0;
  for (const task of Object.values(tasks)) revoked += (await orchestrator.completeTask(task.id)).revoked_tokens ?? 0;
  t.add('info', `orchestrator completed the 3 tasks (${plural(revoked, 'token')} revoked)`);
}

export async function run(options: ExampleOptions): Promise<Transcript> {
  const t = new TranscriptWriter(title, options.log);
  const orchestrator = new PdpClient({ url: options.pdpUrl, apiKey: options.keys.orchestrator });
  const pep = new PdpClient({ url: options.pdpUrl, apiKey: options.keys.pep });
  const { issuer } = await pep.metadata();
  const services = await startServices(issuer, pep.jwksUri);
  try {
    for (const plan of PLANS) await runWorkflow(t, plan, pep, orchestrator, services);
    return t.done();
  } finally {
    await stopAll([services.database, services.translation, services.chat]);
  }
}

if (isMain(import.meta.url)) await runFromCommandLine(run);
