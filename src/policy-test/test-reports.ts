/*
 * A policy test run as people and CI read it: text (a line per case, a diff per failure), JSON (the whole run,
 * `version: 1`) and JUnit XML (the format CI servers show test results from).
 */
import { formatErrorDetail, type ErrorDetail } from '../errors/pdp-error.js';
import type { CaseResult, PolicyTestRun, SuiteResult } from './run-policy-tests.js';

/** `file:line:column path: message`, the way the policy loader's errors print. */
export const formatError: (d: ErrorDetail) => string = formatErrorDetail;

/** One line per case; under a failure, each field that differs with `-` expected and `+` actual; a summary last. */
export function textReport(run: PolicyTestRun): string {
  const lines: string[] = [];
  for (const suite of run.suites) {
    lines.push(`${suite.name} (${suite.file})`);
    for (const c of suite.cases) {
      lines.push(`  ${(c.status === 'pass' ? 'ok' : c.status.toUpperCase()).padEnd(5)} ${c.name}`);
      if (c.status !== 'pass') lines.push(...caseDetail(suite, c).map((l) => `        ${l}`));
    }
  }
  lines.push('', summary(run));
  return `${lines.join('\n')}\n`;
}

/** What a failed or errored case prints: where it is, the input it ran with, and the diff or the error. */
function caseDetail(suite: SuiteResult, c: CaseResult): string[] {
  const out = [`at ${suite.file}:${c.line}`, `input: ${JSON.stringify(c.input)}`];
  if (c.error !== undefined) out.push(`error: ${c.error}`);
  for (const m of c.mismatches) out.push(`${m.field}: (- expected, + actual)`, ...m.diff.map((d) => `  ${d}`));
  return out;
}

function summary(run: PolicyTestRun): string {
  const { cases, passed, failed, errors } = run.counts;
  const suites = run.suites.length;
  const parts = [`${passed} passed`, ...(failed > 0 ? [`${failed} failed`] : []), ...(errors > 0 ? [`${errors} could not be evaluated`] : [])];
  const verdict = failed + errors === 0 ? 'PASS' : 'FAIL';
  return `${verdict}: ${suites} ${suites === 1 ? 'suite' : 'suites'}, ${cases} ${cases === 1 ? 'case' : 'cases'}: ${parts.join(', ')} (policy revision ${run.revision})`;
}

/** The JSON report, version 1: stable field names for tools; `seconds` and messages are not part of the contract. */
export function jsonReport(run: PolicyTestRun): string {
  const report = {
    version: 1,
    policy_revision: run.revision,
    passed: run.counts.failed + run.counts.errors === 0,
    counts: { suites: run.suites.length, ...run.counts },
    suites: run.suites.map((s) => ({
      name: s.name,
      file: s.file,
      cases: s.cases.map((c) => ({
        name: c.name,
        line: c.line,
        status: c.status,
        input: c.input,
        ...(c.answer !== undefined ? { actual: c.answer } : {}),
        mismatches: c.mismatches.map(({ field, expected, actual }) => ({ field, expected, actual })),
        ...(c.error !== undefined ? { error: c.error } : {}),
        seconds: round(c.seconds),
      })),
    })),
  };
  return `${JSON.stringify(report, null, 2)}\n`;
}

/** Invalid test files (the run did not start) as JSON, version 1, for tools that read `--format json`. */
export function jsonErrors(errors: readonly ErrorDetail[]): string {
  return `${JSON.stringify({ version: 1, passed: false, errors }, null, 2)}\n`;
}

/** JUnit XML: one `<testsuite>` per suite, one `<testcase>` per case, `<failure>` with the diff, `<error>` when evaluation failed. */
export function junitReport(run: PolicyTestRun): string {
  const { cases, failed, errors } = run.counts;
  const time = run.suites.reduce((t, s) => t + s.seconds, 0);
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="agent-pdp policy test" tests="${cases}" failures="${failed}" errors="${errors}" time="${round(time)}">`,
  ];
  for (const s of run.suites) {
    const count = (status: CaseResult['status']): number => s.cases.filter((c) => c.status === status).length;
    out.push(
      `  <testsuite name="${xml(s.name)}" tests="${s.cases.length}" failures="${count('fail')}" errors="${count('error')}" skipped="0" time="${round(s.seconds)}" file="${xml(s.file)}">`,
      '    <properties>',
      `      <property name="policy_revision" value="${xml(run.revision)}"/>`,
      '    </properties>',
    );
    for (const c of s.cases) {
      const open = `    <testcase name="${xml(c.name)}" classname="${xml(s.name)}" file="${xml(s.file)}" line="${c.line}" time="${round(c.seconds)}"`;
      if (c.status === 'pass') {
        out.push(`${open}/>`);
        continue;
      }
      const detail = caseDetail(s, c).join('\n');
      const element = c.status === 'fail' ? 'failure' : 'error';
      const message = c.status === 'fail' ? `differs in ${c.mismatches.map((m) => m.field).join(', ')}` : (c.error ?? 'evaluation failed');
      out.push(`${open}>`, `      <${element} message="${xml(message)}" type="${c.status === 'fail' ? 'expectation' : 'evaluation'}">${xmlText(detail)}</${element}>`, '    </testcase>');
    }
    out.push('  </testsuite>');
  }
  out.push('</testsuites>');
  return `${out.join('\n')}\n`;
}

/** Text for XML element content: markup escaped, and characters XML 1.0 cannot hold replaced by U+FFFD. */
function xmlText(text: string): string {
  return text
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
}

/** Text for a double-quoted XML attribute: as element content, plus quotes, and white space kept as references. */
function xml(text: string): string {
  return xmlText(text).replace(/"/g, '&quot;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;');
}

function round(seconds: number): string {
  return seconds.toFixed(4);
}
