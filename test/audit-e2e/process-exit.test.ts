/**
 * The store's checkpoint worker never keeps a process alive: the built binaries, in child processes, exit on
 * their own when their work is done or has failed, whether or not anyone closed the store.
 */
import Database from 'better-sqlite3';
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

  it('a script whose writes wait behind the WAL catch-up pause still gets them committed before it exits', async () => {
    // With nothing else to keep the process alive, a pause held only by unref'd handles would let it exit (code 13:
    // a top-level await never settled) with the writes queued behind the pause never committed.
    const store = resolve('dist/store/index.js');
    const script = `
      const { SqliteStore } = await import(${JSON.stringify(store)});
      const s = SqliteStore.open(process.argv[2], { walCatchUpPages: 8, checkpointIntervalMs: 2 });
      let n = 0;
      // Transactions of 100 events each: a round finds more than 8 pages in the WAL after one of them.
      for (let i = 0; i < 2000 && (s.stats().wal_checkpoints?.catch_ups ?? 0) < 3; i++) {
        await s.appendEvents(Array.from({ length: 100 }, (_, k) => ({ type: 'auth.failed', time: '2026-01-01T00:00:00.000Z', caller_id: 'c' + i + '-' + k, data: { reason: 'bad_key' } })));
        n += 100;
      }
      process.stdout.write(JSON.stringify({ n, catch_ups: s.stats().wal_checkpoints?.catch_ups }));
    `;
    const path = join(dir, 'paused.db');
    // A module file, not `--input-type=module -e`: worker threads inherit that flag, and the checkpoint worker's
    // source (CommonJS) would fail to start.
    const file = join(dir, 'paused.mjs');
    writeFileSync(file, script);
    const result = await run([file, path]);
    expect(result.hung).toBe(false);
    expect(result.code, result.stderr).toBe(0);
    const { n, catch_ups } = JSON.parse(result.stdout) as { n: number; catch_ups: number };
    expect(catch_ups).toBeGreaterThanOrEqual(3);
    const db = new Database(path, { readonly: true });
    try {
      expect((db.prepare("SELECT COUNT(*) AS n FROM audit_events WHERE type = 'auth.failed'").get() as { n: number }).n).toBe(n);
    } finally {
      db.close();
    }
  }, 60_000);
});
