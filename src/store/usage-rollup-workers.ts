/**
 * Worker threads that fold slices of the audit trail for rollupUsage (usage-rollup-ops.ts), each with its own read
 * connection to the store's file: reading and parsing the events, the bulk of a large rollup's work, runs on several
 * cores and off the event loop; the merge and the write stay with the store's connection. Like the WAL checkpointer,
 * a worker runs source text (`foldWorker`, `createUsageFold`, `createFoldCore`), so it works the same from `dist/`
 * and under the test runner. Workers live for one rollupUsage call and are unref'd. SQLite only: on PostgreSQL the
 * database reads inside the payloads.
 */
import { createRequire } from 'node:module';
import type { Worker } from 'node:worker_threads';
import { evalThread } from '../threads/eval-thread.js';
import { PdpError } from '../errors/pdp-error.js';
import { createFoldCore, createUsageFold } from './usage-fold.js';
import type { FoldedCells, UsageFoldSql } from './usage-fold.js';

interface WorkerConfig {
  driver: string;
  path: string;
  busyTimeoutMs: number;
  sql: UsageFoldSql;
}

interface FoldRequest {
  after: number;
  through: number;
  chunk: number;
}

type FoldReply = { cells: FoldedCells } | { error: string };

export class FoldWorkers {
  private readonly workers: Worker[];
  private readonly pending = new Map<Worker, { resolve: (cells: FoldedCells) => void; reject: (error: unknown) => void }>();
  private failure: unknown;

  /** `count` workers on the database file at `path`. */
  constructor(path: string, count: number, sql: UsageFoldSql, busyTimeoutMs = 5000) {
    const config: WorkerConfig = { driver: createRequire(import.meta.url).resolve('better-sqlite3'), path, busyTimeoutMs, sql };
    const source = `(${foldWorker.toString()})(require, require('node:worker_threads'), ${createUsageFold.toString()}, ${createFoldCore.toString()});`;
    this.workers = Array.from({ length: count }, () => {
      const worker = evalThread(source, { workerData: config, stdout: false, stderr: false });
      worker.on('message', (reply: FoldReply) => {
        const waiting = this.pending.get(worker);
        this.pending.delete(worker);
        if ('cells' in reply) waiting?.resolve(reply.cells);
        else waiting?.reject(new PdpError('store_unavailable', 'the usage rollup could not read the trail', { cause: new Error(reply.error) }));
      });
      worker.on('error', (error) => this.fail(error));
      worker.on('exit', (code) => this.fail(new Error(`a usage rollup worker exited with code ${code}`)));
      worker.unref();
      return worker;
    });
  }

  get size(): number {
    return this.workers.length;
  }

  /** Folds slice i with worker i (at most one slice per worker), `chunk` events per read. */
  fold(slices: ReadonlyArray<{ after: number; through: number }>, chunk: number): Promise<FoldedCells[]> {
    if (slices.length > this.workers.length) throw new TypeError('more slices than workers');
    return Promise.all(
      slices.map(
        (slice, i) =>
          new Promise<FoldedCells>((resolve, reject) => {
            if (this.failure !== undefined) {
              reject(this.failure);
              return;
            }
            const worker = this.workers[i] as Worker;
            this.pending.set(worker, { resolve, reject });
            // A worker at work keeps the process alive (a CLI awaiting the rollup must not exit meanwhile).
            worker.ref();
            const request: FoldRequest = { after: slice.after, through: slice.through, chunk };
            worker.postMessage(request);
          }).finally(() => this.workers[i]?.unref()),
      ),
    );
  }

  /** Ends the workers (their connections close with them). */
  async close(): Promise<void> {
    this.failure ??= new PdpError('store_unavailable', 'the usage rollup workers were closed');
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private fail(error: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = new PdpError('store_unavailable', 'a usage rollup worker failed', { cause: error });
    for (const waiting of this.pending.values()) waiting.reject(this.failure);
    this.pending.clear();
  }
}

/**
 * A worker's whole program, run from its source text: it must not refer to anything outside its own body and its
 * arguments (`create` and `createCore` are createUsageFold's and createFoldCore's sources). Each request folds
 * (after, through] in chunks and answers the cells; the fold's memory of tokens and tasks carries over to the next
 * request.
 */
function foldWorker(
  load: NodeJS.Require,
  threads: typeof import('node:worker_threads'),
  create: typeof createUsageFold,
  createCore: typeof createFoldCore,
): void {
  const port = threads.parentPort;
  const config = threads.workerData as WorkerConfig;
  if (port === null) throw new Error('foldWorker runs in a worker thread');
  const Database = load(config.driver) as typeof import('better-sqlite3');
  const db = new Database(config.path, { readonly: true, fileMustExist: true, timeout: config.busyTimeoutMs });
  const fold = create(db, config.sql, createCore);
  port.on('message', (request: FoldRequest) => {
    try {
      for (let lo = request.after; lo < request.through; ) {
        const hi = Math.min(request.through, lo + request.chunk);
        fold.fold(lo, hi);
        lo = hi;
      }
      port.postMessage({ cells: fold.take() });
    } catch (error) {
      port.postMessage({ error: error instanceof Error ? error.message : String(error) });
    }
  });
}
