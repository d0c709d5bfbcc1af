/**
 * Usage aggregates from the audit trail (issue 18: policy suggestions). `rollupUsage` folds the events after a cursor
 * into daily cells (usage-fold.ts says what counts), a bounded batch per write transaction; `usageSummary` sums a
 * window of them. The suggestion engine reads the summary, never the events, so its cost depends on agents × scopes
 * × days, not on the size of the trail (src/store/README.md, "Usage aggregates").
 */
import { availableParallelism } from 'node:os';
import type { Database } from 'better-sqlite3';
import { PdpError, isPdpError } from '../errors/pdp-error.js';
import type { RollupUsageInput, RollupUsageResult, TokenUseSpanSummary, TokensIssuedSummary, UsageRow, UsageSummary, UsageSummaryInput } from './store.js';
import { SQL } from './sql.js';
import { all, get, run } from './sql-program.js';
import type { Program } from './sql-program.js';
import { requireTime } from './store-context.js';
import type { StoreContext } from './store-context.js';
import { createUsageFold } from './usage-fold.js';
import type { DailyRow, FoldedCells, TokenRow, UsageFold, UsageFoldSql } from './usage-fold.js';
import { FoldWorkers } from './usage-rollup-workers.js';

/** Events folded per write transaction unless asked otherwise (`batch`). */
export const ROLLUP_BATCH = 200_000;
/** The largest `batch` accepted: one transaction's cells (and the writer's pause to upsert them) stay bounded. */
export const ROLLUP_MAX_BATCH = 1_000_000;
/** Events read at a time (two statements in one read transaction); on the event loop, it is yielded between reads. */
const READ_CHUNK = 20_000;
/** Below this many events to read, a rollup folds on the event loop: starting workers would cost more. */
const WORKERS_FROM_EVENTS = 200_000;
/**
 * Most worker threads a rollup starts by default (fewer on a machine with fewer cores). Each adds about 70 MB of
 * resident memory (its own V8 heap and SQLite connection): two keep a rollup of 10 million events under 500 MB.
 */
const WORKERS_MAX = 2;

const FOLD_SQL: UsageFoldSql = {
  grants: SQL.selectRollupGrants,
  uses: SQL.selectRollupUses,
  tokenIssuedAt: SQL.selectTokenIssuedAt,
  countedUseBefore: SQL.selectTokenCountedUseBefore,
  taskType: SQL.selectTaskType,
  assertedTaskType: SQL.selectAssertedTaskType,
};

/** One rollup at a time per store: a second call waits for the first (then finds little left to read). */
const running = new WeakMap<StoreContext, Promise<unknown>>();

export function rollupUsage(ctx: StoreContext, input: RollupUsageInput = {}): Promise<RollupUsageResult> {
  const batch = input.batch ?? ROLLUP_BATCH;
  if (!Number.isSafeInteger(batch) || batch < 1 || batch > ROLLUP_MAX_BATCH) {
    return Promise.reject(new TypeError(`batch must be an integer from 1 to ${ROLLUP_MAX_BATCH}`));
  }
  const workers = input.workers;
  if (workers !== undefined && (!Number.isSafeInteger(workers) || workers < 0 || workers > 64)) {
    return Promise.reject(new TypeError('workers must be an integer from 0 to 64'));
  }
  // The fold reads the SQLite file itself (usage-fold.ts); PostgreSQL's comes later.
  const db = ctx.engine === 'sqlite' ? ctx.sqlite : undefined;
  if (db === undefined) {
    return Promise.reject(new PdpError('store_unavailable', 'usage rollup is not available on the PostgreSQL store yet'));
  }
  const next = (running.get(ctx) ?? Promise.resolve())
    .catch(() => undefined)
    .then(() => rollupNow(ctx, db, batch, workers));
  running.set(ctx, next);
  return next;
}

/**
 * Reads the events after the cursor (events are immutable once committed: no write transaction is held while they
 * are read and parsed), folds up to `batch` of them into cells, then writes the cells and the new cursor in one
 * write transaction, which first checks that the cursor has not moved (another process's rollup): if it has, the
 * batch is dropped and the call goes on from there. A large backlog is read by worker threads, one slice of each
 * batch per worker, the next batch read while the store writes the last.
 */
