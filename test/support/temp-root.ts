import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Vitest global setup: one temp folder per test run, handed to every worker (and every process the tests start)
 * as TMPDIR, and removed when the run ends. Tests create their stores, bundles and OPA scratch files with
 * `mkdtempSync(join(tmpdir(), …))`; not all of them clean up after a failure, and a run used to leave about a
 * thousand folders behind in /tmp.
 */
export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'agent-pdp-test-run-'));
  const previous = process.env['TMPDIR'];
  process.env['TMPDIR'] = root;
  return () => {
    if (previous === undefined) delete process.env['TMPDIR'];
    else process.env['TMPDIR'] = previous;
    rmSync(root, { recursive: true, force: true });
  };
}
