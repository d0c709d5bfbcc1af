/**
 * Storage per decision (issue 19: "store each decision once, at ≤ 800 bytes on disk including indexes, measured at
 * 1 million decisions"). The decide path of a whole PDP in-process, as the server builds it (createPdp: the shipped
 * bundle and policies, the store opened from its URL, the Decider with the server's options), no HTTP; the
 * support-resolver task `bench-task-sr` registered; N decisions of the soak's mix (3 allows, customer 1234, to 1
 * deny, customer 5678), `concurrency` in flight so group commit batches them, every answer checked against the mix.
 *
 * Two variants on a fresh store each: decisions alone, and decisions of which 1 in 8 is redeemed for a token through
 * the real TokenService (`pdp.tokens.redeem`, what `POST /v1/tokens` calls). Only public APIs (createPdp, Decider,
 * TokenService), so the instrument outlives a redesign of src/store/.
 *
 * Where each figure comes from:
 * - the baseline: the same store with only the task registered, closed, measured first;
 * - SQLite: the file, its WAL and -shm after the PDP closed and a `wal_checkpoint(TRUNCATE)`, less the baseline's, ÷
 *   decisions; per table and per index from the `dbstat` virtual table (read-only connection): bytes (pages × page
 *   size), payload, unused, and entries (leaf cells), less the baseline's, ÷ decisions; the freelist apart;
 * - PostgreSQL (a throwaway cluster from scripts/postgres-cluster.sh, one schema per variant): after `VACUUM` (not
 *   FULL), `pg_total_relation_size` of each table of the schema (heap, indexes, TOAST, free-space and visibility
 *   maps) and `pg_relation_size` of each index, less the baseline's, ÷ decisions; rows by count(*);
 * - decisions/s and CPU per decision of the run (informational: bytes do not depend on the machine's load).
 *
 *   npx tsc -p bench/tsconfig.json && node .build/bench/bench/storage-bench.js
 *        [--decisions 1000000] [--quick] (100,000) [--engine sqlite|postgres|both] [--variant decide|redeem|both]
 *        [--concurrency 64] [--json]
 */
