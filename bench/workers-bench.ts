/**
 * Every core (issue 19): `agent-pdp serve --workers 2` against `--workers 1`, on SQLite and on PostgreSQL, and against
 * `opa run --server` (GOMAXPROCS = the cores), all unpinned, under the same vegeta load at saturation (`-rate=0`, N in
 * flight), the same request mix (bench/lib/workload.ts), durable audit on for ours. Rounds alternate the order of the
 * servers; each figure is the median over rounds of the throughput of successful answers. The load generator (and,
 * for the PostgreSQL runs, the database server: its CPU is counted in `rounds_db_cores`) shares the machine with the
 * servers, as it does in the HTTP section: read the ratios.
 *
 *   node .build/bench/bench/workers-bench.js [--seconds 8] [--rounds 3] [--max-workers 64] [--json]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { targetsFor } from './http-bench.js';
import { startPostgres, type BenchPostgres } from './lib/postgres.js';
import { cpuSeconds, stopProcess } from './lib/processes.js';
import { REPO, startOpa, startOurs, type RunningServer } from './lib/servers.js';
import { isMain, median, round } from './lib/timing.js';
import { attack, writeTargets } from './lib/vegeta.js';

export interface WorkersBenchResult {
  seconds: number;
  rounds: number;
  max_workers: number;
  cores: number;
  servers: Array<{ name: string; rounds_rps: number[]; median_rps: number; rounds_cores: number[]; rounds_db_cores: number[]; errors: number }>;
  ratio: {
    workers2_vs_workers1: number;
    workers2_vs_opa: number;
    workers1_vs_opa: number;
    /** PostgreSQL store ÷ SQLite store, each with --workers 2 (and with --workers 1). */
    postgres_vs_sqlite_workers2: number;
    postgres_vs_sqlite_workers1: number;
    postgres_workers2_vs_workers1: number;
  };
}

type Name = 'ours --workers 1' | 'ours --workers 2' | 'ours postgres --workers 1' | 'ours postgres --workers 2' | 'opa';

