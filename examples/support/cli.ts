/**
 * The one-command way to run an example against a PDP already serving on loopback (`make run`, which uses the
 * public dev keys of `agent-pdp.dev.yaml`): `node dist-examples/examples/<name>.js [--pdp URL]`.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { ExampleKeys, ExampleOptions, Transcript } from './transcript.js';

/** The documented, public dev keys of `agent-pdp.dev.yaml` (README): callers support-middleware, orchestrator, crm-api. */
export const DEV_KEYS: ExampleKeys = { pep: 'dev-pep-key', orchestrator: 'dev-orchestrator-key', resource: 'dev-resource-key' };

/** Whether the module at `moduleUrl` is the program node was started with. */
export function isMain(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === moduleUrl;
  } catch {
    return false;
  }
}

export async function runFromCommandLine(run: (options: ExampleOptions) => Promise<Transcript>): Promise<void> {
  const { values } = parseArgs({ options: { pdp: { type: 'string', default: 'http://127.0.0.1:8181' } } });
  try {
    await run({ pdpUrl: values.pdp, keys: DEV_KEYS, log: (line) => process.stdout.write(`${line}\n`) });
  } catch (err) {
    process.stderr.write(`example failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
