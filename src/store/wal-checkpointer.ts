/**
 * Background WAL checkpoints: a worker thread with its own SQLite connection copies the write-ahead log into the
 * database file (`PRAGMA wal_checkpoint(PASSIVE)`), so the writer's thread (the event loop) never runs one.
 *
 * Why: with `wal_autocheckpoint` on (SQLite's default, every 1000 pages) the connection that commits the
 * transaction crossing the threshold runs the checkpoint inline, and a checkpoint fsyncs the WAL and the database
 * file. On the project's VM that held the event loop for up to 34 ms every few seconds under load: every request
 * waiting meanwhile paid it, and it set the p99 of `/v1/decide` (bench/README.md).
 *
 * How: starting one turns `wal_autocheckpoint` off on the writer's connection. PASSIVE never
 * waits for readers or writers and never blocks them; frames a running transaction still needs are left for the
 * next round. The worker is unref'd (it never keeps a process alive) and runs no code of ours but this file's
 * `checkpointLoop`, which imports nothing (it is sent as source, so it works the same from `dist/` and under the
 * test runner).
 *
 * Failure: if the worker cannot start, throws, or exits before `stop()`, `wal_autocheckpoint` is turned back on
 * for the writer's connection (SQLite's default, 1000 pages), so the WAL is still checkpointed, inline as before,
 * and never grows without bound; then `onFailure` runs once. Nothing committed is at risk either way: a WAL left
 * behind is replayed by the next open.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Database } from 'better-sqlite3';

export interface WalCheckpointerOptions {
  /** Pause between the end of one checkpoint and the start of the next, in ms. Default 250. */
  intervalMs?: number;
  /** How long the worker's connection waits for a lock. Default 5000 ms. */
  busyTimeoutMs?: number;
  /** Called once if the worker fails or exits before `stop()`, after inline checkpoints are back on. */
  onFailure?: (error: unknown) => void;
}

export interface WalCheckpointStats {
  /** `background` while the worker runs; `inline` after it failed (the store's connection checkpoints again). */
  mode: 'background' | 'inline';
  /** Checkpoint rounds the worker finished. */
  rounds: number;
  /** WAL frames copied into the database file, summed over rounds. */
  frames: number;
  /** Rounds that could not take the checkpoint lock (another checkpoint was running). */
  busy: number;
  /** Frames of the WAL not yet copied after the last round (-1 before the first round). */
  pending_frames: number;
}

/** What the worker posts after each round: `PRAGMA wal_checkpoint`'s row. */
interface RoundMessage {
  busy: number;
  log: number;
  checkpointed: number;
}

interface WorkerConfig {
  driver: string;
  path: string;
  intervalMs: number;
  busyTimeoutMs: number;
}

const DEFAULT_INTERVAL_MS = 250;
/** SQLite's own default: checkpoint when the WAL passes 1000 pages. */
const INLINE_AUTOCHECKPOINT_PAGES = 1000;

export class WalCheckpointer {
  private readonly db: Database;
  private readonly worker: Worker;
  private readonly onFailure: ((error: unknown) => void) | undefined;
  private readonly counters: WalCheckpointStats = { mode: 'background', rounds: 0, frames: 0, busy: 0, pending_frames: -1 };
  private stopping: Promise<void> | undefined;
  private failed = false;

  /** Takes over checkpointing from `db`, an open connection to a file database in WAL mode. */
  constructor(db: Database, options: WalCheckpointerOptions = {}) {
    if (db.memory || !db.open) throw new TypeError('WalCheckpointer needs an open file database');
    const intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
    if (!Number.isFinite(intervalMs) || intervalMs < 1) throw new TypeError('intervalMs must be >= 1');
    this.db = db;
    this.onFailure = options.onFailure;
    const config: WorkerConfig = {
      driver: createRequire(import.meta.url).resolve('better-sqlite3'),
      path: db.name,
      intervalMs,
      busyTimeoutMs: options.busyTimeoutMs ?? 5000,
    };
    db.pragma('wal_autocheckpoint = 0');
    this.worker = new Worker(`(${checkpointLoop.toString()})(require, require('node:worker_threads'));`, {
      eval: true,
      workerData: config,
      stdout: false,
      stderr: false,
    });
    this.worker.unref();
    this.worker.on('message', (message: RoundMessage) => this.count(message));
    this.worker.on('error', (error) => this.fail(error));
    this.worker.on('exit', (code) => this.fail(new Error(`the checkpoint worker exited with code ${code}`)));
  }

  stats(): WalCheckpointStats {
    return { ...this.counters };
  }

  /** Runs a last round, closes the worker's connection and ends the worker. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.failed
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          this.worker.once('exit', () => resolve());
          // Unref'd, the worker would not hold the process open while we wait for it: a CLI awaiting close()
          // would exit (code 0, output unwritten) before the promise settles.
          this.worker.ref();
          this.worker.postMessage('stop');
        });
    return this.stopping;
  }

  private count(message: RoundMessage): void {
    this.counters.rounds++;
    if (message.busy !== 0) this.counters.busy++;
    this.counters.frames += Math.max(0, message.checkpointed);
    this.counters.pending_frames = Math.max(0, message.log - message.checkpointed);
  }

  private fail(error: unknown): void {
    if (this.failed || this.stopping !== undefined) return;
    this.failed = true;
    this.counters.mode = 'inline';
    if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${INLINE_AUTOCHECKPOINT_PAGES}`);
    void this.worker.terminate();
    this.onFailure?.(error);
  }
}

/**
 * The worker's whole program. It runs from its source text in a fresh thread: it must not refer to anything
 * outside its own body. `wal_checkpoint` returns `busy` (1 when the checkpoint lock was taken elsewhere), `log`
 * (frames in the WAL) and `checkpointed` (frames now copied into the database).
 */
function checkpointLoop(load: NodeJS.Require, threads: typeof import('node:worker_threads')): void {
  const port = threads.parentPort;
  const config = threads.workerData as WorkerConfig;
  if (port === null) throw new Error('checkpointLoop runs in a worker thread');
  const Database = load(config.driver) as typeof import('better-sqlite3');
  const db = new Database(config.path, { fileMustExist: true, timeout: config.busyTimeoutMs });
  const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
  let timer: NodeJS.Timeout | undefined;
  const round = (): void => {
    port.postMessage(checkpoint.get());
  };
  const loop = (): void => {
    round();
    timer = setTimeout(loop, config.intervalMs);
  };
  port.on('message', (message) => {
    if (message !== 'stop') return;
    clearTimeout(timer);
    round();
    db.close();
    port.close();
  });
  timer = setTimeout(loop, config.intervalMs);
}
