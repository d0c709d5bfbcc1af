/**
 * `make demo`: starts a PDP of its own (the built CLI, `agent-pdp serve`) on a free loopback port with a temp
 * data dir, the shipped policies and the public dev keys; runs the three examples against it and prints their
 * transcripts, then the fourth (break-glass escalation), for which it also starts a webhook receiver on loopback
 * before the PDP (the PDP's config names it) and adds an approver caller, and the fifth (the enforcement proxy),
 * for which it starts the example's fake GitHub before the PDP and gives the PDP a `proxy` section in front of it
 * (`proxy.serve: true`, the provider credential in a file of the temp dir), and the sixth (a CRM MCP server behind
 * the PDP's issuer and the MCP guard, which needs nothing more); then `agent-pdp suggest` on the trail the six made
 * (thresholds lowered for it, policy-suggestions.ts), and the seventh (provider credentials: a read-only Workspace token
 * and an S3 session-policy credential, minted against a fake Google token endpoint and a fake STS the demo starts;
 * the PDP serves a copy of the shipped policies with the reporting agent and its provider maps added); stops the PDP. Exits 1 if the PDP does not
 * start, an example fails, a transcript lacks an allow or a deny or shows an unexpected outcome, or no suggestion
 * comes out of the demo's traffic.
 *
 * Run from the repository root after `make build`: `node dist-examples/examples/demo.js`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { generateKeyPairSync } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { run as runBreakGlass } from './break-glass.js';
import { run as runProxy, startFakeGitHub, type FakeGitHub } from './code-review-proxy.js';
import { run as runComplaint } from './complaint-resolution.js';
import { run as runFeedback } from './feedback-workflow.js';
import { run as runMailbox } from './mailbox-agent.js';
import { run as runMcpCrm } from './mcp-crm.js';
import { run as runProviders } from './provider-credentials.js';
import { run as runSuggestions } from './policy-suggestions.js';
import { startFakeGoogleToken, type FakeGoogleToken } from './support/fake-google-token.js';
import { startFakeSts, type FakeSts } from './support/fake-sts.js';
import { SERVER_NODE_FLAGS } from '../src/workers/process-flags.js';
import { DEV_KEYS } from './support/cli.js';
import type { ExampleOptions, Transcript } from './support/transcript.js';
import { startWebhookInbox, type WebhookInbox } from './support/webhook-inbox.js';

const EXAMPLES: Array<(options: ExampleOptions) => Promise<Transcript>> = [
  runMailbox,
  runFeedback,
  runComplaint,
];
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
/** Example 4: the approver's key (a demo-only caller, not one of the dev keys) and the approval window. */
const APPROVER_KEY = 'demo-approver-key-platform-oncall';
const WINDOW_SECONDS = 5;

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');
const print = (line: string): void => void process.stdout.write(`${line}\n`);

/** A port that was free a moment ago on 127.0.0.1. */
function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => ok(port));
    });
  });
}

/**
 * The PDP config: the shipped bundle and policies, a temp store and key folder, the dev keys of the three roles;
 * for example 4 an approver in group platform-oncall and the escalation section: the webhook to this run's
 * receiver (its HMAC secret in a file), a sweep every 200 ms so the window's end is recorded at once; for example 5
 * the enforcement proxy inside `serve`, in front of the example's fake GitHub, its credential in a file.
 */
/** Example 7's reporting agent: a calendar read-only, and the reports of its task's customer. */
const REPORTING_AGENT = `agent_policy:
  id: reporting-agent
  description: Builds a customer report from the task user's calendar and the customer's reports in S3.
  integrations:
    calendar:
      max_scope: [calendar:read]
    s3-reports:
      max_scope: [reports:read]
      bind:
        reports:read: { resource: customer, context: customer_id }
  token_ttl: 3600
  per_task_downscope: false
`;

/**
 * Example 7's policy folder: the shipped policies, plus the reporting agent, the calendar and s3-reports integrations
 * and their provider maps from examples/provider-policies/; its source credentials (a service account key, an AWS
 * access key) in files of the temp dir.
 */
