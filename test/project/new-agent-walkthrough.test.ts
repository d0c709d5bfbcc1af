import { execFile } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { startServer, type RunningServer } from '../../src/main.js';
import { ensureBuilt } from '../audit-e2e/cli.js';

/**
 * docs/policy-authoring.md, "Your first agent": its `sh` blocks, as written, in a copy of the repository's policy
 * folder served by a running server with the dev config's callers and the watcher on: a new agent file, a passing
 * `agent-pdp policy test`, and an allowed decision, with no restart and no config edit.
 */
const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-first-agent-'));
let server: RunningServer;

function privateTree(path: string): void {
  chmodSync(path, 0o755);
  for (const e of readdirSync(path, { withFileTypes: true })) {
    if (e.isDirectory()) privateTree(join(path, e.name));
    else chmodSync(join(path, e.name), 0o644);
  }
}

beforeAll(async () => {
  ensureBuilt();
  cpSync(resolve('policies'), join(dir, 'policies'), { recursive: true });
  privateTree(join(dir, 'policies'));
  mkdirSync(join(dir, 'opa-bundle'), { mode: 0o755 });
  cpSync(resolve('opa-bundle/bundle.tar.gz'), join(dir, 'opa-bundle/bundle.tar.gz'));
  chmodSync(join(dir, 'opa-bundle/bundle.tar.gz'), 0o644);
  const dev = parse(readFileSync('agent-pdp.dev.yaml', 'utf8')) as { callers: unknown[] };
  const config = {
    server: { listen: '127.0.0.1:0' },
    policy: { bundle: 'opa-bundle/bundle.tar.gz', agents: 'policies', watch: true, watch_interval_ms: 200 },
    store: { url: 'sqlite:data/pdp.db' },
    issuer: { issuer: 'http://127.0.0.1:8181', keys: 'data/keys' },
    log: { level: 'silent' },
    callers: dev.callers,
  };
  writeFileSync(join(dir, 'config.yaml'), stringify(config), { mode: 0o600 });
  server = await startServer({ configPath: join(dir, 'config.yaml') });
}, 120_000);
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

function section(): string {
  const doc = readFileSync('docs/policy-authoring.md', 'utf8');
  const text = doc.slice(doc.indexOf('## Your first agent'), doc.indexOf('## Files'));
  const blocks = [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
  expect(blocks).toHaveLength(3);
  return blocks.join('\n');
}

it('a new agent file → a passing policy test → an allowed decision from the running server', async () => {
  const cli = `node ${resolve('dist/cli/main.js')}`;
  const script = `curl() { command curl "$@"; local rc=$?; echo; return $rc; }\n${section()}`
    .replaceAll('npx agent-pdp', cli)
    .replace('PDP=http://127.0.0.1:8181', `PDP=${server.url}`);
  const res = await new Promise<{ code: number; stdout: string; stderr: string }>((ok) => {
    execFile('bash', ['-eo', 'pipefail', '-c', script], { cwd: dir, timeout: 60_000 }, (error, stdout, stderr) =>
      ok({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr }),
    );
  });
  expect(res.stderr, res.stdout).toBe("");
  expect(res.code, res.stdout).toBe(0);
  expect(res.stdout).toMatch(/PASS: \d+ suites, (\d+) cases: \1 passed/);
  expect(res.stdout).toContain("release-notes-writer (policies/.tests/release-notes-writer.yaml)");
  const answers = res.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(answers[0]).toMatchObject({ status: 'ready', policy_on_disk: 'loaded', agents: 5 });
  expect(answers[2]).toMatchObject({ allow: true, agent_id: 'release-notes-writer', granted_scopes: ['pr:read'], token_ttl_seconds: 600 });
}, 90_000);
