/**
 * The peer of the in-process figure: `opa bench` (OPA's Go evaluator, Go's benchmark loop) on the same query,
 * Rego (test files left out), data and input. ns/op is T/N of its JSON output.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pinned } from './processes.js';
import { regoSources } from './servers.js';

export interface OpaBenchResult {
  ns_per_op: number;
  n: number;
  allocs_per_op: number;
  bytes_per_op: number;
  /** Median of OPA's own rego_query_eval timer (excludes the benchmark loop's query preparation). */
  query_eval_median_ns: number | null;
}

export function opaBench(o: { opa: string; cpu: string | undefined; dataFile: string; input: unknown; dir: string; tag: string }): OpaBenchResult {
  const inputFile = join(o.dir, `opa-bench-input-${o.tag}.json`);
  writeFileSync(inputFile, JSON.stringify(o.input));
  const args = ['bench', ...regoSources().flatMap((f) => ['-d', f]), '-d', o.dataFile, '-i', inputFile, 'data.agentpdp.decision', '--format', 'json'];
  const [cmd, a] = pinned(o.cpu, o.opa, args);
  const out = spawnSync(cmd, a, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024, timeout: 120_000 });
  if (out.status !== 0) throw new Error(`opa bench exited ${out.status ?? out.signal}: ${out.stderr.slice(-1000)}`);
  const r = JSON.parse(out.stdout) as { N: number; T: number; MemAllocs: number; MemBytes: number; Extra?: Record<string, number> };
  return {
    ns_per_op: Math.round((r.T / r.N) * 10) / 10,
    n: r.N,
    allocs_per_op: Math.round(r.MemAllocs / r.N),
    bytes_per_op: Math.round(r.MemBytes / r.N),
    query_eval_median_ns: r.Extra?.['histogram_timer_rego_query_eval_ns_median'] ?? null,
  };
}
