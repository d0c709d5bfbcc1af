/**
 * Background WAL checkpoints: a worker thread with its own SQLite connection copies the write-ahead log into the
 * database file (`PRAGMA wal_checkpoint(PASSIVE)`), so the writer's thread (the event loop) never runs one.
 *
 * Why: with `wal_autocheckpoint` on (SQLite's default, every 1000 pages) the connection that commits the
 * transaction crossing the threshold runs the checkpoint inline, and a checkpoint fsyncs the WAL and the database
 * file. On the project's VM that held the event loop for up to 34 ms every few seconds under load: every request
 * waiting meanwhile paid it, and it set the p99 of `/v1/decide` (bench/README.md).
 *
 * How: starting one raises the writer connection's `wal_autocheckpoint` from 1000 pages to BACKSTOP_PAGES. PASSIVE
 * never waits for readers or writers and never blocks them. The worker is unref'd (it never keeps a process alive)
 * and runs no code of ours but this file's `checkpointLoop`, which imports nothing (it is sent as source, so it
 * works the same from `dist/` and under the test runner).
 *
 * The backstop: SQLite rewinds the WAL only when a writer starts a transaction after every frame was copied. Under
 * back-to-back commits a checkpoint from another connection never catches up with the writer, so the WAL would grow
 * without bound (383 MB in 10 s with 32 writers flat out). Past BACKSTOP_PAGES (40 MB) the writer checkpoints inline
 * once, copying only what the worker has not, and the next transaction rewinds the WAL; `journal_size_limit` then
 * trims the file. Under moderate load the worker finishes between commits and the backstop never fires.
 *
 * Catching up: a round that finds the WAL at `catchUpPages` (2,000 pages, 8 MB) or more (not rewound for a while)
 * asks the writer to pause before its next transaction. The writer (the group commit queue) then starts no
 * transaction until the worker has run one more round, at once, which with no commit in between copies every frame;
 * the writer's next transaction rewinds the WAL. The event loop is never held: requests go on being parsed and
 * decided, and their writes wait and join that next transaction. The pause is bounded (250 ms); what the writes
 * waiting in it pay is latency, not a stalled process. So the WAL stays near catchUpPages under a load the worker
 * alone cannot catch up with, instead of climbing to the backstop. A pause holds only this process's writer: with
 * other processes writing the same file (`serve --workers N` on SQLite, a CLI beside a server) their commits go on
 * during the catch-up round, which then seldom copies every frame, and the backstop is what bounds the WAL. A pause
 * is asked for at most once per round interval. The worker and a timer are ref'd while the writer waits, so a
 * process with nothing else to do does not exit with its writes queued behind the pause.
 *
 * Failure: if the worker cannot start, throws, or exits before `stop()`, `wal_autocheckpoint` is turned back on
 * for the writer's connection (SQLite's default, 1000 pages), so the WAL is still checkpointed, inline as before,
 * and never grows without bound; then `onFailure` runs once. Nothing committed is at risk either way: a WAL left
 * behind is replayed by the next open.
 */
import { createRequire } from 'node:module';
import type { Worker } from 'node:worker_threads';
import { evalThread } from '../threads/eval-thread.js';
import type { Database } from 'better-sqlite3';

export interface WalCheckpointerOptions {
  /** Pause between the end of one checkpoint and the start of the next, in ms. Default 250. */
  intervalMs?: number;
  /** How long the worker's connection waits for a lock. Default 5000 ms. */
  busyTimeoutMs?: number;
  /** WAL pages past which the writer checkpoints inline anyway (see the backstop above). Default 10,000. */
  backstopPages?: number;
  /**
   * WAL pages from which the writer pauses for the worker to catch up (see "Catching up" above). Default 2,000 (8 MB):
   * a fifth of the backstop.
   */
  catchUpPages?: number;
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
  /** Times the writer paused for the worker to catch up, and the milliseconds it waited in all. */
  catch_ups: number;
  catch_up_ms: number;
}

