/**
 * Compiled bundles at scale (issue 19, "large policy sets"): N agents (default 100,000; the four shipped agents as
 * templates, as scale-bench.ts builds them) compiled once into a bundle (`src/policy/compiled-bundle.ts`), then:
 *
 * - **cold start**: `agent-pdp serve` with `policy.compiled`, from spawning the process to `/readyz` answering 200
 *   (goal ≤ 5 s at 100,000 agents), and the same steps timed in this process as the policy engine runs them (read,
 *   unpack, check, then the policy set parsed in pieces and the WASM evaluator's data set by a worker thread side by
 *   side), with the longest the event loop was held meanwhile (a 1 ms timer's longest gap);
 * - **reload under traffic**: the server watching the bundle, a closed loop of `POST /v1/decide` on keep-alive
 *   connections while a bundle of another revision replaces the file; the longest answer during the reload against
 *   the longest before it (goal: no stall over 100 ms).
 *
 * The agents' compiled data is the templates' entries under N ids (what loading N YAML files gives: checked for
 * small sizes by scale-bench.ts), so no 90 s of YAML parsing is spent building the input.
 *
 *   node .build/bench/bench/bundle-bench.js [--agents 100000] [--server-cpu 0] [--load-cpu 1] [--json]
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readBundleFile } from '../src/policy/bundle-reader.js';
import { buildCompiledBundle, bundleFilesAsync, compiledPolicySet, openCompiledBundle } from '../src/policy/compiled-bundle.js';
import { loadPolicyDir } from '../src/policy/policy-loader.js';
import { policyRevision } from '../src/policy/policy-revision.js';
import type { PolicyData, PolicySet } from '../src/policy/policy-types.js';
import { readTarGz } from '../src/policy/tar-reader.js';
import { WasmEvaluator } from '../src/policy/wasm-evaluator.js';
import { stopProcess } from './lib/processes.js';
import { scaledId, writeScaledPolicies } from './scale-bench.js';
import { BUNDLE, startOurs } from './lib/servers.js';
import { isMain, round } from './lib/timing.js';
import { sha256Hex } from '../src/config/dev-keys.js';
import { BENCH_AGENTS, BENCH_ORCHESTRATOR, BENCH_PEP } from './lib/workload.js';

export interface BundleBenchResult {
  agents: number;
  bundle_bytes: number;
  data_json_bytes: number;
  build_ms: number;
  /**
   * In this process: read the file, unpack, check (signature, format, SHA-256 of data.json), then side by side the
   * policy set and the evaluator (each from the end of the checks); `longest_stall_ms`: the longest gap of a 1 ms
   * timer from the unpacking to the end.
   */
  load: { read_ms: number; unpack_ms: number; open_ms: number; policy_set_ms: number; evaluator_ms: number; total_ms: number; longest_stall_ms: number };
  /** `agent-pdp serve` spawned → /readyz 200. */
  cold_start_ms: number;
  reload: {
    requests: number;
    errors: number;
    /** Longest answer in the 2 s before the reload, and while it ran (from the file's replacement to the new revision answering). */
    longest_before_ms: number;
    longest_during_ms: number;
    /**
     * The server's own longest event-loop stall over the same two windows, what the issue measures: the maximum of
     * its `monitorEventLoopDelay` histogram (prom-client's `nodejs_eventloop_lag_max_seconds`, 10 ms resolution),
     * read from `GET /metrics`, which resets it: once as the traffic starts, at the replacement, and as the new
     * revision first answers. A longest answer is that stall plus the queue in front of the answer.
     */
    stall_before_ms: number;
    stall_during_ms: number;
    reload_ms: number;
  };
}

