/**
 * The schema, as numbered migrations applied in order inside one transaction at open.
 *
 * Portable SQL on purpose (a PostgreSQL store follows): TEXT and INTEGER only, ISO 8601 UTC strings for times
 * (they sort as text), JSON as TEXT, application-assigned keys (no AUTOINCREMENT / SERIAL), partial indexes with
 * `WHERE x IS NOT NULL` (both engines have them). PostgreSQL would use BIGINT for seq and may use JSONB/TIMESTAMPTZ.
 */
import type { Database } from 'better-sqlite3';
import { PdpError } from '../errors/pdp-error.js';

export interface Migration {
  version: number;
  description: string;
  statements: readonly string[];
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'tasks, decisions, tokens, audit events, audit checkpoints',
    statements: [
      `CREATE TABLE tasks (
        id TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL,
        type TEXT NOT NULL,
        context TEXT NOT NULL,
        registered_by TEXT NOT NULL,
        registered_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('active', 'completed', 'expired')),
        completed_at TEXT,
        completed_by TEXT
      )`,
      `CREATE INDEX tasks_active_expiry ON tasks (expires_at) WHERE status = 'active'`,
      `CREATE TABLE decisions (
        decision_id TEXT PRIMARY KEY,
        caller_id TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        task_id TEXT,
        integration TEXT NOT NULL,
        outcome TEXT NOT NULL,
        request TEXT NOT NULL,
        result TEXT NOT NULL,
        token_grant TEXT,
        policy_revision TEXT NOT NULL,
        trace_id TEXT,
        created_at TEXT NOT NULL,
        redeemable_until TEXT,
        redeemed_jti TEXT,
        redeemed_at TEXT
      )`,
      `CREATE TABLE tokens (
        jti TEXT PRIMARY KEY,
        decision_id TEXT NOT NULL UNIQUE REFERENCES decisions (decision_id),
        caller_id TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        task_id TEXT,
        scopes TEXT NOT NULL,
        audience TEXT,
        issued_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        revoked_at TEXT,
        revoked_by TEXT,
        revoke_reason TEXT
      )`,
      `CREATE INDEX tokens_task ON tokens (task_id) WHERE task_id IS NOT NULL`,
      `CREATE TABLE audit_events (
        seq INTEGER PRIMARY KEY,
        v INTEGER NOT NULL,
        time TEXT NOT NULL,
        type TEXT NOT NULL,
        decision_id TEXT,
        jti TEXT,
        task_id TEXT,
        agent_id TEXT,
        caller_id TEXT,
        trace_id TEXT,
        outcome TEXT,
        data TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
      )`,
      `CREATE INDEX audit_events_decision ON audit_events (decision_id) WHERE decision_id IS NOT NULL`,
      `CREATE INDEX audit_events_jti ON audit_events (jti) WHERE jti IS NOT NULL`,
      `CREATE INDEX audit_events_task ON audit_events (task_id) WHERE task_id IS NOT NULL`,
      `CREATE INDEX audit_events_time ON audit_events (time)`,
      `CREATE TABLE audit_checkpoints (
        last_pruned_seq INTEGER PRIMARY KEY,
        last_pruned_hash TEXT NOT NULL,
        pruned_at TEXT NOT NULL,
        pruned_count INTEGER NOT NULL
      )`,
    ],
  },
  {
    version: 2,
    description: 'audit_events loses its outcome column: no column a query reads may lie outside the hashed event',
    statements: [
      // The outcome was stored beside the hashed event, so editing it changed what an outcome filter returned
      // while every hash still matched. A decision's outcome is read from its hashed data (`result.outcome`).
      'ALTER TABLE audit_events DROP COLUMN outcome',
    ],
  },
];

/** The schema version this build writes. A database with a newer version is refused rather than misread. */
export const SCHEMA_VERSION = MIGRATIONS.reduce((max, m) => Math.max(max, m.version), 0);

/** Applies the pending migrations in one transaction; returns the versions applied. */
export function migrate(db: Database, now: string): number[] {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
  const row = db.prepare('SELECT MAX(version) AS version FROM schema_migrations').get() as { version: number | null };
  const current = row.version ?? 0;
  if (current > SCHEMA_VERSION) {
    throw new PdpError(
      'store_unavailable',
      `database schema version ${current} is newer than this build understands (${SCHEMA_VERSION})`,
    );
  }
  const pending = MIGRATIONS.filter((m) => m.version > current);
  const record = db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)');
  db.transaction(() => {
    for (const migration of pending) {
      for (const statement of migration.statements) db.exec(statement);
      record.run(migration.version, now);
    }
  }).immediate();
  return pending.map((m) => m.version);
}
