import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { OPA_BIN } from './opa-cli.js';

const run = promisify(execFile);

/** Built bundles of this test run, by revision (test/support/temp-root.ts gives every run its own TMPDIR). */
const CACHE = join(tmpdir(), 'agent-pdp-pack-bundles');

/**
 * The path of a bundle of rego/ and the Rego packs in `packDirs`, built as `make bundle PACKS=…` builds it
 * (scripts/build-bundle.sh with the real OPA CLI): usable as `startTestPdp({ bundle })`. Built once per content: the
 * bundle's revision is a hash of every source compiled into it (scripts/bundle-revision.mjs), so the same packs give
 * the same file, and a changed pack file a new one. A build that fails rejects with OPA's (or the pack check's)
 * message.
 */
export async function packBundle(packDirs: readonly string[]): Promise<string> {
  const packArgs = packDirs.flatMap((dir) => ['--pack', resolve(dir)]);
  const { stdout } = await run('node', ['scripts/bundle-revision.mjs', ...packArgs]);
  const out = join(CACHE, `${stdout.trim()}.tar.gz`);
  if (existsSync(out)) return out;
  // 0700: the PDP refuses a bundle in a folder others may write.
  mkdirSync(CACHE, { recursive: true, mode: 0o700 });
  // The script writes a temp file and renames it over `out`: two workers building the same packs both finish.
  await run('scripts/build-bundle.sh', [...packArgs, '--output', out], { env: { ...process.env, OPA: OPA_BIN } });
  chmodSync(out, 0o644);
  return out;
}
