/**
 * PostgreSQL (node-postgres, `pg`): the writer's connection and its transaction driver, a pool for reads, how a SQL
 * program's statement becomes a PostgreSQL query, and migrations safe to run from several replicas at once.
 *
 * - Statements are the portable texts of `sql.ts`: `?` parameters are renumbered `$1…` once per text, and each text
 *   is a named prepared statement (parsed once per connection by `pg`).
 * - BIGINT and NUMERIC come back as JavaScript numbers (seqs, counts, sums: all far below 2^53), as SQLite gives them;
 *   a value past 2^53 is a StoreFailure, never a rounded number.
 * - TEXT columns are created `COLLATE "C"`: ORDER BY and keyset comparisons (`id > ?`) order by code point, as
 *   SQLite does, whatever the database's locale.
 * - The writer is one connection. A failure of the connection (the server stopped, the network cut) discards it and
 *   the next batch connects again: the store recovers without a restart, and meanwhile every write is
 *   store_unavailable (503). Reads use a pool that does the same for its connections.
 * - Every write transaction takes a transaction-scoped advisory lock before it reads the chain head
 *   (`CHAIN_LOCK`): the write transactions of every replica on the database take turns, so the trail stays one chain
 *   and every check-then-write (redeem once, task still active) sees what the others committed before it.
 * - One replica leads the jobs one process does for all (`LeaderLease`): a session-level advisory lock held by a
 *   connection of its own.
 */
import pg from 'pg';
import { PdpError } from '../errors/pdp-error.js';
import type { TransactionDriver } from './group-commit.js';
import type { Leadership } from './store.js';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';
import type { Migration } from './migrations.js';
import { StoreFailure, refuseNul } from './sql-program.js';
import type { SqlStep } from './sql-program.js';

export interface PostgresOpenOptions {
  /**
   * The schema the store's tables live in (created if missing). Default: the connection's own search path (usually
   * `public`). Replicas of one deployment name the same schema; two deployments on one database name two.
   */
  schema?: string;
  /** Most connections of the read pool. Default 8. */
  poolSize?: number;
  /** How long connecting may take before the operation fails with store_unavailable. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** How long one statement may take before it fails with store_unavailable. Default 30,000 ms. */
  statementTimeoutMs?: number;
  /** Refuse (store_unavailable) a schema without the store's tables rather than create them (the CLI). Default false. */
  mustExist?: boolean;
}

/** The advisory lock keys (classid, objid): 'AGPD' and a hash of the schema, so two schemas never wait for each other. */
const LOCK_CLASS = 0x41475044;
/** Taken at the start of every write transaction, before the chain head is read (chain-writer.ts). */
export const CHAIN_LOCK = `SELECT pg_advisory_xact_lock(${LOCK_CLASS}, hashtext(current_schema()))`;
/** Held (session-level) while migrations run. */
const MIGRATION_LOCK = `SELECT pg_advisory_lock(${LOCK_CLASS + 1}, hashtext(current_schema()))`;
const MIGRATION_UNLOCK = `SELECT pg_advisory_unlock(${LOCK_CLASS + 1}, hashtext(current_schema()))`;
/** Held (session-level) by the leading replica's lease connection (`LeaderLease`). */
const LEADER_LOCK = `SELECT pg_try_advisory_lock(${LOCK_CLASS + 2}, hashtext(current_schema())) AS held`;

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
/** Most time a write transaction may sit between statements (its replica's event loop busy or stopped). */
const IDLE_IN_TRANSACTION_MS = 5_000;
/** Most time a write may wait for the chain lock (normally held for a few milliseconds per batch). */
const LOCK_TIMEOUT_MS = 10_000;

