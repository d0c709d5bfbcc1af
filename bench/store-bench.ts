/**
 * Store throughput with group commit: how many audit events per second reach a committed SQLite transaction.
 *
 *   npx tsc -p bench/tsconfig.json && node .build/bench/bench/store-bench.js [events]
 *
 * Each scenario keeps `concurrency` writes in flight (as concurrent requests would) on a fresh file and reports
 * committed events/s and how many transactions carried them. Figures are for comparison on one machine.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../src/store/index.js';
import type { SqliteStoreOptions } from '../src/store/index.js';

const TOTAL = Number(process.argv[2] ?? 100_000);
const T0 = Date.parse('2026-01-01T00:00:00.000Z');

interface Scenario {
  name: string;
  concurrency: number;
  options: SqliteStoreOptions;
  write: (store: SqliteStore, i: number) => Promise<unknown>;
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

const appendOne = (store: SqliteStore, i: number) =>
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
];

async function run(scenario: Scenario): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-bench-'));
  const store = SqliteStore.open(join(dir, 'bench.db'), scenario.options);
  const total = scenario.concurrency === 1 ? Math.min(TOTAL, 5_000) : TOTAL;
  let next = 0;
  const started = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    while (next < total) await scenario.write(store, next++);
  };
  await Promise.all(Array.from({ length: scenario.concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const stats = store.stats();
  const verifyStarted = process.hrtime.bigint();
  const verified = await store.verifyStoredChain();
  const verifySeconds = Number(process.hrtime.bigint() - verifyStarted) / 1e9;
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  if (!verified.ok) throw new Error(`chain does not verify: ${verified.message}`);
  const perSecond = Math.round(stats.events / seconds);
  const perTx = (stats.ops / stats.transactions).toFixed(1);
  console.log(
    `${scenario.name.padEnd(56)} ${String(perSecond).padStart(8)} events/s ` +
      `(${stats.events} events, ${stats.transactions} tx, ${perTx} ops/tx; ` +
      `verify ${Math.round(verified.count / verifySeconds)} events/s)`,
  );
}

for (const scenario of scenarios) await run(scenario);
