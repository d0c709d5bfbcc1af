/**
 * Scale: policy load time, memory and evaluation latency with N agents. The agents are the four shipped agent
 * policies as templates (`support-resolver-000042`, …), written as YAML files to a temp folder with the shipped
 * integrations and roles, so the load time includes reading and parsing. One process per N (the driver starts
 * it with --expose-gc) so RSS and heap deltas belong to that N alone.
 *
 *   node --expose-gc .build/bench/bench/scale-bench.js --agents 100000 [--seconds 1]   prints one JSON line
 *
 * Latency against size is measured apart, in ONE process (`--interleave 10,1000,100000`): an evaluator per size,
 * timed in alternating batches, so noise from the machine (other tenants, frequency changes) falls on every size
 * alike. Separate processes measured minutes apart gave ratios from 0.88x to 1.24x for the same code. Its data is
 * the templates' compiled entries under N ids, which is what loading N YAML files gives (checked: same policy
 * revision as the YAML load, for the sizes up to 1,000), without 90 s of YAML parsing per size.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { EvaluationInputV1 } from '../src/policy/decision-types.js';
import { readBundleFile } from '../src/policy/bundle-reader.js';
import { loadPolicyDir } from '../src/policy/policy-loader.js';
import { policyRevision } from '../src/policy/policy-revision.js';
import { WasmEvaluator } from '../src/policy/wasm-evaluator.js';
import { BUNDLE, POLICIES } from './lib/servers.js';
import { isMain, median, round, timeLoop, type LoopTiming } from './lib/timing.js';
import { BENCH_AGENTS, MIX, evaluationInputFor } from './lib/workload.js';

export interface ScaleResult {
  agents: number;
  policy_bytes: number;
  /** Read, parse, validate and compile the YAML folder (loadPolicyDir). */
  load_policies_ms: number;
  /** Instantiate the WASM module and set its data (WasmEvaluator.create). */
  load_wasm_ms: number;
  load_total_ms: number;
  compiled_data_bytes: number;
  rss_before_mb: number;
  rss_after_mb: number;
  rss_delta_mb: number;
  heap_delta_mb: number;
  /** WasmEvaluator.evaluate over the mix, each request aimed at a random one of the N agents. */
  evaluate: LoopTiming;
  outcomes: Record<string, number>;
}

/** Evaluation latency per size, measured interleaved in one process. */
export interface ScaleLatency {
  rounds: number;
  batch: number;
  sizes: Array<{ agents: number; median_batch_us: number; vs_smallest: number }>;
}

const MB = 1024 * 1024;
const gc = (): void => (globalThis as { gc?: () => void }).gc?.();

/** The agent template texts, full-line comments stripped, with their `id:` line as the place to rename. */
function templates(): Map<string, string> {
  const out = new Map<string, string>();
  for (const agent of BENCH_AGENTS) {
    const text = readFileSync(join(POLICIES, 'agents', `${agent}.yaml`), 'utf8')
      .split('\n')
      .filter((l) => !/^\s*#/.test(l))
      .join('\n');
    if (!text.includes(`id: ${agent}\n`)) throw new Error(`template ${agent} has no "id: ${agent}" line`);
    out.set(agent, text);
  }
  return out;
}

export const scaledId = (template: string, k: number): string => `${template}-${String(k).padStart(6, '0')}`;

/** Writes N agents (round-robin over the four templates) plus the shipped integrations and roles; returns bytes written. */
export function writeScaledPolicies(dir: string, agents: number): number {
  cpSync(join(POLICIES, 'integrations'), join(dir, 'integrations'), { recursive: true });
  cpSync(join(POLICIES, 'roles'), join(dir, 'roles'), { recursive: true });
  mkdirSync(join(dir, 'agents'));
  const t = templates();
  let bytes = 0;
  for (let i = 0; i < agents; i++) {
    const template = BENCH_AGENTS[i % BENCH_AGENTS.length] as string;
    const id = scaledId(template, Math.floor(i / BENCH_AGENTS.length));
    const text = (t.get(template) as string).replace(`id: ${template}\n`, `id: ${id}\n`);
    writeFileSync(join(dir, 'agents', `${id}.yaml`), text);
    bytes += text.length;
  }
  return bytes;
}

/** 4096 mix inputs, each aimed at a pseudo-random agent of its template (deterministic: a fixed LCG). */
function scaledInputs(agents: number): EvaluationInputV1[] {
  const perTemplate = Math.max(1, Math.floor(agents / BENCH_AGENTS.length));
  let seed = 42;
  const next = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed;
  };
  const out: EvaluationInputV1[] = [];
  for (let i = 0; i < 4096; i++) {
    const c = MIX[i % MIX.length];
    if (c === undefined) continue;
    const input = evaluationInputFor(c.request);
    out.push({ ...input, agent_id: scaledId(input.agent_id, next() % perTemplate) });
  }
  return out;
}

