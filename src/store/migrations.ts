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
  /** PostgreSQL's statements, where they must differ from `statements` (translated by postgresStatements). */
  postgres?: readonly string[];
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
  {
    version: 3,
    description: 'break-glass escalation: access requests, their approver groups, the notification outbox; decisions.access_request_id',
    statements: [
      `CREATE TABLE access_requests (
        id TEXT PRIMARY KEY,
        decision_id TEXT NOT NULL UNIQUE,
        caller_id TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        integration TEXT NOT NULL,
        resource_type TEXT,
        resource_id TEXT,
        scopes TEXT NOT NULL,
        approver_groups TEXT NOT NULL,
        reason TEXT,
        duration_seconds INTEGER NOT NULL,
        max_duration_seconds INTEGER NOT NULL,
        policy_revision TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        decided_at TEXT,
        decided_by TEXT,
        note TEXT,
        approved_until TEXT,
        ended_at TEXT,
        ended_reason TEXT CHECK (ended_reason IN ('window', 'task_completed', 'task_expired')),
        idempotency_key TEXT,
        request_hash TEXT,
        trace_id TEXT
      )`,
      `CREATE UNIQUE INDEX access_requests_idempotency ON access_requests (caller_id, idempotency_key)
        WHERE idempotency_key IS NOT NULL`,
      // The elevation lookup of every decide: running elevations by key.
      `CREATE INDEX access_requests_elevation ON access_requests (agent_id, task_id, integration)
        WHERE status = 'approved' AND ended_at IS NULL`,
      // The sweeper: pending past expires_at; running past approved_until.
      'CREATE INDEX access_requests_expiry ON access_requests (status, expires_at)',
      `CREATE INDEX access_requests_window ON access_requests (approved_until)
        WHERE status = 'approved' AND ended_at IS NULL`,
      // Listings: by status (the approvers' inbox) or all, in (created_at, id) order.
      'CREATE INDEX access_requests_listing ON access_requests (status, created_at, id)',
      'CREATE INDEX access_requests_created ON access_requests (created_at, id)',
      // The approver groups of each request, one row each: "any of these groups" is an indexed lookup, exact
      // (no pattern over the JSON column, whose LIKE is case-insensitive in SQLite).
      `CREATE TABLE access_request_groups (
        approver_group TEXT NOT NULL,
        access_request_id TEXT NOT NULL REFERENCES access_requests (id),
        PRIMARY KEY (approver_group, access_request_id)
      )`,
      `CREATE TABLE outbox (
        id TEXT PRIMARY KEY,
        access_request_id TEXT NOT NULL REFERENCES access_requests (id),
        destination TEXT NOT NULL,
        approver_group TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
        attempts INTEGER NOT NULL,
        next_attempt_at TEXT NOT NULL,
        last_error TEXT,
        last_status INTEGER,
        created_at TEXT NOT NULL,
        delivered_at TEXT
      )`,
      'CREATE INDEX outbox_due ON outbox (status, next_attempt_at)',
      'CREATE INDEX outbox_request ON outbox (access_request_id, created_at)',
      'ALTER TABLE decisions ADD COLUMN access_request_id TEXT',
      `CREATE INDEX decisions_access_request ON decisions (access_request_id) WHERE access_request_id IS NOT NULL`,
    ],
  },
  {
    version: 4,
    description: 'tasks.elevations: the windows approvers granted the task (read with the task on the decide path); no index on decisions.access_request_id',
    statements: [
      'ALTER TABLE tasks ADD COLUMN elevations TEXT',
      // Every decide paid for it; the denial's chain view finds its elevated decisions through the task instead.
      'DROP INDEX IF EXISTS decisions_access_request',
    ],
  },
  {
    version: 5,
    description: 'the revocation feed (the enforcement proxy): partial indexes of revoked tokens and of token.revoked events',
    statements: [
      // The feed's snapshot: revoked tokens not yet expired, without reading every token ever issued (tokens are not
      // pruned). Only revoked rows are indexed: issuing a token writes no entry; a revocation writes one.
      'CREATE INDEX tokens_revoked ON tokens (expires_at, jti) WHERE revoked_at IS NOT NULL',
      // The feed's increments: the token.revoked events after a seq, without reading every event after it (a poller
      // that fell behind would otherwise scan the chain on the event loop). Only token.revoked rows are indexed. Covering.
      `CREATE INDEX audit_events_token_revoked ON audit_events (seq, jti) WHERE type = 'token.revoked'`,
    ],
  },
  {
    version: 6,
    description: 'policy suggestions (issue 18): daily usage aggregates rolled up from the trail, their cursor, suggestions',
    statements: [
      // What tokens carried, what calls used, what decisions asked and refused, per day (rollupUsage adds to them;
      // usageSummary sums a window of them). The primary key is the summary's GROUP BY followed by the day: a window
      // is summed in key order, without a sort (all agents in one pass; one agent through its key prefix, an indexed
      // range), and the rollup's upsert is one lookup of the same key. No other index: every read is one of those
      // two. (The day first would make the upserts appends; measured at 10 million events the rollup took the same
      // time either way, 32-38 s, while the summary needed a sort: 0.9 -> 1.0 s, one agent's 20 -> 75 ms.)
      // '' (never NULL) for no task type or record type, so the key compares them as values.
      `CREATE TABLE usage_daily (
        agent_id TEXT NOT NULL,
        integration TEXT NOT NULL,
        scope TEXT NOT NULL,
        task_type TEXT NOT NULL,
        record_type TEXT NOT NULL,
        source TEXT NOT NULL CHECK (source IN ('granted', 'proxy', 'resource_server', 'requested', 'denied')),
        day TEXT NOT NULL,
        n INTEGER NOT NULL,
        first_at TEXT NOT NULL,
        last_at TEXT NOT NULL,
        PRIMARY KEY (agent_id, integration, scope, task_type, record_type, source, day)
      )`,
      // Per agent, integration and day: tokens issued (first and last), and the longest observed use of a token
      // (its last use - issued_at, in whole seconds) with the tokens it is based on. Same reasoning for the key.
      `CREATE TABLE token_use_span (
        agent_id TEXT NOT NULL,
        integration TEXT NOT NULL,
        day TEXT NOT NULL,
        issued INTEGER NOT NULL,
        issued_first_at TEXT,
        issued_last_at TEXT,
        tokens INTEGER NOT NULL,
        max_seconds INTEGER NOT NULL,
        PRIMARY KEY (agent_id, integration, day)
      )`,
      // The rollup's position in the trail: the last seq folded in. One row (id 1), written with the aggregates.
      `CREATE TABLE usage_rollup_cursor (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq INTEGER NOT NULL
      )`,
      `CREATE TABLE suggestions (
        id TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL,
        integration TEXT NOT NULL,
        kind TEXT NOT NULL,
        target TEXT NOT NULL,
        proposal TEXT NOT NULL,
        evidence TEXT NOT NULL,
        evidence_hash TEXT NOT NULL,
        file TEXT,
        file_sha256 TEXT,
        status TEXT NOT NULL CHECK (status IN ('open', 'applied', 'dismissed')),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        decided_by TEXT,
        decided_at TEXT
      )`,
      // listSuggestions: by status (the open ones, what a report shows), optionally of one agent, in
      // (agent_id, integration, kind, target) order: an index range, no sort.
      'CREATE INDEX suggestions_status ON suggestions (status, agent_id, integration, kind, target)',
      // listSuggestions of one agent whatever the status, same order.
      'CREATE INDEX suggestions_agent ON suggestions (agent_id, integration, kind, target)',
    ],
  },
  {
    version: 7,
    description: "policy suggestions: status 'withdrawn' (a later run on the same terms no longer supports an open one); notifications (the scheduled run's new suggestions) delivered by the outbox beside access requests",
    statements: [
      // SQLite cannot change a CHECK constraint or drop a NOT NULL in place: both tables are rebuilt, rows copied.
      `CREATE TABLE suggestions_v7 (
        id TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL,
        integration TEXT NOT NULL,
        kind TEXT NOT NULL,
        target TEXT NOT NULL,
        proposal TEXT NOT NULL,
        evidence TEXT NOT NULL,
        evidence_hash TEXT NOT NULL,
        file TEXT,
        file_sha256 TEXT,
        status TEXT NOT NULL CHECK (status IN ('open', 'applied', 'dismissed', 'withdrawn')),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        decided_by TEXT,
        decided_at TEXT
      )`,
      `INSERT INTO suggestions_v7 (id, agent_id, integration, kind, target, proposal, evidence, evidence_hash, file, file_sha256,
        status, created_at, updated_at, decided_by, decided_at)
        SELECT id, agent_id, integration, kind, target, proposal, evidence, evidence_hash, file, file_sha256,
        status, created_at, updated_at, decided_by, decided_at FROM suggestions`,
      'DROP TABLE suggestions',
      'ALTER TABLE suggestions_v7 RENAME TO suggestions',
      'CREATE INDEX suggestions_status ON suggestions (status, agent_id, integration, kind, target)',
      'CREATE INDEX suggestions_agent ON suggestions (agent_id, integration, kind, target)',
      // What a notification is about, rendered when it is delivered (a retry shows the current state). `data`:
      // canonical JSON, for kind 'policy.suggestions' {"suggestion_ids": [...]}.
      `CREATE TABLE notifications (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('policy.suggestions')),
        data TEXT NOT NULL,
        created_at TEXT NOT NULL
      )`,
      // An outbox row delivers either an access request's notification or one of the notifications above.
      `CREATE TABLE outbox_v7 (
        id TEXT PRIMARY KEY,
        access_request_id TEXT REFERENCES access_requests (id),
        notification_id TEXT REFERENCES notifications (id),
        destination TEXT NOT NULL,
        approver_group TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
        attempts INTEGER NOT NULL,
        next_attempt_at TEXT NOT NULL,
        last_error TEXT,
        last_status INTEGER,
        created_at TEXT NOT NULL,
        delivered_at TEXT,
        CHECK ((access_request_id IS NULL) <> (notification_id IS NULL))
      )`,
      `INSERT INTO outbox_v7 (id, access_request_id, destination, approver_group, status, attempts, next_attempt_at, last_error,
        last_status, created_at, delivered_at)
        SELECT id, access_request_id, destination, approver_group, status, attempts, next_attempt_at, last_error,
        last_status, created_at, delivered_at FROM outbox`,
      'DROP TABLE outbox',
      'ALTER TABLE outbox_v7 RENAME TO outbox',
      'CREATE INDEX outbox_due ON outbox (status, next_attempt_at)',
      'CREATE INDEX outbox_request ON outbox (access_request_id, created_at)',
    ],
  },
  {
    version: 8,
    description: 'web console sessions (src/console/): only the SHA-256 of a session id is stored',
    statements: [
      // A row per sign-in; the cookie holds the id, the table its hash (a read of the database yields no session).
      // key_sha256: the caller's key at sign-in; a session whose caller no longer holds that key is dead.
      `CREATE TABLE console_sessions (
        id_sha256 TEXT PRIMARY KEY,
        caller_id TEXT NOT NULL,
        key_sha256 TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_seen_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        ended_at TEXT
      )`,
      'CREATE INDEX console_sessions_expiry ON console_sessions (expires_at)',
      // A caller's live sessions, newest first: the cap per caller (console-session-ops.ts).
      'CREATE INDEX console_sessions_caller ON console_sessions (caller_id, created_at)',
    ],
  },
  {
    version: 9,
    description: "the audit console's decision search by agent (issue 22): decision events of an agent in seq order",
    statements: [
      // GET /v1/audit/decisions?agent_id=: the agent's decision events newest first, an index range below the cursor.
      // Without it a search for an agent reads every decision event above its matches: measured on 1 million events
      // (400,000 decisions, 200 agents, SQLite, a loaded 2-core machine), a page for an agent with no decision took
      // 1.6-1.9 s without it and 0.3 ms with it; an agent with one event in a thousand, 1.6 s and 30-60 ms (PostgreSQL,
      // the same rows: 540 ms and 2 ms; 2.6 s and 18 ms). Only
      // decision rows are indexed (8 MB there): token and use events write no entry. agent_id is a column of the
      // hashed event.
      `CREATE INDEX audit_events_decision_agent ON audit_events (agent_id, seq) WHERE type = 'decision'`,
    ],
  },
  {
    version: 10,
    description: 'provider credentials (issue 23): a redemption that mints one claims its decision first (decisions.mint_claim)',
    statements: [
      // A provider mint is a network call that cannot be undone: the redemption that makes it claims the decision
      // (a random id and until when) in a committed write before it calls the provider, so a concurrent or retried
      // redeem of the same decision is refused (redemption_in_progress) rather than minting a second credential that
      // no token records. Cleared when the token is issued or the mint ends without one; a claim past its time (a
      // process that died mid-mint) may be taken over. Two nullable columns: no index, nothing written on decide.
      'ALTER TABLE decisions ADD COLUMN mint_claim TEXT',
      'ALTER TABLE decisions ADD COLUMN mint_claim_until TEXT',
    ],
  },
  {
    version: 11,
    description: "each decision stored once (issue 19): its decision event is the record; decisions keeps a decision's state only",
    // Before, a decision was written twice, as a decisions row and as its decision event, both with the input and the
    // result. Now the event is the record (the decision's ids and time in its columns, input, result and revision in
    // its data), and a decisions row exists only for state the event cannot hold (decision-terms.ts): the redemption
    // (redeemed_jti, a provider mint's claim), and the terms of a decision the event does not give back exactly (a
    // requestable denial's approvers, a grant whose values audit.mask changed). A decide writes no row in the common
    // case; a redemption writes its decision's row. Where a row exists, its terms are the decision's.
    // Rows kept from before: those redeemed or claimed, requestable denials, and allows whose window may still be open
    // (the last decision's time stands for now). The others are deleted first, so dropping the columns (SQLite
    // rewrites the table for each) touches few rows.
    statements: [
      `DELETE FROM decisions WHERE NOT (redeemed_jti IS NOT NULL OR mint_claim IS NOT NULL OR (outcome = 'deny' AND token_grant IS NOT NULL)
        OR (outcome = 'allow' AND redeemable_until >= (SELECT MAX(created_at) FROM decisions)))
        AND NOT EXISTS (SELECT 1 FROM tokens t WHERE t.decision_id = decisions.decision_id)`,
      'ALTER TABLE decisions DROP COLUMN caller_id',
      'ALTER TABLE decisions DROP COLUMN agent_id',
      'ALTER TABLE decisions DROP COLUMN task_id',
      'ALTER TABLE decisions DROP COLUMN request',
      'ALTER TABLE decisions DROP COLUMN result',
      'ALTER TABLE decisions DROP COLUMN trace_id',
      'ALTER TABLE decisions DROP COLUMN created_at',
    ],
    // PostgreSQL: the same, its foreign keys checked at once: a DELETE on decisions otherwise queues the deferred
    // checks of tokens, after which the table cannot be altered in the transaction (55006). Dropping a column there
    // rewrites nothing, so one statement drops them all.
    postgres: [
      'SET CONSTRAINTS ALL IMMEDIATE',
      `DELETE FROM decisions WHERE NOT (redeemed_jti IS NOT NULL OR mint_claim IS NOT NULL OR (outcome = 'deny' AND token_grant IS NOT NULL)
        OR (outcome = 'allow' AND redeemable_until >= (SELECT MAX(created_at) FROM decisions)))
        AND NOT EXISTS (SELECT 1 FROM tokens t WHERE t.decision_id = decisions.decision_id)`,
      `ALTER TABLE decisions DROP COLUMN caller_id, DROP COLUMN agent_id, DROP COLUMN task_id, DROP COLUMN request,
        DROP COLUMN result, DROP COLUMN trace_id, DROP COLUMN created_at`,
    ],
  },
  {
    version: 12,
    description: "audit hashes as their 32 bytes on PostgreSQL too (issue 19): bytea, half the hex text's size; what a prune must keep, indexed",
    // SQLite's hash columns need nothing: a column's type there is only an affinity, and the chain writer stores new
    // hashes as BLOBs (rows written before stay hex text; `hashText` reads either). PostgreSQL's columns change type,
    // which rewrites audit_events and its indexes once, under the migration's lock (stop the replicas first, and have
    // the table's size free again on disk: docs/postgres.md); a CHECK then refuses a hash that is not 32 bytes (an
    // older release's hex text would otherwise be stored as 64 bytes of ASCII and break verification for good).
    // Both: the indexes a prune's question "which decisions does something live still read" needs
    // (SQL.selectFirstLiveDecisionSeq), so it never scans every token and decisions row ever written: unrevoked
    // tokens by expiry here (revoked ones have tokens_revoked, migration 5), open decisions rows by their window.
    statements: [
      'CREATE INDEX IF NOT EXISTS tokens_live_expiry ON tokens (expires_at) WHERE revoked_at IS NULL',
      'CREATE INDEX IF NOT EXISTS decisions_open ON decisions (redeemable_until) WHERE redeemed_jti IS NULL',
    ],
    postgres: [
      `ALTER TABLE audit_events ALTER COLUMN prev_hash TYPE bytea USING decode(prev_hash, 'hex'),
        ALTER COLUMN hash TYPE bytea USING decode(hash, 'hex'),
        ADD CONSTRAINT audit_events_hash_bytes CHECK (octet_length(prev_hash) = 32 AND octet_length(hash) = 32)`,
      'CREATE INDEX IF NOT EXISTS tokens_live_expiry ON tokens (expires_at) WHERE revoked_at IS NULL',
      'CREATE INDEX IF NOT EXISTS decisions_open ON decisions (redeemable_until) WHERE redeemed_jti IS NULL',
    ],
  },
  {
    version: 13,
    description: "decision events' stored form leaves out more of what the decision states (issue 16): a requestable denial's offer, an elevation",
    // No table changes. Decision events written from now on may leave out members of a requestable denial's
    // access_request and of an elevated decision's input.elevation (decision-codec.ts, bits T X S V W Q), which a
    // release before this one cannot expand: it would read those events as altered. The version refuses it the
    // database (migrate, below) instead.
    statements: [],
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