/** The connection settings of one store: its URL plus what the options add. */
export function connectionConfig(url: string, options: PostgresOpenOptions): pg.ClientConfig {
  if (options.schema !== undefined && !SCHEMA_NAME.test(options.schema)) {
    throw new PdpError('config_invalid', `store schema ${JSON.stringify(options.schema)} must match ${SCHEMA_NAME.source}`);
  }
  return {
    connectionString: url,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    statement_timeout: options.statementTimeoutMs ?? 30_000,
    query_timeout: (options.statementTimeoutMs ?? 30_000) + 5000,
    application_name: 'agent-pdp',
    types: { getTypeParser },
    // A dead peer (a cut network) is noticed by TCP, not only by the statement timeout.
    keepAlive: true,
    // The chain lock is held from BEGIN to COMMIT: a replica that stops in between (SIGSTOP, a long event-loop stall,
    // a partition) must not hold every other replica's writes for longer than this. Its own transaction then fails
    // (store_unavailable), as does a write that waited longer than lock_timeout for the lock.
    // synchronous_commit = on whatever the server's default: a COMMIT acknowledged to a PEP (or a head signed and
    // published outside the database) must survive a crash of the database server.
    options: [
      '-c synchronous_commit=on',
      `-c idle_in_transaction_session_timeout=${IDLE_IN_TRANSACTION_MS}`,
      `-c lock_timeout=${LOCK_TIMEOUT_MS}`,
      ...(options.schema === undefined ? [] : [`-c search_path=${options.schema}`]),
    ].join(' '),
  };
}

const INT8 = 20;
const NUMERIC = 1700;

function getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
  if (oid === INT8 || oid === NUMERIC) return toSafeNumber;
  return pg.types.getTypeParser(oid, format ?? 'text') as (value: string) => unknown;
}

function toSafeNumber(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new Error(`a number the store reads is not a safe integer: ${text.slice(0, 40)}`);
  return value;
}

const CONTROL = /^(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b/;

/** `?` → `$1…`, once per text. The store's SQL holds no `?` inside a string literal. */
const texts = new Map<string, { name: string; text: string }>();

function query(step: SqlStep): pg.QueryConfig {
  let prepared = texts.get(step.sql);
  if (prepared === undefined) {
    let n = 0;
    prepared = { name: `agentpdp_${texts.size + 1}`, text: step.sql.replace(/\?/g, () => `$${++n}`) };
    texts.set(step.sql, prepared);
  }
  // Transaction control runs unnamed; every other text is parsed once per connection.
  if (CONTROL.test(step.sql)) return { text: prepared.text };
  return { name: prepared.name, text: prepared.text, values: step.params as unknown[] };
}

/** Runs one step on `client`; every failure is a StoreFailure. */
export async function execute(client: pg.ClientBase, step: SqlStep): Promise<unknown> {
  refuseNul(step);
  let result: pg.QueryResult;
  try {
    result = await client.query(query(step));
  } catch (error) {
    throw new StoreFailure(error);
  }
  if (step.kind === 'get') return result.rows[0];
  if (step.kind === 'all') return result.rows;
  return result.rowCount ?? 0;
}

/**
 * True for an error the server sent about a statement: the connection itself is still good. Except "cached plan must
 * not change result type" (0A000, after a migration changed a table a prepared `SELECT *` reads): the connection's
 * prepared statements are stale, so it is dropped and the next one prepares them afresh.
 */
function isStatementError(error: unknown): boolean {
  return error instanceof pg.DatabaseError && error.code !== '0A000';
}

/** A StoreFailure that is not about a statement: the connection it came from must not be used again. */
export function isConnectionFailure(error: unknown): boolean {
  return error instanceof StoreFailure && !isStatementError(error.cause);
}

/** `INSERT INTO t (…) VALUES (…)` with nothing after the row: it writes exactly one row or fails. */
const PLAIN_INSERT = /^\s*INSERT INTO\s+\w+\s*\([^)]*\)\s*VALUES\s*\([^()]*\)\s*$/i;
/** Most parameters of one statement (PostgreSQL's limit is 65,535). */
const MAX_PARAMS = 30_000;