/** What the worker posts after each round: `PRAGMA wal_checkpoint`'s row. */
interface RoundMessage {
  busy: number;
  log: number;
  checkpointed: number;
  /** The catch-up this round answers (the id of the writer's `{ now: id }`), run after that message arrived. */
  now?: number;
}

interface WorkerConfig {
  driver: string;
  path: string;
  intervalMs: number;
  busyTimeoutMs: number;
}

const DEFAULT_INTERVAL_MS = 250;
/** The WAL size (pages) from which the writer pauses for a catch-up. */
const CATCH_UP_PAGES = 2_000;
/** The longest a writer pauses for a catch-up: past it the writer goes on (the backstop still bounds the WAL). */
const CATCH_UP_TIMEOUT_MS = 250;
/** SQLite's own default: checkpoint when the WAL passes 1000 pages. */
const INLINE_AUTOCHECKPOINT_PAGES = 1000;
/** With the worker running, the writer still checkpoints inline past this many pages (40 MB of 4 KiB pages). */
const BACKSTOP_PAGES = 10_000;
/** The WAL file is trimmed to this size when it is rewound. */
const JOURNAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;
/** How long `stop()` waits for the worker's last round before terminating it. */
const STOP_TIMEOUT_MS = 10_000;

export class WalCheckpointer {
  private readonly db: Database;
  private readonly worker: Worker;
  private readonly onFailure: ((error: unknown) => void) | undefined;
  private readonly counters: WalCheckpointStats = { mode: 'background', rounds: 0, frames: 0, busy: 0, pending_frames: -1, catch_ups: 0, catch_up_ms: 0 };
  private readonly catchUpPages: number;
  /** A round found the WAL at catchUpPages or more: the writer's next batch pauses. */
  private catchUpWanted = false;
  /** The pause in progress: settled by the worker's next round, or by the timeout. */
  private catchingUp: { id: number; done: () => void } | undefined;
  /** The id of the last catch-up asked for: a late answer to an earlier one (timed out) settles nothing. */
  private catchUpId = 0;
  private stopping: Promise<void> | undefined;
  private failed = false;
  /** `checkpointed` of the previous round: SQLite reports a running total since the WAL was last rewound. */
  private lastCheckpointed = 0;
  private lastLog = 0;

