/**
 * The two servers under test, set up from the same sources: our PDP (`agent-pdp serve`, API-key auth and the
 * durable SQLite audit trail on, NODE_ENV=production) and `opa run --server` on the same Rego (test files left
 * out) and the same compiled `data.policies` our PDP sets.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { sha256Hex } from '../../src/config/dev-keys.js';
import { readBundleFile } from '../../src/policy/bundle-reader.js';
import { loadPolicyDir } from '../../src/policy/policy-loader.js';
import { SERVER_NODE_FLAGS } from '../../src/workers/process-flags.js';
import { freePort, startProcess, stopProcess, waitReady, type Started } from './processes.js';
import { BENCH_AGENTS, BENCH_APPROVER, BENCH_ORCHESTRATOR, BENCH_PEP, BENCH_RESOURCE_SERVER, BENCH_TASKS } from './workload.js';

export const REPO = resolve('.');
export const BUNDLE = join(REPO, 'opa-bundle/bundle.tar.gz');
export const POLICIES = join(REPO, 'policies');

export interface RunningServer extends Started {
  name: 'ours' | 'opa';
  url: string;
  /** Where the decision is asked. */
  decideUrl: string;
  /** Ours: the config file it was started with (an `agent-pdp proxy` may be started on the same one). */
  configFile?: string;
}

export interface OurServerOptions {
  dir: string;
  cpu: string | undefined;
  /** pino level; `info` (the default config) writes one access-log line per request. */
  logLevel?: string;
  /** Node flags added to the server's own (SERVER_NODE_FLAGS, as `make run` starts it), e.g. `--cpu-prof`. */
  nodeFlags?: string[];
  /** Config sections added to the bench config (e.g. `proxy`). Default none. */
  config?: Record<string, unknown>;
  /** `server.workers` (`serve --workers`). Default 1. */
  workers?: number;
  /** Callers added to the bench's (e.g. an auditor for the console section). */
  extraCallers?: Array<Record<string, unknown>>;
}

/** Writes a bench config (bench keys, not the dev keys, so production mode accepts it) and starts the server. */
export async function startOurs(o: OurServerOptions): Promise<RunningServer> {
  mkdirSync(o.dir, { recursive: true });
  const port = await freePort();
  const config = {
    server: { listen: `127.0.0.1:${port}`, workers: o.workers ?? 1 },
    policy: { bundle: BUNDLE, agents: POLICIES, watch: false },
    store: { url: 'sqlite:data/pdp.db' },
    // The redeem window is widened from 60 s so the decisions the token measurement prepares stay redeemable
    // through a slow machine's run; it changes what is stored, not what a request costs.
    issuer: { issuer: 'https://agent-pdp.bench.invalid', keys: 'data/keys', redeem_window_seconds: 600 },
    log: { level: o.logLevel ?? 'info' },
    callers: [
      { id: BENCH_PEP.id, role: 'pep', key_sha256: sha256Hex(BENCH_PEP.key), agents: [...BENCH_AGENTS], may_assert_context: true },
      { id: BENCH_ORCHESTRATOR.id, role: 'orchestrator', key_sha256: sha256Hex(BENCH_ORCHESTRATOR.key) },
      { id: BENCH_RESOURCE_SERVER.id, role: 'resource_server', key_sha256: sha256Hex(BENCH_RESOURCE_SERVER.key) },
      // Approves the access request the HTTP escalation measurement's elevated case rides on; asks nothing itself.
      { id: BENCH_APPROVER.id, role: 'approver', approver_groups: ['platform-oncall'], key_sha256: sha256Hex(BENCH_APPROVER.key) },
      ...(o.extraCallers ?? []),
    ],
    ...o.config,
  };
  const configFile = join(o.dir, 'agent-pdp.bench.yaml');
  writeFileSync(configFile, JSON.stringify(config, null, 2)); // JSON is YAML
  const started = startProcess(
    o.cpu,
    process.execPath,
    [...SERVER_NODE_FLAGS, ...(o.nodeFlags ?? []), join(REPO, 'dist/cli/main.js'), 'serve', '--config', configFile],
    join(o.dir, 'server.log'),
    { ...process.env, NODE_ENV: 'production' },
  );
  const url = `http://127.0.0.1:${port}`;
  return stopOnFailure(started, async () => {
    await waitReady(`${url}/readyz`, started);
    for (const task of BENCH_TASKS) {
      const res = await fetch(`${url}/v1/tasks`, {
        method: 'POST',
        headers: { authorization: `Bearer ${BENCH_ORCHESTRATOR.key}`, 'content-type': 'application/json' },
        body: JSON.stringify(task),
      });
      if (res.status !== 201) throw new Error(`registering ${task.id}: ${res.status} ${await res.text()}`);
    }
    return { ...started, name: 'ours', url, decideUrl: `${url}/v1/decide`, configFile };
  });
}

/** Runs the rest of a server's start; if it fails, the server is stopped before the error goes on. */
async function stopOnFailure<T>(started: Started, rest: () => Promise<T>): Promise<T> {
  try {
    return await rest();
  } catch (err) {
    await stopProcess(started.child, 2_000);
    throw err;
  }
}

/** The Rego sources our bundle is built from: every `.rego` under rego/ except `*_test.rego`. */
export function regoSources(dir = join(REPO, 'rego')): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.rego') && !f.endsWith('_test.rego'))
    .map((f) => join(dir, f))
    .sort();
}

/** The data document our evaluator sets: the bundle's data.json merged with the compiled agent policies. */
export async function writeOpaData(file: string, policyDir = POLICIES): Promise<void> {
  const [bundle, set] = await Promise.all([readBundleFile(BUNDLE), loadPolicyDir(policyDir)]);
  writeFileSync(file, JSON.stringify({ ...bundle.data, ...set.data }));
}

/** OPA's levels are debug, info and error; ours also has warn, fatal and silent, which map to error. */
const opaLevel = (level: string): string => (level === 'debug' || level === 'info' ? level : 'error');

export async function startOpa(o: { dir: string; cpu: string | undefined; opa: string; logLevel?: string }): Promise<RunningServer> {
  mkdirSync(o.dir, { recursive: true });
  const dataFile = join(o.dir, 'data.json');
  await writeOpaData(dataFile);
  const port = await freePort();
  // Decision logs are off unless configured. At `info` (OPA's default, like ours) it logs each request and response.
  const started = startProcess(
    o.cpu,
    o.opa,
    ['run', '--server', '--addr', `127.0.0.1:${port}`, '--log-level', opaLevel(o.logLevel ?? 'info'), ...regoSources(), dataFile],
    join(o.dir, 'opa.log'),
  );
  const url = `http://127.0.0.1:${port}`;
  return stopOnFailure(started, async () => {
    await waitReady(`${url}/health`, started);
    return { ...started, name: 'opa' as const, url, decideUrl: `${url}/v1/data/agentpdp/decision` };
  });
}
