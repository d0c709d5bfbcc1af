/**
 * Store throughput with group commit: how many audit events per second reach a committed transaction, on SQLite and on
 * PostgreSQL (a throwaway cluster on loopback, bench/lib/postgres.ts): on PostgreSQL also with two stores on one
 * database (two replicas' writers taking turns on the chain lock) — the commit rate per replica docs/scaling.md quotes.
 *
 *   npx tsc -p bench/tsconfig.json && node .build/bench/bench/store-bench.js [events] [--json]
 *
 * `make bench` runs it through runStoreBench() (the JSON line) and reports the rows with the rest.
 * Each scenario keeps `concurrency` writes in flight (as concurrent requests would) on a fresh file and reports
 * committed events/s and how many transactions carried them. Figures are for comparison on one machine.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../src/store/index.js';
import { PostgresStore } from '../src/store/postgres-store.js';
import type { SqliteStoreOptions, Store } from '../src/store/index.js';
import { startPostgres, type BenchPostgres } from './lib/postgres.js';
import { isMain } from './lib/timing.js';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');

interface Scenario {
  name: string;
  concurrency: number;
  options: SqliteStoreOptions;
  write: (store: Store, i: number) => Promise<unknown>;
  /** Default sqlite. `replicas`: stores on one PostgreSQL schema, each with `concurrency` writes in flight. */
  engine?: 'sqlite' | 'postgres';
  replicas?: number;
}

/** A decision of roughly the size the PDP records (request, input and result together ~1 KB). */
function decisionInput(i: number) {
  const scopes = ['tickets:read', 'tickets:write', 'customers:read'];
  const result = {
    decision_id: `d-${i}`,
    allow: true,
    outcome: 'allow' as const,
    agent_id: 'support-resolver',
    integration: 'crm',
    granted_scopes: scopes,
    denied_scopes: [{ scope: 'tickets:delete', reason: 'deny_scope' }],
    reasons: [{ code: 'allowed', message: 'granted within the agent ceiling' }],
    token_ttl_seconds: 300,
  };
  const task = { id: `task-${i % 1000}`, type: 'complaint_resolution', context: { customer_id: `${i % 5000}` } };
  return {
    decision_id: `d-${i}`,
    caller_id: 'support-middleware',
    agent_id: 'support-resolver',
    task_id: null,
    integration: 'crm',
    outcome: 'allow' as const,
    request: { agent_id: 'support-resolver', task, integration: 'crm', scopes },
    input: { agent_id: 'support-resolver', caller_id: 'support-middleware', task: { ...task, registered: true }, scopes },
    result,
    policy_revision: 'sha256:4f1c0d2e',
    trace_id: `00-${i.toString(16).padStart(32, '0')}-00f067aa0ba902b7-01`,
    created_at: new Date(T0 + i).toISOString(),
    redeemable_until: new Date(T0 + i + 60_000).toISOString(),
  };
}

const appendOne = (store: Store, i: number) =>
  store.appendEvents([
    { type: 'auth.failed', time: new Date(T0 + i).toISOString(), caller_id: 'bench', data: { reason: 'bad_key', n: i } },
  ]);

const scenarios: Scenario[] = [
  { name: 'small event, 1 in flight (a transaction each), NORMAL', concurrency: 1, options: {}, write: appendOne },
  {
    name: 'small event, 1 in flight (a transaction each), FULL',
    concurrency: 1,
    options: { synchronous: 'full' },
    write: appendOne,
  },
  { name: 'small event, 256 in flight, NORMAL', concurrency: 256, options: {}, write: appendOne },
  { name: 'small event, 256 in flight, FULL', concurrency: 256, options: { synchronous: 'full' }, write: appendOne },
  {
    name: 'decision (row + event, ~1 KB), 256 in flight, NORMAL',
    concurrency: 256,
    options: {},
    write: (store, i) => store.recordDecision(decisionInput(i)),
  },
  {
    name: 'decision, 256 in flight, NORMAL, 1 masked path',
    concurrency: 256,
    options: { mask: ['input.task.context.customer_id'] },
    write: (store, i) => store.recordDecision(decisionInput(i)),
  },
  { name: 'PostgreSQL: small event, 1 in flight (a transaction each)', concurrency: 1, options: {}, write: appendOne, engine: 'postgres' },
  {
    name: 'PostgreSQL: decision, 256 in flight',
    concurrency: 256,
    options: {},
    write: (store, i) => store.recordDecision(decisionInput(i)),
    engine: 'postgres',
  },
  {
    name: 'PostgreSQL: decision, 2 replicas × 128 in flight',
    concurrency: 128,
    options: {},
    write: (store, i) => store.recordDecision(decisionInput(i)),
    engine: 'postgres',
    replicas: 2,
  },
];