  /** Takes over checkpointing from `db`, an open connection to a file database in WAL mode. */
  constructor(db: Database, options: WalCheckpointerOptions = {}) {
    if (db.memory || !db.open) throw new TypeError('WalCheckpointer needs an open file database');
    const intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
    if (!Number.isFinite(intervalMs) || intervalMs < 1) throw new TypeError('intervalMs must be >= 1');
    const backstopPages = options.backstopPages ?? BACKSTOP_PAGES;
    if (!Number.isSafeInteger(backstopPages) || backstopPages < 1) throw new TypeError('backstopPages must be >= 1');
    const catchUpPages = options.catchUpPages ?? Math.min(CATCH_UP_PAGES, backstopPages);
    if (!Number.isSafeInteger(catchUpPages) || catchUpPages < 1) throw new TypeError('catchUpPages must be >= 1');
    this.catchUpPages = catchUpPages;
    this.db = db;
    this.onFailure = options.onFailure;
    const config: WorkerConfig = {
      driver: createRequire(import.meta.url).resolve('better-sqlite3'),
      path: db.name,
      intervalMs,
      busyTimeoutMs: options.busyTimeoutMs ?? 5000,
    };
    this.worker = evalThread(`(${checkpointLoop.toString()})(require, require('node:worker_threads'));`, {
      workerData: config,
      stdout: false,
      stderr: false,
    });
    this.worker.on('message', (message: RoundMessage) => this.count(message));
    this.worker.on('error', (error) => this.fail(error));
    this.worker.on('exit', (code) => this.fail(new Error(`the checkpoint worker exited with code ${code}`)));
    // After the listeners: a 'message' listener added later would ref the worker again.
    this.worker.unref();
    db.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT_BYTES}`);
    db.pragma(`wal_autocheckpoint = ${backstopPages}`);
  }

  stats(): WalCheckpointStats {
    return { ...this.counters };
  }

  /**
   * The writer's pause before its next transaction (GroupCommitQueue's `pauseBeforeBatch`): undefined unless the last
   * round found the WAL at `catchUpPages` or more. Then the worker runs a round at once, with
   * the writer committing nothing, so it copies every frame and the writer's next transaction rewinds the WAL. The
   * promise resolves after that round, or after CATCH_UP_TIMEOUT_MS; it never rejects.
   */
  catchUp(): Promise<void> | undefined {
    if (!this.catchUpWanted || this.failed || this.stopping !== undefined || this.catchingUp !== undefined) return undefined;
    this.catchUpWanted = false;
    const started = performance.now();
    return new Promise<void>((resolve) => {
      // Both ref'd while the writer waits: a process with nothing else to do (a CLI writing its last events) must not
      // exit, its writes unflushed, before the pause ends (the worker is unref'd otherwise, like stop() says).
      const timer = setTimeout(() => this.catchingUp?.done(), CATCH_UP_TIMEOUT_MS);
      this.worker.ref();
      const id = ++this.catchUpId;
      this.catchingUp = {
        id,
        done: () => {
          clearTimeout(timer);
          if (!this.failed && this.stopping === undefined) this.worker.unref();
          this.catchingUp = undefined;
          this.counters.catch_ups++;
          this.counters.catch_up_ms += Math.round(performance.now() - started);
          resolve();
        },
      };
      this.worker.postMessage({ now: id });
    });
  }

  /** Runs a last round, closes the worker's connection and ends the worker. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.failed
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          // A worker stuck in its last round is terminated rather than waited for forever.
          const timer = setTimeout(() => void this.worker.terminate(), STOP_TIMEOUT_MS);
          this.worker.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
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
    // `checkpointed` counts from the last rewind of the WAL: a smaller log or total means it was rewound.
    const rewound = message.log < this.lastLog || message.checkpointed < this.lastCheckpointed;
    this.counters.frames += Math.max(0, message.checkpointed - (rewound ? 0 : this.lastCheckpointed));
    this.lastCheckpointed = Math.max(0, message.checkpointed);
    this.lastLog = Math.max(0, message.log);
    this.counters.pending_frames = Math.max(0, message.log - message.checkpointed);
    // A WAL this long has not been rewound for a while: pause the writer once for it. Not after the catch-up's own
    // round, whose WAL the writer's next transaction rewinds.
    if (message.now !== undefined) {
      if (message.now === this.catchingUp?.id) this.catchingUp.done();
    } else if (this.catchingUp === undefined) this.catchUpWanted = message.log >= this.catchUpPages;
  }

  private fail(error: unknown): void {
    if (this.failed || this.stopping !== undefined) return;
    this.failed = true;
    this.counters.mode = 'inline';
    if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${INLINE_AUTOCHECKPOINT_PAGES}`);
    this.catchingUp?.done();
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
  const round = (now?: number): void => {
    const row = checkpoint.get() as object;
    port.postMessage(now === undefined ? row : { ...row, now });
  };
  const loop = (): void => {
    round();
    timer = setTimeout(loop, config.intervalMs);
  };
  port.on('message', (message: unknown) => {
    if (typeof message === 'object' && message !== null && typeof (message as { now?: unknown }).now === 'number') {
      // The writer waits for this round (a catch-up): run it at once, then the usual interval.
      clearTimeout(timer);
      round((message as { now: number }).now);
      timer = setTimeout(loop, config.intervalMs);
      return;
    }
    if (message !== 'stop') return;
    clearTimeout(timer);
    round();
    db.close();
    port.close();
  });
  timer = setTimeout(loop, config.intervalMs);
}
