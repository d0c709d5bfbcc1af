import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingServerFlags, SERVER_NODE_FLAGS } from '../../src/workers/process-flags.js';
import { CLI, ensureBuilt } from '../audit-e2e/cli.js';
import { TEST_CALLERS } from '../support/pdp-harness.js';

/**
 * The V8 flags a serving process runs with (src/workers/process-flags.ts: `--no-memory-reducer`). Started through the
 * `agent-pdp` bin (its shebang, as `npx agent-pdp serve` and an installed package run it) the server has them on its
 * command line and says nothing; started as `node dist/cli/main.js serve` without them it warns once, naming the flag,
 * and serves all the same. (`serve --workers N` gives its workers the flags whatever the primary had:
 * test/server/workers.test.ts.)
 */

const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-process-flags-'));
const configPath = join(dir, 'agent-pdp.yaml');
const children: ChildProcess[] = [];

interface LogLine {
  level?: number;
  msg?: string;
  url?: string;
  pid?: number;
  missing_node_flags?: string[];
}

/** Starts `command args`, collects its log lines until it listens; resolves with them and its URL. */
function serve(command: string, args: string[]): Promise<{ child: ChildProcess; lines: LogLine[]; url: string }> {
  // The shebang finds `node` on PATH (`/usr/bin/env`): this test's node first.
  const env = { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env['PATH'] ?? ''}` };
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
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

/** Node's own arguments of a running process (Linux: /proc/<pid>/cmdline). */
const commandLine = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');

beforeAll(() => {
  ensureBuilt();
  chmodSync(CLI, 0o755); // as `make build` leaves it (the bin is run through its shebang)
  cpSync(resolve('test/fixtures/policies'), join(dir, 'policies'), { recursive: true });
  writeFileSync(
    configPath,
    JSON.stringify({
      server: { listen: '127.0.0.1:0' },
      policy: { bundle: resolve('opa-bundle/bundle.tar.gz'), agents: 'policies', watch: false },
      store: { url: 'sqlite:data/pdp.db' },
      issuer: { issuer: 'http://127.0.0.1:8181', keys: 'data/keys' },
      log: { level: 'info' },
      callers: TEST_CALLERS,
    }),
  );
}, 120_000);

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('missingServerFlags', () => {
  it('names the server flags node was not given, whichever spelling V8 accepts', () => {
    expect(SERVER_NODE_FLAGS).toEqual(['--no-memory-reducer']);
    expect(missingServerFlags([])).toEqual(['--no-memory-reducer']);
    expect(missingServerFlags(['--max-old-space-size=512', '--memory-reducer'])).toEqual(['--no-memory-reducer']);
    expect(missingServerFlags(['--no-memory-reducer'])).toEqual([]);
    expect(missingServerFlags(['--no_memory_reducer', '--cpu-prof'])).toEqual([]);
  });
});

describe('a serving process', () => {
  it('started through the agent-pdp bin runs with the server flags and does not warn', async () => {
    const { child, lines, url } = await serve(CLI, ['serve', '--config', configPath]);
    expect(commandLine(child.pid!)).toEqual(expect.arrayContaining(['--no-memory-reducer']));
    expect(lines.filter((l) => l.missing_node_flags !== undefined)).toEqual([]);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    child.kill('SIGTERM');
  }, 90_000);

  it('started as plain `node dist/cli/main.js serve` warns once, naming the missing flag, and serves', async () => {
    const { child, lines, url } = await serve(process.execPath, [CLI, 'serve', '--config', configPath]);
    expect(commandLine(child.pid!)).not.toContain('--no-memory-reducer');
    const warnings = lines.filter((l) => l.missing_node_flags !== undefined);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 40, missing_node_flags: ['--no-memory-reducer'] });
    expect(warnings[0]?.msg).toContain('--no-memory-reducer');
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    child.kill('SIGTERM');
  }, 90_000);
});
