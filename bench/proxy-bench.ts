/**
 * The enforcement proxy (issue 17) against calling its upstream directly, and against a plain reverse proxy from
 * npm (`http-proxy`, proxy-peer.ts), in one run, with one load generator (vegeta).
 *
 * Three ways to the same answer, `GET /repos/acme/api/pulls/1042` of a fake GitHub (proxy-upstream.ts: a minimal
 * `node:http` server, a small fixed JSON body, 401 unless the request carries the provider credential):
 * - **direct**: vegeta calls the upstream with the provider credential itself (what an agent holding it would do);
 * - **ours**: `agent-pdp proxy` (its own process, on the bench config's store: SQLite with group commit, synchronous
 *   `normal` as by default; `NODE_ENV=production`), `GET /github/repos/acme/api/pulls/1042` with our access token
 *   for code-review-agent (`pr:read` on `repo acme/api`, decided and redeemed over HTTP from our PDP, which is then
 *   stopped). Per call: the token checked (the verified-token cache: one token, as an agent sends it call after call),
 *   the shipped GitHub endpoint map matched, the credential injected, the upstream called through its undici pool,
 *   and one `token.used` event committed before the response's last chunk goes out;
 * - **http-proxy**: the same request as ours to http-proxy, which strips `/github` and sets the credential.
 *
 * Placement (2 cores): the proxies on the server core (`taskset -c 0`), each alone at a time (the other one idle);
 * vegeta AND the upstream on the load core (`taskset -c 1`) in all three cases. The only difference between the
 * cases is the hop through the server core, so direct is the same pipeline without a proxy: its throughput is
 * bounded by the load core (vegeta + the upstream), and a proxy's by its own core or by the load core, whichever
 * saturates first (the "cpu" of each run says which). For reference, each saturation round ends with a fourth run,
 * not part of the goals: direct to a second upstream alone on the server core (what the machine serves without a
 * proxy when the upstream has a core of its own; vegeta alone on the load core).
 *
 * Steps: saturation (`-rate=0 -max-workers=N`), then a fixed load (a share of the lowest saturation throughput of
 * round 1: a quarter by default, where our proxy's core is about half busy; at half of it, it was 77–93% busy,
 * since the group commit batches less at lower loads and a call then costs more CPU). Rounds alternate the order (ours, direct, http-proxy, then reversed): direct
 * runs next to each proxy. Every answer is checked (HTTP 200 and the upstream's body, byte for byte, from `vegeta
 * encode`), warm-ups included; a refusal is never throughput. Figures per proxy, within each round against that
 * round's direct, then the median over rounds: throughput ÷ direct at saturation, p50 − direct's p50 at the fixed
 * load. Around each run the driver reads the CPU time of the proxy and the upstream (/proc/<pid>/stat): CPU µs per
 * request of each. At the end our store's `token.used` events for the token are counted: one per forwarded call.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { CpuWatch, cpuSeconds, freePort, load1, startProcess, stopProcess, waitReady, type Started } from './lib/processes.js';
import { REPO, startOurs } from './lib/servers.js';
import { median, round } from './lib/timing.js';
import { SERVER_NODE_FLAGS } from '../src/workers/process-flags.js';
import { attack, ms, pooledReport, resultBodies, writeTargets, type VegetaTarget } from './lib/vegeta.js';
import { BENCH_ORCHESTRATOR, BENCH_PEP } from './lib/workload.js';
import { PULL_BODY, PULL_PATH, PULL_RECORD, type UpstreamCount } from './proxy-upstream.js';

export const PROXY_TARGETS = ['ours', 'direct', 'http-proxy'] as const;
export type ProxyTarget = (typeof PROXY_TARGETS)[number];
export type ProxyPeer = Exclude<ProxyTarget, 'direct'>;
/** The reference run at saturation: direct to an upstream alone on the server core. */
export const DIRECT_ALONE = 'direct, upstream alone on the server core';
type RunKind = ProxyTarget | typeof DIRECT_ALONE;
const PEERS: readonly ProxyPeer[] = ['ours', 'http-proxy'];
/** Answered at least this share of a fixed load: sustained it. */
const SUSTAINED = 0.95;

