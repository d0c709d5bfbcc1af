/**
 * What the suggestion tests that go through the CLI share: `agent-pdp ...` in this process (runCli, as
 * src/cli/main.ts dispatches it, stdout and stderr captured), and a config file next to a test PDP's store and
 * policy folder, so the CLI opens the very SQLite file and folder the running server uses.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { vi } from 'vitest';
import { runCli } from '../../src/cli/run-cli.js';
import { TEST_CALLERS, type TestPdp } from '../support/pdp-harness.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** `agent-pdp ...args` in this process, stdout and stderr captured. */
export async function cli(...args: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const capture = (into: (text: string) => void) => (chunk: string | Uint8Array, ...more: unknown[]) => {
    into(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    const callback = more.find((m) => typeof m === 'function') as (() => void) | undefined;
    callback?.();
    return true;
  };
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(capture((s) => (stdout += s)) as typeof process.stdout.write);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(capture((s) => (stderr += s)) as typeof process.stderr.write);
  try {
    return { code: await runCli(args), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

/**
 * A config for the CLI on the test PDP's files (store `data/pdp.db`, policies `policies/`, keys `data/keys`), with
 * extra top-level sections; written 0600 into the PDP's temp dir. Returns its path.
 */
export function cliConfig(t: TestPdp, name: string, extra: Record<string, unknown> = {}): string {
  const path = join(t.dir, `${name}.json`);
  const raw = {
    policy: { bundle: 'bundle.tar.gz', agents: 'policies', watch: false },
    store: { url: 'sqlite:data/pdp.db' },
    issuer: { issuer: 'http://127.0.0.1:8181', keys: 'data/keys' },
    log: { level: 'silent' },
    callers: TEST_CALLERS,
    ...extra,
  };
  writeFileSync(path, JSON.stringify(raw, null, 2));
  chmodSync(path, 0o600);
  return path;
}