function providerSetup(root: string, dir: string, sts: FakeSts, google: FakeGoogleToken, source: { aws: { access_key_id: string; secret_access_key: string }; saPem: string }): { policies: string; providers: unknown[] } {
  const policies = join(dir, 'policies');
  cpSync(join(root, 'policies'), policies, { recursive: true });
  mkdirSync(join(policies, 'providers'), { recursive: true });
  for (const id of ['calendar', 's3-reports']) {
    cpSync(join(root, 'examples/provider-policies/integrations', `${id}.yaml`), join(policies, 'integrations', `${id}.yaml`));
    cpSync(join(root, 'examples/provider-policies/providers', `${id}.yaml`), join(policies, 'providers', `${id}.yaml`));
  }
  writeFileSync(join(policies, 'agents', 'reporting-agent.yaml'), REPORTING_AGENT);
  const awsFile = join(dir, 'aws-source.json');
  writeFileSync(awsFile, JSON.stringify(source.aws), { mode: 0o600 });
  const saFile = join(dir, 'workspace-sa.json');
  writeFileSync(saFile, JSON.stringify({ type: 'service_account', client_email: 'agent-pdp@demo.iam.gserviceaccount.com', private_key: source.saPem }), { mode: 0o600 });
  return {
    policies,
    providers: [
      { integration: 's3-reports', kind: 'aws', role_arn: 'arn:aws:iam::123456789012:role/agent-pdp-reports', region: 'eu-west-1', endpoint: sts.url, credential: { file: awsFile } },
      { integration: 'calendar', kind: 'google_workspace', token_endpoint: google.url, credential: { file: saFile } },
    ],
  };
}

function writeConfig(root: string, dir: string, port: number, inbox: WebhookInbox, webhookSecret: string, proxy: { port: number; github: FakeGitHub; credential: string }, provider: { policies: string; providers: unknown[] }): string {
  const secretFile = join(dir, 'webhook-secret');
  writeFileSync(secretFile, webhookSecret, { mode: 0o600 });
  const credentialFile = join(dir, 'github-credential');
  writeFileSync(credentialFile, `${proxy.credential}\n`, { mode: 0o600 });
  const config = {
    server: { listen: `127.0.0.1:${port}` },
    policy: { bundle: join(root, 'opa-bundle/bundle.tar.gz'), agents: provider.policies, watch: false },
    store: { url: 'sqlite:data/agent-pdp.db' },
    issuer: { issuer: `http://127.0.0.1:${port}`, keys: 'data/keys' },
    log: { level: 'error' },
    escalation: {
      sweep_interval_ms: 200,
      webhooks: [{ id: 'oncall-webhook', groups: ['platform-oncall'], format: 'generic', url: inbox.url, secret_file: secretFile }],
    },
    proxy: {
      listen: `127.0.0.1:${proxy.port}`,
      serve: true,
      upstreams: [{ integration: 'github', origin: proxy.github.origin, credential: { file: credentialFile } }],
    },
    providers: provider.providers,
    callers: [
      { id: 'support-middleware', role: 'pep', key_sha256: sha256(DEV_KEYS.pep), agents: ['support-resolver', 'mailbox-summarizer', 'feedback-workflow', 'code-review-agent', 'reporting-agent'] },
      { id: 'orchestrator', role: 'orchestrator', key_sha256: sha256(DEV_KEYS.orchestrator) },
      { id: 'crm-api', role: 'resource_server', key_sha256: sha256(DEV_KEYS.resource) },
      { id: 'alice-oncall', role: 'approver', approver_groups: ['platform-oncall'], key_sha256: sha256(APPROVER_KEY) },
    ],
  };
  const path = join(dir, 'agent-pdp.yaml');
  writeFileSync(path, `${JSON.stringify(config, null, 2)}\n`); // JSON is YAML
  return path;
}

/** `agent-pdp <args> --config <the demo's config>` from the data dir; resolves with stdout. */
function cliRunner(cli: string, configPath: string, dir: string): (args: readonly string[]) => Promise<string> {
  return (args) =>
    new Promise((ok, fail) => {
      execFile(process.execPath, [cli, ...args, '--config', configPath], { cwd: dir, timeout: 20_000, maxBuffer: 16 * 2 ** 20 }, (err, stdout, stderr) => {
        if (err) fail(new Error(`agent-pdp ${args.join(' ')}: ${err.message}${stderr ? `\n${stderr}` : ''}`));
        else ok(stdout);
      });
    });
}

/** Polls `url` (the PDP's /readyz, the proxy's /-/healthz) until it answers 200. */
async function waitUntilReady(url: string, pdp: ChildProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (pdp.exitCode !== null || pdp.signalCode !== null) throw new Error(`the PDP exited during start (${pdp.exitCode ?? pdp.signalCode})`);
    const ready = await fetch(url, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
    if (ready) return;
    await new Promise((ok) => setTimeout(ok, 100));
  }
  throw new Error(`${url} was not ready within ${READY_TIMEOUT_MS / 1000} s`);
}

