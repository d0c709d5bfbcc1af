/**
 * Folding a stretch of the audit trail into usage cells (day × agent × integration × scope × task type × record type
 * × source, and day × agent × integration for tokens): the reading half of rollupUsage (usage-rollup-ops.ts), which
 * runs it on the event loop or, for a large backlog on SQLite, in worker threads over slices of the range, each with
 * its own read connection, and merges and writes their cells.
 *
 * The fold itself (`createFoldCore`) consumes rows and asks its lookups (a token's issued_at, a counted use before,
 * a task's type) through `FoldLookups`, so both engines fold alike: SQLite reads with `createUsageFold` (synchronous
 * prepared statements, on the store's connection or in a worker); PostgreSQL reads a range's rows and answers its
 * lookups in batches (usage-rollup-ops.ts, postgres-sql.ts).
 *
 * `createFoldCore` and `createUsageFold` must not refer to anything outside their own bodies: their source text is
 * what a worker thread runs (usage-rollup-workers.ts), like the WAL checkpointer's loop. Hence no imports but types,
 * no classes, no constants outside them.
 *
 * What counts (issue 18): a token.issued event grants each of its scopes; a token.used event is use only with
 * evidence of the scope, a call the enforcement proxy forwarded (`action: proxy`, `outcome: forwarded`) or a request a
 * resource server reported (`action: resource_server`); an introspection says a token was presented, not which
 * scope, and never counts. A decision event counts each scope asked for (`requested`) and each refused (`denied`).
 * Events the fold cannot read (masked or malformed members, no agent) are skipped, never fatal.
 */
import type { Database } from 'better-sqlite3';
import type { UsageSource } from './store.js';

/** The statements a fold runs (SQL texts of sql.ts, passed in so that a worker can prepare them). */
export interface UsageFoldSql {
  grants: string;
  uses: string;
  tokenIssuedAt: string;
  countedUseBefore: string;
  taskType: string;
  assertedTaskType: string;
}

export interface DailyCell {
  day: string;
  agent_id: string;
  integration: string;
  scope: string;
  task_type: string;
  record_type: string;
  source: UsageSource;
  n: number;
  first_at: string;
  last_at: string;
}

export interface TokenCell {
  day: string;
  agent_id: string;
  integration: string;
  issued: number;
  issued_first_at: string | null;
  issued_last_at: string | null;
  tokens: number;
  max_seconds: number;
}

/** A DailyCell as a row: its members in upsertUsageDaily's parameter order (sql.ts). */
export type DailyRow = [day: string, agent_id: string, integration: string, scope: string, task_type: string, record_type: string, source: UsageSource, n: number, first_at: string, last_at: string];

/** A TokenCell as a row: its members in upsertTokenUseSpan's parameter order (sql.ts). */
export type TokenRow = [day: string, agent_id: string, integration: string, issued: number, issued_first_at: string | null, issued_last_at: string | null, tokens: number, max_seconds: number];

/**
 * What a fold has summed since it was last taken, as rows: a worker posts them to the event loop, and arrays of
 * strings and numbers cost a seventh of objects to receive (no member names to copy; measured on 40,000 cells: 18 ms
 * instead of 133), then they are bound to the upserts as they are.
 */
export interface FoldedCells {
  daily: DailyRow[];
  tokens: TokenRow[];
}

export interface UsageFold {
  /** Folds the events with seq in (after, through] (two statements in one read transaction). */
  fold(after: number, through: number): void;
  /** The cells summed since the last call, and a fresh start for the next; the fold's memory of tokens and tasks stays. */
  take(): FoldedCells;
}

/**
 * A decision or an issued token (a row of selectRollupGrants): seq, 1 for token.issued (0 for a decision), time,
 * agent_id, task_id, jti, and the members read, as JSON text of an array (see `issued` and `decided`).
 */
export type GrantRow = [number, number, unknown, unknown, unknown, unknown, unknown];
/**
 * A token.used event (a row of selectRollupUses): seq, time, its group's key (jti, day, use, agent_id, task_id
 * joined by NUL, U+0001 for a null; use being `[action, outcome, integration, scope, record.type]` as JSON), used_at
 * (as SQLite's json_extract gives it: a string, a number, or null).
 */
export type UseRow = [number, string, string, unknown];

