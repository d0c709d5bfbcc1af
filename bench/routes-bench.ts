/**
 * Routes: what one request costs our server on `POST /v1/decide`, `POST /v1/tokens` (redeem) and
 * `POST /v1/introspect`, measured the same way: the same vegeta, the same in-flight requests at saturation, the
 * same fixed offered load for all three, the server pinned to the same core. Each measurement reads the server's
 * CPU time (utime + stime of all its threads, /proc/<pid>/stat) before and after, and divides by the requests it
 * answered: server CPU µs per request, per route.
 *
 * - decide: the HTTP mix of http-bench (the same targets as the comparison with OPA).
 * - redeem: every request needs a decision id of its own (a decision is redeemed once). Before each redeem run
 *   the driver makes enough allowed decisions over HTTP (the allowed cases of the mix, pep key, sent by vegeta),
 *   and vegeta reads their ids with `-lazy`: each id sent once, the run ending at its duration or at the last id.
 * - introspect: a few live tokens (one per allowed case of the mix, redeemed just before the run) introspected
 *   over and over by a resource_server caller, form-encoded `token=` bodies as RFC 7662 says. Checked active
 *   before and after the run, so the run measured the full path, not the cheap "inactive" answer.
 *
 * Steps: saturation, then a fixed offered load (a share of the lowest saturation throughput of round 1, so every
 * route sustains it). Order of the routes flips each round.
 */
import { join } from 'node:path';
import { CpuWatch, cpuSeconds, load1 } from './lib/processes.js';
import type { RunningServer } from './lib/servers.js';
import { median, round } from './lib/timing.js';
import { attack, ms, pooledReport, resultBodies, writeTargets, type VegetaReport, type VegetaTarget } from './lib/vegeta.js';
import { BENCH_PEP, BENCH_RESOURCE_SERVER, allowedMix } from './lib/workload.js';
import { SUSTAINED, targetsFor } from './http-bench.js';

export const ROUTES = ['decide', 'redeem', 'introspect'] as const;
export type Route = (typeof ROUTES)[number];
export const ROUTE_PATH: Record<Route, string> = { decide: 'POST /v1/decide', redeem: 'POST /v1/tokens', introspect: 'POST /v1/introspect' };

export interface RoutesPlan {
  vegeta: string;
  dir: string;
  loadCpu: string | undefined;
  saturationSeconds: number;
  saturationWorkers: number;
  /** The fixed offered load: this share of the lowest saturation throughput of round 1 (rounded to 50 req/s). */
  fixedShare: number;
  rateSeconds: number;
  rounds: number;
  warmupSeconds: number;
  /** Seconds of the idle server's CPU use measured before the runs (timers, the checkpointer). */
  idleSeconds: number;
}

export interface RouteMeasurement {
  route: Route;
  step: string;
  round: number;
  offered_rps: number | null;
  /** Requests the server answered (any HTTP status); vegeta's "no targets" results and transport errors excluded. */
  answered: number;
  throughput_rps: number;
  /** Share of the answered requests with the expected status (200; 201 for a redeem). */
  success: number;
  p50_ms: number;
  p99_ms: number;
  status_codes: Record<string, number>;
  errors: string[];
  /** Server CPU seconds (all threads) over the run. */
  cpu_seconds: number;
  cpu_us_per_request: number;
  /** Server CPU seconds per wall second. */
  server_cpu: number;
  wall_seconds: number;
  other_cores: number;
  iowait_cores: number;
  load1: number;
  /** redeem: decision ids prepared for the run, and whether the run used them all before its duration. */
  prepared?: number;
  ran_out?: boolean;
  results_file: string;
}

export interface RouteFigures {
  throughput_rps: number;
  p50_ms: number;
  p99_ms: number;
  answered: number;
  success: number;
  /** Σ server CPU / Σ answered requests over the rounds. */
  cpu_us_per_request: number;
  server_cpu: number;
  other_cores: number;
  /** At the fixed load: answered at least 95% of it (SUSTAINED)? null at saturation. */
  sustained: boolean | null;
}