import { readdirSync, readFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { buildConfig } from '../src/config/config-loader.js';
import type { PdpConfig } from '../src/config/config-types.js';
import { sha256Hex } from '../src/config/dev-keys.js';
import { createPdp, type Pdp } from '../src/main.js';
import { Decider } from '../src/pdp/decider.js';
import { createLogger } from '../src/server/logger.js';
import { startPostgres, type BenchPostgres } from './lib/postgres.js';
import { CpuWatch, load1 } from './lib/processes.js';
import { BUNDLE, POLICIES } from './lib/servers.js';
import { isMain, round } from './lib/timing.js';
import { BENCH_ORCHESTRATOR, BENCH_PEP, BENCH_TASKS, MIX, type MixCase } from './lib/workload.js';

/** Issue 19's bound, bytes on disk per decision with indexes. */
export const STORAGE_GOAL_BYTES = 800;
/** The soak's task: its cases allow (customer 1234) and deny (customer 5678). */
const TASK_ID = 'bench-task-sr';
/** The redeem variant redeems this one decision in so many (always an allow). */
const REDEEM_EVERY = 8;
const PROGRESS_EVERY = 100_000;

export type StorageEngine = 'sqlite' | 'postgres';
export type StorageVariant = 'decide' | 'decide + redeem 1 in 8';
const VARIANTS: Record<'decide' | 'redeem', StorageVariant> = { decide: 'decide', redeem: 'decide + redeem 1 in 8' };

/** One table or index: its bytes on disk after the run less the baseline's, and per decision. */
export interface StorageRelation {
  name: string;
  kind: 'table' | 'index';
  /** The table an index belongs to (a table names itself). */
  table: string;
  bytes: number;
  bytes_per_decision: number;
  /** Rows (tables) or entries (SQLite indexes: leaf cells) added per decision. */
  rows_per_decision: number | null;
  /** SQLite: bytes of cell content, and of free space inside the pages, per decision; null on PostgreSQL. */
  payload_per_decision: number | null;
  unused_per_decision: number | null;
  /** PostgreSQL tables: the TOAST part and the indexes part of the total, per decision; null otherwise. */
  toast_per_decision: number | null;
  indexes_per_decision: number | null;
}

export interface StorageRun {
  engine: StorageEngine;
  variant: StorageVariant;
  decisions: number;
  allows: number;
  denies: number;
  redeemed: number;
  concurrency: number;
  seconds: number;
  decisions_per_s: number;
  /** This process's CPU (all threads) per decision; PostgreSQL's own CPU is apart (`db_cores`). */
  cpu_us_per_decision: number;
  /** PostgreSQL's processes' CPU over the run, in cores; null for SQLite. */
  db_cores: number | null;
  other_cores: number;
  /** Bytes on disk before (the task registered) and after, as the goal counts them. */
  baseline_bytes: number;
  after_bytes: number;
  bytes_per_decision: number;
  within_goal: boolean;
  /** SQLite: the files after the checkpoint, the page size and the freelist; PostgreSQL: the sizes' source. */
  detail: Record<string, number | string>;
  /** Largest first. */
  relations: StorageRelation[];
}

export interface StorageBenchResult {
  goal_bytes: number;
  decisions: number;
  concurrency: number;
  runs: StorageRun[];
  /** Engines or variants not measured, and why. */
  skipped: Array<{ engine: StorageEngine; reason: string }>;
  /** Peak RSS of this process over all runs (VmHWM): results are counted, not kept. */
  peak_rss_mb: number;
  seconds: number;
  load1_start: number;
  load1_end: number;
}

/** One table or index as measured at one moment (absolute figures; null where the engine has none). */
interface MeasuredRelation {
  name: string;
  kind: 'table' | 'index';
  table: string;
  bytes: number;
  rows: number | null;
  payload: number | null;
  unused: number | null;
  toast: number | null;
  indexes: number | null;
}

/** A closed store on disk: the bytes the goal counts, each relation, and what else was read. */
interface Snapshot {
  total: number;
  relations: Map<string, MeasuredRelation>;
  detail: Record<string, number | string>;
}

function benchConfig(dir: string, store: { url: string; schema?: string }): PdpConfig {
  const { config } = buildConfig(
    {
      server: { listen: '127.0.0.1:0' },
      policy: { bundle: BUNDLE, agents: POLICIES, watch: false },
      store,
      issuer: { issuer: 'https://agent-pdp.bench.invalid', keys: join(dir, 'keys') },
      log: { level: 'silent' },
      callers: [
        { id: BENCH_PEP.id, role: 'pep', key_sha256: sha256Hex(BENCH_PEP.key), agents: ['support-resolver'] },
        { id: BENCH_ORCHESTRATOR.id, role: 'orchestrator', key_sha256: sha256Hex(BENCH_ORCHESTRATOR.key) },
      ],
    },
    join(dir, 'bench.yaml'),
    dir,
  );
  return config;
}

const openPdp = (config: PdpConfig): Promise<Pdp> => createPdp(config, { logger: createLogger('silent'), defaultMetrics: false });

function callerOf(config: PdpConfig, id: string): PdpConfig['callers'][number] {
  const caller = config.callers.find((c) => c.id === id);
  if (caller === undefined) throw new Error(`bench caller ${id} missing`);
  return caller;
}

/** The soak's cases in the mix's interleaved order (allow, deny, allow, allow). */
function soakCases(): MixCase[] {
  const max = Math.max(...MIX.map((c) => c.weight));
  const out: MixCase[] = [];
  for (let r = 0; r < max; r++) for (const c of MIX) if (c.weight > r && c.request.task.id === TASK_ID) out.push(c);
  return out;
}

const sameScopes = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && [...a].sort().join(' ') === [...b].sort().join(' ');

/**
 * N decisions through the Decider the server builds (its options from the config, the PDP's metrics as observer),
 * `concurrency` in flight; with `redeem`, one decision in REDEEM_EVERY (an allow) redeemed at once by the same caller.
 * Nothing is kept: each answer is checked and counted.
 */
async function decideAll(pdp: Pdp, n: number, concurrency: number, redeem: boolean, log: (line: string) => void): Promise<{ allows: number; denies: number; redeemed: number; seconds: number; cpu: number }> {
  const config = pdp.config;
  const caller = callerOf(config, BENCH_PEP.id);
  const decider = new Decider({
    engine: pdp.engine,
    store: pdp.store,
    redeemWindowSeconds: config.issuer.redeem_window_seconds,
    maxTokenTtlSeconds: config.issuer.max_token_ttl_seconds,
    observer: pdp.metrics,
    accessRequests: { endpoint: `${config.escalation.public_url}/v1/access-requests`, windowSeconds: config.escalation.request_window_seconds },
  });
  const cases = soakCases();
  const redeemAt = cases.findIndex((c) => c.expect.outcome === 'allow');
  if (redeemAt < 0 || REDEEM_EVERY % cases.length !== 0) throw new Error(`the soak's cases (${cases.length}) do not fit redeeming 1 in ${REDEEM_EVERY}`);
  let next = 0;
  let allows = 0;
  let denies = 0;
  let redeemed = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let lastLog = t0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      const c = cases[i % cases.length] as MixCase;
      const r = await decider.decide(caller, c.request, null);
      if (r.outcome !== c.expect.outcome || !sameScopes(r.granted_scopes, c.expect.granted)) {
        throw new Error(`decision ${i} ("${c.name}"): ${r.outcome} [${r.granted_scopes.join(' ')}], expected ${c.expect.outcome} [${c.expect.granted.join(' ')}]`);
      }
      if (r.outcome === 'allow') allows++;
      else denies++;
      if (redeem && i % REDEEM_EVERY === redeemAt) {
        const token = await pdp.tokens.redeem(caller, r.decision_id, null);
        if (typeof token.access_token !== 'string' || token.access_token === '' || !sameScopes(token.scope.split(' '), c.expect.granted)) {
          throw new Error(`redeem of decision ${i}: no token for [${c.expect.granted.join(' ')}] (scope "${token.scope}")`);
        }
        redeemed++;
      }
      const done = allows + denies;
      if (done % PROGRESS_EVERY === 0) {
        const now = process.hrtime.bigint();
        log(`${done.toLocaleString('en')} of ${n.toLocaleString('en')} decisions (${Math.round(PROGRESS_EVERY / (Number(now - lastLog) / 1e9))}/s lately)`);
        lastLog = now;
      }
    }
  };
  // The first failure stops every worker, so none goes on deciding against a store being closed.
  const stopping = (): Promise<void> =>
    worker().catch((err: unknown) => {
      next = n;
      throw err;
    });
  await Promise.all(Array.from({ length: concurrency }, stopping));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { allows, denies, redeemed, seconds, cpu: (cpu.user + cpu.system) / 1e6 };
}

