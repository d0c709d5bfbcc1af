/**
 * Migrations on an SQLite file an earlier release left: the tables it lacks are added and the rows it holds read as
 * this build expects.
 */
import Database from 'better-sqlite3';
import { legacyDecisionsTable } from './legacy-schema.js';
import { describe, expect, it } from 'vitest';
import { ask } from './access-request-fixtures.js';
import { at, decision, grant, task, tempStore } from './store-fixtures.js';

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

describe('migration 11 on a database written by schema version 10', () => {
  it('keeps the rows that hold state (redeemed, claimed, requestable, in their window), drops the others, and reads every decision as before', async () => {
    const temp = await tempStore({}, 'sqlite');
    try {
      const store = temp.store;
      await store.registerTask(task('t-1'));
      const allow = (id: string, until: string) =>
        decision(id, { task_id: 't-1', redeemable_until: until, token_grant: { granted_scopes: ['tickets:write'], resource: null, token_ttl_seconds: 900, task_id: 't-1' } });
      await store.recordDecision(allow('d-redeemed', at(61)));
      await store.redeemDecision({ decision_id: 'd-redeemed', caller_id: 'support-middleware', now: at(10), makeToken: () => grant({ jti: 'j-1' }) });
      await store.recordDecision(allow('d-expired', at(5)));
      await store.recordDecision(allow('d-open', at(3600)));
      await store.recordDecision(decision('d-deny', { outcome: 'deny', task_id: 't-1' }));
      const offer = { access_request: { scopes: ['tickets:admin'], approvers: ['platform-oncall'], max_duration: 3600, require_reason: true, expires_at: at(600), resource: null, task_id: 't-1' } };
      // The last decision's time stands for now: d-expired's window closed before it, d-open's is still open.
      await store.recordDecision(decision('dn-req', { outcome: 'deny', task_id: 't-1', token_grant: offer, created_at: at(100) }));
      await store.close();
      const db = new Database(temp.path);
      legacyDecisionsTable(db, { accessRequestId: true, mintClaim: true });
      db.exec('DELETE FROM schema_migrations WHERE version >= 11');
      db.close();

      const reopened = await temp.reopen();
      const rows = new Database(temp.path, { readonly: true });
      try {
        const kept = rows.prepare('SELECT decision_id, token_grant FROM decisions ORDER BY decision_id').all() as Array<{ decision_id: string; token_grant: string | null }>;
        expect(kept.map((r) => r.decision_id)).toEqual(['d-open', 'd-redeemed', 'dn-req']);
        expect(rows.prepare('SELECT name FROM pragma_table_info(?) ORDER BY cid').all('decisions').map((c) => (c as { name: string }).name)).not.toContain('result');
      } finally {
        rows.close();
      }
      expect(await reopened.getDecision('d-redeemed')).toMatchObject({ redeemed_jti: 'j-1', outcome: 'allow', caller_id: 'support-middleware' });
      expect(await reopened.getDecision('d-deny')).toMatchObject({ outcome: 'deny', token_grant: null });
      expect(await reopened.getDecision('dn-req')).toMatchObject({ outcome: 'deny', token_grant: offer });
      await expect(
        reopened.redeemDecision({ decision_id: 'd-open', caller_id: 'support-middleware', now: at(20), makeToken: (d) => grant({ jti: 'j-2', scopes: (d.token_grant as { granted_scopes: string[] }).granted_scopes }) }),
      ).resolves.toMatchObject({ token: { scopes: ['tickets:write'] } });
      await expect(reopened.redeemDecision({ decision_id: 'd-redeemed', caller_id: 'support-middleware', now: at(20), makeToken: () => grant() })).rejects.toMatchObject({
        code: 'decision_already_redeemed',
      });
      await expect(reopened.createAccessRequest(ask('ar-1', 'dn-req'))).resolves.toMatchObject({ created: true });
      expect(await reopened.verifyStoredChain()).toMatchObject({ ok: true });
    } finally {
      await temp.cleanup();
    }
  });
});