export interface RouteStepSummary {
  step: string;
  offered_rps: number | null;
  routes: Record<Route, RouteFigures>;
  /** Server CPU per request, over decide's. */
  ratio: { redeem_decide: number; introspect_decide: number };
}

export interface RoutesResult {
  steps: RouteStepSummary[];
  measurements: RouteMeasurement[];
  /** The idle server's CPU, in µs per wall second (what a fixed-load run pays that no request caused). */
  idle_cpu_us_per_s: number;
  decisions_prepared: number;
  tokens_introspected: number;
}

const pepHeaders = { authorization: `Bearer ${BENCH_PEP.key}`, 'content-type': 'application/json' };

/** How the driver makes decisions in bulk: vegeta on the load core, as many in flight as at saturation. */
export interface Maker {
  vegeta: string;
  cpu: string | undefined;
  dir: string;
  workers: number;
}

let made = 0;

/**
 * `n` allowed decisions made now for the bench pep (the allowed cases of the mix in turn): their ids. vegeta sends
 * each decide once (`-lazy`, stopping at the last), keeps the bodies, and `vegeta encode` hands them back: about
 * as fast as the server decides, where a fetch loop in the driver was 3-4× slower.
 */
export async function prepareDecisions(server: RunningServer, n: number, maker: Maker): Promise<string[]> {
  const cases = allowedMix();
  const file = join(maker.dir, `prepare-${made++}.jsonl`);
  writeTargets(
    file,
    Array.from({ length: n }, (_, i): VegetaTarget => ({
      method: 'POST',
      url: server.decideUrl,
      body: JSON.stringify((cases[i % cases.length] as (typeof cases)[number]).request),
      header: { 'Content-Type': ['application/json'], Authorization: [`Bearer ${BENCH_PEP.key}`] },
    })),
  );
  // Bounded twice: by the n targets (-lazy), and by a duration no preparation needs.
  await attack({ vegeta: maker.vegeta, targetsFile: file, rate: 0, durationSeconds: 600, maxWorkers: maker.workers, cpu: maker.cpu, resultsFile: `${file}.bin`, lazy: true });
  const ids: string[] = [];
  const refused: string[] = [];
  for (const r of await resultBodies(maker.vegeta, maker.cpu, `${file}.bin`)) {
    if (r.error.includes('no targets')) continue;
    const body = r.code === 200 ? (JSON.parse(r.body) as { decision_id?: string; allow?: boolean }) : undefined;
    if (body?.allow === true && body.decision_id) ids.push(body.decision_id);
    else refused.push(`${r.code} ${r.error} ${r.body.slice(0, 200)}`);
  }
  if (ids.length !== n) throw new Error(`preparing ${n} decisions: ${ids.length} allowed; ${refused.length} not, e.g. ${refused.slice(0, 3).join(' | ')}`);
  return ids;
}

/** One token per allowed case of the mix, redeemed now. */
export async function prepareTokens(server: RunningServer): Promise<string[]> {
  const tokens: string[] = [];
  for (const c of allowedMix()) {
    const d = await fetch(server.decideUrl, { method: 'POST', headers: pepHeaders, body: JSON.stringify(c.request) });
    const decision = (await d.json()) as { decision_id?: string; allow?: boolean };
    if (d.status !== 200 || decision.allow !== true || !decision.decision_id) throw new Error(`"${c.name}" gave ${d.status} ${JSON.stringify(decision).slice(0, 300)}`);
    const id = decision.decision_id;
    const res = await fetch(`${server.url}/v1/tokens`, { method: 'POST', headers: pepHeaders, body: JSON.stringify({ decision_id: id }) });
    const body = (await res.json()) as { access_token?: string };
    if (res.status !== 201 || !body.access_token) throw new Error(`redeeming ${id}: ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
    tokens.push(body.access_token);
  }
  return tokens;
}

const introspectBody = (token: string): string => new URLSearchParams({ token }).toString();
const introspectHeader = { 'Content-Type': ['application/x-www-form-urlencoded'], Authorization: [`Bearer ${BENCH_RESOURCE_SERVER.key}`] };

/** How many of `tokens` the server calls active (asked as the resource server, like the run). */
async function activeCount(server: RunningServer, tokens: readonly string[]): Promise<number> {
  let active = 0;
  for (const t of tokens) {
    const res = await fetch(`${server.url}/v1/introspect`, {
      method: 'POST',
      headers: { authorization: `Bearer ${BENCH_RESOURCE_SERVER.key}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: introspectBody(t),
    });
    const body = (await res.json()) as { active?: boolean };
    if (res.status === 200 && body.active === true) active++;
  }
  return active;
}