export async function runWorkersBench(seconds: number, rounds: number, maxWorkers: number, opaBin: string, vegeta: string): Promise<WorkersBenchResult> {
  const work = mkdtempSync(join(tmpdir(), 'agent-pdp-workers-bench-'));
  const servers = new Map<Name, RunningServer>();
  let pg: BenchPostgres | undefined;
  try {
    pg = startPostgres();
    const onPostgres = (schema: string) => ({ store: { url: (pg as BenchPostgres).url, schema } });
    servers.set('ours --workers 1', await startOurs({ dir: join(work, 'w1'), cpu: undefined, logLevel: 'warn', workers: 1 }));
    servers.set('ours --workers 2', await startOurs({ dir: join(work, 'w2'), cpu: undefined, logLevel: 'warn', workers: 2 }));
    servers.set('ours postgres --workers 1', await startOurs({ dir: join(work, 'pg1'), cpu: undefined, logLevel: 'warn', workers: 1, config: onPostgres('bench_w1') }));
    servers.set('ours postgres --workers 2', await startOurs({ dir: join(work, 'pg2'), cpu: undefined, logLevel: 'warn', workers: 2, config: onPostgres('bench_w2') }));
    servers.set('opa', await startOpa({ dir: join(work, 'opa'), cpu: undefined, opa: opaBin, logLevel: 'error' }));
    const rps = new Map<Name, number[]>();
    const cores = new Map<Name, number[]>();
    const dbCores = new Map<Name, number[]>();
    const errors = new Map<Name, number>();
    const order: Name[] = ['ours --workers 1', 'ours --workers 2', 'ours postgres --workers 1', 'ours postgres --workers 2', 'opa'];
    for (const [name, server] of servers) {
      writeTargets(join(work, `${name.replace(/\W+/g, '-')}.targets`), targetsFor(server));
      // Warm-up: the JIT, the first group commits, the WAL.
      await attack({ vegeta, targetsFile: join(work, `${name.replace(/\W+/g, '-')}.targets`), rate: 0, durationSeconds: 2, maxWorkers, cpu: undefined, resultsFile: join(work, 'warmup.bin') });
    }
    for (let r = 0; r < rounds; r++) {
      for (const name of r % 2 === 0 ? order : [...order].reverse()) {
        const server = servers.get(name) as RunningServer;
        const pids = serverPids(server);
        const cpu0 = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
        const db0 = postgresCpu(pg);
        const report = await attack({
          vegeta,
          targetsFile: join(work, `${name.replace(/\W+/g, '-')}.targets`),
          rate: 0,
          durationSeconds: seconds,
          maxWorkers,
          cpu: undefined,
          resultsFile: join(work, `${name.replace(/\W+/g, '-')}-${r}.bin`),
        });
        const cpu = serverPids(server).reduce((sum, pid) => sum + cpuSeconds(pid), 0) - cpu0;
        const db = postgresCpu(pg) - db0;
        rps.set(name, [...(rps.get(name) ?? []), round(report.throughput, 0)]);
        cores.set(name, [...(cores.get(name) ?? []), round(cpu / seconds, 2)]);
        dbCores.set(name, [...(dbCores.get(name) ?? []), round(db / seconds, 2)]);
        errors.set(name, (errors.get(name) ?? 0) + report.requests - Math.round(report.success * report.requests));
      }
    }
    const med = (name: Name): number => median(rps.get(name) ?? [0]);
    return {
      seconds,
      rounds,
      max_workers: maxWorkers,
      cores: availableParallelism(),
      servers: order.map((name) => ({
        name,
        rounds_rps: rps.get(name) ?? [],
        median_rps: med(name),
        rounds_cores: cores.get(name) ?? [],
        rounds_db_cores: dbCores.get(name) ?? [],
        errors: errors.get(name) ?? 0,
      })),
      ratio: {
        workers2_vs_workers1: round(med('ours --workers 2') / med('ours --workers 1'), 2),
        workers2_vs_opa: round(med('ours --workers 2') / med('opa'), 2),
        workers1_vs_opa: round(med('ours --workers 1') / med('opa'), 2),
        postgres_vs_sqlite_workers2: round(med('ours postgres --workers 2') / med('ours --workers 2'), 2),
        postgres_vs_sqlite_workers1: round(med('ours postgres --workers 1') / med('ours --workers 1'), 2),
        postgres_workers2_vs_workers1: round(med('ours postgres --workers 2') / med('ours postgres --workers 1'), 2),
      },
    };
  } finally {
    for (const server of servers.values()) await stopProcess(server.child);
    pg?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

/** CPU seconds of the PostgreSQL server: the postmaster and its backends. */
function postgresCpu(pg: BenchPostgres | undefined): number {
  if (pg === undefined) return 0;
  return childPids(pg.pid).reduce((sum, pid) => sum + cpuSeconds(pid), cpuSeconds(pg.pid));
}

function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).split('\n').filter((l) => l !== '').map(Number);
  } catch {
    return [];
  }
}

/** The server's process and, for ours with workers, its children (the workers do the work). */
function serverPids(server: RunningServer): number[] {
  const pid = server.child.pid;
  if (pid === undefined) return [];
  try {
    const children = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).split('\n').filter((l) => l !== '').map(Number);
    return [pid, ...children];
  } catch {
    return [pid];
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '8' }, rounds: { type: 'string', default: '3' }, 'max-workers': { type: 'string', default: '64' }, json: { type: 'boolean' } } });
  const opa = process.env['OPA'] ?? join(REPO, '.tools/bin/opa');
  const vegeta = process.env['VEGETA'] ?? join(REPO, '.tools/bin/vegeta');
  const result = await runWorkersBench(Number(values.seconds), Number(values.rounds), Number(values['max-workers']), opa, vegeta);
  process.stdout.write(`${JSON.stringify(result, null, values.json === true ? undefined : 2)}\n`);
}
