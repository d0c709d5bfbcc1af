/**
 * In-process time per decision: our WasmEvaluator.evaluate in a tight loop on each input of the mix, with a
 * breakdown of where a call goes (the SDK's JSON encode of the input into WASM memory, evaluation, the JSON
 * decode of the result, our result check). The peer figure is `opa bench` on the same query, data and input
 * (bench/lib/opa-bench.ts, run by the driver).
 *
 *   node .build/bench/bench/inprocess-bench.js [--seconds 1]     prints one JSON line
 *
 * --seconds is per variant and input, split into interleaved slices (see interleaved()).
 */
import * as opaWasm from '@open-policy-agent/opa-wasm';
import { parseArgs } from 'node:util';
import { readBundleFile } from '../src/policy/bundle-reader.js';
import { loadPolicyDir } from '../src/policy/policy-loader.js';
import { WasmEvaluator } from '../src/policy/wasm-evaluator.js';
import { BUNDLE, POLICIES } from './lib/servers.js';
import { isMain, median, timeLoop, type LoopTiming } from './lib/timing.js';
import { MIX, evaluationInputFor } from './lib/workload.js';

interface RawPolicy {
  evaluate(input: unknown, entrypoint?: number | string): unknown;
  setData(data: object): void;
  entrypoints: Record<string, number>;
}
const sdk = opaWasm as unknown as { loadPolicy(wasm: Uint8Array, memory?: { initial: number }): Promise<RawPolicy> };

export interface InProcessCase {
  name: string;
  kind: string;
  outcome: string;
  /** WasmEvaluator.evaluate: what the Decider calls. */
  evaluator: LoopTiming;
  /** The SDK's evaluate on the same module and data: encode input, opa_eval, decode result. */
  sdk: LoopTiming;
  /** The SDK given the input already encoded (an ArrayBuffer of JSON): no JSON.stringify/TextEncoder per call. */
  sdk_preencoded: LoopTiming;
  /** JSON.stringify(input) + TextEncoder.encode alone. */
  encode_input: LoopTiming;
  /** TextDecoder.decode + JSON.parse of the result text alone. */
  decode_result: LoopTiming;
  input: unknown;
}

export interface InProcessResult {
  node: string;
  cases: InProcessCase[];
}

export async function runInProcess(seconds: number): Promise<InProcessResult> {
  const [bundle, set] = await Promise.all([readBundleFile(BUNDLE), loadPolicyDir(POLICIES)]);
  const data = set.data as unknown as Record<string, unknown>;
  const evaluator = await WasmEvaluator.create(bundle, data, set.revision);
  const raw = await sdk.loadPolicy(bundle.wasm, { initial: 16 });
  raw.setData({ ...bundle.data, ...data });
  const entrypoint = raw.entrypoints['agentpdp/decision'];
  if (entrypoint === undefined) throw new Error('bundle has no agentpdp/decision entrypoint');

  const seen = new Set<string>();
  const cases: InProcessCase[] = [];
  for (const c of MIX) {
    const input = evaluationInputFor(c.request);
    const key = JSON.stringify(input);
    if (seen.has(key)) continue;
    seen.add(key);
    const outcome = evaluator.evaluate(input).outcome;
    const encoded = new TextEncoder().encode(key);
    const bytes = encoded.buffer.slice(encoded.byteOffset, encoded.byteOffset + encoded.byteLength);
    const resultText = JSON.stringify(raw.evaluate(input, entrypoint));
    const resultBytes = new TextEncoder().encode(resultText);
    const variants = {
      evaluator: () => evaluator.evaluate(input),
      sdk: () => raw.evaluate(input, entrypoint),
      sdk_preencoded: () => raw.evaluate(bytes, entrypoint),
      encode_input: () => new TextEncoder().encode(JSON.stringify(input)),
      decode_result: () => JSON.parse(new TextDecoder().decode(resultBytes)) as unknown,
    };
    cases.push({ name: c.name, kind: c.kind, outcome, ...interleaved(variants, seconds), input });
  }
  return { node: process.version, cases };
}

/**
 * Each variant timed in ROUNDS short slices, the variants taking turns, and the median slice kept: a burst of
 * load from elsewhere then costs one slice of each, not a whole variant.
 */
const ROUNDS = 5;
function interleaved<K extends string>(variants: Record<K, () => unknown>, seconds: number): Record<K, LoopTiming> {
  const slices = new Map<K, LoopTiming[]>();
  const keys = Object.keys(variants) as K[];
  for (let r = 0; r < ROUNDS; r++) {
    for (const k of keys) {
      const t = timeLoop(variants[k], seconds / ROUNDS);
      slices.set(k, [...(slices.get(k) ?? []), t]);
    }
  }
  const out = {} as Record<K, LoopTiming>;
  for (const k of keys) {
    const ts = slices.get(k) ?? [];
    out[k] = {
      ns_per_op: median(ts.map((t) => t.ns_per_op)),
      ns_per_op_median_batch: median(ts.map((t) => t.ns_per_op_median_batch)),
      ops: ts.reduce((a, t) => a + t.ops, 0),
    };
  }
  return out;
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '1' } } });
  const result = await runInProcess(Number(values.seconds));
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
