/*
 * Comparing what a case expects with what the policy answered. Every field the case gives is compared exactly;
 * lists compare as sets (the order written in the test file does not matter, nor does the evaluator's), and a
 * `denied_scopes` entry compares whole: scope, reason and `granted_instead` (absent on one side, absent on the
 * other). Reasons compare by code. Each mismatch carries a diff an author can read: `-` expected, `+` actual.
 */
import type { Evaluation } from '../policy/decision-types.js';
import type { DeniedScope } from '../wire/evaluation-v1.js';
import type { Expectation } from './test-file.js';

/** The part of an evaluation a case can state: reasons as codes. */
export interface Answer {
  outcome: Evaluation['outcome'];
  granted_scopes: string[];
  denied_scopes: DeniedScope[];
  reasons: string[];
  token_ttl_seconds: number;
}

export type ExpectedField = keyof Expectation;

export interface Mismatch {
  field: ExpectedField;
  expected: unknown;
  actual: unknown;
  /** One line per item: `  x` on both sides, `- x` expected only, `+ x` actual only. */
  diff: string[];
}

/** The order mismatches are reported in: the order of the answer's fields. */
const FIELDS: readonly ExpectedField[] = ['outcome', 'granted_scopes', 'denied_scopes', 'reasons', 'token_ttl_seconds'];

export function answerOf(evaluation: Evaluation): Answer {
  return {
    outcome: evaluation.outcome,
    granted_scopes: [...evaluation.granted_scopes],
    denied_scopes: evaluation.denied_scopes.map((d) => ({ ...d, ...(d.granted_instead ? { granted_instead: [...d.granted_instead] } : {}) })),
    reasons: evaluation.reasons.map((r) => r.code),
    token_ttl_seconds: evaluation.token_ttl_seconds,
  };
}

/** Every field of `expected` the answer does not match; `[]` when the case passes. */
export function compareAnswer(expected: Expectation, actual: Answer): Mismatch[] {
  const out: Mismatch[] = [];
  for (const field of FIELDS) {
    if (expected[field] === undefined) continue;
    const mismatch = compareField(field, expected, actual);
    if (mismatch !== undefined) out.push(mismatch);
  }
  return out;
}

function compareField(field: ExpectedField, expected: Expectation, actual: Answer): Mismatch | undefined {
  switch (field) {
    case 'outcome':
    case 'token_ttl_seconds': {
      const want = expected[field];
      const got = actual[field];
      return want === got ? undefined : { field, expected: want, actual: got, diff: [`- ${String(want)}`, `+ ${String(got)}`] };
    }
    case 'granted_scopes':
    case 'reasons':
      return compareSets(field, (expected[field] ?? []).map(String), actual[field], (s) => s);
    case 'denied_scopes':
      return compareSets(field, expected.denied_scopes ?? [], actual.denied_scopes, deniedText);
  }
}

function compareSets<T>(field: ExpectedField, want: readonly T[], got: readonly T[], text: (item: T) => string): Mismatch | undefined {
  const wanted = new Set(want.map(text));
  const gotten = new Set(got.map(text));
  const all = [...new Set([...wanted, ...gotten])].sort(compareText);
  if (wanted.size === gotten.size && [...wanted].every((w) => gotten.has(w))) return undefined;
  const diff = all.map((item) => `${wanted.has(item) ? (gotten.has(item) ? ' ' : '-') : '+'} ${item}`);
  return { field, expected: sortedCopy(want, text), actual: sortedCopy(got, text), diff };
}

/** One denied-scope entry as a line, the way it is written in a test file. */
export function deniedText(d: DeniedScope): string {
  const instead = d.granted_instead === undefined ? '' : `, granted_instead: [${[...d.granted_instead].sort(compareText).join(', ')}]`;
  return `{scope: ${d.scope}, reason: ${d.reason}${instead}}`;
}

function sortedCopy<T>(items: readonly T[], text: (item: T) => string): T[] {
  return [...items].sort((a, b) => compareText(text(a), text(b)));
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
