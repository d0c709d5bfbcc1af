/**
 * Scale: policy load time, memory and evaluation latency with N agents. The agents are the four shipped agent
 * policies as templates (`support-resolver-000042`, …), written as YAML files to a temp folder with the shipped
 * integrations and roles, so the load time includes reading and parsing. One process per N (the driver starts
 * it with --expose-gc) so RSS and heap deltas belong to that N alone.
 *
 *   node --expose-gc .build/bench/bench/scale-bench.js --agents 100000 [--seconds 1]   prints one JSON line
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { EvaluationInputV1 } from '../src/policy/decision-types.js';
import { readBundleFile } from '../src/policy/bundle-reader.js';
import { loadPolicyDir } from '../src/policy/policy-loader.js';
import { WasmEvaluator } from '../src/policy/wasm-evaluator.js';
import { BUNDLE, POLICIES } from './lib/servers.js';
import { isMain, round, timeLoop, type LoopTiming } from './lib/timing.js';
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

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { agents: { type: 'string', default: '10' }, seconds: { type: 'string', default: '1' } } });
  const result = await runScale(Number(values.agents), Number(values.seconds));
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