export async function runScale(agents: number, seconds: number): Promise<ScaleResult> {
  // tmpfs when there is one: writing 100,000 small files to a shared disk takes minutes and measures nothing.
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'agent-pdp-scale-'));
  try {
    const policyBytes = writeScaledPolicies(dir, agents);
    const bundle = await readBundleFile(BUNDLE);
    const inputs = scaledInputs(agents);
    gc();
    const rss0 = process.memoryUsage().rss;
    const heap0 = process.memoryUsage().heapUsed;
    const t0 = process.hrtime.bigint();
    const set = await loadPolicyDir(dir);
    const t1 = process.hrtime.bigint();
    const evaluator = await WasmEvaluator.create(bundle, set.data as unknown as Record<string, unknown>, set.revision);
    const t2 = process.hrtime.bigint();
    if (set.agents.length !== agents) throw new Error(`loaded ${set.agents.length} agents, expected ${agents}`);
    gc();
    const rss1 = process.memoryUsage().rss;
    const heap1 = process.memoryUsage().heapUsed;
    const outcomes: Record<string, number> = {};
    for (const input of inputs.slice(0, MIX.length)) {
      const o = evaluator.evaluate(input).outcome;
      outcomes[o] = (outcomes[o] ?? 0) + 1;
    }
    const evaluate = timeLoop((i) => evaluator.evaluate(inputs[i % inputs.length] as EvaluationInputV1), seconds);
    return {
      agents,
      policy_bytes: policyBytes,
      load_policies_ms: round(Number(t1 - t0) / 1e6, 1),
      load_wasm_ms: round(Number(t2 - t1) / 1e6, 1),
      load_total_ms: round(Number(t2 - t0) / 1e6, 1),
      compiled_data_bytes: JSON.stringify(set.data).length,
      rss_before_mb: round(rss0 / MB, 1),
      rss_after_mb: round(rss1 / MB, 1),
      rss_delta_mb: round((rss1 - rss0) / MB, 1),
      heap_delta_mb: round((heap1 - heap0) / MB, 1),
      evaluate,
      outcomes,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

type PolicyData = { policies: { agents: Record<string, unknown>; integrations: unknown } };

/** The compiled data of N agents: the four templates' compiled entries under scaledId names. */
function scaledData(templates: PolicyData, agents: number): PolicyData {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < agents; i++) {
    const template = BENCH_AGENTS[i % BENCH_AGENTS.length] as string;
    out[scaledId(template, Math.floor(i / BENCH_AGENTS.length))] = templates.policies.agents[scaledId(template, 0)];
  }
  return { policies: { agents: out, integrations: templates.policies.integrations } };
}

async function loadScaled(agents: number): Promise<{ data: PolicyData; revision: string }> {
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'agent-pdp-scale-'));
  try {
    writeScaledPolicies(dir, agents);
    const set = await loadPolicyDir(dir);
    return { data: set.data as unknown as PolicyData, revision: set.revision };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every size's evaluator in this process, timed `rounds` times each in alternating order, `batch` calls a time. */
export async function runInterleaved(sizes: readonly number[], rounds: number, batch = 2000): Promise<ScaleLatency> {
  const templates = (await loadScaled(BENCH_AGENTS.length)).data;
  const bundle = await readBundleFile(BUNDLE);
  const runs: Array<{ agents: number; evaluator: WasmEvaluator; inputs: EvaluationInputV1[]; samples: number[] }> = [];
  for (const agents of sizes) {
    const data = scaledData(templates, agents);
    const revision = policyRevision(data);
    if (agents <= 1000 && (await loadScaled(agents)).revision !== revision) {
      throw new Error(`the scaled data of ${agents} agents differs from loading their YAML files`);
    }
    const evaluator = await WasmEvaluator.create(bundle, data as unknown as Record<string, unknown>, revision);
    runs.push({ agents, evaluator, inputs: scaledInputs(agents), samples: [] });
  }
  for (const run of runs) for (let i = 0; i < batch; i++) run.evaluator.evaluate(run.inputs[i % run.inputs.length] as EvaluationInputV1);
  for (let r = 0; r < rounds; r++) {
    for (const run of r % 2 === 0 ? runs : [...runs].reverse()) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < batch; i++) run.evaluator.evaluate(run.inputs[(r * batch + i) % run.inputs.length] as EvaluationInputV1);
      run.samples.push(Number(process.hrtime.bigint() - t0) / batch / 1000);
    }
  }
  const smallest = median(runs[0]?.samples ?? []);
  return {
    rounds,
    batch,
    sizes: runs.map((run) => ({ agents: run.agents, median_batch_us: round(median(run.samples), 2), vs_smallest: round(median(run.samples) / smallest, 3) })),
  };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: { agents: { type: 'string', default: '10' }, seconds: { type: 'string', default: '1' }, interleave: { type: 'string' }, rounds: { type: 'string', default: '30' } },
  });
  const result =
    values.interleave === undefined
      ? await runScale(Number(values.agents), Number(values.seconds))
      : await runInterleaved(values.interleave.split(',').map(Number), Number(values.rounds));
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