/** A policy set of N agents from the four templates' compiled entries. */
export async function scaledSet(agents: number, variant: number): Promise<PolicySet> {
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'agent-pdp-bundle-bench-'));
  try {
    writeScaledPolicies(dir, BENCH_AGENTS.length);
    const templates = await loadPolicyDir(dir);
    const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    for (let i = 0; i < agents; i++) {
      const template = BENCH_AGENTS[i % BENCH_AGENTS.length] as string;
      const entry = templates.data.policies.agents[scaledId(template, 0)] as { token_ttl: number };
      // The variant changes one agent's TTL: another revision, for the reload.
      out[scaledId(template, Math.floor(i / BENCH_AGENTS.length))] = i === 0 && variant > 0 ? { ...entry, token_ttl: entry.token_ttl - variant } : entry;
    }
    const data = { policies: { agents: out, integrations: templates.data.policies.integrations } } as unknown as PolicyData;
    return { ...templates, data, revision: policyRevision(data), agents: Object.keys(out).sort() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const ms = (from: bigint): number => round(Number(process.hrtime.bigint() - from) / 1e6, 1);

export async function runBundleBench(agents: number, serverCpu: string | undefined): Promise<BundleBenchResult> {
  const work = mkdtempSync(join(tmpdir(), 'agent-pdp-bundle-bench-'));
  try {
    const rego = await readBundleFile(BUNDLE);
    const sources = readTarGz(readFileSync(BUNDLE));
    let t = process.hrtime.bigint();
    const set = await scaledSet(agents, 0);
    const gz = await buildCompiledBundle(set, rego, sources);
    const build_ms = ms(t);
    const served = join(work, 'served');
    mkdirSync(served, { mode: 0o755 });
    const file = join(served, 'policies.tar.gz');
    writeFileSync(file, gz, { mode: 0o644 });

    // In this process, step by step, as the policy engine loads a compiled bundle.
    t = process.hrtime.bigint();
    const bytes = readFileSync(file);
    const read_ms = ms(t);
    const stalls = stallMonitor();
    t = process.hrtime.bigint();
    const files = await bundleFilesAsync(bytes, file);
    const unpack_ms = ms(t);
    t = process.hrtime.bigint();
    const opened = await openCompiledBundle(files, file);
    const open_ms = ms(t);
    t = process.hrtime.bigint();
    let evaluator_ms = 0;
    const evaluating = WasmEvaluator.create(opened.bundle, {}, opened.meta.policies_revision, opened.dataJson).then(() => (evaluator_ms = ms(t)));
    evaluating.catch(() => undefined);
    await compiledPolicySet(opened, { lazyAgents: true });
    const policy_set_ms = ms(t);
    await evaluating;
    const longest_stall_ms = stalls.stop();
    const data_json_bytes = (files.get('data.json') as Buffer).length;

    // The server: cold start, then a reload under traffic.
    const startedAt = process.hrtime.bigint();
    const callers = [{ id: BENCH_PEP.id, role: 'pep', key_sha256: sha256Hex(BENCH_PEP.key), agents: ['*'], may_assert_context: true }, { id: BENCH_ORCHESTRATOR.id, role: 'orchestrator', key_sha256: sha256Hex(BENCH_ORCHESTRATOR.key) }];
    const server = await startOurs({ dir: join(work, 'ours'), cpu: serverCpu, logLevel: 'warn', config: { policy: { compiled: file, watch: true, watch_interval_ms: 200 }, callers } });
    const cold_start_ms = ms(startedAt);
    try {
      const next = await buildCompiledBundle(await scaledSet(agents, 1), rego, sources);
      const reload = await reloadUnderTraffic(server.decideUrl, () => {
        writeFileSync(`${file}.next`, next, { mode: 0o644 });
        renameSync(`${file}.next`, file);
      });
      return {
        agents,
        bundle_bytes: gz.length,
        data_json_bytes,
        build_ms,
        load: { read_ms, unpack_ms, open_ms, policy_set_ms, evaluator_ms, total_ms: round(read_ms + unpack_ms + open_ms + Math.max(policy_set_ms, evaluator_ms), 1), longest_stall_ms },
        cold_start_ms,
        reload,
      };
    } finally {
      await stopProcess(server.child);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The longest gap between two runs of a 1 ms timer, from now until `stop()`: how long the event loop was held. */
function stallMonitor(): { stop(): number } {
  let longest = 0;
  let last = process.hrtime.bigint();
  const timer = setInterval(() => {
    const now = process.hrtime.bigint();
    longest = Math.max(longest, Number(now - last) / 1e6);
    last = now;
  }, 1);
  return {
    stop: () => {
      clearInterval(timer);
      return round(Math.max(longest, Number(process.hrtime.bigint() - last) / 1e6), 1);
    },
  };
}

/**
 * 8 keep-alive clients deciding in a closed loop; after 2 s `swap` replaces the bundle; the loop ends 2 s after an
 * answer names the new revision (or after 60 s).
 */
async function reloadUnderTraffic(decideUrl: string, swap: () => void): Promise<BundleBenchResult['reload']> {
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  const body = JSON.stringify({ agent_id: `${BENCH_AGENTS[1]}-000000`, task: { id: 'bundle-bench', type: 'review', context: { repo: 'acme/api' } }, integration: 'github', scopes: ['repo:read'] });
  const url = new URL(decideUrl);
  let requests = 0;
  let errors = 0;
  let longestBefore = 0;
  let longestDuring = 0;
  let firstRevision: string | undefined;
  let swappedAt: bigint | undefined;
  let reloadedAt: bigint | undefined;
  // The server's longest event-loop stall since the previous read (each read resets it).
  const stallSinceLastRead = (): Promise<number> =>
    new Promise((resolve) => {
      const req = httpRequest({ host: url.hostname, port: url.port, path: '/metrics', method: 'GET', agent }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve(Number(/^nodejs_eventloop_lag_max_seconds(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1] ?? 'NaN') * 1000));
      });
      req.on('error', () => resolve(Number.NaN));
      req.end();
    });
  await stallSinceLastRead();
  let stallBefore = Number.NaN;
  let swapping = false;
  let stallDuring: Promise<number> | undefined;
  const started = process.hrtime.bigint();
  const deadline = started + 60_000_000_000n;
  const ask = (): Promise<{ status: number; revision: string | undefined }> =>
    new Promise((resolve) => {
      const req = httpRequest(
        { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, headers: { authorization: `Bearer ${BENCH_PEP.key}`, 'content-type': 'application/json' } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => {
            let revision: string | undefined;
            try {
              revision = (JSON.parse(text) as { policy_revision?: string }).policy_revision;
            } catch {
              revision = undefined;
            }
            resolve({ status: res.statusCode ?? 0, revision });
          });
        },
      );
      req.on('error', () => resolve({ status: 0, revision: undefined }));
      req.end(body);
    });
  const client = async (): Promise<void> => {
    for (;;) {
      const now = process.hrtime.bigint();
      if (now > deadline || (reloadedAt !== undefined && now - reloadedAt > 2_000_000_000n)) return;
      if (!swapping && now - started > 2_000_000_000n) {
        swapping = true;
        stallBefore = await stallSinceLastRead();
        swappedAt = process.hrtime.bigint();
        swap();
      }
      const t0 = process.hrtime.bigint();
      const answer = await ask();
      const took = Number(process.hrtime.bigint() - t0) / 1e6;
      requests++;
      if (answer.status !== 200) errors++;
      firstRevision ??= answer.revision;
      if (swappedAt === undefined || t0 < swappedAt) longestBefore = Math.max(longestBefore, took);
      else if (reloadedAt === undefined || t0 <= reloadedAt) longestDuring = Math.max(longestDuring, took);
      if (reloadedAt === undefined && swappedAt !== undefined && answer.revision !== undefined && answer.revision !== firstRevision) {
        reloadedAt = process.hrtime.bigint();
        stallDuring = stallSinceLastRead();
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, client));
  const stallDuringMs = (await stallDuring) ?? Number.NaN;
  agent.destroy();
  return {
    requests,
    errors,
    longest_before_ms: round(longestBefore, 1),
    longest_during_ms: round(longestDuring, 1),
    stall_before_ms: round(stallBefore, 1),
    stall_during_ms: round(stallDuringMs, 1),
    reload_ms: swappedAt === undefined || reloadedAt === undefined ? -1 : round(Number(reloadedAt - swappedAt) / 1e6, 1),
  };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { agents: { type: 'string', default: '100000' }, 'server-cpu': { type: 'string' }, json: { type: 'boolean' } } });
  const result = await runBundleBench(Number(values.agents), values['server-cpu']);
  process.stdout.write(`${JSON.stringify(result, null, values.json === true ? undefined : 2)}\n`);
}