export interface ProxyPlan {
  vegeta: string;
  dir: string;
  /** The proxies' core; the PDP that issues the token runs there too, before. */
  serverCpu: string | undefined;
  /** vegeta's and the upstream's core. */
  loadCpu: string | undefined;
  saturationSeconds: number;
  saturationWorkers: number;
  /** The fixed load: this share of the lowest saturation throughput of round 1 (rounded to 50 req/s). */
  fixedShare: number;
  rateSeconds: number;
  rounds: number;
  warmupSeconds: number;
  /** Pause before each run, so the tail of the previous one (commits, the WAL checkpointer) is not charged to it. */
  settleSeconds: number;
  logLevel: string;
}

export interface ProxyRun {
  target: RunKind;
  step: string;
  round: number;
  offered_rps: number | null;
  /** Results vegeta recorded (answers and transport errors). */
  requests: number;
  /** HTTP 200 with the upstream's body, byte for byte. */
  ok: number;
  unexpected: number;
  throughput_rps: number;
  p50_ms: number;
  p99_ms: number;
  /** CPU seconds (all threads) of the proxy over the run (null for direct) and of the upstream. */
  proxy_cpu_seconds: number | null;
  upstream_cpu_seconds: number;
  /** The proxy's CPU per expected answer; null for direct. */
  proxy_cpu_us_per_request: number | null;
  upstream_cpu_us_per_request: number;
  /** CPU seconds per wall second of the proxy (1.0: its core busy throughout) and of the upstream. */
  proxy_cpu: number | null;
  upstream_cpu: number;
  wall_seconds: number;
  /**
   * Our proxy's store writer over the run (its `/-/metrics`): group-commit transactions and operations, and the
   * writer's pauses for the WAL checkpointer to catch up (count, ms); null for the others.
   */
  store: { transactions: number; ops: number; wal_catch_ups: number; wal_catch_up_ms: number } | null;
  other_cores: number;
  iowait_cores: number;
  load1: number;
  results_file: string;
}

export interface ProxyTargetFigures {
  /** Median over rounds. */
  throughput_rps: number;
  /** Percentiles of every round's requests pooled. */
  p50_ms: number;
  p99_ms: number;
  /** Median over rounds of each round's p50. */
  p50_ms_median: number;
  ok: number;
  unexpected: number;
  /** Σ CPU / Σ expected answers over the rounds. */
  proxy_cpu_us_per_request: number | null;
  upstream_cpu_us_per_request: number;
  /** Medians over rounds. */
  proxy_cpu: number | null;
  upstream_cpu: number;
  other_cores: number;
  /** Fixed load: answered ≥ 95% of it; null at saturation. */
  sustained: boolean | null;
}

export interface ProxyVsDirect {
  /** Within each round (this proxy ÷ that round's direct), median over rounds. */
  throughput_ratio: number;
  /** Within each round (this proxy's p50 − that round's direct p50, ms), median over rounds. */
  added_p50_ms: number;
  /** The same from the step's pooled and median figures, for reference. */
  throughput_ratio_of_medians: number;
  added_p50_ms_pooled: number;
  rounds_throughput_ratio: number[];
  rounds_added_p50_ms: number[];
}

export interface ProxyStepSummary {
  step: string;
  offered_rps: number | null;
  targets: Record<ProxyTarget, ProxyTargetFigures>;
  vs_direct: Record<ProxyPeer, ProxyVsDirect>;
  /** Saturation only: direct to an upstream alone on the server core, and each proxy's throughput against it (within rounds, median). */
  reference?: { figures: ProxyTargetFigures; throughput_ratio: Record<ProxyPeer, number> };
}

