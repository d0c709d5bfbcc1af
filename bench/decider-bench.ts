/**
 * Decisions per second with no HTTP at all: a whole PDP (createPdp: policy engine, SQLite store with group
 * commit and the audit chain) and its Decider called directly, `concurrency` decisions in flight, the mix of
 * the HTTP bench. Run twice: with the real store, and with the decision write replaced by a no-op (task
 * lookups still real), so the difference is the durable record's cost. A diagnostic for where time goes:
 * compare with the HTTP saturation figure.
 *
 *   node .build/bench/bench/decider-bench.js [--seconds 3] [--concurrency 64]    prints one JSON line
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildConfig } from '../src/config/config-loader.js';
import { sha256Hex } from '../src/config/dev-keys.js';
import { createPdp } from '../src/main.js';
import { Decider } from '../src/pdp/decider.js';
import { createLogger } from '../src/server/logger.js';
import { BUNDLE, POLICIES } from './lib/servers.js';
import { isMain, timeAsync } from './lib/timing.js';
import { BENCH_AGENTS, BENCH_ORCHESTRATOR, BENCH_PEP, BENCH_TASKS, weightedMix } from './lib/workload.js';

export interface DeciderBenchResult {
  concurrency: number;
  with_store_per_s: number;
  without_decision_write_per_s: number;
  /** Mean transactions' size in the store run (group commit batching). */
  ops_per_transaction: number;
}

export async function runDeciderBench(seconds: number, concurrency: number): Promise<DeciderBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-decider-bench-'));
  try {
    const { config } = buildConfig(
      {
        server: { listen: '127.0.0.1:0' },
        policy: { bundle: BUNDLE, agents: POLICIES, watch: false },
        store: { url: 'sqlite:data/pdp.db' },
        issuer: { issuer: 'https://agent-pdp.bench.invalid', keys: 'data/keys' },
        log: { level: 'silent' },
        callers: [
          { id: BENCH_PEP.id, role: 'pep', key_sha256: sha256Hex(BENCH_PEP.key), agents: [...BENCH_AGENTS], may_assert_context: true },
          { id: BENCH_ORCHESTRATOR.id, role: 'orchestrator', key_sha256: sha256Hex(BENCH_ORCHESTRATOR.key) },
        ],
      },
      join(dir, 'bench.yaml'),
      dir,
    );
    const pdp = await createPdp(config, { logger: createLogger('silent'), defaultMetrics: false });
    try {
      const orchestrator = config.callers.find((c) => c.id === BENCH_ORCHESTRATOR.id);
      const caller = config.callers.find((c) => c.id === BENCH_PEP.id);
      if (!orchestrator || !caller) throw new Error('bench callers missing');
      for (const t of BENCH_TASKS) await pdp.tasks.register(orchestrator, t, null);
      const mix = weightedMix();
      const real = new Decider({ engine: pdp.engine, store: pdp.store, redeemWindowSeconds: 60 });
      const noWrite = new Decider({
        engine: pdp.engine,
        store: { getTask: (id) => pdp.store.getTask(id), findElevations: (q) => pdp.store.findElevations(q), recordDecision: () => Promise.resolve(undefined) },
        redeemWindowSeconds: 60,
      });
      const run = (d: Decider) => (i: number) => d.decide(caller, (mix[i % mix.length] as (typeof mix)[number]).request, null);
      await timeAsync(run(real), Math.min(1, seconds), concurrency); // warm-up
      const before = pdp.store.stats();
      const withStore = await timeAsync(run(real), seconds, concurrency);
      const after = pdp.store.stats();
      await timeAsync(run(noWrite), Math.min(1, seconds), concurrency);
      const without = await timeAsync(run(noWrite), seconds, concurrency);
      return {
        concurrency,
        with_store_per_s: withStore.per_second,
        without_decision_write_per_s: without.per_second,
        ops_per_transaction: Math.round(((after.ops - before.ops) / Math.max(1, after.transactions - before.transactions)) * 10) / 10,
      };
    } finally {
      await pdp.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, concurrency: { type: 'string', default: '64' } } });
  process.stdout.write(`${JSON.stringify(await runDeciderBench(Number(values.seconds), Number(values.concurrency)))}\n`);
}