async function rollupNow(ctx: StoreContext, db: Database, batch: number, workersAsked: number | undefined): Promise<RollupUsageResult> {
  let pool: FoldWorkers | undefined;
  let local: UsageFold | undefined;
  let events = 0;
  /** The next range to fold after `cursor`, or undefined when the cursor is at the head. */
  const rangeAfter = async (cursor: number): Promise<{ from: number; end: number } | undefined> => {
    // One snapshot: the first seq read is never that of a state after the head read (a prune between the reads).
    const { head, first } = await ctx.read(
      function* () {
        const head = (yield* ctx.chain.readHead()).seq;
        const first = (yield* get<{ seq: number | null }>(SQL.selectFirstSeq))?.seq ?? null;
        return { head, first };
      },
      { snapshot: true },
    );
    if (cursor >= head) return undefined;
    // Events pruned before the rollup read them are gone: it goes on from the first remaining (no gaps after it).
    const from = first === null ? head : Math.max(cursor, first - 1);
    // Never past the head read above: an event committed later has a higher seq, and a later batch reads it.
    return { from, end: Math.min(head, from + batch) };
  };
  const foldRange = async ({ from, end }: { from: number; end: number }): Promise<FoldedCells> => {
    if (pool !== undefined && end - from >= pool.size) return merge(await pool.fold(slices(from, end, pool.size), READ_CHUNK));
    local ??= readSqlite(() => createUsageFold(db, FOLD_SQL));
    const fold = local;
    for (let lo = from; lo < end; ) {
      const hi = Math.min(end, lo + READ_CHUNK);
      readSqlite(() => fold.fold(lo, hi));
      lo = hi;
      if (lo < end) await new Promise((resolve) => setImmediate(resolve));
    }
    return fold.take();
  };
  try {
    let cursor = await ctx.read(cursorOf);
    let range = await rangeAfter(cursor);
    if (range === undefined) return { events: 0, seq: cursor };
    pool = await startWorkers(ctx, db, range, workersAsked);
    let folding = foldRange(range);
    for (;;) {
      const cells = await folding;
      const done: { from: number; end: number } = range;
      // Workers read the next batch while the store writes this one.
      const next = await rangeAfter(done.end);
      if (next !== undefined && pool !== undefined) folding = foldRange(next);
      const start = cursor;
      // In the primary key's order: each upsert lands next to the last one (pages already in the cache).
      cells.daily.sort(byDailyKey);
      cells.tokens.sort(byTokenKey);
      const moved = await ctx.write(function* () {
        if ((yield* cursorOf()) !== start) return false;
        // Rows in the statements' parameter order (usage-fold.ts): their members are the parameters.
        for (const row of cells.daily) yield* run(SQL.upsertUsageDaily, ...row);
        for (const row of cells.tokens) yield* run(SQL.upsertTokenUseSpan, ...row);
        yield* run(SQL.upsertUsageCursor, done.end);
        return true;
      });
      if (moved) {
        events += done.end - done.from;
        cursor = done.end;
        if (next === undefined) return { events, seq: cursor };
        range = next;
        if (pool === undefined) folding = foldRange(next);
        continue;
      }
      // Another process folded these events first: what this call remembers of tokens may now be wrong.
      if (next !== undefined && pool !== undefined) await folding.catch(() => undefined);
      await pool?.close();
      pool = undefined;
      local = undefined;
      cursor = await ctx.read(cursorOf);
      const again = await rangeAfter(cursor);
      if (again === undefined) return { events, seq: cursor };
      range = again;
      folding = foldRange(again);
    }
  } finally {
    await pool?.close();
  }
}

/** Workers for the backlog after `range.from` on a file store, unless asked for none (or fewer than the default). */
async function startWorkers(ctx: StoreContext, db: Database, range: { from: number }, asked: number | undefined): Promise<FoldWorkers | undefined> {
  if (db.memory) return undefined;
  const pending = (await ctx.read(() => ctx.chain.readHead())).seq - range.from;
  const count = asked ?? (pending >= WORKERS_FROM_EVENTS ? Math.min(WORKERS_MAX, availableParallelism()) : 0);
  return count === 0 ? undefined : new FoldWorkers(db.name, count, FOLD_SQL);
}

/** Runs a read of the fold on the store's SQLite connection; any failure that is not already a PdpError is store_unavailable. */
function readSqlite<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (isPdpError(error)) throw error;
    throw new PdpError('store_unavailable', 'the store could not be read', { cause: error });
  }
}

/** (from, end] cut into `n` contiguous slices of about the same number of events. */
function slices(from: number, end: number, n: number): Array<{ after: number; through: number }> {
  const out: Array<{ after: number; through: number }> = [];
  for (let i = 0; i < n; i++) {
    const after = from + Math.floor(((end - from) * i) / n);
    const through = from + Math.floor(((end - from) * (i + 1)) / n);
    if (through > after) out.push({ after, through });
  }
  return out;
}

/**
 * The cells of several folds summed by key. Slices of one batch share only the days at their edges: the cells of a
 * day that one fold alone has pass as they are, the others are summed by key.
 */
