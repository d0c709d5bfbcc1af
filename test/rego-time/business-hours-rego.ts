import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { OPA_BIN } from '../support/opa-cli.js';

/**
 * The shipped rego/ with `business_hours` (rego/agentpdp/ext/business_hours.rego, shipped empty) configured, as an
 * operator would edit it: a folder of the rule sources (no tests) for `opa eval`, and the WASM bundle
 * `make bundle` would build from it for the PDP.
 */
export interface ConfiguredRego {
  /** The temp folder holding both; `remove()` deletes it. */
  remove(): void;
  /** The .rego sources, for `opa eval -d`. */
  dir: string;
  /** opa-bundle/bundle.tar.gz as scripts/build-bundle.sh builds it (wasm, our capabilities, our entrypoint). */
  bundle: string;
}

const SHIPPED_CONFIG = '\nbusiness_hours := {}\n';

export function configuredRego(businessHours: Record<string, object>): ConfiguredRego {
  const root = mkdtempSync(join(tmpdir(), 'agent-pdp-hours-'));
  const dir = join(root, 'rego');
  const files: string[] = [];
  for (const path of regoSources(resolve('rego'))) {
    let text = readFileSync(path, 'utf8');
    if (path.endsWith('business_hours.rego')) {
      if (!text.includes(SHIPPED_CONFIG)) throw new Error(`business_hours.rego no longer ships "${SHIPPED_CONFIG.trim()}"`);
      text = text.replace(SHIPPED_CONFIG, `\nbusiness_hours := ${JSON.stringify(businessHours)}\n`);
    }
    const out = join(dir, relative(resolve('rego'), path));
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, text);
    files.push(out);
  }
  const bundle = join(root, 'bundle.tar.gz');
  execFileSync(
    OPA_BIN,
    ['build', '-t', 'wasm', '--capabilities', resolve('opa-bundle/capabilities.json'), '-e', 'agentpdp/decision', '-o', bundle, '--revision', 'hours', ...files],
    { stdio: 'pipe' },
  );
  // The PDP refuses a bundle that group or others may write.
  chmodSync(bundle, 0o644);
  return { dir, bundle, remove: () => rmSync(root, { recursive: true, force: true }) };
}

/** `data.agentpdp.decision` by OPA's Go evaluator over `dir`, for each input, in one process. */
export function opaEvalDecisionsIn(dir: string, data: object, inputs: readonly object[]): unknown[] {
  const work = mkdtempSync(join(tmpdir(), 'agent-pdp-opa-'));
  const dataFile = join(work, 'data.json');
  writeFileSync(dataFile, JSON.stringify({ ...data, agentpdp_time_cases: inputs }));
  const query = '[d | some c in data.agentpdp_time_cases; d := data.agentpdp.decision with input as c]';
  let out: string;
  try {
    out = execFileSync(OPA_BIN, ['eval', '--format', 'json', '-d', dir, '-d', dataFile, query], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const value = (JSON.parse(out) as { result?: Array<{ expressions: Array<{ value: unknown }> }> }).result?.[0]?.expressions[0]?.value;
  if (!Array.isArray(value) || value.length !== inputs.length) throw new Error(`opa eval returned no result for each of ${inputs.length} inputs`);
  return value;
}

/**
 * A replay as an auditor would run it: `opa eval` with the recorded input as the input document (`-i`, the exact
 * JSON text), the compiled policies as data, the rules in `dir`.
 */
export function opaReplay(dir: string, data: object, inputJson: string): unknown {
  const work = mkdtempSync(join(tmpdir(), 'agent-pdp-replay-'));
  writeFileSync(join(work, 'data.json'), JSON.stringify(data));
  writeFileSync(join(work, 'input.json'), inputJson);
  let out: string;
  try {
    out = execFileSync(
      OPA_BIN,
      ['eval', '--format', 'json', '-d', dir, '-d', join(work, 'data.json'), '-i', join(work, 'input.json'), 'data.agentpdp.decision'],
      { encoding: 'utf8' },
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return (JSON.parse(out) as { result?: Array<{ expressions: Array<{ value: unknown }> }> }).result?.[0]?.expressions[0]?.value;
}

/** The .rego files under `dir` that the bundle compiles: never a *_test.rego. */
function regoSources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => {
      const path = join(dir, e.name);
      if (e.isDirectory()) return regoSources(path);
      return e.isFile() && e.name.endsWith('.rego') && !e.name.endsWith('_test.rego') ? [path] : [];
    })
    .sort();
}
