/**
 * HTTP: our `POST /v1/decide` (API-key auth, durable audit) against `opa run --server` answering
 * `POST /v1/data/agentpdp/decision` for the same Rego, data and inputs. Same load generator (vegeta), same
 * run, alternating per step (and the order flips each round), both servers pinned to the same core.
 *
 * Steps: saturation (`-rate=0`, N in flight) then fixed offered loads. Each measurement also records the
 * server's CPU use over the step (CPU seconds / wall seconds: ~1.0 means its core was busy throughout, well
 * below 1.0 at saturation means something else, e.g. the load generator, was the limit).
 */
import { join } from 'node:path';
import { CpuWatch, cpuSeconds, load1, rssBytes } from './lib/processes.js';
import type { RunningServer } from './lib/servers.js';
import { median, round } from './lib/timing.js';
import { attack, ms, pooledReport, writeTargets, type VegetaReport, type VegetaTarget } from './lib/vegeta.js';
import { BENCH_PEP, MIX, evaluationInputFor, weightedMix } from './lib/workload.js';

export interface HttpPlan {
  vegeta: string;
  dir: string;
  loadCpu: string | undefined;
  saturationSeconds: number;
  saturationWorkers: number;
  /**
   * Fixed offered loads in requests/s, or `auto`: these fractions of the lower of the two saturation
   * throughputs of round 1 (rounded to 50 req/s), so the ladder sits below saturation on any machine.
   */
  rates: number[] | { auto: number[] };
  rateSeconds: number;
  rounds: number;
  warmupSeconds: number;
}

export interface Measurement {
  server: 'ours' | 'opa';
  step: string;
  round: number;
  offered_rps: number | null;
  requests: number;
  throughput_rps: number;
  success: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  mean_ms: number;
  status_codes: Record<string, number>;
  errors: string[];
  server_cpu: number;
  /** Cores' worth of CPU used by other processes on the machine during the step (not the bench, not the servers). */
  other_cores: number;
  /** Cores' worth of time the machine spent waiting for disk during the step. */
  iowait_cores: number;
  load1: number;
  /** vegeta's binary results of this step, for the pooled percentiles. */
  results_file: string;
}

export interface StepSummary {
  step: string;
  offered_rps: number | null;
  ours: ServerStep;
  opa: ServerStep;
  /** ours/OPA: > 1 means ours is higher (better for throughput, worse for latency). */
  ratio: { throughput: number; p50: number; p99: number };
  /** At a fixed load: did the server answer at least 95% of the offered rate? (null at saturation) */
  sustained: { ours: boolean | null; opa: boolean | null };
}

/**
 * One server at one step over all rounds. Throughput and CPU are medians of the rounds; p50 and p99 are percentiles
 * of every request of every round pooled (`requests` of them): a p99 of one 6 s step is its ~20th-slowest request,
 * which one stall of the VM moves, while the pooled one needs the stall in every round.
 */
export interface ServerStep {
  throughput_rps: number;
  p50_ms: number;
  p99_ms: number;
  requests: number;
  success: number;
  server_cpu: number;
  other_cores: number;
  iowait_cores: number;
}

/** A fixed offered load counts as sustained when at least this share of it was answered. */
export const SUSTAINED = 0.95;

/** Our body is the wire request; OPA's is `{"input": <the input our PDP builds for it>}`. */
export function targetsFor(server: RunningServer): VegetaTarget[] {
  return weightedMix().map((c): VegetaTarget =>
    server.name === 'ours'
      ? {
          method: 'POST',
          url: server.decideUrl,
          body: JSON.stringify(c.request),
          header: { 'Content-Type': ['application/json'], Authorization: [`Bearer ${BENCH_PEP.key}`] },
        }
      : { method: 'POST', url: server.decideUrl, body: JSON.stringify({ input: evaluationInputFor(c.request) }), header: { 'Content-Type': ['application/json'] } },
  );
}

export interface PreflightRow {
  case: string;
  kind: string;
  expected: string;
  ours: string;
  opa: string;
}