export interface ProxyBenchResult {
  plan: Omit<ProxyPlan, 'vegeta' | 'dir'>;
  placement: string;
  /** The token every proxied call carries. */
  token: { agent: string; scope: string; record: { type: string; id: string }; expires_in: number };
  steps: ProxyStepSummary[];
  measurements: ProxyRun[];
  /** Idle CPU of our proxy (its timers: the revocation poll, the WAL checkpointer) and of http-proxy, µs per wall second, before the runs. */
  idle_cpu_us_per_s: Record<ProxyPeer, number>;
  /** What the upstream counted over the whole section (preflight and warm-ups included). */
  upstream: UpstreamCount;
  /** Our store after the runs: `token.used` events of the token, by outcome, against our proxy's 200 answers. */
  audit: { token_used: Record<string, number>; ours_ok_answers: number; every_answer_audited: boolean };
  /** Every answer of every run and warm-up, of all three, was 200 with the upstream's body. */
  all_expected: boolean;
  unexpected_examples: string[];
  other_cores_max: number;
}

const sleep = (s: number): Promise<void> => new Promise((ok) => setTimeout(ok, s * 1000));
const child = (file: string): string => join(REPO, '.build/bench/bench', file);
const HEADERS = { Accept: ['application/vnd.github+json'], 'X-GitHub-Api-Version': ['2022-11-28'] };

interface Token {
  access_token: string;
  jti: string;
  scope: string;
  expires_in: number;
}

/** An access token for the proxied call, the way an agent's PEP gets one: a task, a decision, its redemption. */
async function obtainToken(pdpUrl: string): Promise<Token> {
  const post = async (path: string, key: string, body: unknown, status: number): Promise<Record<string, unknown>> => {
    const res = await fetch(`${pdpUrl}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const text = await res.text();
    if (res.status !== status) throw new Error(`proxy bench: POST ${path}: expected ${status}, got ${res.status} ${text.slice(0, 300)}`);
    return JSON.parse(text) as Record<string, unknown>;
  };
  const task = 'bench-proxy-review';
  await post('/v1/tasks', BENCH_ORCHESTRATOR.key, { id: task, agent_id: 'code-review-agent', type: 'review', context: { repo: PULL_RECORD.id }, expires_in_seconds: 86400 }, 201);
  const decision = await post('/v1/decide', BENCH_PEP.key, { agent_id: 'code-review-agent', task: { id: task }, integration: 'github', scopes: ['pr:read'], resource: PULL_RECORD }, 200);
  if (decision['outcome'] !== 'allow') throw new Error(`proxy bench: pr:read for code-review-agent was not allowed: ${JSON.stringify(decision).slice(0, 400)}`);
  const token = await post('/v1/tokens', BENCH_PEP.key, { decision_id: decision['decision_id'] }, 201);
  return { access_token: String(token['access_token']), jti: String(token['jti']), scope: String(token['scope']), expires_in: Number(token['expires_in']) };
}

/** One GET, checked like every answer of the runs. */
async function preflight(what: string, url: string, authorization: string): Promise<void> {
  const res = await fetch(url, { headers: { authorization, accept: 'application/vnd.github+json' } });
  const body = await res.text();
  if (res.status !== 200 || body !== PULL_BODY) throw new Error(`proxy bench: ${what} answered ${res.status} ${body.slice(0, 300)}`);
}

/** Our proxy's store counters (`agentpdp_store{count=…}` on its `/-/metrics`). */
async function storeCounts(proxyUrl: string): Promise<{ transactions: number; ops: number; wal_catch_ups: number; wal_catch_up_ms: number }> {
  const text = await (await fetch(`${proxyUrl}/-/metrics`)).text();
  const count = (name: string): number => {
    const m = new RegExp(`^agentpdp_store\\{count="${name}"\\} (\\S+)$`, 'm').exec(text);
    if (m === null) throw new Error(`proxy bench: no agentpdp_store{count="${name}"} on the proxy's /-/metrics`);
    return Number(m[1]);
  };
  return { transactions: count('transactions'), ops: count('ops'), wal_catch_ups: count('wal_catch_ups'), wal_catch_up_ms: count('wal_catch_up_ms') };
}

/** Our store's `token.used` events for one jti, by outcome (read-only, after our proxy stopped). */
function auditCounts(dbFile: string, jti: string): Record<string, number> {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    const rows = db
      .prepare("SELECT json_extract(data, '$.outcome') AS outcome, count(*) AS n FROM audit_events WHERE type = 'token.used' AND jti = ? GROUP BY 1")
      .all(jti) as Array<{ outcome: string | null; n: number }>;
    return Object.fromEntries(rows.map((r) => [r.outcome ?? 'unknown', r.n]));
  } finally {
    db.close();
  }
}

