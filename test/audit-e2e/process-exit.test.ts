/**
 * The store's checkpoint worker never keeps a process alive: the built binaries, in child processes, exit on
 * their own when their work is done or has failed, whether or not anyone closed the store.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { TEST_CALLERS } from '../support/pdp-harness.js';
import { CLI, ensureBuilt, type CliRun } from './cli.js';

/** A child that has not exited after this long is killed and reported as hung (exit code null). */
const HUNG_AFTER_MS = 30_000;

let dir: string;
let taken: Server;

beforeAll(async () => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'agent-pdp-exit-'));
  taken = createServer();
  await new Promise<void>((ok) => taken.listen(0, '127.0.0.1', ok));
}, 120_000);

afterAll(async () => {
  await new Promise((ok) => taken.close(ok));
  rmSync(dir, { recursive: true, force: true });
});

function run(args: string[]): Promise<CliRun & { hung: boolean }> {
  return new Promise((ok) => {
    execFile(process.execPath, args, { timeout: HUNG_AFTER_MS, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      const hung = error !== null && error.killed === true;
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      ok({ code, stdout, stderr, hung });
    });
  });
}

describe('processes with a store exit on their own', () => {
  it('agent-pdp serve on a port already in use reports it and exits 1', async () => {
    const address = taken.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    const configPath = join(dir, 'taken.yaml');
    writeFileSync(
      configPath,
      stringify({
        server: { listen: `127.0.0.1:${address.port}` },
        policy: { bundle: resolve('opa-bundle/bundle.tar.gz'), agents: resolve('test/fixtures/policies'), watch: false },
        store: { url: 'sqlite:data/taken.db' },
        issuer: { issuer: 'http://127.0.0.1:8181', keys: 'data/keys' },
        log: { level: 'silent' },
        callers: TEST_CALLERS,
      }),
    );
    const result = await run([CLI, 'serve', '--config', configPath]);
    expect(result.hung).toBe(false);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/EADDRINUSE/);
  }, 60_000);

  it('a script that opens a file store, writes and never closes it', async () => {
    const store = resolve('dist/store/index.js');
    const script = `
      const { SqliteStore } = await import(${JSON.stringify(store)});
      const s = SqliteStore.open(process.argv[1]);
      const [event] = await s.appendEvents([{ type: 'auth.failed', time: '2026-01-01T00:00:00.000Z', caller_id: 'c', data: { reason: 'bad_key' } }]);
      if (s.stats().wal_checkpoints?.mode !== 'background') throw new Error('no checkpoint worker');
      process.stdout.write(String(event.seq));
    `;
    const result = await run(['--input-type=module', '-e', script, join(dir, 'unclosed.db')]);
    expect(result.hung).toBe(false);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('1');
  }, 60_000);
});