function merge(folded: readonly FoldedCells[]): FoldedCells {
  if (folded.length === 1) return folded[0] as FoldedCells;
  const seen = new Map<string, number>();
  const shared = new Set<string>();
  folded.forEach((f, i) => {
    for (const rows of [f.daily, f.tokens]) {
      for (const row of rows) {
        const day = row[0];
        const by = seen.get(day);
        if (by === undefined) seen.set(day, i);
        else if (by !== i) shared.add(day);
      }
    }
  });
  const out: FoldedCells = { daily: [], tokens: [] };
  const daily = new Map<string, DailyRow>();
  const tokens = new Map<string, TokenRow>();
  for (const f of folded) {
    for (const row of f.daily) {
      if (!shared.has(row[0])) {
        out.daily.push(row);
        continue;
      }
      const key = row.slice(0, 7).join('\u0000');
      const into = daily.get(key);
      if (into === undefined) daily.set(key, row);
      else {
        into[7] += row[7];
        if (row[8] < into[8]) into[8] = row[8];
        if (row[9] > into[9]) into[9] = row[9];
      }
    }
    for (const row of f.tokens) {
      if (!shared.has(row[0])) {
        out.tokens.push(row);
        continue;
      }
      const key = `${row[0]}\u0000${row[1]}\u0000${row[2]}`;
      const into = tokens.get(key);
      if (into === undefined) tokens.set(key, row);
      else {
        into[3] += row[3];
        if (into[4] === null || (row[4] !== null && row[4] < into[4])) into[4] = row[4];
        if (into[5] === null || (row[5] !== null && row[5] > into[5])) into[5] = row[5];
        into[6] += row[6];
        if (row[7] > into[7]) into[7] = row[7];
      }
    }
  }
  for (const row of daily.values()) out.daily.push(row);
  for (const row of tokens.values()) out.tokens.push(row);
  return out;
}

/** usage_daily's primary key order: agent_id, integration, scope, task_type, record_type, source, day. */
function byDailyKey(a: DailyRow, b: DailyRow): number {
  for (const i of DAILY_KEY) {
    const x = a[i] as string;
    const y = b[i] as string;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}
const DAILY_KEY = [1, 2, 3, 4, 5, 6, 0] as const;

/** token_use_span's primary key order: agent_id, integration, day. */
function byTokenKey(a: TokenRow, b: TokenRow): number {
  for (const i of TOKEN_KEY) {
    const x = a[i];
    const y = b[i];
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}
const TOKEN_KEY = [1, 2, 0] as const;

function* cursorOf(): Program<number> {
  return (yield* get<{ seq: number }>(SQL.selectUsageCursor))?.seq ?? 0;
}

// ---- the summary -------------------------------------------------------------------------------------------

interface SummaryRead {
  seq: number;
  rows: UsageRow[];
  tokens: Array<{
    agent_id: string;
    integration: string;
    issued: number;
    issued_first_at: string | null;
    issued_last_at: string | null;
    issued_days: number;
    tokens: number;
    max_seconds: number;
  }>;
}

export async function usageSummary(ctx: StoreContext, input: UsageSummaryInput): Promise<UsageSummary> {
  const since = requireTime('since', input.since);
  const until = requireTime('until', input.until);
  if (until <= since) throw new TypeError('until must be after since');
  if (input.agent_id !== undefined && (typeof input.agent_id !== 'string' || input.agent_id === '')) {
    throw new TypeError('agent_id must be a non-empty string when given');
  }
  const firstDay = since.slice(0, 10);
  const lastDay = new Date(Date.parse(until) - 1).toISOString().slice(0, 10);
  const agent = input.agent_id ?? null;
  // One snapshot: the cursor and both tables as of one state (a rollup committing between the reads would otherwise
  // show its tokens without its scopes).
  const got = await ctx.read(
    function* (): Program<SummaryRead> {
      const seq = yield* cursorOf();
      const rows =
        agent === null
          ? yield* all<UsageRow>(SQL.selectUsageSummary, firstDay, lastDay)
          : yield* all<UsageRow>(SQL.selectUsageSummaryOfAgent, agent, firstDay, lastDay);
      const tokens =
        agent === null
          ? yield* all<SummaryRead['tokens'][number]>(SQL.selectTokenSummary, firstDay, lastDay)
          : yield* all<SummaryRead['tokens'][number]>(SQL.selectTokenSummaryOfAgent, agent, firstDay, lastDay);
      return { seq, rows, tokens };
    },
    { snapshot: true },
  );
  const spans: TokenUseSpanSummary[] = [];
  const issued: TokensIssuedSummary[] = [];
  for (const t of got.tokens) {
    if (t.tokens > 0) spans.push({ agent_id: t.agent_id, integration: t.integration, max_seconds: t.max_seconds, tokens: t.tokens });
    if (t.issued > 0 && t.issued_first_at !== null && t.issued_last_at !== null) {
      issued.push({ agent_id: t.agent_id, integration: t.integration, tokens: t.issued, first_at: t.issued_first_at, last_at: t.issued_last_at, days: t.issued_days });
    }
  }
  return { since, until, first_day: firstDay, last_day: lastDay, seq: got.seq, rows: got.rows, spans, issued };
}
