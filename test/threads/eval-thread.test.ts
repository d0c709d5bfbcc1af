/**
 * Worker threads from source text (src/threads/eval-thread.ts) start whatever the main script is: a script, or an
 * ES module (`node --input-type=module`, where a bare `require` does not exist), and keep the per-process flags the
 * thread inherits. Each case runs a real `node` on the compiled modules (dist/, built by `make test` before the tests).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const dist = (path: string): string => pathToFileURL(resolve('dist', path)).href;
const dir = mkdtempSync(join(tmpdir(), 'eval-thread-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `code` as `node [flags] --input-type=module -e code`; its stdout's last line, parsed. */
function runModule(code: string, flags: string[] = []): unknown {
  const out = spawnSync(process.execPath, [...flags, '--input-type=module', '-e', code], { encoding: 'utf8', timeout: 60_000 });
  expect(out.stderr, out.stderr).toBe('');
  expect(out.status).toBe(0);
  return JSON.parse(out.stdout.trim().split('\n').at(-1) ?? 'null');
}

describe('a worker thread from source text', () => {
  it('gets its require under --input-type=module, and the process flags the thread inherits', () => {
    const answer = runModule(
      `import { evalThread } from ${JSON.stringify(dist('threads/eval-thread.js'))};
       const w = evalThread("require('node:worker_threads').parentPort.postMessage({ require: typeof require, os: typeof require('node:os').cpus, argv: process.execArgv })");
       w.on('message', (m) => { console.log(JSON.stringify(m)); void w.terminate(); });`,
      ['--max-old-space-size=200'],
    ) as { require: string; os: string; argv: string[] };
    expect(answer.require).toBe('function');
    expect(answer.os).toBe('function');
    expect(answer.argv).toContain('--max-old-space-size=200');
  });

  it("what the source throws reaches the Worker's 'error' event, even with --unhandled-rejections=warn inherited", () => {
    const answer = runModule(
      `import { evalThread } from ${JSON.stringify(dist('threads/eval-thread.js'))};
       const w = evalThread("throw new Error('the thread failed to start')");
       let error = null;
       w.on('error', (e) => { error = e.message; });
       w.on('exit', (code) => console.log(JSON.stringify({ error, code })));`,
      ['--unhandled-rejections=warn'],
    ) as { error: string | null; code: number };
    expect(answer.error).toBe('the thread failed to start');
    expect(answer.code).toBe(1);
  });

  it('the SQLite store checkpoints its WAL from its worker under --input-type=module', () => {
    const stats = runModule(
      `import { SqliteStore } from ${JSON.stringify(dist('store/index.js'))};
       const store = SqliteStore.open(${JSON.stringify(join(dir, 'module.db'))}, { checkpointIntervalMs: 20 });
       const event = { time: new Date().toISOString(), type: 'policy.loaded', data: { revision: 'r1' } };
       for (let i = 0; i < 20; i++) await store.appendEvents([event]);
       const deadline = Date.now() + 20_000;
       while (store.stats().wal_checkpoints.rounds === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
       const s = store.stats().wal_checkpoints;
       await store.close();
       console.log(JSON.stringify(s));`,
    ) as { mode: string; rounds: number };
    expect(stats.mode).toBe('background');
    expect(stats.rounds).toBeGreaterThan(0);
  });
});