async function stop(pdp: ChildProcess): Promise<void> {
  if (pdp.exitCode !== null || pdp.signalCode !== null) return;
  const exited = new Promise<void>((ok) => pdp.once('exit', () => ok()));
  pdp.kill('SIGTERM');
  const timer = setTimeout(() => pdp.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

/** What makes a transcript a failed demo: no allow, no deny, or an outcome the example did not expect. */
function problems(t: Transcript): string[] {
  const found: string[] = [];
  if (!t.entries.some((e) => e.kind === 'allow')) found.push('no allowed call');
  if (!t.entries.some((e) => e.kind === 'deny')) found.push('no denied call');
  for (const e of t.entries) if (e.text.startsWith('UNEXPECTED')) found.push(e.text);
  return found;
}

async function main(): Promise<number> {
  const root = resolve(process.cwd());
  const cli = join(root, 'dist/cli/main.js');
  if (!existsSync(cli)) {
    process.stderr.write(`demo: ${cli} not found; run it from the repository root after \`make build\`\n`);
    return 1;
  }
  const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-demo-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // Example 4's webhook receiver listens before the PDP starts: the PDP's config names its URL and shared secret.
  const webhookSecret = randomBytes(32).toString('hex');
  const inbox = await startWebhookInbox(webhookSecret);
  // Example 5's GitHub listens before the PDP too: the proxy's config names its origin. Only the proxy gets its credential.
  const githubCredential = `ghs_${randomBytes(18).toString('hex')}`;
  const github = await startFakeGitHub(githubCredential);
  const proxyPort = await freePort();
  const proxyUrl = `http://127.0.0.1:${proxyPort}`;
  // Example 7's provider fakes listen before the PDP too: its config names them and the source credentials they accept.
  const awsSource = { access_key_id: 'AKIADEMO0000000000001', secret_access_key: randomBytes(30).toString('base64') };
  const sts = await startFakeSts(new Map([[awsSource.access_key_id, awsSource.secret_access_key]]));
  const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const google = await startFakeGoogleToken(new Map([['agent-pdp@demo.iam.gserviceaccount.com', sa.publicKey]]));
  const provider = providerSetup(root, dir, sts, google, { aws: awsSource, saPem: sa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() });
  const configPath = writeConfig(root, dir, port, inbox, webhookSecret, { port: proxyPort, github, credential: githubCredential }, provider);
  // The PDP's own output (including its loud dev-key warning) is kept, and shown only if something goes wrong.
  const pdp = spawn(process.execPath, [...SERVER_NODE_FLAGS, cli, 'serve', '--config', configPath], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  pdp.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  pdp.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  let status = 0;
  try {
    await waitUntilReady(`${url}/readyz`, pdp);
    await waitUntilReady(`${proxyUrl}/-/healthz`, pdp);
    print(`agent-pdp demo: PDP (pid ${pdp.pid}) serving the shipped policies on ${url}, public dev keys, data in ${dir}`);
    print(`agent-pdp demo: webhook receiver of approver group platform-oncall on ${inbox.url}`);
    print(`agent-pdp demo: enforcement proxy on ${proxyUrl} in front of a fake GitHub on ${github.origin}`);
    print(`agent-pdp demo: a fake STS on ${sts.url} and a fake Google token endpoint on ${google.url}`);
    const runCli = cliRunner(cli, configPath, dir);
    const examples = [
      ...EXAMPLES,
      (options: ExampleOptions) => runBreakGlass({ ...options, inbox, approverKey: APPROVER_KEY, windowSeconds: WINDOW_SECONDS, runCli }),
      (options: ExampleOptions) => runProxy({ ...options, proxyUrl, github, runCli }),
      runMcpCrm,
      (options: ExampleOptions) => runProviders({ ...options, sts, google }),
    ];
    for (const example of examples) {
      print('');
      const transcript = await example({ pdpUrl: url, keys: DEV_KEYS, log: print });
      for (const problem of problems(transcript)) {
        process.stderr.write(`demo: ${transcript.title}: ${problem}\n`);
        status = 1;
      }
    }
    // Last: what the trail the six made says about their policies.
    print('');
    const suggested = await runSuggestions({ runCli, log: print });
    if (suggested.suggestions.length === 0) {
      process.stderr.write('demo: policy suggestions: none from the demo\'s traffic\n');
      status = 1;
    }
  } catch (err) {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    status = 1;
  } finally {
    await stop(pdp);
    await inbox.close();
    await github.close();
    await sts.close();
    await google.close();
    if (status !== 0 && output.length > 0) process.stderr.write(`--- PDP output ---\n${output.join('')}\n`);
    rmSync(dir, { recursive: true, force: true });
  }
  print('');
  print(status === 0 ? 'agent-pdp demo: done, PDP stopped' : 'agent-pdp demo: FAILED');
  return status;
}

process.exitCode = await main();
