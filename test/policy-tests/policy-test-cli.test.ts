import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ensureBuilt } from '../audit-e2e/cli.js';
import { findAll, parseXml } from './xml-document.js';

/**
 * `agent-pdp policy test` and `policy check` as the built binary: the shipped policy tests pass, a wrong
 * expectation fails with exit 1 and a diff, the JUnit and JSON reports, invalid test files (exit 2), --strict.
 * Failing and invalid suites run on test/fixtures/policies, which these tests own.
 */

const FIXTURES = 'test/fixtures/policies';
const run = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

let temp: string;
const file = (name: string, text: string): string => {
  const path = join(temp, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
  return path;
};

beforeAll(() => {
  ensureBuilt();
  temp = mkdtempSync(join(tmpdir(), 'policy-test-'));
}, 120_000);
afterAll(() => rmSync(temp, { recursive: true, force: true }));

/** One right and one wrong expectation on support-resolver writing another customer's tickets. */
const WRONG = `suite: wrong-on-purpose
defaults:
  agent_id: support-resolver
  integration: crm
  task: { type: complaint_resolution, context: { customer_id: "1234" } }
cases:
  - name: reads tickets
    request: { scopes: [tickets:read] }
    expect: { outcome: allow, granted_scopes: [tickets:read] }
  - name: believes it may write another customer's tickets
    request:
      scopes: [tickets:write]
      resource: { type: customer, id: "5678" }
    expect:
      outcome: allow
      granted_scopes: [tickets:write]
      reasons: [allowed]
`;

interface JsonReport {
  version: number;
  passed: boolean;
  policy_revision: string;
  counts: { suites: number; cases: number; passed: number; failed: number; errors: number };
  suites: Array<{
    name: string;
    file: string;
    cases: Array<{
      name: string;
      line: number;
      status: string;
      input: { agent_id: string };
      actual: { outcome: string; granted_scopes: string[]; denied_scopes: Array<{ scope: string; reason: string }>; reasons: string[]; token_ttl_seconds: number };
      mismatches: Array<{ field: string; expected: unknown; actual: unknown }>;
    }>;
  }>;
}

describe('agent-pdp policy test', () => {
  it('the shipped policies pass their shipped tests, which cover allow, capping, deny_scope, bindings, task types and unknown agents', () => {
    const res = run(['policy', 'test', 'policies', '--format', 'json']);
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    const report = JSON.parse(res.stdout) as JsonReport;
    expect(report).toMatchObject({ version: 1, passed: true, counts: { failed: 0, errors: 0 } });
    const answers = report.suites.flatMap((s) => s.cases.map((c) => c.actual));
    const denied = new Set(answers.flatMap((a) => a.denied_scopes.map((d) => d.reason)));
    const reasons = new Set(answers.flatMap((a) => a.reasons));
    expect([...denied].sort()).toEqual(['above_ceiling', 'approval_required', 'capped', 'deny_scope', 'record_binding', 'task_type']);
    for (const code of ['allowed', 'scopes_capped', 'deny_scope', 'record_binding_mismatch', 'task_type_not_allowed', 'unknown_agent']) expect(reasons).toContain(code);
    // The text report: a line per case, and the summary.
    const text = run(['policy', 'test', 'policies']);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/^ {2}ok {4}reads tickets/m);
    expect(text.stdout).toMatch(/^PASS: \d+ suites, \d+ cases: \d+ passed \(policy revision [0-9a-f]{16}\.[0-9a-f]{16}\)$/m);
  });

  it('a wrong expectation fails with exit 1, where it is, and a diff of expected and actual', () => {
    const tests = file('wrong/wrong.yaml', WRONG);
    const res = run(['policy', 'test', FIXTURES, '--tests', tests]);
    expect(res.status).toBe(1);
    expect(res.stdout).toContain('  ok    reads tickets\n');
    expect(res.stdout).toContain("  FAIL  believes it may write another customer's tickets\n");
    expect(res.stdout).toContain(`at ${tests}:10\n`);
    const diff = res.stdout.slice(res.stdout.indexOf('outcome:'), res.stdout.indexOf('\n\n'));
    expect(diff.split('\n').map((l) => l.trim())).toEqual([
      'outcome: (- expected, + actual)',
      '- allow',
      '+ deny',
      'granted_scopes: (- expected, + actual)',
      '- tickets:write',
      'reasons: (- expected, + actual)',
      '- allowed',
      '+ record_binding_mismatch',
    ]);
    expect(res.stdout).toMatch(/^FAIL: 1 suite, 2 cases: 1 passed, 1 failed/m);
  });

  it('--junit writes well-formed JUnit XML with the right counts, and --format json the whole run', () => {
    const tests = file('junit/wrong.yaml', WRONG);
    const junit = join(temp, 'reports/nested/junit.xml');
    const res = run(['policy', 'test', FIXTURES, '--tests', tests, '--junit', junit, '--format', 'json']);
    expect(res.status).toBe(1);

    const root = parseXml(readFileSync(junit, 'utf8'));
    expect(root.name).toBe('testsuites');
    expect(root.attributes).toMatchObject({ tests: '2', failures: '1', errors: '0' });
    const [suite] = findAll(root, 'testsuite');
    expect(suite?.attributes).toMatchObject({ name: 'wrong-on-purpose', tests: '2', failures: '1', errors: '0', file: tests });
    const cases = findAll(root, 'testcase');
    expect(cases.map((c) => [c.attributes['name'], c.attributes['line'], findAll(c, 'failure').length])).toEqual([
      ['reads tickets', '7', 0],
      ["believes it may write another customer's tickets", '10', 1],
    ]);
    const failure = findAll(cases[1] as NonNullable<(typeof cases)[1]>, 'failure')[0];
    expect(failure?.attributes['message']).toBe('differs in outcome, granted_scopes, reasons');
    expect(failure?.text).toContain('+ record_binding_mismatch');

    const report = JSON.parse(res.stdout) as JsonReport;
    expect(report).toMatchObject({ version: 1, passed: false, counts: { suites: 1, cases: 2, passed: 1, failed: 1, errors: 0 } });
    expect(report.policy_revision).toMatch(/^[0-9a-f]{16}\.[0-9a-f]{16}$/);
    const [ok, failed] = report.suites[0]?.cases ?? [];
    expect(ok).toMatchObject({ name: 'reads tickets', line: 7, status: 'pass', mismatches: [] });
    expect(failed).toMatchObject({
      line: 10,
      status: 'fail',
      input: { agent_id: 'support-resolver', caller_id: 'policy-test', task: { registered: true }, resource: { type: 'customer', id: '5678' } },
      actual: { outcome: 'deny', granted_scopes: [], denied_scopes: [{ scope: 'tickets:write', reason: 'record_binding' }], reasons: ['record_binding_mismatch'], token_ttl_seconds: 0 },
      mismatches: [
        { field: 'outcome', expected: 'allow', actual: 'deny' },
        { field: 'granted_scopes', expected: ['tickets:write'], actual: [] },
        { field: 'reasons', expected: ['allowed'], actual: ['record_binding_mismatch'] },
      ],
    });
  });

  it('an invalid test file: every problem as file:line:column, nothing run, exit 2', () => {
    const dir = join(temp, 'invalid');
    file('invalid/a.yaml', WRONG);
    const bad = file('invalid/b.yaml', 'suite: b\ncases:\n  - name: typo\n    request: { agent_id: a, integration: i, scope: [x] }\n    expect: { outcome: allowed }\n');
    file('invalid/.hidden.yaml', 'not: a test file');
    file('invalid/notes.txt', 'not a test file either');
    const res = run(['policy', 'test', FIXTURES, '--tests', dir]);
    expect(res.status).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr.split('\n')).toEqual([
      'agent-pdp: invalid policy test files (2 problems); nothing was run',
      `  ${bad}:4:45 cases[0].request.scope: unknown key "scope"; expected one of: agent_id, caller_id, now, task, integration, scopes, resource, ttl_seconds`,
      `  ${bad}:5:24 cases[0].expect.outcome: "allowed" is not one of: allow, deny, undefined`,
      '',
    ]);
    const json = run(['policy', 'test', FIXTURES, '--tests', bad, '--format', 'json']);
    expect(json.status).toBe(2);
    expect(JSON.parse(json.stdout)).toEqual({
      version: 1,
      passed: false,
      errors: [
        expect.objectContaining({ file: bad, line: 4, column: 45, path: 'cases[0].request.scope' }),
        expect.objectContaining({ file: bad, line: 5, column: 24, path: 'cases[0].expect.outcome' }),
      ],
    });
  });

  it.each([
    { note: 'an unknown format', args: ['policy', 'test', FIXTURES, '--format', 'xml'], status: 2, stderr: 'usage: agent-pdp policy test' },
    { note: 'two directories', args: ['policy', 'test', FIXTURES, 'policies'], status: 2, stderr: 'usage: agent-pdp policy test' },
    { note: 'no test files where it looks', args: ['policy', 'test', FIXTURES], status: 2, stderr: `${FIXTURES}/.tests not found: test files go in the policy directory's .tests folder, or pass --tests PATH` },
  ])('$note is a usage error (exit 2)', ({ args, status, stderr }) => {
    const res = run(args);
    expect(res.status).toBe(status);
    expect(res.stderr).toContain(stderr);
  });

  it('policies that do not load fail the run (exit 1) with the loader’s errors', () => {
    const policies = join(temp, 'broken-policies');
    file('broken-policies/a.yaml', 'agent_policy:\n  id: a\n  integrations:\n    github: { max_scopes: [repo:read] }\n');
    const tests = file('broken-tests/t.yaml', 'suite: t\ncases:\n  - name: a\n    request: { agent_id: a, integration: github, scopes: [repo:read] }\n    expect: { outcome: allow }\n');
    const res = run(['policy', 'test', policies, '--tests', tests]);
    expect(res.status).toBe(1);
    expect(res.stderr).toContain('policy_invalid');
    expect(res.stderr).toContain('a.yaml:4');
    const json = run(['policy', 'test', policies, '--tests', tests, '--format', 'json']);
    expect(json.status).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      version: 1,
      passed: false,
      error: { code: 'policy_invalid' },
      errors: [
        { file: 'a.yaml', line: 4, column: 5, path: 'agent_policy.integrations.github' },
        { file: 'a.yaml', line: 4, column: 15, path: 'agent_policy.integrations.github.max_scopes' },
      ],
    });
  });
});