/**
 * The writer's connection, opened on first use and again after it failed, and the batch's deferred INSERTs.
 *
 * Round trips, not CPU, bound a PostgreSQL writer: each statement waits for its answer before the next is sent. So a
 * plain INSERT (one row, no ON CONFLICT, no RETURNING) is not sent when the program yields it: its answer can only be
 * "1 row" or an error, and an error fails the whole transaction anyway (group-commit.ts), so the program is told 1
 * at once and the row waits. Waiting rows are sent before any other statement (a read must see them, an UPDATE may
 * touch them) and before COMMIT, as one multi-row INSERT per statement text, in the order each text first came:
 * the decide path's INSERT (its event) costs one round trip per batch, not per decision. Foreign keys are checked at COMMIT
 * (`DEFERRABLE INITIALLY DEFERRED`, `postgresStatements`), so the grouping cannot trip over the order of rows.
 */
export class WriterConnection {
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private deferred = new Map<string, unknown[][]>();

  constructor(private readonly config: pg.ClientConfig) {}

  async execute(step: SqlStep): Promise<unknown> {
    refuseNul(step);
    if (step.kind === 'run' && PLAIN_INSERT.test(step.sql)) {
      const rows = this.deferred.get(step.sql);
      if (rows === undefined) this.deferred.set(step.sql, [[...step.params]]);
      else rows.push([...step.params]);
      return 1;
    }
    if (step.sql === 'ROLLBACK') {
      this.deferred.clear();
      // The connection failed (and was dropped): its transaction died with it. Connecting only to roll back would make
      // every failed batch wait for a second connection attempt while the database is unreachable.
      if (this.client === undefined) return 0;
    }
    const client = await this.connect();
    try {
      await this.flush(client);
      return await execute(client, step);
    } catch (error) {
      this.deferred.clear();
      if (!(error instanceof StoreFailure) || !isStatementError(error.cause)) this.discard(client);
      throw error;
    }
  }

