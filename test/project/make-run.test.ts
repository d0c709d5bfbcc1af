import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { SERVER_NODE_FLAGS } from '../../src/workers/process-flags.js';

/**
 * `make run` needs Node only: the WASM bundle is committed (and `make test` checks it is fresh), so serving never
 * builds the OPA CLI, never needs Go and never rebuilds the bundle. `make -n -B` prints every recipe `make run`
 * would run, prerequisites included, as if nothing were built yet. It serves with the serving processes' node flags
 * (src/workers/process-flags.ts).
 */
it('make run builds no OPA CLI, needs no Go and does not rebuild the bundle', () => {
  const dry = spawnSync('make', ['-n', '-B', 'run'], { encoding: 'utf8' });
  expect(dry.status).toBe(0);
  expect(dry.stdout).toContain(`node ${SERVER_NODE_FLAGS.join(' ')} dist/cli/main.js serve`);
  for (const needle of ['go install', '.tools/bin/opa', 'build-bundle', 'opa build']) expect(dry.stdout).not.toContain(needle);
});