export function redeemTargets(server: RunningServer, decisionIds: readonly string[]): VegetaTarget[] {
  return decisionIds.map((id) => ({
    method: 'POST',
    url: `${server.url}/v1/tokens`,
    body: JSON.stringify({ decision_id: id }),
    header: { 'Content-Type': ['application/json'], Authorization: [`Bearer ${BENCH_PEP.key}`] },
  }));
}

export function introspectTargets(server: RunningServer, tokens: readonly string[]): VegetaTarget[] {
  return tokens.map((t) => ({ method: 'POST', url: `${server.url}/v1/introspect`, body: introspectBody(t), header: introspectHeader }));
}

const EXPECTED_STATUS: Record<Route, string> = { decide: '200', redeem: '201', introspect: '200' };

/** Requests the server answered: every result with an HTTP status (vegeta records 0 for no response). */
export function answeredOf(report: VegetaReport): number {
  return Object.entries(report.status_codes).reduce((a, [code, n]) => (code === '0' ? a : a + n), 0);
}

export async function runRoutesBench(server: RunningServer, plan: RoutesPlan, log: (line: string) => void, otherPids: number[] = []): Promise<RoutesResult> {
  const pids = [server.pid, ...otherPids];
  const decideFile = join(plan.dir, 'routes-decide.targets.jsonl');
  writeTargets(decideFile, targetsFor(server));
  let decisionsPrepared = 0;
  let tokensIntrospected = 0;
  let fileNo = 0;

  /** A targets file for one run of `route` (fresh decision ids, fresh tokens), and whether vegeta reads it lazily. */
  const prepare = async (route: Route, need: number): Promise<{ file: string; lazy: boolean; prepared?: number; tokens?: string[] }> => {
    if (route === 'decide') return { file: decideFile, lazy: false };
    const file = join(plan.dir, `routes-${route}-${fileNo++}.targets.jsonl`);
    if (route === 'redeem') {
      const t0 = Date.now();
      const ids = await prepareDecisions(server, need, { vegeta: plan.vegeta, cpu: plan.loadCpu, dir: plan.dir, workers: plan.saturationWorkers });
      decisionsPrepared += ids.length;
      log(`routes: ${ids.length} allowed decisions prepared for the redeem run in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      writeTargets(file, redeemTargets(server, ids));
      return { file, lazy: true, prepared: ids.length };
    }
    const tokens = await prepareTokens(server);
    tokensIntrospected += tokens.length;
    const active = await activeCount(server, tokens);
    if (active !== tokens.length) throw new Error(`routes: ${tokens.length - active} of ${tokens.length} fresh tokens introspect inactive`);
    writeTargets(file, introspectTargets(server, tokens));
    return { file, lazy: false, tokens };
  };

  const run = async (route: Route, step: string, round_: number, rate: number, seconds: number, need: number): Promise<RouteMeasurement> => {
    const t = await prepare(route, need);
    // The tail of what ran before (commits, the checkpointer copying their WAL pages: every 250 ms) is not this run's.
    await new Promise((ok) => setTimeout(ok, 1000));
    const resultsFile = join(plan.dir, `routes-${route}-${step.replace(/\W+/g, '_')}-r${round_}.bin`);
    const watch = new CpuWatch(pids);
    const cpu0 = cpuSeconds(server.pid);
    const t0 = process.hrtime.bigint();
    const report = await attack({
      vegeta: plan.vegeta,
      targetsFile: t.file,
      rate,
      durationSeconds: seconds,
      maxWorkers: rate === 0 ? plan.saturationWorkers : 1024,
      cpu: plan.loadCpu,
      resultsFile,
      lazy: t.lazy,
    });
    const cpu = cpuSeconds(server.pid) - cpu0;
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const machine = watch.stop();
    const answered = answeredOf(report);
    const ok = report.status_codes[EXPECTED_STATUS[route]] ?? 0;
    if (t.tokens) {
      const active = await activeCount(server, t.tokens);
      if (active !== t.tokens.length) log(`routes: WARNING ${t.tokens.length - active} of the introspected tokens went inactive during the run`);
    }
    const ranOut = (report.errors ?? []).some((e) => e.includes('no targets'));
    return {
      route,
      step,
      round: round_,
      offered_rps: rate === 0 ? null : rate,
      answered,
      throughput_rps: Math.round(report.throughput),
      success: answered === 0 ? 0 : round(ok / answered, 4),
      p50_ms: ms(report.latencies['50th']),
      p99_ms: ms(report.latencies['99th']),
      status_codes: report.status_codes,
      errors: (report.errors ?? []).slice(0, 3),
      cpu_seconds: round(cpu, 2),
      cpu_us_per_request: answered === 0 ? Number.NaN : round((cpu / answered) * 1e6, 1),
      server_cpu: round(cpu / wall, 2),
      wall_seconds: round(wall, 2),
      other_cores: machine.other_cores,
      iowait_cores: machine.iowait_cores,
      load1: load1(),
      ...(t.prepared !== undefined ? { prepared: t.prepared, ran_out: ranOut } : {}),
      results_file: resultsFile,
    };
  };

  // Idle: what the server spends with no requests (sampled before any load, after start-up settled).
  await new Promise((ok) => setTimeout(ok, 500));
  const idle0 = cpuSeconds(server.pid);
  const idleT0 = process.hrtime.bigint();
  await new Promise((ok) => setTimeout(ok, plan.idleSeconds * 1000));
  const idleCpuUsPerS = round(((cpuSeconds(server.pid) - idle0) / (Number(process.hrtime.bigint() - idleT0) / 1e9)) * 1e6, 0);

  // Warm-up of every route (JIT, the redeem and introspect paths' first calls), not measured.
  const warmRate = 500;
  for (const route of ROUTES) {
    const t = await prepare(route, warmRate * plan.warmupSeconds + 10);
    await attack({ vegeta: plan.vegeta, targetsFile: t.file, rate: warmRate, durationSeconds: plan.warmupSeconds, maxWorkers: 256, cpu: plan.loadCpu, resultsFile: join(plan.dir, `routes-${route}-warmup.bin`), lazy: t.lazy });
  }

  const measurements: RouteMeasurement[] = [];
  /**
   * Decision ids a redeem run needs: its rate × duration; at saturation, 1.5× the best saturation throughput seen
   * of redeem, else of decide (a redeem does a decide's write and more, plus a signature). Should the server still
   * outrun it, the run ends at the last id and says so (ran_out); its figures are per request, so they stand.
   */
  const redeemNeed = (rate: number, seconds: number): number => {
    if (rate > 0) return Math.ceil(rate * seconds * 1.02) + 50;
    const sat = (r: Route): number => Math.max(0, ...measurements.filter((m) => m.route === r && m.offered_rps === null).map((m) => m.throughput_rps));
    const perSecond = 1.5 * (sat('redeem') || sat('decide') || 4000);
    return Math.ceil(perSecond * seconds) + 200;
  };
  let steps: Array<{ step: string; rate: number; seconds: number }> = [{ step: 'saturation', rate: 0, seconds: plan.saturationSeconds }];
  for (let r = 0; r < plan.rounds; r++) {
    for (let i = 0; i < steps.length; i++) {
      const st = steps[i] as (typeof steps)[number];
      // Round 1 measures decide first: its saturation sizes the first redeem run's decisions.
      const order = r % 2 === 0 ? [...ROUTES] : [...ROUTES].reverse();
      for (const route of order) {
        const m = await run(route, st.step, r, st.rate, st.seconds, route === 'redeem' ? redeemNeed(st.rate, st.seconds) : 0);
        measurements.push(m);
        log(
          `routes round ${r + 1} ${st.step.padEnd(10)} ${route.padEnd(10)} ${String(m.throughput_rps).padStart(6)} req/s ok ${(m.success * 100).toFixed(1)}% ` +
            `p50 ${m.p50_ms} ms p99 ${m.p99_ms} ms  server cpu ${m.server_cpu}  ${m.cpu_us_per_request} µs cpu/request  other ${m.other_cores}` +
            (m.ran_out ? `  (used all ${m.prepared} decisions in ${m.wall_seconds} s)` : ''),
        );
      }
      if (r === 0 && st.rate === 0) {
        const low = Math.min(...measurements.filter((m) => m.offered_rps === null).map((m) => m.throughput_rps));
        const rate = Math.max(50, Math.round((plan.fixedShare * low) / 50) * 50);
        log(`routes: fixed load ${rate} req/s (${plan.fixedShare} of the lowest saturation throughput, ${low} req/s)`);
        steps = [steps[0] as (typeof steps)[number], { step: `${rate}/s`, rate, seconds: plan.rateSeconds }];
      }
    }
  }

  const figures = async (route: Route, step: string, rate: number): Promise<RouteFigures> => {
    const ms_ = measurements.filter((m) => m.route === route && m.step === step);
    const pooled = await pooledReport(plan.vegeta, plan.loadCpu, ms_.map((m) => m.results_file), join(plan.dir, `routes-${route}-${step.replace(/\W+/g, '_')}-pooled.json`));
    const answered = ms_.reduce((a, m) => a + m.answered, 0);
    const cpu = ms_.reduce((a, m) => a + m.cpu_seconds, 0);
    const throughput = Math.round(median(ms_.map((m) => m.throughput_rps)));
    return {
      throughput_rps: throughput,
      p50_ms: ms(pooled.latencies['50th']),
      p99_ms: ms(pooled.latencies['99th']),
      answered,
      success: round(Math.min(...ms_.map((m) => m.success)), 4),
      cpu_us_per_request: answered === 0 ? Number.NaN : round((cpu / answered) * 1e6, 1),
      server_cpu: round(median(ms_.map((m) => m.server_cpu)), 2),
      other_cores: round(Math.max(...ms_.map((m) => m.other_cores)), 2),
      sustained: rate === 0 ? null : throughput >= SUSTAINED * rate,
    };
  };
  const summaries: RouteStepSummary[] = [];
  for (const st of steps) {
    const routes = {} as Record<Route, RouteFigures>;
    for (const route of ROUTES) routes[route] = await figures(route, st.step, st.rate);
    summaries.push({
      step: st.step,
      offered_rps: st.rate === 0 ? null : st.rate,
      routes,
      ratio: {
        redeem_decide: round(routes.redeem.cpu_us_per_request / routes.decide.cpu_us_per_request, 2),
        introspect_decide: round(routes.introspect.cpu_us_per_request / routes.decide.cpu_us_per_request, 2),
      },
    });
  }
  return { steps: summaries, measurements, idle_cpu_us_per_s: idleCpuUsPerS, decisions_prepared: decisionsPrepared, tokens_introspected: tokensIntrospected };
}
