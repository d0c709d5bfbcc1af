/**
 * Folding a stretch of the audit trail into usage cells (day × agent × integration × scope × task type × record type
 * × source, and day × agent × integration for tokens): the reading half of rollupUsage (usage-rollup-ops.ts), which
 * runs it on the event loop or, for a large backlog, in worker threads over slices of the range, each with its own
 * read connection, and merges and writes their cells.
 *
 * `createUsageFold` must not refer to anything outside its own body: its source text is what a worker thread runs
 * (usage-rollup-workers.ts), like the WAL checkpointer's loop. Hence no imports but types, no classes, no constants
 * outside it.
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

/** What a fold has summed since it was last taken. */
export interface FoldedCells {
  daily: DailyCell[];
  tokens: TokenCell[];
}

export interface UsageFold {
  /** Folds the events with seq in (after, through] (two statements in one read transaction). */
  fold(after: number, through: number): void;
  /** The cells summed since the last call, and a fresh start for the next; the fold's memory of tokens and tasks stays. */
  take(): FoldedCells;
}

/**
 * A fold over `db` (a connection to the store's file, or the store's own). It remembers, across folds, the tokens it
 * saw issued (their issued_at, whether a use was counted) for two hours of event time, and the task types it read
 * (up to 100,000); a token issued before what it folded is read from the tokens table, and whether a use of it was
 * counted before from the trail (the events before it), so slices folded apart count each token once.
 */
