import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startTestPdp, type TestPdp } from '../support/pdp-harness.js';

/**
 * The README's first-decision walkthrough, as written: its `sh` blocks of "A first decision", run in one bash
 * against a server with the dev config's callers (the dev keys the README uses), twice in a row: it must work
 * again without `make clean`, and a refused step must never leave an error in a variable.
 */
let t: TestPdp;
beforeAll(async () => {
  const dev = parse(readFileSync('agent-pdp.dev.yaml', 'utf8')) as { callers: unknown[] };
  t = await startTestPdp({ policies: 'policies', config: { callers: dev.callers } });
});
afterAll(async () => {
  await t.close();
});

function blocksOf(from: string, to: string): string[] {
  const readme = readFileSync('README.md', 'utf8');
  const section = readme.slice(readme.indexOf(from), readme.indexOf(to));
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
}

function walkthrough(): string {
  const blocks = blocksOf('## A first decision', '## Where to read next');
  expect(blocks.length).toBeGreaterThanOrEqual(4);
  return blocks.join('\n');
}

/** "Break-glass": it continues the first walkthrough's shell (PDP, field). */
function breakGlass(): string {
  const blocks = blocksOf('## Break-glass', '## Put a tool behind agent-pdp');
  expect(blocks.length).toBe(2);
  return blocks.join('\n');
}

/** Runs the script in bash, asynchronously: the server answering it lives in this process. */
function run(script: string): Promise<{ status: number; stdout: string; stderr: string }> {
  // Each answer on its own line (they end without a newline); the server is this test's, not :8181.
  const newlineAfterEachAnswer = 'curl() { command curl "$@"; local rc=$?; echo; return $rc; }';
  const body = `${newlineAfterEachAnswer}\n${script.replace('PDP=http://127.0.0.1:8181', `PDP=${t.url}`)}`;
  return new Promise((resolve) => {
    execFile('bash', ['-eo', 'pipefail', '-c', `${body}\necho "TASK=$TASK"; echo "TOKEN_LEN=\${#TOKEN}"`], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ status: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

it.each([1, 2])('runs as written (run %i)', async () => {
  const res = await run(walkthrough());
  expect(res.stderr).toBe('');
  expect(res.status).toBe(0);
  const lines = res.stdout.split('\n').filter((l) => l.startsWith('{'));
  const answers = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  // register, decide, introspect (active), complete, introspect (inactive)
  expect(answers[0]).toMatchObject({ agent_id: 'support-resolver', status: 'active' });
  expect(answers[1]).toMatchObject({ allow: true, granted_scopes: ['tickets:write'] });
  expect(answers[2]).toMatchObject({ active: true, scope: 'tickets:write' });
  expect(answers[3]).toMatchObject({ status: 'completed', revoked_tokens: 1 });
  expect(answers[4]).toEqual({ active: false });
  expect(Number(/TOKEN_LEN=(\d+)/.exec(res.stdout)?.[1])).toBeGreaterThan(100);
});

it('runs the break-glass section as written: denied, requested, approved, allowed with the elevation', async () => {
  const res = await run(`${walkthrough()}\n${breakGlass()}`);
  expect(res.stderr).toBe('');
  expect(res.status).toBe(0);
  const answers = res.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  const [inbox, approved, decided] = answers.slice(-3);
  expect((inbox as { items: Array<{ agent_id: string }> }).items.some((r) => r.agent_id === 'code-review-agent')).toBe(true);
  expect(approved).toMatchObject({ status: 'approved', decided_by: 'oncall', scopes: ['pr:write'] });
  expect(decided).toMatchObject({ allow: true, granted_scopes: ['pr:write'], approval: { id: (approved as { id: string }).id } });
});