/**
 * What the fold looks up outside the rows it folds, each answer as of the event at `seq` (SQL texts of sql.ts on
 * SQLite). Asked only for a token or task the fold does not remember (`FoldCore.unknownTokens`, `unknownTasks`).
 */
export interface FoldLookups {
  /** The tokens table's issued_at of `jti` (undefined without a row). */
  tokenIssuedAt(jti: string): unknown;
  /** Whether a use of `jti` that counts comes before `seq` in the trail. */
  countedUseBefore(jti: string, seq: number): boolean;
  /** The tasks table's type of `taskId` (undefined without a row). */
  taskType(taskId: string): unknown;
  /** `input.task.type` of the last decision of `taskId` before `seq` whose type is a string (undefined if none). */
  assertedTaskType(taskId: string, seq: number): unknown;
}

/** The fold over rows, engine-neutral: each range is `begin`, its grant rows, its use rows, `end`. */
export interface FoldCore {
  /**
   * Starts the range (after, through]: one starting elsewhere than the last one ended leaves out events another fold
   * read (what the fold remembers of tokens is read again).
   */
  begin(after: number, through: number): void;
  /** Decisions and issued tokens, in seq order; issuances first: a use never comes before its token's issuance. */
  grants(rows: readonly GrantRow[], lookups: FoldLookups): void;
  uses(rows: readonly UseRow[], lookups: FoldLookups): void;
  /** Ends the range: forgets the tokens issued long before the last event folded. */
  end(): void;
  /** The cells summed since the last call, and a fresh start; the fold's memory of tokens and tasks stays. */
  take(): FoldedCells;
  /** Of `jtis`, those whose issued_at or counted use `uses` may look up now (after `begin` and `grants`). */
  unknownTokens(jtis: Iterable<string>): string[];
  /** Of `taskIds`, those whose type folding `rows` more rows may look up (all when the task cache may be cleared meanwhile). */
  unknownTasks(taskIds: Iterable<string>, rows: number): string[];
}

/**
 * A fold over `db` (a connection to the store's file, or the store's own) with SQLite's statements: the rows of a
 * range read in one read transaction, the lookups asked one at a time. `createCore` is createFoldCore (passed in: a
 * worker runs this function's source text).
 */
export function createUsageFold(db: Database, sql: UsageFoldSql, createCore: () => FoldCore): UsageFold {
  // Raw rows (arrays): no object with named members per row.
  const grants = db.prepare(sql.grants).raw(true);
  const uses = db.prepare(sql.uses).raw(true);
  // Both statements of a slice in one read transaction: they see the same events.
  const read = db.transaction((after: number, through: number) => ({
    grantRows: grants.all(after, through) as GrantRow[],
    useRows: uses.all(after, through) as UseRow[],
  }));
  const tokenIssuedAt = db.prepare(sql.tokenIssuedAt);
  const countedUseBefore = db.prepare(sql.countedUseBefore);
  const taskTypeOf = db.prepare(sql.taskType);
  const assertedTaskTypeOf = db.prepare(sql.assertedTaskType).pluck();
  const lookups: FoldLookups = {
    tokenIssuedAt: (jti) => (tokenIssuedAt.get(jti) as { issued_at: unknown } | undefined)?.issued_at,
    countedUseBefore: (jti, seq) => countedUseBefore.get(jti, seq) !== undefined,
    taskType: (taskId) => (taskTypeOf.get(taskId) as { type: unknown } | undefined)?.type,
    assertedTaskType: (taskId, seq) => assertedTaskTypeOf.get(taskId, seq),
  };
  const core = createCore();
  return {
    fold(after: number, through: number): void {
      core.begin(after, through);
      const { grantRows, useRows } = read.deferred(after, through);
      core.grants(grantRows, lookups);
      core.uses(useRows, lookups);
      core.end();
    },
    take: () => core.take(),
  };
}

/**
 * The fold. It remembers, across ranges, the tokens it saw issued (their issued_at, whether a use was counted) for
 * two hours of event time, and the task types it read (up to 100,000); a token issued before what it folded is
 * looked up in the tokens table, and whether a use of it was counted before in the trail (the events before it), so
 * slices folded apart count each token once.
 */