  /** Sends the deferred rows: one multi-row INSERT per text (chunked below the parameter limit). */
  private async flush(client: pg.ClientBase): Promise<void> {
    if (this.deferred.size === 0) return;
    const batches = this.deferred;
    this.deferred = new Map();
    for (const [sql, rows] of batches) {
      const at = sql.search(/VALUES\s*\(/i);
      const head = sql.slice(0, at);
      const tuple = sql.slice(sql.indexOf('(', at)).trim();
      const perRow = (tuple.match(/\?/g) ?? []).length;
      const chunk = Math.max(1, Math.floor(MAX_PARAMS / Math.max(1, perRow)));
      for (let from = 0; from < rows.length; from += chunk) {
        const part = rows.slice(from, from + chunk);
        let n = 0;
        const values = part.map(() => tuple.replace(/\?/g, () => `$${++n}`)).join(', ');
        try {
          await client.query({ text: `${head}VALUES ${values}`, values: part.flat() });
        } catch (error) {
          throw new StoreFailure(error);
        }
      }
    }
  }

  async close(): Promise<void> {
    const client = this.client ?? (await this.connecting?.catch(() => undefined));
    this.client = undefined;
    this.connecting = undefined;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<pg.Client> {
    if (this.client !== undefined) return this.client;
    this.connecting ??= (async () => {
      const client = new pg.Client(this.config);
      // An idle connection that fails (the server stopped) reports it here; the next use connects again.
      client.on('error', () => this.discard(client));
      try {
        await client.connect();
      } catch (error) {
        await client.end().catch(() => undefined);
        throw new StoreFailure(error);
      }
      this.client = client;
      return client;
    })().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private discard(client: pg.Client): void {
    if (this.client === client) this.client = undefined;
    void client.end().catch(() => undefined);
  }
}

/**
 * No savepoints: each would be a round trip and a subtransaction (group-commit.ts replays instead). BEGIN and the
 * chain lock go in one round trip (a simple query of two statements); the head is read by the next statement, whose
 * snapshot is taken after the lock was granted (READ COMMITTED: one snapshot per statement).
 */
export function postgresTransactionDriver(writer: WriterConnection): TransactionDriver {
  return {
    executeAsync: (step) => writer.execute(step),
    begin: `BEGIN; ${CHAIN_LOCK}`,
    commit: 'COMMIT',
    rollback: 'ROLLBACK',
  };
}

/** The read pool. Its connections report failures here and are replaced by the pool. */
export function readPool(config: pg.ClientConfig, options: PostgresOpenOptions): pg.Pool {
  const pool = new pg.Pool({ ...config, max: options.poolSize ?? 8, idleTimeoutMillis: 30_000 });
  pool.on('error', () => undefined);
  return pool;
}

/**
 * SQLite's DDL as PostgreSQL runs it: BIGINT for INTEGER, code-point order for TEXT, foreign keys checked at COMMIT
 * (the writer sends INSERTs grouped by table: `WriterConnection`). One list of migrations for both engines.
 */
export function postgresStatements(migration: Migration): string[] {
  return (migration.postgres ?? migration.statements).map((s) =>
    s
      .replace(/\bINTEGER\b/g, 'BIGINT')
      .replace(/\bTEXT\b/g, 'TEXT COLLATE "C"')
      .replace(/\bREFERENCES\s+(\w+)\s*\(([^)]*)\)/g, 'REFERENCES $1 ($2) DEFERRABLE INITIALLY DEFERRED'),
  );
}

/**
 * Why the store could not be opened, in words an operator can act on and that hold no secret: the server's own
 * message for an error it sent (authentication failed, no such database: these name the user and the database,
 * never the password), the system error's code and address for a connection that failed, else the error's kind.
 * Anything holding the URL's password is replaced.
 */
export function openFailure(error: unknown, url: string | undefined): string {
  const e = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; message?: unknown; severity?: unknown; address?: unknown; port?: unknown; hostname?: unknown; name?: unknown };
  let reason: string;
  if (typeof e.severity === 'string' && typeof e.code === 'string' && typeof e.message === 'string') reason = `${e.message} (SQLSTATE ${e.code})`;
  // Node's own codes (ECONNREFUSED, EAI_AGAIN, ERR_TLS_CERT_ALTNAME_INVALID…) with where they happened.
  else if (typeof e.code === 'string' && /^E[A-Z_]+$/.test(e.code)) {
    const where = typeof e.address === 'string' ? ` ${e.address}${typeof e.port === 'number' ? `:${e.port}` : ''}` : typeof e.hostname === 'string' ? ` ${e.hostname}` : '';
    reason = `${e.code}${where}`;
  } else if (typeof e.code === 'string' && /^(CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED)/.test(e.code)) reason = `TLS: ${e.code}`;
  else if (typeof e.message === 'string' && /timeout/i.test(e.message)) reason = 'the connection timed out';
  else reason = `the connection failed (${typeof e.name === 'string' ? e.name : 'error'})`;
  let password = '';
  try {
    password = url === undefined ? '' : decodeURIComponent(new URL(url).password);
  } catch {
    password = '';
  }
  return password.length > 0 && reason.includes(password) ? 'the connection failed (the reason would quote a secret)' : reason.replace(/[^\x20-\x7e]/g, '?');
}

/**
 * Creates the schema if asked, then applies the pending migrations in one transaction under a session advisory
 * lock: replicas starting at once take turns, and the later ones find nothing left to do.
 */
export async function migratePostgres(config: pg.ClientConfig, options: PostgresOpenOptions, now: string): Promise<number[]> {
  const schema = options.schema;
  const client = new pg.Client(config);
  client.on('error', () => undefined);
  try {
    await client.connect();
    // A migration may take longer than one statement's limit; replicas starting meanwhile wait on the lock.
    await client.query('SET statement_timeout = 0');
    if (options.mustExist === true) {
      const found = await client.query("SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'schema_migrations'");
      if (found.rowCount !== 1) throw new PdpError('store_unavailable', `there is no store in schema ${schema ?? '(the search path)'}`);
    }
    if (schema !== undefined) await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`).catch(async (error: unknown) => {
      // Two replicas creating it at once: one of them loses the race on the catalog; the schema is there.
      if ((await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rowCount !== 1) throw error;
    });
    await client.query(MIGRATION_LOCK);
    try {
      await client.query(
        `CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at TEXT COLLATE "C" NOT NULL)`,
      );
      const current = Number((await client.query('SELECT MAX(version) AS version FROM schema_migrations')).rows[0]?.version ?? 0);
      if (current > SCHEMA_VERSION) {
        throw new PdpError('store_unavailable', `database schema version ${current} is newer than this build understands (${SCHEMA_VERSION})`);
      }
      const pending = MIGRATIONS.filter((m) => m.version > current);
      if (pending.length === 0) return [];
      await client.query('BEGIN');
      try {
        for (const migration of pending) {
          for (const statement of postgresStatements(migration)) await client.query(statement);
          await client.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [migration.version, now]);
        }
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
      return pending.map((m) => m.version);
    } finally {
      await client.query(MIGRATION_UNLOCK).catch(() => undefined);
    }
  } catch (error) {
    if (error instanceof PdpError) throw error;
    throw new PdpError('store_unavailable', `cannot open the PostgreSQL store: ${openFailure(error, config.connectionString)}`, { cause: error });
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * The leadership lease on PostgreSQL (store.ts `Leadership`): a connection of its own holding a session-level
 * advisory lock (`LEADER_LOCK`, one per schema). A session lock is released only when its session ends, so while
 * that connection answers, the lease is held: the holder checks it with a round trip every `retryMs`, the others
 * try to take it as often. A failed connection (an error event, a failed check) drops the lease at once and the
 * next check connects again; the server ends the session of a connection that died, which frees the lock for
 * another replica. So two processes may both act as leader for at most one check interval (a holder whose session
 * the server ended before it noticed): the jobs it guards must stay safe then (appendSignedHead refuses a head
 * that is not after the file's last one).
 */
export class LeaderLease implements Leadership {
  private client: pg.Client | undefined;
  private held = false;
  private attempt: Promise<boolean> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly retryMs: number,
  ) {}

  get leading(): boolean {
    return this.held;
  }

  /** Tries now, then every `retryMs` (unref'd: the timer never keeps a process alive). */
  start(): void {
    if (this.timer !== undefined || this.closed) return;
    this.timer = setInterval(() => void this.check(), this.retryMs);
    this.timer.unref();
    void this.check();
  }

  check(): Promise<boolean> {
    this.attempt ??= this.tryLead().finally(() => {
      this.attempt = undefined;
    });
    return this.attempt;
  }

  private async tryLead(): Promise<boolean> {
    if (this.closed) return false;
    let client = this.client;
    try {
      if (client === undefined) {
        const fresh = new pg.Client({ ...this.config, keepAlive: true });
        client = fresh;
        fresh.on('error', () => this.lose(fresh));
        await fresh.connect();
        if (this.closed) {
          await fresh.end().catch(() => undefined);
          return false;
        }
        this.client = fresh;
      }
      if (this.held) {
        await client.query('SELECT 1');
      } else {
        const { rows } = await client.query<{ held: boolean }>(LEADER_LOCK);
        this.held = rows[0]?.held === true && this.client === client && !this.closed;
      }
    } catch {
      if (client !== undefined) this.lose(client);
    }
    return this.held;
  }

  /** The connection failed: the lease is gone with it (its session, if the server still has it, ends soon). */
  private lose(client: pg.Client): void {
    if (this.client === client) {
      this.client = undefined;
      this.held = false;
    }
    void client.end().catch(() => undefined);
  }

  /** Stops trying and lets the lease go (the session ends, and the lock with it). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.attempt;
    const client = this.client;
    this.client = undefined;
    this.held = false;
    await client?.end().catch(() => undefined);
  }
}