export function createUsageFold(db: Database, sql: UsageFoldSql): UsageFold {
  const ISSUED_MEMORY_MS = 2 * 3600_000;
  const TASK_CACHE_MAX = 100_000;
  const grants = db.prepare(sql.grants).raw(true);
  const uses = db.prepare(sql.uses);
  // Both statements of a slice in one read transaction: they see the same events.
  const read = db.transaction((after: number, through: number) => ({
    grantRows: grants.all(after, through) as Array<[number, number, string]>,
    useGroups: uses.all(after, through) as UseGroup[],
  }));
  const tokenIssuedAt = db.prepare(sql.tokenIssuedAt);
  const countedUseBefore = db.prepare(sql.countedUseBefore);
  const taskTypeOf = db.prepare(sql.taskType);
  /** The token.used events of one token, day and kind of use in what was read (a row of selectRollupUses). */
  interface UseGroup {
    agent_id: string;
    task_id: string | null;
    jti: string | null;
    day: string;
    /** JSON: `[action, outcome, integration, scope, record.type]`. */
    use: string;
    n: number;
    first_seq: number;
    first_at: string;
    last_at: string;
    last_used_at: unknown;
  }
  interface IssuedToken {
    issued_ms: number;
    /** When it entered memory (its issuance, or the first use that read it from the store). */
    time_ms: number;
    used: boolean;
  }

  /** Issuance order (about): the oldest first, so forgetting stops at the first one to keep. */
  const tokens = new Map<string, IssuedToken>();
  const taskTypes = new Map<string, string>();
  let daily = new Map<string, DailyCell>();
  let tokenCells = new Map<string, TokenCell>();
  let unknownTokens = new Set<string>();
  let lastTime = '';

  const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

  const rememberTask = (taskId: string, type: string): void => {
    if (taskTypes.size >= TASK_CACHE_MAX) taskTypes.clear();
    taskTypes.set(taskId, type);
  };

  /** The task's type: what a decision for it said, or the tasks table (read once); '' when unknown. */
  const taskType = (taskId: string | null): string => {
    if (taskId === null) return '';
    const known = taskTypes.get(taskId);
    if (known !== undefined) return known;
    const row = taskTypeOf.get(taskId) as { type: string } | undefined;
    const type = row?.type ?? '';
    rememberTask(taskId, type);
    return type;
  };

  const count = (day: string, agent: string, integration: string, scope: string, task: string, record: string, source: UsageSource, n: number, first: string, last: string): void => {
    const key = `${day}\u0000${agent}\u0000${integration}\u0000${scope}\u0000${task}\u0000${record}\u0000${source}`;
    const cell = daily.get(key);
    if (cell === undefined) {
      daily.set(key, { day, agent_id: agent, integration, scope, task_type: task, record_type: record, source, n, first_at: first, last_at: last });
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
  const issued = (time: string, agent: string, taskId: string | null, jti: string | null, members: unknown[]): void => {
    const [integration, scopes, recordType, issuedAt] = members;
    if (typeof integration !== 'string' || !Array.isArray(scopes)) return;
    const day = time.slice(0, 10);
    const task = taskType(taskId);
    const record = typeof recordType === 'string' ? recordType : '';
    scopes.forEach((scope, i) => {
      if (typeof scope === 'string' && scopes.indexOf(scope) === i) count(day, agent, integration, scope, task, record, 'granted', 1, time, time);
    });
    const cell = tokenCell(day, agent, integration);
    cell.issued++;
    if (cell.issued_first_at === null || time < cell.issued_first_at) cell.issued_first_at = time;
    if (cell.issued_last_at === null || time > cell.issued_last_at) cell.issued_last_at = time;
    const issuedMs = Date.parse(typeof issuedAt === 'string' ? issuedAt : time);
    if (jti !== null && Number.isFinite(issuedMs)) tokens.set(jti, { issued_ms: issuedMs, time_ms: Date.parse(time), used: false });
  };

  /** `[input.integration, input.scopes, input.resource.type, input.task.type, result.denied_scopes]` */
  const decided = (time: string, agent: string, taskId: string | null, members: unknown[]): void => {
    const [integration, requested, recordType, asserted, denied] = members;
    if (typeof integration !== 'string') return;
    const day = time.slice(0, 10);
    // The type the policy saw: a registered task's, or one a trusted PEP asserted (the tasks table has no row then).
    let task: string;
    if (typeof asserted === 'string') {
      task = asserted;
      if (taskId !== null) rememberTask(taskId, asserted);
    } else task = taskType(taskId);
    const record = typeof recordType === 'string' ? recordType : '';
    if (Array.isArray(requested)) {
      requested.forEach((scope, i) => {
        if (typeof scope === 'string' && requested.indexOf(scope) === i) count(day, agent, integration, scope, task, record, 'requested', 1, time, time);
      });
    }
    if (Array.isArray(denied)) {
      const scopes: string[] = [];
      for (const d of denied) if (isObject(d) && typeof d['scope'] === 'string' && !scopes.includes(d['scope'])) scopes.push(d['scope']);
      for (const scope of scopes) count(day, agent, integration, scope, task, record, 'denied', 1, time, time);
    }
  };

  /**
   * The token's span so far (its last use − issued_at, whole seconds rounded up), for the longest observed use; and
   * the token counted once, on its first counted use.
   */
  const span = (seq: number, time: string, day: string, agent: string, jti: string, integration: string, end: string): void => {
    let token = tokens.get(jti);
    if (token === undefined) {
      if (unknownTokens.has(jti)) return;
      const row = tokenIssuedAt.get(jti) as { issued_at: string } | undefined;
      const issuedMs = row === undefined ? Number.NaN : Date.parse(row.issued_at);
      if (!Number.isFinite(issuedMs)) {
        unknownTokens.add(jti); // pruned, or not ours: its uses count, its span is unknown
        return;
      }
      token = { issued_ms: issuedMs, time_ms: Date.parse(time), used: countedUseBefore.get(jti, seq) !== undefined };
      tokens.set(jti, token);
    }
    const cell = tokenCell(day, agent, integration);
    if (!token.used) {
      token.used = true;
      cell.tokens++;
    }
    const seconds = Math.ceil((Date.parse(end) - token.issued_ms) / 1000);
    if (seconds > cell.max_seconds) cell.max_seconds = seconds;
  };

  /** The token.used events of one token, day and kind of use: only uses that count are folded. */
  const used = (g: UseGroup): void => {
    const [action, outcome, integration, scope, recordType] = JSON.parse(g.use) as unknown[];
    let source: UsageSource;
    if (action === 'proxy' && outcome === 'forwarded') source = 'proxy';
    else if (action === 'resource_server') source = 'resource_server';
    else return; // an introspection (no scope shown to be used), or a call refused or failed
    if (typeof integration !== 'string' || typeof scope !== 'string') return;
    if (g.last_at > lastTime) lastTime = g.last_at;
    count(g.day, g.agent_id, integration, scope, taskType(g.task_id), typeof recordType === 'string' ? recordType : '', source, g.n, g.first_at, g.last_at);
    // When the last request was let through: a resource server reports its own time (the PDP checked it lies within
    // the token's life); the event's time is when the report arrived, up to a flush later.
    const end = source === 'resource_server' && typeof g.last_used_at === 'string' ? g.last_used_at : g.last_at;
    if (g.jti !== null) span(g.first_seq, g.first_at, g.day, g.agent_id, g.jti, integration, end);
  };

  return {
    fold(after: number, through: number): void {
      const { grantRows, useGroups } = read.deferred(after, through);
      // Issuances first: a use never comes before its token's issuance, whose issued_at its span needs.
      for (const [, type, text] of grantRows) {
        const [time, agent, taskId, jti, members] = JSON.parse(text) as unknown[];
        if (typeof time !== 'string' || typeof agent !== 'string' || !Array.isArray(members)) continue;
        if (time > lastTime) lastTime = time;
        const task = typeof taskId === 'string' ? taskId : null;
        if (type === 1) issued(time, agent, task, typeof jti === 'string' ? jti : null, members);
        else decided(time, agent, task, members);
      }
      for (const g of useGroups) used(g);
      // Forget the tokens issued long before the last event folded (their uses are over, or read from the store).
      const now = Date.parse(lastTime);
      for (const [jti, token] of tokens) {
        if (now - token.time_ms <= ISSUED_MEMORY_MS) break;
        tokens.delete(jti);
      }
    },
    take(): FoldedCells {
      const out = { daily: [...daily.values()], tokens: [...tokenCells.values()] };
      daily = new Map();
      tokenCells = new Map();
      unknownTokens = new Set();
      return out;
    },
  };
}
