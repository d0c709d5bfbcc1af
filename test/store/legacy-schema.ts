/**
 * Puts back, in an SQLite store file, the decisions table as schema versions 1 to 10 had it: a row for every decision
 * with its request and result beside the decision event (migration 11 made the event the record). The rows are
 * rebuilt from the events and the state rows there are; `columns` adds the columns later migrations brought.
 */
import type { Database } from 'better-sqlite3';

export function legacyDecisionsTable(db: Database, columns: { accessRequestId: boolean; mintClaim: boolean }): void {
  db.pragma('foreign_keys = OFF');
  db.exec(`CREATE TABLE decisions_legacy (
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
      ${columns.accessRequestId ? ', access_request_id TEXT' : ''}
      ${columns.mintClaim ? ', mint_claim TEXT, mint_claim_until TEXT' : ''}
    );
    INSERT INTO decisions_legacy (decision_id, caller_id, agent_id, task_id, integration, outcome, request, result, token_grant,
      policy_revision, trace_id, created_at, redeemable_until, redeemed_jti, redeemed_at)
      SELECT e.decision_id, e.caller_id, e.agent_id, e.task_id, coalesce(d.integration, e.data ->> '$.input.integration'),
        coalesce(d.outcome, e.data ->> '$.result.outcome'), '{}', json_extract(e.data, '$.result'),
        coalesce(d.token_grant, CASE WHEN e.data ->> '$.result.outcome' = 'allow' THEN json_object('granted_scopes',
          json_extract(e.data, '$.result.granted_scopes'), 'resource', json_extract(e.data, '$.result.resource'), 'token_ttl_seconds',
          e.data ->> '$.result.token_ttl_seconds', 'task_id', e.task_id) END),
        coalesce(d.policy_revision, e.data ->> '$.policy_revision'), e.trace_id, e.time,
        coalesce(d.redeemable_until, e.data ->> '$.result.redeemable_until'), d.redeemed_jti, d.redeemed_at
      FROM audit_events e LEFT JOIN decisions d ON d.decision_id = e.decision_id WHERE e.type = 'decision';
    DROP TABLE decisions;
    ALTER TABLE decisions_legacy RENAME TO decisions;`);
  if (columns.accessRequestId) db.exec('CREATE INDEX decisions_access_request ON decisions (access_request_id) WHERE access_request_id IS NOT NULL');
}
