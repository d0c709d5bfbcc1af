import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { isPdpError } from '../../src/errors/pdp-error.js';
import { readBundleFile, type OpaBundle } from '../../src/policy/bundle-reader.js';
import { buildCompiledBundle, bundleFilesAsync, readCompiledBundle } from '../../src/policy/compiled-bundle.js';
import type { EvaluationInputV1 } from '../../src/policy/decision-types.js';
import { loadPolicyDir } from '../../src/policy/policy-loader.js';
import { policyRevision } from '../../src/policy/policy-revision.js';
import type { PolicyData, PolicySet } from '../../src/policy/policy-types.js';
import { readTarGz } from '../../src/policy/tar-reader.js';
import { withSharedMemory } from '../../src/policy/wasm-data-loader.js';
import { OFF_THREAD_DATA_BYTES, WasmEvaluator } from '../../src/policy/wasm-evaluator.js';

/**
 * Large data is set into the WASM by a worker thread over a shared memory (`wasm-data-loader.ts`) instead of the
 * SDK's one `setData` call: the same module, the real OPA-built bundle, and every answer compared with an evaluator
 * whose data was set in-process.
 */
const REGO_BUNDLE = 'opa-bundle/bundle.tar.gz';

let rego: OpaBundle;
let shipped: PolicySet;

/** Every agent × integration of `set` (or of `agents`), with scopes allowed, capped, denied and unknown; and an unknown agent. */
function inputs(set: PolicySet, agents: readonly string[] = set.agents): EvaluationInputV1[] {
  const out: EvaluationInputV1[] = [];
  for (const agent of [...agents, 'nobody']) {
    const compiled = set.data.policies.agents[agent];
    for (const integration of [...Object.keys(compiled?.integrations ?? {}), 'crm']) {
      const allowed = Object.keys(compiled?.integrations[integration]?.allowed ?? {});
      for (const scopes of [allowed.slice(0, 1), allowed, ['delete_repo', ...allowed.slice(0, 1)], ['issues:write'], ['not-a-scope']]) {
        for (const task of [{ id: 't', context: {}, registered: false }, { id: 't', type: 'complaint_resolution', context: { customer_id: '1234' }, registered: true }]) {
          out.push({ agent_id: agent, caller_id: 'test', integration, scopes, task, resource: { type: 'customer', id: '1234' }, ttl_seconds: 120 });
        }
      }
    }
  }
  return out;
}

function answers(evaluator: WasmEvaluator, cases: readonly EvaluationInputV1[]): unknown[] {
  return cases.map((input) => evaluator.evaluate(input));
}

/** `copies` of every shipped agent under new ids, each copy's TTLs a little different (no two copies alike). */
function scaled(set: PolicySet, copies: number): PolicySet {
  const agents: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (let i = 0; i < copies; i++) {
    for (const id of set.agents) {
      const entry = set.data.policies.agents[id] as unknown as { token_ttl: number };
      agents[`${id}-${String(i).padStart(5, '0')}`] = { ...entry, token_ttl: entry.token_ttl - (i % 600) };
    }
  }
  const data = { policies: { agents, integrations: set.data.policies.integrations } } as unknown as PolicyData;
  return { ...set, data, revision: policyRevision(data), agents: Object.keys(agents).sort() };
}

beforeAll(async () => {
  rego = await readBundleFile(REGO_BUNDLE);
  shipped = await loadPolicyDir('policies');
});

describe('data set by a worker thread over shared memory', () => {
  it('answers exactly as data set in-process, on the shipped policies', async () => {
    const data = shipped.data as unknown as Record<string, unknown>;
    const inProcess = await WasmEvaluator.create(rego, data, shipped.revision, undefined, { offThread: false });
    const offThread = await WasmEvaluator.create(rego, data, shipped.revision, undefined, { offThread: true });
    const cases = inputs(shipped);
    expect(cases.length).toBeGreaterThan(100);
    const expected = answers(inProcess, cases);
    expect(expected.some((a) => (a as { outcome: string }).outcome === 'allow')).toBe(true);
    expect(answers(offThread, cases)).toEqual(expected);
    // Evaluations reuse the heap above the data: a second round still answers the same.
    expect(answers(offThread, cases)).toEqual(expected);
    expect(offThread.revision).toBe(inProcess.revision);
    // An input larger than the shared memory grows it (a new SharedArrayBuffer): the answers after it are the same.
    const first = cases[0] as EvaluationInputV1;
    const large = { ...first, task: { ...first.task, context: { ...first.task.context, blob: 'é'.repeat(4_000_000) } } };
    expect(offThread.evaluate(large)).toEqual(inProcess.evaluate(large));
    expect(answers(offThread, cases)).toEqual(expected);
  });

  it('is the default for a large compiled bundle, read back and answered exactly as in-process', async () => {
    const large = scaled(shipped, 600);
    const gz = await buildCompiledBundle(large, rego, readTarGz(readFileSync(REGO_BUNDLE)));
    const read = await readCompiledBundle(await bundleFilesAsync(gz, 'large.tar.gz'), 'large.tar.gz');
    expect(read.policySet.agents).toEqual(large.agents);
    expect(read.dataJson.length).toBeGreaterThanOrEqual(OFF_THREAD_DATA_BYTES);
    const data = read.policySet.data as unknown as Record<string, unknown>;
    const byDefault = await WasmEvaluator.create(read.bundle, data, read.policySet.revision, read.dataJson);
    const inProcess = await WasmEvaluator.create(read.bundle, data, read.policySet.revision, read.dataJson, { offThread: false });
    const cases = inputs(read.policySet, read.policySet.agents.filter((_, i) => i % 97 === 0));
    expect(answers(byDefault, cases)).toEqual(answers(inProcess, cases));
    expect(byDefault.revision).toBe(inProcess.revision);
  });

  it('refuses data that is not JSON with the error setData gives', async () => {
    const refusal = async (offThread: boolean): Promise<string> => {
      try {
        await WasmEvaluator.create(rego, {}, 'r', Buffer.from('{"policies": {"agents": {"a": [1, 2'), { offThread });
      } catch (err) {
        if (isPdpError(err)) return `${err.code}: ${err.message}`;
        throw err;
      }
      throw new Error('expected a refusal');
    };
    const inProcess = await refusal(false);
    expect(inProcess).toMatch(/^bundle_invalid: cannot load the wasm module of /);
    expect(await refusal(true)).toBe(inProcess);
  });

  it('declares only the memory import shared, with a maximum', () => {
    const patched = withSharedMemory(rego.wasm, 65_536);
    expect(patched.length).toBeGreaterThan(rego.wasm.length);
    const imports = (m: Uint8Array) =>
      (globalThis as unknown as { WebAssembly: { Module: { new (b: Uint8Array): object; imports(m: object): unknown[] } } }).WebAssembly.Module.imports(
        new (globalThis as unknown as { WebAssembly: { Module: new (b: Uint8Array) => object } }).WebAssembly.Module(m),
      );
    expect(imports(patched)).toEqual(imports(rego.wasm));
    expect(withSharedMemory(patched, 65_536)).toBe(patched);
    expect(() => withSharedMemory(Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]), 65_536)).toThrow(/imports no memory/);
  });
});
