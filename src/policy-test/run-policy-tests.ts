/*
 * Running policy test suites: each case's request becomes the evaluation input the server would build for a
 * registered task (`pdp/evaluation-input.ts`), is evaluated on the policy in force (`pdp/policy-engine.ts`: the
 * bundle and the compiled YAML set, loaded, checked and probed as the server loads them), and its answer is
 * compared with the case's expectations. Nothing here decides: every answer is the evaluator's.
 */
import { performance } from 'node:perf_hooks';
import { describeError, isPdpError } from '../errors/pdp-error.js';
import type { Evaluation, EvaluationInputV1 } from '../policy/decision-types.js';
import { buildEvaluationInput } from '../pdp/evaluation-input.js';
import { PolicyEngine } from '../pdp/policy-engine.js';
import { answerOf, compareAnswer, type Answer, type Mismatch } from './expectations.js';
import type { PolicyTestCase, PolicyTestSuite } from './test-file.js';

export type CaseStatus = 'pass' | 'fail' | 'error';

export interface CaseResult {
  name: string;
  /** Line of the case in its suite's file. */
  line: number;
  status: CaseStatus;
  input: EvaluationInputV1;
  /** Absent when the evaluation failed (`status: 'error'`). */
  answer?: Answer;
  mismatches: Mismatch[];
  /** Why the evaluation failed, for `status: 'error'`. */
  error?: string;
  seconds: number;
}

export interface SuiteResult {
  name: string;
  file: string;
  cases: CaseResult[];
  seconds: number;
}

export interface PolicyTestRun {
  /** The policy revision the cases ran on (`<bundle>.<policies>`, as decisions record it). */
  revision: string;
  suites: SuiteResult[];
  counts: { cases: number; passed: number; failed: number; errors: number };
}

/** What a run evaluates with: the active policy's evaluator, in the CLI; anything that answers the same way in tests. */
export type Evaluate = (input: EvaluationInputV1) => Evaluation;

/**
 * The input a case is evaluated with: the request, its caller, its task as a registered task, and its time (the
 * case's `now`, else `runStartedAt`, read once per run as the server reads its clock once per decision).
 */
export function caseInput(testCase: PolicyTestCase, runStartedAt: Date): EvaluationInputV1 {
  const { task } = testCase.request;
  const registered = { id: task.id, ...(task.type !== undefined ? { type: task.type } : {}), context: task.context ?? {}, registered: true };
  return buildEvaluationInput(testCase.request, testCase.callerId, registered, testCase.now ?? runStartedAt);
}

/** Runs every case of every suite, in order; `now` is the time of the cases that give none. */
export function runSuites(suites: readonly PolicyTestSuite[], evaluate: Evaluate, revision: string, now: Date = new Date()): PolicyTestRun {
  const results = suites.map((suite): SuiteResult => {
    const started = performance.now();
    const cases = suite.cases.map((c) => runCase(c, evaluate, now));
    return { name: suite.name, file: suite.file, cases, seconds: (performance.now() - started) / 1000 };
  });
  const all = results.flatMap((s) => s.cases);
  const count = (status: CaseStatus): number => all.filter((c) => c.status === status).length;
  return { revision, suites: results, counts: { cases: all.length, passed: count('pass'), failed: count('fail'), errors: count('error') } };
}

function runCase(testCase: PolicyTestCase, evaluate: Evaluate, now: Date): CaseResult {
  const input = caseInput(testCase, now);
  const started = performance.now();
  const base = { name: testCase.name, line: testCase.line, input };
  try {
    const answer = answerOf(evaluate(input));
    const mismatches = compareAnswer(testCase.expect, answer);
    return { ...base, status: mismatches.length === 0 ? 'pass' : 'fail', answer, mismatches, seconds: (performance.now() - started) / 1000 };
  } catch (err) {
    const error = isPdpError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : describeError(err);
    return { ...base, status: 'error', mismatches: [], error, seconds: (performance.now() - started) / 1000 };
  }
}

export interface PolicyUnderTest {
  /** The YAML policy directory, loaded as the server loads it. */
  policyDir: string;
  /** The OPA bundle (`opa-bundle/bundle.tar.gz` in a clone). */
  bundlePath: string;
}

/**
 * Loads the bundle and the policy directory through a `PolicyEngine` (a set the server would refuse is refused
 * here: `policy_invalid` or `bundle_*`, thrown), then runs the suites on it.
 */
export async function runPolicyTests(policy: PolicyUnderTest, suites: readonly PolicyTestSuite[]): Promise<PolicyTestRun> {
  const engine = new PolicyEngine({ bundlePath: policy.bundlePath, policyDir: policy.policyDir });
  const active = await engine.reload();
  return runSuites(suites, (input) => engine.evaluate(input).evaluation, active.revision);
}
