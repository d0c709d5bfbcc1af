import fc from 'fast-check';
import { beforeAll, expect, it } from 'vitest';
import { readBundleFile, type OpaBundle } from '../../src/policy/bundle-reader.js';
import type { EvaluationInputV1 } from '../../src/policy/decision-types.js';
import { buildPolicySet, type PolicySource } from '../../src/policy/policy-loader.js';
import { WasmEvaluator } from '../../src/policy/wasm-evaluator.js';
import * as oracle from '../oracle/policy-arbitraries.js';
import { ReferenceModel, type ModelAnswer } from './reference-model.js';
import { inputArb, policySetArb } from './semantics-arbitraries.js';

/**
 * The documented procedure (docs/policy-semantics.md, as test/semantics/reference-model.ts) against the real
 * evaluator (the YAML loader and compiler, then the committed WASM bundle): random policy sets and requests, every
 * policy-decided field compared. SEMANTICS_SETS × SEMANTICS_REQUESTS cases per generator (default 40 × 50, plus
 * the oracle's generator at half that); SEMANTICS_SEED=<n> replays a failure, whose seed and path fast-check prints;
 * SEMANTICS_BUNDLE=<path> checks another bundle.
 */
const SETS = Number(process.env['SEMANTICS_SETS'] ?? 40);
const REQUESTS = Number(process.env['SEMANTICS_REQUESTS'] ?? 50);
const SEED = Number(process.env['SEMANTICS_SEED'] ?? 20261130);

let bundle: OpaBundle;
beforeAll(async () => {
  bundle = await readBundleFile(process.env['SEMANTICS_BUNDLE'] ?? 'opa-bundle/bundle.tar.gz');
});

/** The evaluator's answer in the model's terms: reasons as codes. */
function fieldsOf(result: ReturnType<WasmEvaluator['evaluate']>): ModelAnswer {
  const { outcome, granted_scopes, denied_scopes, reasons, token_ttl_seconds } = result;
  return { outcome: outcome as ModelAnswer['outcome'], granted_scopes, denied_scopes, reasons: reasons.map((r) => r.code), token_ttl_seconds };
}

/** What the generated cases covered: every rule must be reached, or the property proves little. */
const seen = new Map<string, number>();
const count = (key: string) => seen.set(key, (seen.get(key) ?? 0) + 1);

async function check(sources: PolicySource[], inputs: EvaluationInputV1[]): Promise<void> {
  const set = buildPolicySet(sources);
  const evaluator = await WasmEvaluator.create(bundle, set.data, set.revision);
  const model = ReferenceModel.fromSources(sources);
  for (const input of inputs) {
    const real = fieldsOf(evaluator.evaluate(input));
    expect({ input, answer: real }).toEqual({ input, answer: model.decide(input) });
    count(real.outcome);
    for (const code of real.reasons) count(`reason ${code}`);
    for (const d of real.denied_scopes) count(`${real.outcome}: ${d.reason}`);
  }
}

it(`the evaluator decides as the documented procedure on ${SETS * REQUESTS} random cases (seed ${SEED})`, async () => {
  await fc.assert(
    fc.asyncProperty(
      policySetArb.chain((set) => fc.tuple(fc.constant(set), fc.array(inputArb(set), { minLength: REQUESTS, maxLength: REQUESTS }))),
      async ([set, inputs]) => check(set.sources, inputs),
    ),
    { numRuns: SETS, seed: SEED, endOnFailure: true },
  );
  const codes = ['allowed', 'scopes_capped', 'scopes_dropped', 'unknown_agent', 'integration_not_allowed', 'deny_scope', 'task_type_not_allowed', 'record_binding_mismatch', 'no_scope_granted', 'task_suspended'];
  const perScope = ['allow: capped', 'allow: above_ceiling', 'allow: task_type', 'deny: capped', 'deny: deny_scope', 'deny: above_ceiling', 'deny: task_type', 'deny: record_binding'];
  const expected = ['allow', 'deny', ...codes.map((c) => `reason ${c}`), ...perScope];
  expect(expected.filter((k) => !seen.has(k)), `never reached: ${JSON.stringify(Object.fromEntries(seen))}`).toEqual([]);
  expect(seen.get('allow') ?? 0).toBeGreaterThan((SETS * REQUESTS) / 10);
}, 300_000);

it(`and on the WASM-vs-OPA oracle's random sets (${Math.ceil(SETS / 2) * REQUESTS} cases)`, async () => {
  await fc.assert(
    fc.asyncProperty(
      oracle.policySetArb.chain((set) => fc.tuple(fc.constant(set), fc.array(oracle.inputArb(set), { minLength: REQUESTS, maxLength: REQUESTS }))),
      async ([set, inputs]) => check(set.sources, inputs),
    ),
    { numRuns: Math.ceil(SETS / 2), seed: SEED, endOnFailure: true },
  );
}, 300_000);
