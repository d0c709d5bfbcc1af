import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The real OPA CLI that `make tools` installs; tests compare our WASM path against OPA's own evaluator. */
export const OPA_BIN = process.env['OPA'] ?? resolve('.tools/bin/opa');

/**
 * Evaluates `data.agentpdp.decision` with OPA's Go evaluator for many inputs in one process: the inputs go in as
 * data (`cases`), and a comprehension evaluates the decision `with input as` each one.
 */
export function opaEvalDecisions(data: object, inputs: readonly object[]): unknown[] {
  const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-opa-'));
  const dataFile = join(dir, 'data.json');
  writeFileSync(dataFile, JSON.stringify({ ...data, agentpdp_oracle_cases: inputs }));
  const query = '[d | some c in data.agentpdp_oracle_cases; d := data.agentpdp.decision with input as c]';
  const out = execFileSync(
    OPA_BIN,
    ['eval', '--format', 'json', '-d', resolve('rego'), '-d', dataFile, '--ignore', '*_test.rego', query],
    { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 },
  );
  const parsed = JSON.parse(out) as { result?: Array<{ expressions: Array<{ value: unknown[] }> }> };
  const value = parsed.result?.[0]?.expressions[0]?.value;
  if (!Array.isArray(value) || value.length !== inputs.length) {
    throw new Error(`opa eval returned ${Array.isArray(value) ? value.length : 'no'} results for ${inputs.length} inputs`);
  }
  return value;
}