/** Every case once on both servers: same outcome and granted scopes, and what the mix says it is. */
export async function preflight(ours: RunningServer, opa: RunningServer): Promise<PreflightRow[]> {
  const rows: PreflightRow[] = [];
  const show = (o: { outcome?: string; granted_scopes?: string[] } | undefined): string => `${o?.outcome ?? '?'} [${(o?.granted_scopes ?? []).join(' ')}]`;
  for (const c of MIX) {
    const a = await fetch(ours.decideUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${BENCH_PEP.key}`, 'content-type': 'application/json' },
      body: JSON.stringify(c.request),
    });
    const b = await fetch(opa.decideUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: evaluationInputFor(c.request) }) });
    const oursBody = (await a.json()) as { outcome?: string; granted_scopes?: string[] };
    const opaBody = ((await b.json()) as { result?: { outcome?: string; granted_scopes?: string[] } }).result;
    const row = { case: c.name, kind: c.kind, expected: show({ outcome: c.expect.outcome, granted_scopes: c.expect.granted }), ours: show(oursBody), opa: show(opaBody) };
    rows.push(row);
    if (a.status !== 200 || b.status !== 200 || row.ours !== row.expected || row.opa !== row.expected) {
      throw new Error(`preflight: "${c.name}" disagrees (status ${a.status}/${b.status}): expected ${row.expected}, ours ${row.ours}, opa ${row.opa}`);
    }
  }
  return rows;
}

async function measure(server: RunningServer, plan: HttpPlan, step: string, round_: number, rate: number, seconds: number, targetsFile: string, allPids: number[]): Promise<Measurement> {
  const watch = new CpuWatch(allPids);
  const cpu0 = cpuSeconds(server.pid);
  const t0 = process.hrtime.bigint();
  const resultsFile = join(plan.dir, `${server.name}-${step.replace(/\W+/g, '_')}-r${round_}.bin`);
  const report: VegetaReport = await attack({
    vegeta: plan.vegeta,
    targetsFile,
    rate,
    durationSeconds: seconds,
    maxWorkers: rate === 0 ? plan.saturationWorkers : 1024,
    cpu: plan.loadCpu,
    resultsFile,
  });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = (cpuSeconds(server.pid) - cpu0) / wall;
  const machine = watch.stop();
  return {
    server: server.name,
    step,
    round: round_,
    offered_rps: rate === 0 ? null : rate,
    requests: report.requests,
    throughput_rps: Math.round(report.throughput),
    success: round(report.success, 4),
    p50_ms: ms(report.latencies['50th']),
    p90_ms: ms(report.latencies['90th']),
    p99_ms: ms(report.latencies['99th']),
    max_ms: ms(report.latencies.max),
    mean_ms: ms(report.latencies.mean),
    status_codes: report.status_codes,
    errors: (report.errors ?? []).slice(0, 3),
    server_cpu: round(cpu, 2),
    other_cores: machine.other_cores,
    iowait_cores: machine.iowait_cores,
    load1: load1(),
    results_file: resultsFile,
  };
}

export interface HttpResult {
  preflight: PreflightRow[];
  measurements: Measurement[];
  steps: StepSummary[];
  rss_mb_after: { ours: number; opa: number };
}

export async function runHttpBench(ours: RunningServer, opa: RunningServer, plan: HttpPlan, log: (line: string) => void): Promise<HttpResult> {
  const files = new Map<RunningServer, string>();
  for (const s of [ours, opa]) {
    const file = join(plan.dir, `${s.name}.targets.jsonl`);
    writeTargets(file, targetsFor(s));
    files.set(s, file);
  }
  const pre = await preflight(ours, opa);
  log(`preflight: ${pre.length} cases, both servers agree with the expected outcomes`);
  for (const s of [ours, opa]) {
    await attack({ vegeta: plan.vegeta, targetsFile: files.get(s) as string, rate: 500, durationSeconds: plan.warmupSeconds, maxWorkers: 256, cpu: plan.loadCpu, resultsFile: join(plan.dir, `${s.name}-warmup.bin`) });
  }
  const saturation = { step: 'saturation', rate: 0, seconds: plan.saturationSeconds };
  const ladder = (rates: number[]): Array<{ step: string; rate: number; seconds: number }> =>
    rates.map((r) => ({ step: `${r}/s`, rate: r, seconds: plan.rateSeconds }));
  let steps = [saturation, ...(Array.isArray(plan.rates) ? ladder(plan.rates) : [])];
  const measurements: Measurement[] = [];
  for (let r = 0; r < plan.rounds; r++) {
    for (let i = 0; i < steps.length; i++) {
      const st = steps[i] as (typeof steps)[number];
      const order = r % 2 === 0 ? [ours, opa] : [opa, ours];
      for (const s of order) {
        const m = await measure(s, plan, st.step, r, st.rate, st.seconds, files.get(s) as string, [ours.pid, opa.pid]);
        measurements.push(m);
        log(
          `round ${r + 1} ${st.step.padEnd(10)} ${s.name.padEnd(4)} ${String(m.throughput_rps).padStart(6)} req/s ok ${(m.success * 100).toFixed(1)}% ` +
            `p50 ${m.p50_ms} ms p99 ${m.p99_ms} ms  server cpu ${m.server_cpu}  other ${m.other_cores} iowait ${m.iowait_cores}`,
        );
        await new Promise((ok) => setTimeout(ok, 500));
      }
      if (r === 0 && st.rate === 0 && !Array.isArray(plan.rates)) {
        const sat = Math.min(...measurements.filter((m) => m.step === 'saturation').map((m) => m.throughput_rps));
        const rates = [...new Set(plan.rates.auto.map((f) => Math.max(50, Math.round((f * sat) / 50) * 50)))];
        log(`fixed loads: ${plan.rates.auto.join(', ')} of the lower saturation throughput (${sat} req/s): ${rates.join(', ')} req/s`);
        steps = [saturation, ...ladder(rates)];
      }
    }
  }
  const pick = async (server: 'ours' | 'opa', step: string): Promise<ServerStep> => {
    const ms_ = measurements.filter((m) => m.server === server && m.step === step);
    const files = ms_.map((m) => m.results_file);
    const pooled = await pooledReport(plan.vegeta, plan.loadCpu, files, join(plan.dir, `${server}-${step.replace(/\W+/g, '_')}-pooled.json`));
    return {
      throughput_rps: Math.round(median(ms_.map((m) => m.throughput_rps))),
      p50_ms: ms(pooled.latencies['50th']),
      p99_ms: ms(pooled.latencies['99th']),
      requests: pooled.requests,
      success: round(Math.min(...ms_.map((m) => m.success)), 4),
      server_cpu: round(median(ms_.map((m) => m.server_cpu)), 2),
      other_cores: round(Math.max(...ms_.map((m) => m.other_cores)), 2),
      iowait_cores: round(Math.max(...ms_.map((m) => m.iowait_cores)), 2),
    };
  };
  const summaries: StepSummary[] = [];
  for (const { step, rate } of steps) {
    const a = await pick('ours', step);
    const b = await pick('opa', step);
    summaries.push({
      step,
      offered_rps: rate === 0 ? null : rate,
      ours: a,
      opa: b,
      ratio: { throughput: round(a.throughput_rps / b.throughput_rps, 2), p50: round(a.p50_ms / b.p50_ms, 2), p99: round(a.p99_ms / b.p99_ms, 2) },
      sustained: rate === 0 ? { ours: null, opa: null } : { ours: a.throughput_rps >= SUSTAINED * rate, opa: b.throughput_rps >= SUSTAINED * rate },
    });
  }
  return { preflight: pre, measurements, steps: summaries, rss_mb_after: { ours: round(rssBytes(ours.pid) / 2 ** 20, 1), opa: round(rssBytes(opa.pid) / 2 ** 20, 1) } };
}
