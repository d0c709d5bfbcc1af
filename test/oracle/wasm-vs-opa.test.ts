import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readBundleFile, type OpaBundle } from '../../src/policy/bundle-reader.js';
import { buildPolicySet } from '../../src/policy/policy-loader.js';
import { WasmEvaluator } from '../../src/policy/wasm-evaluator.js';
import { configuredRego, opaEvalDecisionsIn, type ConfiguredRego } from '../rego-time/business-hours-rego.js';
import { opaEvalDecisions } from '../support/opa-cli.js';
import { inputArb, policySetArb } from './policy-arbitraries.js';

/**
 * Correctness oracle: random policy sets and random requests, decided by our WASM path and by OPA's own Go
 * evaluator (`opa eval` on rego/) on the same data; every field of every decision must be identical.
 * ORACLE_SETS × ORACLE_REQUESTS cases (default 25 × 40 = 1,000); `make fuzz` runs more. A failure prints the
 * seed and path; replay with ORACLE_SEED=<seed>. The inputs carry a random `input.time`, as the PDP's do; a second
 * run does the same with the business-hours extension configured, so rules doing arithmetic on `now_ns` (above
 * 2^53) are held to OPA's answers too.
 */
const SETS = Number(process.env['ORACLE_SETS'] ?? 25);
const REQUESTS = Number(process.env['ORACLE_REQUESTS'] ?? 40);
const SEED = Number(process.env['ORACLE_SEED'] ?? 20261123);

let bundle: OpaBundle;
beforeAll(async () => {
  bundle = await readBundleFile(process.env['ORACLE_BUNDLE'] ?? 'opa-bundle/bundle.tar.gz');
});

it(`decides exactly as opa eval on ${SETS * REQUESTS} random cases (seed ${SEED})`, async () => {
  let cases = 0;
  let allowed = 0;
  await fc.assert(
    fc.asyncProperty(
      policySetArb.chain((set) => fc.tuple(fc.constant(set), fc.array(inputArb(set), { minLength: REQUESTS, maxLength: REQUESTS }))),
      async ([set, inputs]) => {
        const policies = buildPolicySet(set.sources);
        const evaluator = await WasmEvaluator.create(bundle, policies.data, policies.revision);
        const ours = inputs.map((i) => {
          const { defined: _defined, ...result } = evaluator.evaluate(i);
          return result;
        });
        const oracle = opaEvalDecisions(policies.data, inputs);
        cases += inputs.length;
        allowed += ours.filter((r) => r.outcome === 'allow').length;
        expect(ours).toEqual(oracle);
      },
    ),
    { numRuns: SETS, seed: SEED, endOnFailure: true },
  );
  expect(cases).toBe(SETS * REQUESTS);
  // A generator that only ever produces denials would test little: make sure both outcomes occur.
  expect(allowed).toBeGreaterThan(cases / 10);
  expect(allowed).toBeLessThan(cases);
}, 300_000);

/** Business hours for the generated agents (agent-0, toString, agent-2, ...): offsets east and west, odd minutes. */
const HOURS = {
  'agent-0': { from: '09:00', until: '17:00', utc_offset_minutes: 60 },
  toString: { from: '21:30', until: '23:45', weekdays: ['Saturday', 'Sunday'], utc_offset_minutes: -330 },
  'agent-2': { from: '00:00', until: '23:59', weekdays: ['Wednesday', 'Thursday'], utc_offset_minutes: 840 },
};

let hours: ConfiguredRego;
let hoursBundle: OpaBundle;
beforeAll(async () => {
  hours = configuredRego(HOURS);
  hoursBundle = await readBundleFile(hours.bundle);
});
afterAll(() => hours?.remove());

it(`decides exactly as opa eval with business hours configured, on ${SETS * REQUESTS} random cases (seed ${SEED})`, async () => {
  let outside = 0;
  let allowedConfigured = 0;
  await fc.assert(
    fc.asyncProperty(
      policySetArb.chain((set) => fc.tuple(fc.constant(set), fc.array(inputArb(set), { minLength: REQUESTS, maxLength: REQUESTS }))),
      async ([set, inputs]) => {
        const policies = buildPolicySet(set.sources);
        const evaluator = await WasmEvaluator.create(hoursBundle, policies.data, policies.revision);
        const ours = inputs.map((i) => {
          const { defined: _defined, ...result } = evaluator.evaluate(i);
          return result;
        });
        expect(ours).toEqual(opaEvalDecisionsIn(hours.dir, policies.data, inputs));
        ours.forEach((r, n) => {
          if (r.reasons.some((x) => x.code === 'outside_business_hours')) outside++;
          else if (r.outcome === 'allow' && Object.hasOwn(HOURS, inputs[n]?.agent_id ?? '')) allowedConfigured++;
        });
      },
    ),
    { numRuns: SETS, seed: SEED, endOnFailure: true },
  );
  // Both sides of the windows are exercised.
  expect(outside).toBeGreaterThan(0);
  expect(allowedConfigured).toBeGreaterThan(0);
}, 300_000);