describe('agent-pdp policy check', () => {
  /** A set that loads with one warning: task types without per_task_downscope. */
  const WARNED = 'agent_policy:\n  id: warned\n  integrations:\n    github: { max_scope: [repo:read] }\n  task_types:\n    review: { github: [repo:read] }\n';

  it('--strict fails on a warning (exit 1); without it the warning is printed and the check passes', () => {
    const dir = join(temp, 'warned');
    file('warned/agents/a.yaml', WARNED);
    const lenient = run(['policy', 'check', dir]);
    expect(lenient.status).toBe(0);
    expect(lenient.stderr).toContain('warning: agents/a.yaml:5:3 agent_policy.task_types: task_types apply only when per_task_downscope is true');
    const strict = run(['policy', 'check', dir, '--strict']);
    expect(strict.status).toBe(1);
    expect(strict.stderr).toContain('policy check --strict: 1 warning, refused');
    expect(strict.stdout).toBe('');
    expect(run(['policy', 'check', FIXTURES, '--strict']).status).toBe(0);
  });

  it('--format json: the set, its files and warnings; ok false under --strict; errors with file and line', () => {
    const dir = join(temp, 'warned-json');
    file('warned-json/agents/a.yaml', WARNED);
    const warning = { file: 'agents/a.yaml', line: 5, column: 3, path: 'agent_policy.task_types', message: 'task_types apply only when per_task_downscope is true' };
    const lenient = run(['policy', 'check', dir, '--format', 'json']);
    expect(lenient.status).toBe(0);
    const report = JSON.parse(lenient.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({ version: 1, ok: true, strict: false, agents: ['warned'], errors: [], warnings: [warning] });
    expect(report['revision']).toMatch(/^[0-9a-f]{16}$/);
    expect(report['files']).toEqual([{ path: 'agents/a.yaml', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) }]);

    const strict = run(['policy', 'check', dir, '--format', 'json', '--strict']);
    expect(strict.status).toBe(1);
    expect(JSON.parse(strict.stdout)).toMatchObject({ ok: false, strict: true, warnings: [warning] });

    file('invalid-json/a.yaml', 'agent_policy:\n  id: a\n  integrations:\n    github: { max_scopes: [repo:read] }\n');
    const invalid = run(['policy', 'check', join(temp, 'invalid-json'), '--format', 'json']);
    expect(invalid.status).toBe(1);
    expect(JSON.parse(invalid.stdout)).toMatchObject({
      version: 1,
      ok: false,
      error: { code: 'policy_invalid' },
      errors: [
        { file: 'a.yaml', line: 4, column: 5, path: 'agent_policy.integrations.github' },
        { file: 'a.yaml', line: 4, column: 15, path: 'agent_policy.integrations.github.max_scopes' },
      ],
    });

    expect(run(['policy', 'check', dir, '--format', 'yaml']).status).toBe(2);
  });

  it('skips the test folder: policies/.tests is never loaded as policies', () => {
    const res = run(['policy', 'check', 'policies', '--format', 'json']);
    expect(res.status).toBe(0);
    const files = (JSON.parse(res.stdout) as { files: Array<{ path: string }> }).files.map((f) => f.path);
    expect(files.length).toBeGreaterThan(0);
    expect(files.filter((f) => f.startsWith('.'))).toEqual([]);
  });
});
