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
 *   worker → primary  { type: 'reload-others' }            after an admin reload on that worker
 *   primary → worker  { type: 'reload' }                   SIGHUP on the primary, or another worker's admin reload
 *   worker → primary  { type: 'metrics-request', id }      a scrape of /metrics reached that worker
 *   primary → worker  { type: 'metrics-collect', id }      to every worker: send your metrics' values
 *   worker → primary  { type: 'metrics-part', id, values }
 *   primary → worker  { type: 'metrics', id, text?, contentType? }  the sum, to the worker that asked (no text: failed)
 * Metrics are the only values that cross, and only as counts: the primary adds them up and keeps nothing.
 */
export const WORKER_INDEX_ENV = 'AGENT_PDP_WORKER';

export type WorkerMessage =
  | { type: 'reload' }
  | { type: 'reload-others' }
  | { type: 'metrics-request'; id: string }
  | { type: 'metrics-collect'; id: string }
  | { type: 'metrics-part'; id: string; values: unknown }
  | { type: 'metrics'; id: string; text?: string; contentType?: string };

/** How long the primary waits for the workers' parts of one scrape, and a worker for the sum. */
const METRICS_COLLECT_MS = 2_000;
const METRICS_ANSWER_MS = 4_000;

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
  /** Adds up the workers' metrics for a scrape (`aggregateMetrics` of src/server/metrics.ts); absent: scrapes fail. */
  aggregateMetrics?: (parts: unknown[]) => Promise<{ text: string; contentType: string }>;
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
        if (message?.type === 'reload-others') {
          for (const [i, other] of byIndex) if (i !== index) other.worker.send({ type: 'reload' } satisfies WorkerMessage);
        } else if (message?.type === 'metrics-request' && typeof message.id === 'string') {
          void sumMetrics(message.id).then((sum) => {
            if (worker.isConnected()) worker.send({ type: 'metrics', id: message.id, ...(sum ?? {}) } satisfies WorkerMessage);
          });
        } else if (message?.type === 'metrics-part' && typeof message.id === 'string') {
          collecting.get(message.id)?.(index, message.values);
        }
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

    /**
     * One scrape: every live worker's values, added up. A worker that does not answer in time is left out (a worker
     * restarting); nothing is kept once the sum is sent.
     */
    const collecting = new Map<string, (index: number, values: unknown) => void>();
    const sumMetrics = async (id: string): Promise<{ text: string; contentType: string } | undefined> => {
      if (options.aggregateMetrics === undefined) return undefined;
      const live = [...byIndex.entries()].filter(([, slot]) => slot.worker.isConnected());
      const parts = new Map<number, unknown>();
      await new Promise<void>((done) => {
        const timer = setTimeout(done, METRICS_COLLECT_MS);
        collecting.set(id, (index, values) => {
          parts.set(index, values);
          if (parts.size >= live.length) {
            clearTimeout(timer);
            done();
          }
        });
        for (const [, slot] of live) slot.worker.send({ type: 'metrics-collect', id } satisfies WorkerMessage);
      });
      collecting.delete(id);
      if (parts.size === 0) return undefined;
      return options.aggregateMetrics([...parts.values()]).catch((err: unknown) => {
        logger.error({ err: err instanceof Error ? err.message : String(err) }, 'metrics: the workers\' values could not be added up');
        return undefined;
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

export interface WorkerChannel {
  /** Tells the other workers to reload (after an admin reload here). */
  announce(): void;
  /** Every worker's metrics added up by the primary, or undefined when that failed or took too long. */
  clusterMetrics(): Promise<{ text: string; contentType: string } | undefined>;
  close(): void;
}

/**
 * In a worker: runs `reload` when the primary says so; sends `values()` (this process's metrics) when it collects
 * them; `announce` tells the others after a reload here; `clusterMetrics` asks for everyone's, added up.
 */
export function workerChannel(reload: () => Promise<void>, logger: Logger, values: () => Promise<unknown>): WorkerChannel {
  const waiting = new Map<string, (sum: { text: string; contentType: string } | undefined) => void>();
  let seq = 0;
  const onMessage = (message: WorkerMessage): void => {
    if (message?.type === 'reload') void reload().catch((err: unknown) => logger.error({ err: err instanceof Error ? err.message : String(err) }, 'reload failed'));
    else if (message?.type === 'metrics-collect') {
      void values().then(
        (v) => process.send?.({ type: 'metrics-part', id: message.id, values: v } satisfies WorkerMessage),
        () => undefined,
      );
    } else if (message?.type === 'metrics') {
      waiting.get(message.id)?.(typeof message.text === 'string' && typeof message.contentType === 'string' ? { text: message.text, contentType: message.contentType } : undefined);
    }
  };
  process.on('message', onMessage);
  return {
    announce: () => process.send?.({ type: 'reload-others' } satisfies WorkerMessage),
    clusterMetrics: () =>
      new Promise((resolve) => {
        const id = `${process.pid}-${++seq}`;
        const timer = setTimeout(() => settle(undefined), METRICS_ANSWER_MS);
        const settle = (sum: { text: string; contentType: string } | undefined): void => {
          clearTimeout(timer);
          waiting.delete(id);
          resolve(sum);
        };
        waiting.set(id, settle);
        if (process.send === undefined || !process.connected) return settle(undefined);
        process.send({ type: 'metrics-request', id } satisfies WorkerMessage);
      }),
    close: () => {
      process.off('message', onMessage);
      for (const settle of waiting.values()) settle(undefined);
    },
  };
}