function fileBytes(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/**
 * A closed SQLite store: checkpoint (TRUNCATE) and close, the three files' sizes, then dbstat on a read-only
 * connection: every b-tree's pages, payload, unused bytes and leaf cells (rows of a table, entries of an index).
 */
function measureSqlite(path: string): Snapshot {
  const rw = new Database(path);
  try {
    rw.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    rw.close();
  }
  const files = { db: fileBytes(path), wal: fileBytes(`${path}-wal`), shm: fileBytes(`${path}-shm`) };
  const ro = new Database(path, { readonly: true });
  try {
    const pageSize = Number(ro.pragma('page_size', { simple: true }));
    const detail: Record<string, number | string> = {
      db_bytes: files.db,
      wal_bytes: files.wal,
      shm_bytes: files.shm,
      page_size: pageSize,
      page_count: Number(ro.pragma('page_count', { simple: true })),
      freelist_bytes: Number(ro.pragma('freelist_count', { simple: true })) * pageSize,
    };
    const relations: Snapshot['relations'] = new Map();
    const schema = new Map((ro.prepare("SELECT name, type, tbl_name FROM sqlite_schema WHERE type IN ('table', 'index')").all() as Array<{ name: string; type: string; tbl_name: string }>).map((r) => [r.name, r]));
    let stat: Array<{ name: string; bytes: number; payload: number; unused: number; leaf_cells: number; cells: number }>;
    try {
      // A table's rows are its leaf cells; an index keeps entries in its interior pages too, so all its cells count.
      stat = ro
        .prepare("SELECT name, sum(pgsize) AS bytes, sum(payload) AS payload, sum(unused) AS unused, sum(CASE WHEN pagetype = 'leaf' THEN ncell ELSE 0 END) AS leaf_cells, sum(ncell) AS cells FROM dbstat GROUP BY name")
        .all() as typeof stat;
    } catch (err) {
      // No dbstat in this SQLite build: totals only.
      detail['dbstat'] = `unavailable: ${(err as Error).message}`;
      return { total: files.db + files.wal + files.shm, relations, detail };
    }
    for (const s of stat) {
      const def = schema.get(s.name);
      // sqlite_schema and the autoindexes of PRIMARY KEY / UNIQUE constraints are in sqlite_schema too (as indexes).
      const kind = def?.type === 'index' || s.name.startsWith('sqlite_autoindex_') ? 'index' : 'table';
      const rows = kind === 'index' ? s.cells : s.leaf_cells;
      relations.set(s.name, { name: s.name, kind, table: def?.tbl_name ?? s.name, bytes: s.bytes, rows, payload: s.payload, unused: s.unused, toast: null, indexes: null });
    }
    return { total: files.db + files.wal + files.shm, relations, detail };
  } finally {
    ro.close();
  }
}

/** A schema of a PostgreSQL store after VACUUM: every table's total size and each index's, and each table's rows. */
async function measurePostgres(url: string, schema: string): Promise<Snapshot> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('VACUUM');
    const { rows } = await client.query<{ name: string; relkind: string; table_name: string; total: string; main: string; toast: string; indexes: string }>(
      `SELECT c.relname AS name, c.relkind, coalesce(t.relname, c.relname) AS table_name,
              pg_total_relation_size(c.oid) AS total, pg_relation_size(c.oid) AS main,
              CASE WHEN c.reltoastrelid = 0 THEN 0 ELSE pg_total_relation_size(c.reltoastrelid) END AS toast,
              CASE WHEN c.relkind = 'r' THEN pg_indexes_size(c.oid) ELSE 0 END AS indexes
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_index i ON i.indexrelid = c.oid LEFT JOIN pg_class t ON t.oid = i.indrelid
        WHERE n.nspname = $1 AND c.relkind IN ('r', 'i')`,
      [schema],
    );
    const relations: Snapshot['relations'] = new Map();
    let total = 0;
    for (const r of rows) {
      const table = r.relkind === 'r';
      let count: number | null = null;
      if (table) {
        total += Number(r.total);
        const q = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(r.name)}`);
        count = Number(q.rows[0]?.n ?? 0);
      }
      relations.set(r.name, {
        name: r.name,
        kind: table ? 'table' : 'index',
        table: r.table_name,
        bytes: Number(table ? r.total : r.main),
        rows: count,
        payload: null,
        unused: null,
        toast: table ? Number(r.toast) : null,
        indexes: table ? Number(r.indexes) : null,
      });
    }
    return { total, relations, detail: { schema, sizes: 'pg_total_relation_size per table (heap, TOAST, indexes, FSM, VM), pg_relation_size per index, after VACUUM' } };
  } finally {
    await client.end();
  }
}

/** After less before, per decision, largest first; relations that did not grow are left out. */
function perDecision(before: Snapshot, after: Snapshot, n: number): StorageRelation[] {
  const per = (a: number | null, b: number | null | undefined): number | null => (a === null ? null : round((a - (b ?? 0)) / n, 2));
  return [...after.relations.values()]
    .map((a) => {
      const b = before.relations.get(a.name);
      return {
        name: a.name,
        kind: a.kind,
        table: a.table,
        bytes: a.bytes - (b?.bytes ?? 0),
        bytes_per_decision: round((a.bytes - (b?.bytes ?? 0)) / n, 1),
        rows_per_decision: per(a.rows, b?.rows),
        payload_per_decision: per(a.payload, b?.payload),
        unused_per_decision: per(a.unused, b?.unused),
        toast_per_decision: per(a.toast, b?.toast),
        indexes_per_decision: per(a.indexes, b?.indexes),
      };
    })
    .filter((r) => r.bytes !== 0)
    .sort((x, y) => y.bytes - x.bytes);
}

/** Fields of /proc/<pid>/stat after the command name: state is [0], ppid [1], utime..cstime [11..14] (clock ticks). */
function statFields(pid: number | string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined; // gone meanwhile
  }
}

/**
 * CPU seconds of a PostgreSQL cluster, from /proc: the postmaster's own and its exited children's (cutime, cstime:
 * backends the pool closed), and its live children's (backends, checkpointer, WAL writer, autovacuum).
 */
function clusterCpu(postmaster: number): number {
  const own = statFields(postmaster);
  if (own === undefined) return Number.NaN;
  let ticks = [11, 12, 13, 14].reduce((a, i) => a + Number(own[i]), 0);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(entry);
    if (f !== undefined && Number(f[1]) === postmaster) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / 100;
}

interface EngineTarget {
  engine: StorageEngine;
  /** A fresh, empty store for one variant: its config and how to measure it once the PDP is closed. */
  fresh(variant: 'decide' | 'redeem'): { config: PdpConfig; measure: () => Promise<Snapshot> };
  /** The database's processes, for their CPU. */
  dbCpu?: () => number;
}

async function runVariant(target: EngineTarget, variant: 'decide' | 'redeem', n: number, concurrency: number, log: (line: string) => void): Promise<StorageRun> {
  const { config, measure } = target.fresh(variant);
  // The baseline: the store with the task registered and nothing else, closed as after the run.
  const setup = await openPdp(config);
  try {
    const task = BENCH_TASKS.find((t) => t.id === TASK_ID);
    if (task === undefined) throw new Error(`${TASK_ID} is not among the bench tasks`);
    await setup.tasks.register(callerOf(config, BENCH_ORCHESTRATOR.id), task, null);
  } finally {
    await setup.close();
  }
  const before = await measure();
  log(`${target.engine}, ${VARIANTS[variant]}: baseline ${before.total.toLocaleString('en')} bytes; ${n.toLocaleString('en')} decisions, ${concurrency} in flight`);
  const pdp = await openPdp(config);
  const watch = new CpuWatch();
  const db0 = target.dbCpu?.() ?? 0;
  let made: Awaited<ReturnType<typeof decideAll>>;
  let dbCores: number | null = null;
  let machine: ReturnType<CpuWatch['stop']>;
  try {
    made = await decideAll(pdp, n, concurrency, variant === 'redeem', (line) => log(`${target.engine}, ${VARIANTS[variant]}: ${line}`));
    // Read before the PDP closes its pool: a backend that has exited but is not yet reaped is in neither count.
    if (target.dbCpu !== undefined) dbCores = round((target.dbCpu() - db0) / made.seconds, 2);
    machine = watch.stop();
  } finally {
    await pdp.close();
  }
  log(`${target.engine}, ${VARIANTS[variant]}: ${Math.round(n / made.seconds)} decisions/s over ${round(made.seconds, 1)} s; measuring`);
  const after = await measure();
  const bytesPerDecision = round((after.total - before.total) / n, 1);
  log(`${target.engine}, ${VARIANTS[variant]}: ${bytesPerDecision} bytes per decision (${after.total.toLocaleString('en')} bytes on disk)`);
  return {
    engine: target.engine,
    variant: VARIANTS[variant],
    decisions: n,
    allows: made.allows,
    denies: made.denies,
    redeemed: made.redeemed,
    concurrency,
    seconds: round(made.seconds, 1),
    decisions_per_s: Math.round(n / made.seconds),
    cpu_us_per_decision: round((made.cpu / n) * 1e6, 1),
    db_cores: dbCores,
    other_cores: round(Math.max(0, machine.other_cores - (dbCores ?? 0)), 2),
    baseline_bytes: before.total,
    after_bytes: after.total,
    bytes_per_decision: bytesPerDecision,
    within_goal: bytesPerDecision <= STORAGE_GOAL_BYTES,
    detail: after.detail,
    relations: perDecision(before, after, n),
  };
}

function peakRssMb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : Number.NaN;
}

export async function runStorageBench(o: { decisions: number; concurrency: number; engines: StorageEngine[]; variants: Array<'decide' | 'redeem'>; log: (line: string) => void }): Promise<StorageBenchResult> {
  const work = mkdtempSync(join(tmpdir(), 'agent-pdp-storage-bench-'));
  const started = Date.now();
  const load1Start = load1();
  const runs: StorageRun[] = [];
  const skipped: StorageBenchResult['skipped'] = [];
  let cluster: BenchPostgres | undefined;
  try {
    for (const engine of o.engines) {
      let target: EngineTarget;
      if (engine === 'sqlite') {
        target = {
          engine,
          fresh: (variant) => {
            const dir = join(work, `sqlite-${variant}`);
            const file = join(dir, 'data/x.db');
            return { config: benchConfig(dir, { url: `sqlite:${file}` }), measure: () => Promise.resolve(measureSqlite(file)) };
          },
        };
      } else {
        try {
          cluster = startPostgres();
        } catch (err) {
          const reason = `PostgreSQL did not start (scripts/postgres-cluster.sh start): ${(err as Error).message.split('\n')[0]}`;
          o.log(`skipping PostgreSQL: ${reason}`);
          skipped.push({ engine, reason });
          continue;
        }
        const c = cluster;
        target = {
          engine,
          fresh: (variant) => {
            const schema = `storage_bench_${variant}`;
            return { config: benchConfig(join(work, `postgres-${variant}`), { url: c.url, schema }), measure: () => measurePostgres(c.url, schema) };
          },
          dbCpu: () => clusterCpu(c.pid),
        };
      }
      for (const variant of o.variants) runs.push(await runVariant(target, variant, o.decisions, o.concurrency, o.log));
      cluster?.stop();
      cluster = undefined;
    }
  } finally {
    cluster?.stop();
    rmSync(work, { recursive: true, force: true });
  }
  return {
    goal_bytes: STORAGE_GOAL_BYTES,
    decisions: o.decisions,
    concurrency: o.concurrency,
    runs,
    skipped,
    peak_rss_mb: peakRssMb(),
    seconds: Math.round((Date.now() - started) / 1000),
    load1_start: load1Start,
    load1_end: load1(),
  };
}

const ENGINE_NAME: Record<StorageEngine, string> = { sqlite: 'SQLite', postgres: 'PostgreSQL' };

/** The report's section: each run's total, then its tables and indexes per decision. */
export function storageMarkdown(s: StorageBenchResult | undefined): string {
  if (s === undefined) return '';
  const num = (x: number | null, digits = 1): string => (x === null ? '' : x.toLocaleString('en', { maximumFractionDigits: digits }));
  const out = [
    '',
    `## Storage per decision at ${s.decisions.toLocaleString('en')} decisions (issue 19; bench/storage-bench.ts)`,
    '',
    `Goal: ≤ ${s.goal_bytes} bytes on disk per decision, indexes included. The Decider and store of a whole PDP in-process (createPdp), ` +
      `the soak's mix (support-resolver, bench-task-sr: 3 allows to 1 deny), ${s.concurrency} in flight, every answer checked; on a fresh store per run, ` +
      `less the same store with only the task registered. ${s.seconds} s in all; peak RSS ${s.peak_rss_mb} MB; load average ${s.load1_start} → ${s.load1_end}.`,
    ...s.skipped.map((x) => `\n**${ENGINE_NAME[x.engine]} not measured**: ${x.reason}`),
    '',
    '| store | variant | bytes per decision | met | on disk after (baseline) | decisions/s | CPU µs / decision | database cores | other cores |',
    '| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |',
    ...s.runs.map(
      (r) =>
        `| ${ENGINE_NAME[r.engine]} | ${r.variant}${r.redeemed > 0 ? ` (${r.redeemed.toLocaleString('en')} tokens)` : ''} | **${num(r.bytes_per_decision)}** | ${r.within_goal ? 'yes' : '**no**'} | ` +
        `${(r.after_bytes / 2 ** 20).toFixed(1)} MB (${(r.baseline_bytes / 2 ** 20).toFixed(2)} MB) | ${r.decisions_per_s.toLocaleString('en')} | ${num(r.cpu_us_per_decision)} | ${r.db_cores ?? ''} | ${r.other_cores} |`,
    ),
  ];
  for (const r of s.runs) {
    const sqlite = r.engine === 'sqlite';
    out.push(
      '',
      `### ${ENGINE_NAME[r.engine]}, ${r.variant}: per table and index, bytes per decision`,
      '',
      sqlite
        ? `dbstat (pages × ${r.detail['page_size']} bytes); the file ${num(Number(r.detail['db_bytes']) / 2 ** 20)} MB, WAL ${r.detail['wal_bytes']} bytes, -shm ${r.detail['shm_bytes']} bytes after the checkpoint; freelist ${r.detail['freelist_bytes']} bytes.` +
            (typeof r.detail['dbstat'] === 'string' ? ` ${r.detail['dbstat']}` : '')
        : `After VACUUM: a table's total is pg_total_relation_size (heap, TOAST, indexes, free-space and visibility maps); each index's own row is pg_relation_size.`,
      '',
      sqlite ? '| b-tree | kind (table) | bytes | payload | unused | rows or entries |' : '| relation | kind (table) | bytes | of which TOAST | of which indexes | rows |',
      '| --- | --- | ---: | ---: | ---: | ---: |',
      ...r.relations.map(
        (x) =>
          `| ${x.name} | ${x.kind === 'index' ? `index (${x.table})` : 'table'} | ${num(x.bytes_per_decision)} | ` +
          (sqlite ? `${num(x.payload_per_decision)} | ${num(x.unused_per_decision)} | ` : `${num(x.toast_per_decision)} | ${num(x.indexes_per_decision)} | `) +
          `${num(x.rows_per_decision, 3)} |`,
      ),
    );
  }
  out.push('');
  return out.join('\n');
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      decisions: { type: 'string' },
      quick: { type: 'boolean', default: false },
      engine: { type: 'string', default: 'both' },
      variant: { type: 'string', default: 'both' },
      concurrency: { type: 'string', default: '64' },
      json: { type: 'boolean', default: false },
    },
  });
  const pick = <T extends string>(flag: string, value: string, all: readonly T[]): T[] => {
    if (value === 'both') return [...all];
    if (!(all as readonly string[]).includes(value)) throw new Error(`--${flag}: one of ${all.join(', ')} or both`);
    return [value as T];
  };
  const decisions = Number(values.decisions ?? (values.quick ? 100_000 : 1_000_000));
  if (!Number.isSafeInteger(decisions) || decisions < 1) throw new Error('--decisions: a positive integer');
  const result = await runStorageBench({
    decisions,
    concurrency: Number(values.concurrency),
    engines: pick<StorageEngine>('engine', values.engine, ['sqlite', 'postgres']),
    variants: pick<'decide' | 'redeem'>('variant', values.variant, ['decide', 'redeem']),
    log: (line) => void process.stderr.write(`[storage ${new Date().toISOString().slice(11, 19)}] ${line}\n`),
  });
  process.stdout.write(values.json ? `${JSON.stringify(result)}\n` : `${storageMarkdown(result)}\n`);
}
