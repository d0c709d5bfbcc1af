import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { missingServerFlags } from './process-flags.js';

/**
 * `agent-pdp serve --workers N`: N server processes on one port (node:cluster, each worker accepting on the shared
 * socket itself: with the round-robin default the primary accepts and hands connections over, and a connection
 * handed to a worker that dies in that moment is never answered nor closed, so a client without a timeout hangs). The primary serves nothing itself: it starts the workers, restarts one that dies,
 * passes reloads on, and stops them all on SIGTERM/SIGINT. Each worker is a whole server (`startServer`) on the same
 * config: its own policy evaluator, its own store connection (SQLite in WAL mode takes one writer at a time, each
 * transaction reading the chain head under the write lock, so the audit chain stays one history), its own key ring.
 *
 * Messages (primary ↔ worker), nothing else crosses:
 *   worker → primary  { type: 'reload-others' }   after an admin reload on that worker
 *   primary → worker  { type: 'reload' }          SIGHUP on the primary, or another worker's admin reload
 */
export const WORKER_INDEX_ENV = 'AGENT_PDP_WORKER';

export type WorkerMessage = { type: 'reload' } | { type: 'reload-others' };

/** The worker count a setting names: `auto` is the cores this process may run on. */
export function workerCount(setting: number | 'auto'): number {
  return setting === 'auto' ? availableParallelism() : setting;
}

/** This process's worker index (1…N) under the supervisor; undefined when not a worker. */
export function workerIndex(): number | undefined {
  if (!cluster.isWorker) return undefined;
  const index = Number(process.env[WORKER_INDEX_ENV]);
  return Number.isInteger(index) && index > 0 ? index : undefined;
}

export interface SupervisorOptions {
  workers: number;
  logger: Logger;
  /** Restart delay after a crash; doubled for each crash within `stableMs` of the worker's start, up to 30 s. Default 1000. */
  restartDelayMs?: number;
  stableMs?: number;
  /** After SIGTERM, how long a worker may take to finish its requests before it is killed. Default 30 s. */
  shutdownGraceMs?: number;
}

/**
 * Runs in the primary: forks the workers (each re-runs this process's command line with its index in
 * `AGENT_PDP_WORKER`), keeps N running, and resolves once all have stopped after SIGTERM/SIGINT. Resolves early,
 * with the exit code, if the first generation cannot start (every worker exits before listening).
 */
export function runSupervisor(options: SupervisorOptions): Promise<number> {
  const { logger, workers } = options;
  const restartDelayMs = options.restartDelayMs ?? 1000;
  const stableMs = options.stableMs ?? 10_000;
  const byIndex = new Map<number, { worker: Worker; startedAt: number; crashes: number; listening: boolean }>();
  let stopping = false;
  let killed = false;
  let everListened = false;

  // The kernel hands connections to the workers (see the file comment); set before the first fork.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  // Every worker runs with the server's V8 flags (process-flags.ts), whether or not the primary was started with them.
  cluster.setupPrimary({ execArgv: [...process.execArgv, ...missingServerFlags()] });
  const shutdownGraceMs = options.shutdownGraceMs ?? 30_000;
  return new Promise<number>((resolve) => {
    const fork = (index: number, crashes: number): void => {
      const worker = cluster.fork({ [WORKER_INDEX_ENV]: String(index) });
      const slot = { worker, startedAt: Date.now(), crashes, listening: false };
      byIndex.set(index, slot);
      worker.on('listening', () => {
        slot.listening = true;
        everListened = true;
      });
      worker.on('message', (message: WorkerMessage) => {
        if (message?.type !== 'reload-others') return;
        for (const [i, other] of byIndex) if (i !== index) other.worker.send({ type: 'reload' } satisfies WorkerMessage);
      });
      worker.on('exit', (code, signal) => {
        if (byIndex.get(index)?.worker !== worker) return;
        byIndex.delete(index);
        if (stopping) {
          // A worker that had to be killed did not finish its requests: the stop is not a clean one.
          if (byIndex.size === 0) finish(killed ? 1 : 0);
          return;
        }
        if (!everListened && byIndex.size === 0) {
          logger.error({ worker: index, code, signal }, 'the workers could not start: stopping');
          finish(typeof code === 'number' && code !== 0 ? code : 1);
          return;
        }
        const quick = Date.now() - slot.startedAt < stableMs;
        const next = quick ? crashes + 1 : 0;
        const delay = Math.min(30_000, restartDelayMs * 2 ** Math.max(0, next - 1));
        logger.error({ worker: index, code, signal, restart_in_ms: delay }, 'worker exited: starting another');
        setTimeout(() => {
          if (!stopping) fork(index, next);
        }, delay).unref();
      });
    };

    const reloadAll = (): void => {
      logger.info({ workers: byIndex.size }, 'SIGHUP: reloading every worker');
      for (const { worker } of byIndex.values()) worker.send({ type: 'reload' } satisfies WorkerMessage);
    };
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal, workers: byIndex.size }, 'stopping the workers');
      if (byIndex.size === 0) return finish(0);
      for (const { worker } of byIndex.values()) worker.process.kill('SIGTERM');
      // A worker stuck finishing (a long stream through the proxy) does not hold the supervisor for ever.
      setTimeout(() => {
        for (const [index, { worker }] of byIndex) {
          logger.error({ worker: index, grace_ms: shutdownGraceMs }, 'worker still running after the grace period: killed');
          killed = true;
          worker.process.kill('SIGKILL');
        }
      }, shutdownGraceMs).unref();
    };
    const onTerm = (): void => stop('SIGTERM');
    const onInt = (): void => stop('SIGINT');
    const finish = (code: number): void => {
      stopping = true; // a restart already scheduled does not fork once the supervisor is done
      process.off('SIGHUP', reloadAll);
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      resolve(code);
    };
    process.on('SIGHUP', reloadAll);
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
    for (let i = 1; i <= workers; i++) fork(i, 0);
    logger.info({ workers }, 'agent-pdp supervisor: workers starting');
  });
}

/** In a worker: runs `reload` when the primary says so; `announce` tells the others after a reload here. */
export function workerChannel(reload: () => Promise<void>, logger: Logger): { announce(): void; close(): void } {
  const onMessage = (message: WorkerMessage): void => {
    if (message?.type === 'reload') void reload().catch((err: unknown) => logger.error({ err: err instanceof Error ? err.message : String(err) }, 'reload failed'));
  };
  process.on('message', onMessage);
  return {
    announce: () => process.send?.({ type: 'reload-others' } satisfies WorkerMessage),
    close: () => process.off('message', onMessage),
  };
}