export function createFoldCore(): FoldCore {
  const ISSUED_MEMORY_MS = 2 * 3600_000;
  const TASK_CACHE_MAX = 100_000;
  /** The token.used events of one token, day and kind of use in what was read: the key, n, first seq, first and last time, the latest used_at. */
  type UseGroup = [key: string, n: number, first_seq: number, first_at: string, last_at: string, last_used_at: unknown];
  /** A count with first and last seen (a DailyCell without the members its context and scope hold). */
  interface Count {
    n: number;
    first_at: string;
    last_at: string;
  }
  interface Context {
    day: string;
    agent: string;
    integration: string;
    task: string;
    record: string;
    bySource: Map<UsageSource, Map<string, Count>>;
  }
  interface IssuedToken {
    issued_ms: number;
    /** When it entered memory (its issuance, or the first use that read it from the store). */
    time_ms: number;
    used: boolean;
    /** Events this fold did not read came after it was remembered (another slice): whether it was used is read again. */
    stale: boolean;
  }

  /** Issuance order (about): the oldest first, so forgetting stops at the first one to keep. */
  const tokens = new Map<string, IssuedToken>();
  const taskTypes = new Map<string, string>();
  /** The cells summed so far: per context (day, agent, integration, task type, record type), source and scope. */
  let contexts = new Map<string, Context>();
  let tokenCells = new Map<string, TokenCell>();
  /** Tokens without a tokens row (pruned, or not ours), until the cells are taken. */
  let notFound = new Set<string>();
  /** The lookups of the range being folded. */
  let ask: FoldLookups;
  let lastTime = '';
  /** The end of the last range folded: a range starting elsewhere leaves out events another fold read. */
  let lastThrough: number | undefined;

  const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

  const rememberTask = (taskId: string, type: string): void => {
    if (taskTypes.size >= TASK_CACHE_MAX) taskTypes.clear();
    taskTypes.set(taskId, type);
  };

  /**
   * The task's type for an event at `seq`: what a decision for it said, or the tasks table (read once); '' when
   * unknown. A task this fold has not seen a decision for (one folded by another slice, batch or call) is looked up in
   * the trail first, its last decision before `seq` with a type (a task a trusted PEP asserted has no tasks row).
   */
  const taskType = (taskId: string | null, seq: number): string => {
    if (taskId === null) return '';
    const known = taskTypes.get(taskId);
    if (known !== undefined) return known;
    const asserted: unknown = ask.assertedTaskType(taskId, seq);
    const registered: unknown = typeof asserted === 'string' ? undefined : ask.taskType(taskId);
    const type = typeof asserted === 'string' ? asserted : typeof registered === 'string' ? registered : '';
    rememberTask(taskId, type);
    return type;
  };

  /** The cells of a day, agent, integration, task type and record type, looked up once for all of an event's scopes. */
  const contextOf = (day: string, agent: string, integration: string, task: string, record: string): Context => {
    const key = `${day}\u0000${agent}\u0000${integration}\u0000${task}\u0000${record}`;
    let context = contexts.get(key);
    if (context === undefined) {
      context = { day, agent, integration, task, record, bySource: new Map() };
      contexts.set(key, context);
    }
    return context;
  };

  const count = (context: Context, source: UsageSource, scope: string, n: number, first: string, last: string): void => {
    let cells = context.bySource.get(source);
    if (cells === undefined) {
      cells = new Map();
      context.bySource.set(source, cells);
    }
    const cell = cells.get(scope);
    if (cell === undefined) {
      cells.set(scope, { n, first_at: first, last_at: last });
      return;
    }
    cell.n += n;
    if (first < cell.first_at) cell.first_at = first;
    if (last > cell.last_at) cell.last_at = last;
  };

  const tokenCell = (day: string, agent: string, integration: string): TokenCell => {
    const key = `${day}\u0000${agent}\u0000${integration}`;
    let cell = tokenCells.get(key);
    if (cell === undefined) {
      cell = { day, agent_id: agent, integration, issued: 0, issued_first_at: null, issued_last_at: null, tokens: 0, max_seconds: 0 };
      tokenCells.set(key, cell);
    }
    return cell;
  };

  /** `[integration, scopes, resource.type, issued_at]` */
  const issued = (seq: number, time: string, agent: string, taskId: string | null, jti: string | null, members: unknown[]): void => {
    const [integration, scopes, recordType, issuedAt] = members;
    if (typeof integration !== 'string' || !Array.isArray(scopes)) return;
    const day = time.slice(0, 10);
    const task = taskType(taskId, seq);
    const record = typeof recordType === 'string' ? recordType : '';
    const context = contextOf(day, agent, integration, task, record);
    for (let i = 0; i < scopes.length; i++) {
      const scope: unknown = scopes[i];
      if (typeof scope === 'string' && scopes.indexOf(scope) === i) count(context, 'granted', scope, 1, time, time);
    }
    const cell = tokenCell(day, agent, integration);
    cell.issued++;
    if (cell.issued_first_at === null || time < cell.issued_first_at) cell.issued_first_at = time;
    if (cell.issued_last_at === null || time > cell.issued_last_at) cell.issued_last_at = time;
    const issuedMs = Date.parse(typeof issuedAt === 'string' ? issuedAt : time);
    if (jti !== null && Number.isFinite(issuedMs)) tokens.set(jti, { issued_ms: issuedMs, time_ms: Date.parse(time), used: false, stale: false });
  };

  /** `[input.integration, input.scopes, input.resource.type, input.task.type, result.denied_scopes]` */
  const decided = (seq: number, time: string, agent: string, taskId: string | null, members: unknown[]): void => {
    const [integration, requested, recordType, asserted, denied] = members;
    if (typeof integration !== 'string') return;
    const day = time.slice(0, 10);
    // The type the policy saw: a registered task's, or one a trusted PEP asserted (the tasks table has no row then).
    let task: string;
    if (typeof asserted === 'string') {
      task = asserted;
      if (taskId !== null) rememberTask(taskId, asserted);
    } else task = taskType(taskId, seq);
    const record = typeof recordType === 'string' ? recordType : '';
    const context = contextOf(day, agent, integration, task, record);
    if (Array.isArray(requested)) {
      for (let i = 0; i < requested.length; i++) {
        const scope: unknown = requested[i];
        if (typeof scope === 'string' && requested.indexOf(scope) === i) count(context, 'requested', scope, 1, time, time);
      }
    }
    if (Array.isArray(denied) && denied.length > 0) {
      const scopes: string[] = [];
      for (const d of denied) if (isObject(d) && typeof d['scope'] === 'string' && !scopes.includes(d['scope'])) scopes.push(d['scope']);
      for (const scope of scopes) count(context, 'denied', scope, 1, time, time);
    }
  };

  /**
   * The token's span so far (its last use − issued_at, whole seconds rounded up), for the longest observed use; and
   * the token counted once, on its first counted use.
   */
  const span = (seq: number, time: string, day: string, agent: string, jti: string, integration: string, end: string): void => {
    let token = tokens.get(jti);
    if (token === undefined) {
      if (notFound.has(jti)) return;
      const issuedAt = ask.tokenIssuedAt(jti);
      const issuedMs = typeof issuedAt === 'string' ? Date.parse(issuedAt) : Number.NaN;
      if (!Number.isFinite(issuedMs)) {
        notFound.add(jti); // pruned, or not ours: its uses count, its span is unknown
        return;
      }
      token = { issued_ms: issuedMs, time_ms: Date.parse(time), used: ask.countedUseBefore(jti, seq), stale: false };
      tokens.set(jti, token);
    } else if (token.stale) {
      token.stale = false;
      if (!token.used) token.used = ask.countedUseBefore(jti, seq);
    }
    const cell = tokenCell(day, agent, integration);
    if (!token.used) {
      token.used = true;
      cell.tokens++;
    }
    const seconds = Math.ceil((Date.parse(end) - token.issued_ms) / 1000);
    if (seconds > cell.max_seconds) cell.max_seconds = seconds;
  };

  /**
   * The events of `rows` summed per key (SQL's GROUP BY, as MIN, MAX and COUNT would), in order of each group's first
   * event: summing here costs less than SQLite's sort of every event for GROUP BY (measured: 500 instead of 560 ms of
   * CPU for 200,000 events read and grouped).
   */
  const groupUses = (rows: readonly UseRow[]): Map<string, UseGroup> => {
    const groups = new Map<string, UseGroup>();
    for (const [seq, time, key, usedAt] of rows) {
      const g = groups.get(key);
      if (g === undefined) {
        groups.set(key, [key, 1, seq, time, time, usedAt]);
        continue;
      }
      g[1]++;
      if (time < g[3]) g[3] = time;
      if (time > g[4]) g[4] = time;
      // SQLite's MAX: NULL ignored, a number below any text.
      const last = g[5];
      if (usedAt !== null && (last === null || (typeof usedAt === typeof last ? (usedAt as string) > (last as string) : typeof usedAt === 'string'))) g[5] = usedAt;
    }
    return groups;
  };

  /** The token.used events of one token, day and kind of use: only uses that count are folded. */
  const used = (g: UseGroup): void => {
    const [key, n, firstSeq, firstAt, lastAt, lastUsedAt] = g;
    const [jtiPart, day, use, agent, taskPart] = key.split('\u0000') as [string, string, string, string, string];
    const jti = jtiPart === '\u0001' ? null : jtiPart;
    const taskId = taskPart === '\u0001' ? null : taskPart;
    const [action, outcome, integration, scope, recordType] = JSON.parse(use) as unknown[];
    let source: UsageSource;
    if (action === 'proxy' && outcome === 'forwarded') source = 'proxy';
    else if (action === 'resource_server') source = 'resource_server';
    else return; // an introspection (no scope shown to be used), or a call refused or failed
    if (typeof integration !== 'string' || typeof scope !== 'string') return;
    if (lastAt > lastTime) lastTime = lastAt;
    const task = taskType(taskId, firstSeq);
    const record = typeof recordType === 'string' ? recordType : '';
    count(contextOf(day, agent, integration, task, record), source, scope, n, firstAt, lastAt);
    // When the last request was let through: a resource server reports its own time (the PDP checked it lies within
    // the token's life); the event's time is when the report arrived, up to a flush later.
    const end = source === 'resource_server' && typeof lastUsedAt === 'string' ? lastUsedAt : lastAt;
    if (jti !== null) span(firstSeq, firstAt, day, agent, jti, integration, end);
  };

  return {
    begin(after: number, through: number): void {
      if (lastThrough !== undefined && after !== lastThrough) for (const token of tokens.values()) token.stale = true;
      lastThrough = through;
    },
    grants(rows: readonly GrantRow[], lookups: FoldLookups): void {
      ask = lookups;
      for (const [seq, type, time, agent, taskId, jti, text] of rows) {
        if (typeof time !== 'string' || typeof agent !== 'string' || typeof text !== 'string') continue;
        const members: unknown = JSON.parse(text);
        if (!Array.isArray(members)) continue;
        if (time > lastTime) lastTime = time;
        const task = typeof taskId === 'string' ? taskId : null;
        if (type === 1) issued(seq, time, agent, task, typeof jti === 'string' ? jti : null, members);
        else decided(seq, time, agent, task, members);
      }
    },
    uses(rows: readonly UseRow[], lookups: FoldLookups): void {
      ask = lookups;
      for (const g of groupUses(rows).values()) used(g);
    },
    end(): void {
      // Forget the tokens issued long before the last event folded (their uses are over, or read from the store).
      const now = Date.parse(lastTime);
      for (const [jti, token] of tokens) {
        if (now - token.time_ms <= ISSUED_MEMORY_MS) break;
        tokens.delete(jti);
      }
    },
    unknownTokens(jtis: Iterable<string>): string[] {
      const out = new Set<string>();
      for (const jti of jtis) {
        const token = tokens.get(jti);
        if (token === undefined ? !notFound.has(jti) : token.stale && !token.used) out.add(jti);
      }
      return [...out];
    },
    unknownTasks(taskIds: Iterable<string>, rows: number): string[] {
      // Each row remembers at most one task: below the limit, what the cache holds now stays in it.
      const mayClear = taskTypes.size + rows >= TASK_CACHE_MAX;
      const out = new Set<string>();
      for (const id of taskIds) if (mayClear || !taskTypes.has(id)) out.add(id);
      return [...out];
    },
    take(): FoldedCells {
      const out: FoldedCells = { daily: [], tokens: [] };
      for (const c of contexts.values()) {
        for (const [source, cells] of c.bySource) {
          for (const [scope, cell] of cells) out.daily.push([c.day, c.agent, c.integration, scope, c.task, c.record, source, cell.n, cell.first_at, cell.last_at]);
        }
      }
      for (const c of tokenCells.values()) out.tokens.push([c.day, c.agent_id, c.integration, c.issued, c.issued_first_at, c.issued_last_at, c.tokens, c.max_seconds]);
      contexts = new Map();
      tokenCells = new Map();
      notFound = new Set();
      return out;
    },
  };
}