export async function runProxyBench(plan: ProxyPlan, log: (line: string) => void): Promise<ProxyBenchResult> {
  mkdirSync(plan.dir, { recursive: true });
  const credential = `ghs_${randomBytes(18).toString('hex')}`;
  const credentialFile = join(plan.dir, 'github-credential');
  writeFileSync(credentialFile, `${credential}\n`, { mode: 0o600 });
  const started: Started[] = [];
  const stopAll = async (): Promise<void> => {
    for (const s of started.reverse()) await stopProcess(s.child);
    started.length = 0;
  };
  try {
    // The upstream, on the load core.
    const upstreamPort = await freePort();
    const origin = `http://127.0.0.1:${upstreamPort}`;
    const upstream = startProcess(plan.loadCpu, process.execPath, [child('proxy-upstream.js'), '--port', String(upstreamPort), '--credential-file', credentialFile], join(plan.dir, 'upstream.log'));
    started.push(upstream);
    await waitReady(`${origin}/-/count`, upstream);
    const alonePort = await freePort();
    const aloneOrigin = `http://127.0.0.1:${alonePort}`;
    const alone = startProcess(plan.serverCpu, process.execPath, [child('proxy-upstream.js'), '--port', String(alonePort), '--credential-file', credentialFile], join(plan.dir, 'upstream-alone.log'));
    started.push(alone);
    await waitReady(`${aloneOrigin}/-/count`, alone);

    // Our PDP with a proxy section, for the token; then our proxy alone on the same config and store.
    const proxyPort = await freePort();
    const proxyUrl = `http://127.0.0.1:${proxyPort}`;
    const pdp = await startOurs({
      dir: join(plan.dir, 'ours'),
      cpu: plan.serverCpu,
      logLevel: plan.logLevel,
      config: { proxy: { listen: `127.0.0.1:${proxyPort}`, upstreams: [{ integration: 'github', origin, credential: { file: credentialFile } }] } },
    });
    let token: Token;
    try {
      token = await obtainToken(pdp.url);
    } finally {
      await stopProcess(pdp.child);
    }
    log(`proxy: token for code-review-agent [${token.scope}] on ${PULL_RECORD.type} ${PULL_RECORD.id}, ${token.expires_in} s; the PDP is stopped, our proxy runs alone on its store`);
    const ours = startProcess(plan.serverCpu, process.execPath, [...SERVER_NODE_FLAGS, join(REPO, 'dist/cli/main.js'), 'proxy', '--config', pdp.configFile as string], join(plan.dir, 'ours-proxy.log'), { ...process.env, NODE_ENV: 'production' });
    started.push(ours);
    await waitReady(`${proxyUrl}/-/healthz`, ours);
    const peerPort = await freePort();
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const peer = startProcess(plan.serverCpu, process.execPath, [child('proxy-peer.js'), '--port', String(peerPort), '--target', origin, '--credential-file', credentialFile], join(plan.dir, 'http-proxy.log'));
    started.push(peer);
    await waitReady(`${peerUrl}/-/healthz`, peer);

    const bearer = `Bearer ${token.access_token}`;
    const urls: Record<RunKind, { url: string; authorization: string }> = {
      direct: { url: `${origin}${PULL_PATH}`, authorization: `Bearer ${credential}` },
      [DIRECT_ALONE]: { url: `${aloneOrigin}${PULL_PATH}`, authorization: `Bearer ${credential}` },
      ours: { url: `${proxyUrl}/github${PULL_PATH}`, authorization: bearer },
      'http-proxy': { url: `${peerUrl}/github${PULL_PATH}`, authorization: bearer },
    };
    const kinds: RunKind[] = [...PROXY_TARGETS, DIRECT_ALONE];
    for (const t of kinds) await preflight(t, urls[t].url, urls[t].authorization);
    let oursOk = 1; // the preflight's
    const files = {} as Record<RunKind, string>;
    for (const t of kinds) {
      files[t] = join(plan.dir, `proxy-${t.replace(/\W+/g, '_')}.targets.jsonl`);
      const target: VegetaTarget = { method: 'GET', url: urls[t].url, header: { ...HEADERS, Authorization: [urls[t].authorization] } };
      writeTargets(files[t], [target]);
    }
    const proxyPid: Record<ProxyPeer, number> = { ours: ours.pid, 'http-proxy': peer.pid };
    const allPids = [upstream.pid, alone.pid, ours.pid, peer.pid];

    // Idle: what each proxy spends with no calls (ours polls the revocation feed every 200 ms).
    await sleep(1);
    const idle0 = { ours: cpuSeconds(ours.pid), 'http-proxy': cpuSeconds(peer.pid) };
    const idleT0 = process.hrtime.bigint();
    await sleep(Math.max(1, plan.settleSeconds * 3));
    const idleWall = Number(process.hrtime.bigint() - idleT0) / 1e9;
    const idle = Object.fromEntries(PEERS.map((p) => [p, round(((cpuSeconds(proxyPid[p]) - idle0[p]) / idleWall) * 1e6, 0)])) as Record<ProxyPeer, number>;

    const examples: string[] = [];
    let unexpectedTotal = 0;
    let fileNo = 0;
    /** Every result of one attack: 200 with the upstream's body, or unexpected (a few kept as examples). */
    const check = async (t: RunKind, resultsFile: string): Promise<{ requests: number; ok: number }> => {
      const results = await resultBodies(plan.vegeta, plan.loadCpu, resultsFile);
      rmSync(`${resultsFile}.results.jsonl`, { force: true });
      let ok = 0;
      for (const r of results) {
        if (r.code === 200 && r.body === PULL_BODY) ok++;
        else if (examples.length < 8) examples.push(`${t}: ${r.code} ${r.error} ${r.body.slice(0, 160)}`.trim());
      }
      unexpectedTotal += results.length - ok;
      if (t === 'ours') oursOk += ok;
      return { requests: results.length, ok };
    };

    for (const t of kinds) {
      const resultsFile = join(plan.dir, `proxy-${t.replace(/\W+/g, '_')}-warmup.bin`);
      await attack({ vegeta: plan.vegeta, targetsFile: files[t], rate: 500, durationSeconds: plan.warmupSeconds, maxWorkers: 256, cpu: plan.loadCpu, resultsFile });
      await check(t, resultsFile);
    }

    const measurements: ProxyRun[] = [];
    const run = async (t: RunKind, step: string, roundNo: number, rate: number, seconds: number): Promise<ProxyRun> => {
      await sleep(plan.settleSeconds);
      const resultsFile = join(plan.dir, `proxy-${t.replace(/\W+/g, '_')}-${step.replace(/\W+/g, '_')}-r${roundNo}-${fileNo++}.bin`);
      const pid = t === 'direct' || t === DIRECT_ALONE ? undefined : proxyPid[t];
      const upstreamPid = t === DIRECT_ALONE ? alone.pid : upstream.pid;
      const watch = new CpuWatch(allPids);
      const up0 = cpuSeconds(upstreamPid);
      const px0 = pid === undefined ? 0 : cpuSeconds(pid);
      const store0 = t === 'ours' ? await storeCounts(proxyUrl) : undefined;
      const t0 = process.hrtime.bigint();
      const report = await attack({ vegeta: plan.vegeta, targetsFile: files[t], rate, durationSeconds: seconds, maxWorkers: rate === 0 ? plan.saturationWorkers : 1024, cpu: plan.loadCpu, resultsFile });
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      const up = cpuSeconds(upstreamPid) - up0;
      const px = pid === undefined ? null : cpuSeconds(pid) - px0;
      const machine = watch.stop();
      const store1 = store0 === undefined ? undefined : await storeCounts(proxyUrl);
      const { requests, ok } = await check(t, resultsFile);
      const perOk = (cpu: number): number => (ok === 0 ? Number.NaN : round((cpu / ok) * 1e6, 1));
      return {
        target: t,
        step,
        round: roundNo,
        offered_rps: rate === 0 ? null : rate,
        requests,
        ok,
        unexpected: requests - ok,
        throughput_rps: Math.round(report.throughput),
        p50_ms: ms(report.latencies['50th']),
        p99_ms: ms(report.latencies['99th']),
        proxy_cpu_seconds: px === null ? null : round(px, 2),
        upstream_cpu_seconds: round(up, 2),
        proxy_cpu_us_per_request: px === null ? null : perOk(px),
        upstream_cpu_us_per_request: perOk(up),
        proxy_cpu: px === null ? null : round(px / wall, 2),
        upstream_cpu: round(up / wall, 2),
        wall_seconds: round(wall, 2),
        store:
          store0 === undefined || store1 === undefined
            ? null
            : {
                transactions: store1.transactions - store0.transactions,
                ops: store1.ops - store0.ops,
                wal_catch_ups: store1.wal_catch_ups - store0.wal_catch_ups,
                wal_catch_up_ms: store1.wal_catch_up_ms - store0.wal_catch_up_ms,
              },
        other_cores: machine.other_cores,
        iowait_cores: machine.iowait_cores,
        load1: load1(),
        results_file: resultsFile,
      };
    };

    let steps: Array<{ step: string; rate: number; seconds: number }> = [{ step: 'saturation', rate: 0, seconds: plan.saturationSeconds }];
    for (let r = 0; r < plan.rounds; r++) {
      for (let i = 0; i < steps.length; i++) {
        const st = steps[i] as (typeof steps)[number];
        const order: RunKind[] = r % 2 === 0 ? [...PROXY_TARGETS] : [...PROXY_TARGETS].reverse();
        if (st.rate === 0) order.push(DIRECT_ALONE);
        for (const t of order) {
          const m = await run(t, st.step, r, st.rate, st.seconds);
          measurements.push(m);
          log(
            `proxy round ${r + 1} ${st.step.padEnd(10)} ${(t === DIRECT_ALONE ? 'direct, upstream on the server core' : t).padEnd(10)} ${String(m.throughput_rps).padStart(6)} req/s ok ${m.ok}/${m.requests} p50 ${m.p50_ms} ms p99 ${m.p99_ms} ms` +
              `  proxy cpu ${m.proxy_cpu ?? '-'} (${m.proxy_cpu_us_per_request ?? '-'} µs/request)  upstream cpu ${m.upstream_cpu} (${m.upstream_cpu_us_per_request} µs/request)  other ${m.other_cores}` +
              (m.store === null ? '' : `  store: ${m.store.transactions} transactions, ${m.store.wal_catch_ups} WAL catch-ups (${m.store.wal_catch_up_ms} ms)`),
          );
        }
        if (r === 0 && st.rate === 0) {
          const low = Math.min(...measurements.filter((m) => m.target !== DIRECT_ALONE).map((m) => m.throughput_rps));
          const rate = Math.max(50, Math.round((plan.fixedShare * low) / 50) * 50);
          log(`proxy: fixed load ${rate} req/s (${plan.fixedShare} of the lowest saturation throughput, ${low} req/s)`);
          steps = [st, { step: `${rate}/s`, rate, seconds: plan.rateSeconds }];
        }
      }
    }

    const upstreamCount = (await (await fetch(`${origin}/-/count`)).json()) as UpstreamCount;
    await stopProcess(ours.child); // its last commits are in the store before it is read
    const tokenUsed = auditCounts(join(plan.dir, 'ours/data/pdp.db'), token.jti);

    const summaries: ProxyStepSummary[] = [];
    for (const st of steps) {
      const of = (t: RunKind): ProxyRun[] => measurements.filter((m) => m.target === t && m.step === st.step);
      const figures = async (t: RunKind): Promise<ProxyTargetFigures> => {
        const runs = of(t);
        const pooled = await pooledReport(plan.vegeta, plan.loadCpu, runs.map((m) => m.results_file), join(plan.dir, `proxy-${t.replace(/\W+/g, '_')}-${st.step.replace(/\W+/g, '_')}-pooled.json`));
        const ok = runs.reduce((a, m) => a + m.ok, 0);
        const perOk = (cpu: number): number => (ok === 0 ? Number.NaN : round((cpu / ok) * 1e6, 1));
        const throughput = Math.round(median(runs.map((m) => m.throughput_rps)));
        const proxied = t !== 'direct' && t !== DIRECT_ALONE;
        return {
          throughput_rps: throughput,
          p50_ms: ms(pooled.latencies['50th']),
          p99_ms: ms(pooled.latencies['99th']),
          p50_ms_median: round(median(runs.map((m) => m.p50_ms)), 3),
          ok,
          unexpected: runs.reduce((a, m) => a + m.unexpected, 0),
          proxy_cpu_us_per_request: proxied ? perOk(runs.reduce((a, m) => a + (m.proxy_cpu_seconds ?? 0), 0)) : null,
          upstream_cpu_us_per_request: perOk(runs.reduce((a, m) => a + m.upstream_cpu_seconds, 0)),
          proxy_cpu: proxied ? round(median(runs.map((m) => m.proxy_cpu ?? Number.NaN)), 2) : null,
          upstream_cpu: round(median(runs.map((m) => m.upstream_cpu)), 2),
          other_cores: round(Math.max(...runs.map((m) => m.other_cores)), 2),
          sustained: st.rate === 0 ? null : throughput >= SUSTAINED * st.rate,
        };
      };
      const targets = {} as Record<ProxyTarget, ProxyTargetFigures>;
      for (const t of PROXY_TARGETS) targets[t] = await figures(t);
      const direct = of('direct');
      const vs = {} as Record<ProxyPeer, ProxyVsDirect>;
      for (const p of PEERS) {
        const runs = of(p);
        const tr = runs.map((m, i) => round(m.throughput_rps / (direct[i]?.throughput_rps ?? Number.NaN), 3));
        const ap = runs.map((m, i) => round(m.p50_ms - (direct[i]?.p50_ms ?? Number.NaN), 3));
        vs[p] = {
          throughput_ratio: round(median(tr), 3),
          added_p50_ms: round(median(ap), 3),
          throughput_ratio_of_medians: round(targets[p].throughput_rps / targets.direct.throughput_rps, 3),
          added_p50_ms_pooled: round(targets[p].p50_ms - targets.direct.p50_ms, 3),
          rounds_throughput_ratio: tr,
          rounds_added_p50_ms: ap,
        };
      }
      const alones = of(DIRECT_ALONE);
      const reference =
        alones.length === 0
          ? undefined
          : {
              figures: await figures(DIRECT_ALONE),
              throughput_ratio: Object.fromEntries(PEERS.map((p) => [p, round(median(of(p).map((m, i) => m.throughput_rps / (alones[i]?.throughput_rps ?? Number.NaN))), 3)])) as Record<ProxyPeer, number>,
            };
      summaries.push({ step: st.step, offered_rps: st.rate === 0 ? null : st.rate, targets, vs_direct: vs, ...(reference === undefined ? {} : { reference }) });
    }

    const { vegeta: _v, dir: _d, ...shownPlan } = plan;
    return {
      plan: shownPlan,
      placement:
        plan.serverCpu === undefined
          ? 'not pinned'
          : `proxies on core ${plan.serverCpu} (one at a time; the other idle there), vegeta and the upstream on core ${plan.loadCpu} in all three cases; ` +
            `the reference run: a second upstream alone on core ${plan.serverCpu}, vegeta on core ${plan.loadCpu}`,
      token: { agent: 'code-review-agent', scope: token.scope, record: { ...PULL_RECORD }, expires_in: token.expires_in },
      steps: summaries,
      measurements,
      idle_cpu_us_per_s: idle,
      upstream: upstreamCount,
      audit: { token_used: tokenUsed, ours_ok_answers: oursOk, every_answer_audited: (tokenUsed['forwarded'] ?? 0) >= oursOk },
      all_expected: unexpectedTotal === 0,
      unexpected_examples: examples,
      other_cores_max: Math.max(0, ...measurements.map((m) => m.other_cores)),
    };
  } finally {
    await stopAll();
  }
}
