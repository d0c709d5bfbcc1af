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
import { PG_SQL } from './postgres-sql.js';
import { createFoldCore, createUsageFold } from './usage-fold.js';
import type { DailyRow, FoldCore, FoldLookups, FoldedCells, GrantRow, TokenRow, UseRow, UsageFold, UsageFoldSql } from './usage-fold.js';
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
  // SQLite: the fold reads the file itself (usage-fold.ts). PostgreSQL: it reads through the store's read pool.
  const db = ctx.engine === 'sqlite' ? ctx.sqlite : undefined;
  if (ctx.engine === 'sqlite' && db === undefined) return Promise.reject(new PdpError('store_unavailable', 'the SQLite store has no connection'));
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
async function rollupNow(ctx: StoreContext, db: Database | undefined, batch: number, workersAsked: number | undefined): Promise<RollupUsageResult> {
  let pool: FoldWorkers | undefined;
  let local: UsageFold | undefined;
  let core: FoldCore | undefined;
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
    if (db === undefined) {
      // PostgreSQL: the database reads inside the payloads; one fold per call, a chunk per read (no worker threads).
      const fold = (core ??= createFoldCore());
      for (let lo = from; lo < end; ) {
        const hi = Math.min(end, lo + READ_CHUNK);
        await foldPostgres(ctx, fold, lo, hi);
        lo = hi;
      }
      return fold.take();
    }
    if (pool !== undefined && end - from >= pool.size) return merge(await pool.fold(slices(from, end, pool.size), READ_CHUNK));
    local ??= readSqlite(() => createUsageFold(db, FOLD_SQL, createFoldCore));
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
    pool = db === undefined ? undefined : await startWorkers(ctx, db, range, workersAsked);
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
      core = undefined;
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

/**
 * Folds the events of (after, through] on PostgreSQL: one snapshot reads the range's rows (the database extracts the
 * members the fold reads, postgres-sql.ts), then, before each half of the fold, answers in a few batched queries
 * every lookup that half may ask (FoldCore.unknownTasks, unknownTokens), exactly as SQLite's statements would for any
 * seq of the range. A payload that is not JSON fails the cast: the range is read again without the events JSON.parse
 * refuses (SQLite's json_valid leaves them out), once.
 */
async function foldPostgres(ctx: StoreContext, core: FoldCore, after: number, through: number): Promise<void> {
  let skip: number[] = [];
  const state = { begun: false };
  for (;;) {
    try {
      await ctx.read(() => foldPostgresRange(core, after, through, skip, state), { snapshot: true });
      return;
    } catch (error) {
      // Only while nothing was folded yet: a fold half done cannot be repeated (the call fails, its cells unwritten).
      if (state.begun || skip.length > 0 || !isNotJson(error)) throw error;
      const payloads = await ctx.read(() => all<{ seq: number; data: string }>(PG_SQL.selectRollupPayloads, after, through));
      skip = payloads.filter((row) => !isJson(row.data)).map((row) => row.seq);
      if (skip.length === 0) throw error;
    }
  }
}

function* foldPostgresRange(core: FoldCore, after: number, through: number, skip: number[], state: { begun: boolean }): Program<void> {
  const grantRows = (yield* all<PgGrantRow>(PG_SQL.selectRollupGrants, after, through, skip)).map(
    (r): GrantRow => [r.seq, r.kind, r.time, r.agent_id, r.task_id, r.jti, r.members],
  );
  const pgUses = yield* all<PgUseRow>(PG_SQL.selectRollupUses, after, through, skip);
  // The key SQLite builds (selectRollupUses in sql.ts), NUL-separated: PostgreSQL text cannot hold a NUL.
  const useRows = pgUses.map(
    (r): UseRow => [
      r.seq,
      r.time,
      `${r.jti ?? '\u0001'}\u0000${r.time.slice(0, 10)}\u0000${r.use}\u0000${r.agent_id}\u0000${r.task_id ?? '\u0001'}`,
      asSqliteValue(r.used_at),
    ],
  );
  const rows = grantRows.length + useRows.length;
  state.begun = true;
  core.begin(after, through);
  const grantTasks: string[] = [];
  for (const r of grantRows) if (typeof r[4] === 'string') grantTasks.push(r[4]);
  core.grants(grantRows, yield* lookupsFor(core.unknownTasks(grantTasks, rows), [], after, through, skip));
  const useTasks: string[] = [];
  const jtis: string[] = [];
  for (const r of pgUses) {
    if (r.task_id !== null) useTasks.push(r.task_id);
    if (r.jti !== null) jtis.push(r.jti);
  }
  core.uses(useRows, yield* lookupsFor(core.unknownTasks(useTasks, useRows.length), core.unknownTokens(jtis), after, through, skip));
  core.end();
}

interface PgGrantRow {
  seq: number;
  kind: number;
  time: string;
  agent_id: string;
  task_id: string | null;
  jti: string | null;
  members: string;
}

interface PgUseRow {
  seq: number;
  time: string;
  jti: string | null;
  agent_id: string;
  task_id: string | null;
  use: string;
  used_at: unknown;
}

/**
 * The answers to every lookup about `tasks` and `jtis` for events in (after, through], read in batches: a question
 * about anything else is a bug of the caller (FoldCore.unknownTasks and unknownTokens name everything it may ask).
 */
function* lookupsFor(tasks: string[], jtis: string[], after: number, through: number, skip: number[]): Program<FoldLookups> {
  const issuedAt = new Map<string, unknown>();
  const firstCounted = new Map<string, number | null>();
  const asserted = new Map<string, Array<{ seq: number; type: unknown }>>();
  const registered = new Map<string, unknown>();
  if (jtis.length > 0) {
    for (const r of yield* all<{ jti: string; issued_at: string }>(PG_SQL.selectTokensIssuedAt, jtis)) issuedAt.set(r.jti, r.issued_at);
    for (const r of yield* all<{ jti: string; seq: number | null }>(PG_SQL.selectFirstCountedUses, through, skip, jtis)) firstCounted.set(r.jti, r.seq);
  }
  if (tasks.length > 0) {
    for (const r of yield* all<{ task_id: string; seq: number; task_type: unknown }>(PG_SQL.selectAssertedTaskTypes, tasks, after, tasks, after, through, skip)) {
      let list = asserted.get(r.task_id);
      if (list === undefined) asserted.set(r.task_id, (list = []));
      list.push({ seq: r.seq, type: r.task_type });
    }
    for (const list of asserted.values()) list.sort((a, b) => a.seq - b.seq);
    for (const r of yield* all<{ id: string; type: string }>(PG_SQL.selectTaskTypes, tasks)) registered.set(r.id, r.type);
  }
  const askedJtis = new Set(jtis);
  const askedTasks = new Set(tasks);
  const check = (known: Set<string>, id: string): void => {
    if (!known.has(id)) throw new Error(`the usage fold looked up ${id}, which was not read`);
  };
  return {
    tokenIssuedAt: (jti) => (check(askedJtis, jti), issuedAt.get(jti)),
    countedUseBefore: (jti, seq) => {
      check(askedJtis, jti);
      const first = firstCounted.get(jti);
      return first !== undefined && first !== null && first < seq;
    },
    taskType: (taskId) => (check(askedTasks, taskId), registered.get(taskId)),
    assertedTaskType: (taskId, seq) => {
      check(askedTasks, taskId);
      let type: unknown;
      for (const d of asserted.get(taskId) ?? []) {
        if (d.seq >= seq) break;
        type = d.type;
      }
      return type;
    },
  };
}

/** A JSON value as SQLite's json_extract returns it: true and false as 1 and 0, an object or array as its JSON text. */
function asSqliteValue(value: unknown): unknown {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'object' && value !== null) return JSON.stringify(value);
  return value;
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** A read that failed because a payload is not JSON (PostgreSQL's invalid_text_representation, from the cast). */
function isNotJson(error: unknown): boolean {
  const cause = error instanceof Error ? error.cause : undefined;
  return typeof cause === 'object' && cause !== null && (cause as { code?: unknown }).code === '22P02';
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
