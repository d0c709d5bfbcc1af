/**
 * Running `agent-pdp audit ...`: in this process, as src/cli/main.ts dispatches it (fast; the tamper tables), or
 * as the built binary in a child process (the crash test, which also needs `serve`).
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { vi } from 'vitest';
import { AUDIT_COMMANDS } from '../../src/cli/audit-commands.js';
import { isPdpError } from '../../src/errors/pdp-error.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * `agent-pdp audit <verb> ...args` in this process: the command's options parsed strictly, its stdout and stderr
 * captured, a thrown error reported and mapped to exit code 1 as main.ts does. `stderrIsTTY` pretends stderr is
 * a terminal.
 */
export async function runAudit(args: string[], options: { stderrIsTTY?: boolean } = {}): Promise<CliRun> {
  const [verb, ...rest] = args;
  const command = AUDIT_COMMANDS.find((c) => c.name === `audit ${verb}`);
  if (command === undefined) throw new Error(`no command audit ${verb}`);
  let stdout = '';
  let stderr = '';
  const capture = (into: (text: string) => void) => (chunk: string | Uint8Array, ...more: unknown[]) => {
    into(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    const callback = more.find((m) => typeof m === 'function') as (() => void) | undefined;
    callback?.();
    return true;
  };
  const outSpy = vi.spyOn(process.stdout, 'write').mockImplementation(capture((t) => (stdout += t)) as typeof process.stdout.write);
  const errSpy = vi.spyOn(process.stderr, 'write').mockImplementation(capture((t) => (stderr += t)) as typeof process.stderr.write);
  const wasTTY = process.stderr.isTTY;
  process.stderr.isTTY = options.stderrIsTTY ?? false;
  let code: number;
  try {
    const { values, positionals } = parseArgs({ args: rest, options: command.options, allowPositionals: true, strict: true });
    code = await command.run(values as Record<string, string | boolean | undefined>, positionals);
  } catch (err) {
    stderr += isPdpError(err) ? `agent-pdp: ${err.code}: ${err.message}\n` : `agent-pdp: ${String(err)}\n`;
    code = 1;
  } finally {
    outSpy.mockRestore();
    errSpy.mockRestore();
    process.stderr.isTTY = wasTTY;
  }
  return { code, stdout, stderr };
}

export const CLI = resolve('dist/cli/main.js');

/**
 * Builds dist/ when it is missing or older than a source file (`make test` builds it first; this keeps
 * `npx vitest run test/audit-e2e` honest after an edit). tsc emits even when some other file has a type error.
 */
export function ensureBuilt(): void {
  if (existsSync(CLI) && existsSync(resolve('dist/cli/audit-commands.js')) && !newerThan(resolve('src'), statSync(CLI).mtimeMs)) return;
  try {
    execFileSync(process.execPath, [resolve('node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { stdio: 'pipe' });
  } catch (err) {
    if (!existsSync(resolve('dist/cli/audit-commands.js'))) throw err;
  }
}

function newerThan(dir: string, mtimeMs: number): boolean {
  return readdirSync(dir, { withFileTypes: true }).some((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? newerThan(path, mtimeMs) : entry.name.endsWith('.ts') && statSync(path).mtimeMs > mtimeMs;
  });
}

/** The built CLI as a child process. */
export function runBuiltCli(args: string[]): Promise<CliRun> {
  return new Promise((ok) => {
    execFile(process.execPath, [CLI, ...args], { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      ok({ code, stdout, stderr });
    });
  });
}
