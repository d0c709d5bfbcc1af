import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingServerFlags, SERVER_NODE_FLAGS } from '../../src/workers/process-flags.js';
import { CLI, ensureBuilt } from '../audit-e2e/cli.js';
import { spawnedServerConfig } from '../support/pdp-harness.js';

/**
 * The V8 flags a serving process runs with (src/workers/process-flags.ts: `--no-memory-reducer`). Started as
 * `make run` starts it (`node --no-memory-reducer dist/cli/main.js serve`) the server says nothing; started without the
 * flag it warns once, naming the flag, and serves all the same. (`serve --workers N` gives its workers the flag
 * whatever the primary had: test/server/workers.test.ts; `make run`'s command line: test/project/make-run.test.ts.)
 */

const root = mkdtempSync(join(tmpdir(), 'agent-pdp-process-flags-'));
const children: ChildProcess[] = [];

interface LogLine {
  level?: number;
  msg?: string;
  url?: string;
  pid?: number;
  missing_node_flags?: string[];
}

/** Starts `node …nodeArgs CLI serve` on a store of its own; resolves once it listens, with its log lines and URL. */
function serve(nodeArgs: string[]): Promise<{ child: ChildProcess; lines: LogLine[]; url: string }> {
  const dir = mkdtempSync(join(root, 'server-'));
  cpSync(resolve('test/fixtures/policies'), join(dir, 'policies'), { recursive: true });
  const configPath = join(dir, 'agent-pdp.yaml');
  writeFileSync(configPath, JSON.stringify(spawnedServerConfig()));
  const child = spawn(process.execPath, [...nodeArgs, CLI, 'serve', '--config', configPath], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const lines: LogLine[] = [];
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`not listening after 60 s: ${JSON.stringify(lines)}`)), 60_000);
    child.once('exit', (code) => fail(new Error(`exited with ${code} before listening: ${JSON.stringify(lines)}`)));
    createInterface({ input: child.stdout! }).on('line', (text) => {
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        return; // not a log line
      }
      lines.push(line);
      if (line.msg === 'agent-pdp listening') {
        clearTimeout(timer);
        ok({ child, lines, url: line.url as string });
      }
    });
  });
}

/** Stops a server and waits for it to exit. */
const stop = (child: ChildProcess): Promise<void> =>
  new Promise((ok) => {
    if (child.exitCode !== null || child.signalCode !== null) return ok();
    child.once('exit', () => ok());
    child.kill('SIGTERM');
  });

/** Node's own arguments of a running process (Linux: /proc/<pid>/cmdline). */
const commandLine = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');

beforeAll(() => {
  ensureBuilt();
}, 120_000);

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

describe('missingServerFlags', () => {
  it('names the server flags node was not given, whichever spelling V8 accepts, the last word winning', () => {
    expect(SERVER_NODE_FLAGS).toEqual(['--no-memory-reducer']);
    expect(missingServerFlags([])).toEqual(['--no-memory-reducer']);
    expect(missingServerFlags(['--max-old-space-size=512', '--memory-reducer'])).toEqual(['--no-memory-reducer']);
    expect(missingServerFlags(['--no-memory-reducer'])).toEqual([]);
    expect(missingServerFlags(['--no_memory_reducer', '--cpu-prof'])).toEqual([]);
    expect(missingServerFlags(['--nomemory-reducer'])).toEqual([]);
    expect(missingServerFlags(['--nomemory_reducer'])).toEqual([]);
    expect(missingServerFlags(['--no-memory-reducer', '--memory-reducer'])).toEqual(['--no-memory-reducer']);
    expect(missingServerFlags(['--memory-reducer', '--no-memory-reducer'])).toEqual([]);
  });
});

describe('a serving process', () => {
  it('started with the server flags, as `make run` starts it, runs with them and does not warn', async () => {
    const { child, lines, url } = await serve([...SERVER_NODE_FLAGS]);
    expect(commandLine(child.pid!)).toEqual(expect.arrayContaining(['--no-memory-reducer']));
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect(lines.filter((l) => l.missing_node_flags !== undefined)).toEqual([]);
    await stop(child);
  }, 90_000);

  it('started as plain `node dist/cli/main.js serve` warns once, naming the missing flag, and serves', async () => {
    const { child, lines, url } = await serve([]);
    expect(commandLine(child.pid!)).not.toContain('--no-memory-reducer');
    const warnings = lines.filter((l) => l.missing_node_flags !== undefined);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 40, missing_node_flags: ['--no-memory-reducer'] });
    expect(warnings[0]?.msg).toContain('node --no-memory-reducer dist/cli/main.js');
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    await stop(child);
  }, 90_000);
});
