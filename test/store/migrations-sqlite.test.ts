/**
 * Migrations on an SQLite file an earlier release left: the tables it lacks are added and the rows it holds read as
 * this build expects.
 */
import Database from 'better-sqlite3';
import { legacyDecisionsTable } from './legacy-schema.js';
import { describe, expect, it } from 'vitest';
import { ask } from './access-request-fixtures.js';
import { decision, task, tempStore } from './store-fixtures.js';

describe('migrations 3 to 5 on a database written by schema version 2', () => {
  it('adds the escalation tables, a null access_request_id to the decisions and no elevations to the tasks already there', async () => {
    const temp = await tempStore({}, 'sqlite');
    try {
      await temp.store.recordDecision(decision('d-old', { outcome: 'deny', task_id: null }));
      await temp.store.registerTask(task('t-old'));
      await temp.store.close();
      // Back to schema version 2, as the previous release left it.
      const db = new Database(temp.path);
      legacyDecisionsTable(db, { accessRequestId: false, mintClaim: false });
      db.exec(`DROP TABLE usage_daily; DROP TABLE token_use_span; DROP TABLE usage_rollup_cursor; DROP TABLE suggestions;
        DROP INDEX tokens_revoked; DROP INDEX audit_events_token_revoked; DROP INDEX audit_events_decision_agent; DROP TABLE console_sessions;
        DROP TABLE outbox; DROP TABLE notifications; DROP TABLE access_request_groups; DROP TABLE access_requests;
        ALTER TABLE tasks DROP COLUMN elevations;
        DELETE FROM schema_migrations WHERE version >= 3`);
      db.close();
      const store = await temp.reopen();
      expect(await store.getDecision('d-old')).toMatchObject({ access_request_id: null });
      expect(await store.getTask('t-old')).toMatchObject({ elevations: [] });
      await store.registerTask(task('t-1'));
      await store.recordDecision(decision('dn-1', { outcome: 'deny', task_id: 't-1' }));
      await expect(store.createAccessRequest(ask('ar-1', 'dn-1'))).resolves.toMatchObject({ created: true });
      expect(await store.verifyStoredChain()).toMatchObject({ ok: true });
    } finally {
      await temp.cleanup();
    }
  });
});