export interface StoreBenchRow {
  name: string;
  concurrency: number;
  events_per_s: number;
  events: number;
  transactions: number;
  ops_per_tx: number;
  verify_events_per_s: number;
}

async function run(scenario: Scenario, totalEvents: number, pg: () => BenchPostgres, n: number): Promise<StoreBenchRow> {
  const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-bench-'));
  const replicas = scenario.replicas ?? 1;
  const stores: Store[] = [];
  for (let r = 0; r < replicas; r++) {
    stores.push(
      scenario.engine === 'postgres'
        ? await PostgresStore.open(pg().url, { ...scenario.options, schema: `bench_store_${n}` })
        : SqliteStore.open(join(dir, 'bench.db'), scenario.options),
    );
  }
  const total = scenario.concurrency === 1 ? Math.min(totalEvents, 5_000) : totalEvents;
  let next = 0;
  const started = process.hrtime.bigint();
  const worker = (store: Store) => async (): Promise<void> => {
    while (next < total) await scenario.write(store, next++);
  };
  await Promise.all(stores.flatMap((store) => Array.from({ length: scenario.concurrency }, worker(store))));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const stats = stores.map((store) => store.stats());
  const sum = (key: 'events' | 'transactions' | 'ops') => stats.reduce((a, st) => a + st[key], 0);
  const verifyStarted = process.hrtime.bigint();
  const verified = await (stores[0] as Store).verifyStoredChain();
  const verifySeconds = Number(process.hrtime.bigint() - verifyStarted) / 1e9;
  for (const store of stores) await store.close();
  rmSync(dir, { recursive: true, force: true });
  if (!verified.ok) throw new Error(`chain does not verify: ${verified.message}`);
  if (verified.count !== sum('events')) throw new Error(`the chain holds ${verified.count} events, the stores committed ${sum('events')}`);
  return {
    name: scenario.name,
    concurrency: scenario.concurrency * replicas,
    events_per_s: Math.round(sum('events') / seconds),
    events: sum('events'),
    transactions: sum('transactions'),
    ops_per_tx: Math.round((sum('ops') / sum('transactions')) * 10) / 10,
    verify_events_per_s: Math.round(verified.count / verifySeconds),
  };
}

/** Every scenario in turn, each on a fresh database file (SQLite) or schema (PostgreSQL, one cluster for all). */
export async function runStoreBench(totalEvents: number): Promise<StoreBenchRow[]> {
  const rows: StoreBenchRow[] = [];
  let pg: BenchPostgres | undefined;
  try {
    for (const [n, scenario] of scenarios.entries()) rows.push(await run(scenario, totalEvents, () => (pg ??= startPostgres()), n));
  } finally {
    pg?.stop();
  }
  return rows;
}

if (isMain(import.meta.url)) {
  const json = process.argv.includes('--json');
  const total = Number(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 100_000);
  const rows = await runStoreBench(total);
  if (json) process.stdout.write(`${JSON.stringify(rows)}\n`);
  else {
    for (const r of rows) {
      console.log(
        `${r.name.padEnd(56)} ${String(r.events_per_s).padStart(8)} events/s ` +
          `(${r.events} events, ${r.transactions} tx, ${r.ops_per_tx.toFixed(1)} ops/tx; verify ${r.verify_events_per_s} events/s)`,
      );
    }
  }
}
