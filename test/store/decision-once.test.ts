/**
 * Each decision is stored once (migration 11): the decision event is the record, and a decisions row is written only
 * for state the event cannot hold. Whatever is or is not written, a decision reads back, redeems and links the same.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RecordDecisionInput } from '../../src/store/index.js';
import Database from 'better-sqlite3';
import { pgSession } from '../support/postgres.js';
import { ask } from './access-request-fixtures.js';
import { legacyDecisionsTable } from './legacy-schema.js';
import { at, decision, grant, rawSql, tableColumns, task, tempStore } from './store-fixtures.js';
import type { TempStore } from './store-fixtures.js';

let temp: TempStore;
beforeEach(async () => {
  temp = await tempStore({ mask: ['**.ssn'] });
  await temp.store.registerTask(task('t-1'));
});
afterEach(async () => temp.cleanup());

const CALLER = 'support-middleware';

/** A decision shaped as the Decider records one: its grant is what its answer states. */
function decided(id: string, overrides: { resource?: { type: string; id: string } | null; approval?: { id: string; approved_until: string } } = {}): RecordDecisionInput {
  const resource = overrides.resource === undefined ? { type: 'customer', id: '1234' } : overrides.resource;
  const result: Record<string, unknown> = {
    decision_id: id,
    allow: true,
    outcome: 'allow',
    agent_id: 'support-resolver',
    integration: 'crm',
    granted_scopes: ['tickets:write'],
    denied_scopes: [],
    reasons: [{ code: 'allowed', message: 'granted tickets:write' }],
    token_ttl_seconds: 900,
    resource,
    task_id: 't-1',
    policy_revision: 'rev-1',
    redeemable_until: at(61),
  };
  const tokenGrant: Record<string, unknown> = { granted_scopes: ['tickets:write'], resource, token_ttl_seconds: 900, task_id: 't-1' };
  if (overrides.approval !== undefined) {
    result['approval'] = overrides.approval;
    tokenGrant['not_after'] = overrides.approval.approved_until;
  }
  return decision(id, {
    task_id: 't-1',
    input: { agent_id: 'support-resolver', integration: 'crm', scopes: ['tickets:write'], resource, task: { id: 't-1', type: 'complaint_resolution' } },
    result,
    token_grant: tokenGrant,
    access_request_id: overrides.approval?.id ?? null,
  });
}

const rows = async () => (await rawSql<{ decision_id: string }>(temp, 'SELECT decision_id FROM decisions ORDER BY decision_id')).map((r) => r.decision_id);

describe('each decision stored once', () => {
  it('an allow and a plain denial write their event and no decisions row; both read back whole', async () => {
    const allow = decided('d-allow');
    await temp.store.recordDecision(allow);
    await temp.store.recordDecision(decision('d-deny', { outcome: 'deny', task_id: 't-1', input: { integration: 'crm' }, result: { outcome: 'deny', granted_scopes: [], redeemable_until: null } }));
    expect(await rows()).toEqual([]);
    expect(await temp.store.getDecision('d-allow')).toMatchObject({
      decision_id: 'd-allow',
      caller_id: CALLER,
      agent_id: 'support-resolver',
      task_id: 't-1',
      integration: 'crm',
      outcome: 'allow',
      token_grant: allow.token_grant,
      policy_revision: 'rev-1',
      created_at: at(1),
      redeemable_until: at(61),
      redeemed_jti: null,
      access_request_id: null,
      result: allow.result,
    });
    expect(await temp.store.getDecision('d-deny')).toMatchObject({ outcome: 'deny', token_grant: null, redeemable_until: null, integration: 'crm' });
  });

  it('the redemption writes the row, once: a second redemption is refused', async () => {
    await temp.store.recordDecision(decided('d-1'));
    const redeem = (jti: string) => temp.store.redeemDecision({ decision_id: 'd-1', caller_id: CALLER, now: at(10), makeToken: () => grant({ jti }) });
    await expect(redeem('j-1')).resolves.toMatchObject({ token: { jti: 'j-1' } });
    expect(await rows()).toEqual(['d-1']);
    await expect(redeem('j-2')).rejects.toMatchObject({ code: 'decision_already_redeemed' });
    expect(await temp.store.getDecision('d-1')).toMatchObject({ redeemed_jti: 'j-1', outcome: 'allow', integration: 'crm' });
    expect(await temp.store.getToken('j-2')).toBeUndefined();
  });

  it('a grant the masked event does not give back is kept in a row, and the token is made from the unmasked grant', async () => {
    const masked = decided('d-masked', { resource: { type: 'customer', id: '1234' } });
    // The mask hides every `ssn`: here the record's id sits under that name, so the event holds its digest.
    (masked.result as Record<string, unknown>)['resource'] = { type: 'customer', id: '1234', ssn: '987-65-4321' };
    (masked.token_grant as Record<string, unknown>)['resource'] = { type: 'customer', id: '1234', ssn: '987-65-4321' };
    await temp.store.recordDecision(masked);
    expect(await rows()).toEqual(['d-masked']);
    let seen: unknown;
    await temp.store.redeemDecision({
      decision_id: 'd-masked',
      caller_id: CALLER,
      now: at(10),
      makeToken: (d) => {
        seen = d.token_grant;
        return grant({ jti: 'j-m' });
      },
    });
    expect(seen).toEqual(masked.token_grant);
  });

  it('a requestable denial as the Decider records it keeps its approvers in its event, with no row, and gives its offer back whole', async () => {
    const offer = {
      access_request: { scopes: ['tickets:admin'], approvers: ['platform-oncall', 'security'], max_duration: 3600, require_reason: true, expires_at: at(600), resource: { type: 'customer', id: '1234' }, task_id: 't-1' },
    };
    const result = {
      decision_id: 'd-offer',
      allow: false,
      outcome: 'deny',
      agent_id: 'support-resolver',
      integration: 'crm',
      granted_scopes: [],
      denied_scopes: ['tickets:admin'],
      reasons: [{ code: 'approval_required', message: 'tickets:admin needs an approval' }],
      token_ttl_seconds: 0,
      resource: { type: 'customer', id: '1234' },
      task_id: 't-1',
      policy_revision: 'rev-1',
      redeemable_until: null,
      access_request: {
        endpoint: '/v1/access-requests',
        expires_at: at(600),
        template: { decision_id: 'd-offer', duration_seconds: 3600 },
        scopes: ['tickets:admin'],
        max_duration_seconds: 3600,
        require_reason: true,
      },
    };
    await temp.store.recordDecision(
      decision('d-offer', {
        outcome: 'deny',
        task_id: 't-1',
        redeemable_until: null,
        input: { agent_id: 'support-resolver', integration: 'crm', scopes: ['tickets:admin'], resource: { type: 'customer', id: '1234' }, task: { id: 't-1', type: 'complaint_resolution' } },
        result,
        token_grant: offer,
      }),
    );
    expect(await rows()).toEqual([]);
    expect(await temp.store.getDecision('d-offer')).toMatchObject({ outcome: 'deny', token_grant: offer, result });
    const [event] = await temp.store.decisionChain('d-offer');
    expect(event?.data).toMatchObject({ approvers: ['platform-oncall', 'security'] });
    await expect(temp.store.createAccessRequest(ask('ar-offer', 'd-offer'))).resolves.toMatchObject({ created: true });
    expect(await temp.store.verifyStoredChain()).toMatchObject({ ok: true });
  });

  it('a requestable denial of another shape (no hint in its answer) keeps its offer in a row', async () => {
    const offer = { access_request: { scopes: ['tickets:admin'], approvers: ['platform-oncall'], max_duration: 3600, require_reason: true, expires_at: at(600), resource: null, task_id: 't-1' } };
    await temp.store.recordDecision(decision('d-req', { outcome: 'deny', task_id: 't-1', input: { integration: 'crm' }, result: { outcome: 'deny', redeemable_until: null }, token_grant: offer }));
    expect(await rows()).toEqual(['d-req']);
    expect(await temp.store.getDecision('d-req')).toMatchObject({ outcome: 'deny', token_grant: offer });
  });

  it("an elevated allow names its access request through its answer's approval, with no row", async () => {
    await temp.store.recordDecision(decided('d-el', { approval: { id: 'ar-1', approved_until: at(300) } }));
    expect(await rows()).toEqual([]);
    expect(await temp.store.getDecision('d-el')).toMatchObject({ access_request_id: 'ar-1', token_grant: { not_after: at(300) } });
  });

  it('a provider mint claims the decision on a new row, and the redemption that holds the claim completes it', async () => {
    await temp.store.recordDecision(decided('d-mint'));
    await temp.store.claimProviderMint({ decision_id: 'd-mint', caller_id: CALLER, claim: 'c-1', now: at(5), until: at(40) });
    expect(await rows()).toEqual(['d-mint']);
    await expect(temp.store.claimProviderMint({ decision_id: 'd-mint', caller_id: CALLER, claim: 'c-2', now: at(6), until: at(40) })).rejects.toMatchObject({
      code: 'redemption_in_progress',
    });
    await expect(
      temp.store.redeemDecision({ decision_id: 'd-mint', caller_id: CALLER, now: at(7), mint_claim: 'c-1', makeToken: () => grant({ jti: 'j-mint' }) }),
    ).resolves.toMatchObject({ decision: { redeemed_jti: 'j-mint' } });
  });

  it('the decision event is in the chain once, and the trail verifies', async () => {
    await temp.store.recordDecision(decided('d-1'));
    expect((await temp.store.decisionChain('d-1')).map((e) => e.type)).toEqual(['decision']);
    expect(await temp.store.verifyStoredChain()).toMatchObject({ ok: true });
  });
});

describe('a prune never deletes a decision something live still reads (its event is its record)', () => {
  it('stops before the decision of a token not yet expired, and prunes it once the token has expired', async () => {
    await temp.store.recordDecision(decided('d-1'));
    await temp.store.redeemDecision({ decision_id: 'd-1', caller_id: CALLER, now: at(10), makeToken: () => grant({ jti: 'j-1', expires_at: at(302) }) });
    await temp.store.recordDecision(decided('d-2', {}));
    const held = await temp.store.pruneEvents({ before: at(100), at: at(200) });
    expect(held).toMatchObject({ held_by: { reason: 'live_decision', time: at(1) } });
    expect(await temp.store.getDecision('d-1')).toMatchObject({ redeemed_jti: 'j-1', integration: 'crm' });
    const later = await temp.store.pruneEvents({ before: at(100), at: at(400) });
    expect(later).toMatchObject({ held_by: null });
    expect(later.pruned).toBeGreaterThan(held.pruned);
    expect(await temp.store.getDecision('d-1')).toBeUndefined();
    expect(await temp.store.verifyStoredChain()).toMatchObject({ ok: true });
  });

  it('stops before a denial whose access request is pending', async () => {
    const offer = { access_request: { scopes: ['tickets:delete'], approvers: ['platform-oncall'], max_duration: 3600, require_reason: true, expires_at: at(600), resource: null, task_id: 't-1' } };
    await temp.store.recordDecision(decision('d-den', { outcome: 'deny', task_id: 't-1', input: { integration: 'crm' }, result: { outcome: 'deny', redeemable_until: null }, token_grant: offer }));
    await temp.store.createAccessRequest(ask('ar-1', 'd-den'));
    const result = await temp.store.pruneEvents({ before: at(100), at: at(200) });
    expect(result.held_by).toMatchObject({ reason: 'live_decision', time: at(1) });
    expect(await temp.store.getDecision('d-den')).toMatchObject({ outcome: 'deny', token_grant: offer });
  });

  it('stops before the first decision inside the redeem or request window it is given', async () => {
    await temp.store.recordDecision(decided('d-open'));
    const result = await temp.store.pruneEvents({ before: at(100), at: at(30), decisions_live_since: at(1) });
    expect(result.held_by).toMatchObject({ reason: 'decision_window', time: at(1) });
    expect(await temp.store.getDecision('d-open')).toMatchObject({ outcome: 'allow' });
  });
});

describe('migration 11 on a database written by schema version 10', () => {
  it('keeps the rows that hold state (redeemed, claimed, requestable, in their window), drops the others, and reads every decision as before', async () => {
    const temp = await tempStore();
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
      await toSchemaVersion10(temp);

      const reopened = await temp.reopen();
      const kept = await rawSql<{ decision_id: string }>(temp, 'SELECT decision_id FROM decisions ORDER BY decision_id');
      expect(kept.map((r) => r.decision_id)).toEqual(['d-open', 'd-redeemed', 'dn-req']);
      expect(await tableColumns(temp, 'decisions')).not.toContain('result');
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
      if (temp.engine === 'postgres') {
        const types = await rawSql<{ column_name: string; data_type: string }>(
          temp,
          "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'audit_events' AND column_name LIKE '%hash' ORDER BY column_name",
        );
        expect(types).toEqual([{ column_name: 'hash', data_type: 'bytea' }, { column_name: 'prev_hash', data_type: 'bytea' }]);
      }
    } finally {
      await temp.cleanup();
    }
  });
});

/** The store's decisions table put back as schema version 10 had it (a row for every decision), on either engine. */
async function toSchemaVersion10(temp: TempStore): Promise<void> {
  if (temp.engine === 'sqlite') {
    const db = new Database(temp.path);
    legacyDecisionsTable(db, { accessRequestId: true, mintClaim: true });
    db.exec('DELETE FROM schema_migrations WHERE version >= 11');
    db.close();
    return;
  }
  await pgSession(temp.path, async (query) => {
    await query('BEGIN');
    await query(`CREATE TABLE decisions_legacy (decision_id TEXT COLLATE "C" PRIMARY KEY, caller_id TEXT COLLATE "C" NOT NULL,
      agent_id TEXT COLLATE "C" NOT NULL, task_id TEXT COLLATE "C", integration TEXT COLLATE "C" NOT NULL, outcome TEXT COLLATE "C" NOT NULL,
      request TEXT COLLATE "C" NOT NULL, result TEXT COLLATE "C" NOT NULL, token_grant TEXT COLLATE "C", policy_revision TEXT COLLATE "C" NOT NULL,
      trace_id TEXT COLLATE "C", created_at TEXT COLLATE "C" NOT NULL, redeemable_until TEXT COLLATE "C", redeemed_jti TEXT COLLATE "C",
      redeemed_at TEXT COLLATE "C", access_request_id TEXT COLLATE "C", mint_claim TEXT COLLATE "C", mint_claim_until TEXT COLLATE "C")`);
    // Every decision's row, its terms from its row where it had one (these fixtures' allows all do), else its event.
    await query(`INSERT INTO decisions_legacy SELECT e.decision_id, e.caller_id, e.agent_id, e.task_id,
      coalesce(d.integration, e.data::json #>> '{input,integration}', 'crm'), coalesce(d.outcome, e.data::json #>> '{result,outcome}'),
      '{}', coalesce(e.data::json #>> '{result}', '{}'), d.token_grant,
      coalesce(d.policy_revision, e.data::json ->> 'policy_revision', e.data::json ->> 'p'), e.trace_id, e.time, d.redeemable_until,
      d.redeemed_jti, d.redeemed_at, d.access_request_id, d.mint_claim, d.mint_claim_until
      FROM audit_events e LEFT JOIN decisions d ON d.decision_id = e.decision_id WHERE e.type = 'decision'`);
    await query('DROP TABLE decisions CASCADE');
    await query('ALTER TABLE decisions_legacy RENAME TO decisions');
    await query('CREATE INDEX decisions_access_request ON decisions (access_request_id) WHERE access_request_id IS NOT NULL');
    await query('ALTER TABLE tokens ADD FOREIGN KEY (decision_id) REFERENCES decisions (decision_id) DEFERRABLE INITIALLY DEFERRED');
    // Version 10's hashes were hex text (migration 12 makes them bytea), and it had not the prune's indexes.
    await query('ALTER TABLE audit_events DROP CONSTRAINT audit_events_hash_bytes');
    await query('DROP INDEX IF EXISTS tokens_live_expiry');
    await query('DROP INDEX IF EXISTS decisions_open');
    await query(`ALTER TABLE audit_events ALTER COLUMN prev_hash TYPE TEXT COLLATE "C" USING encode(prev_hash, 'hex'),
      ALTER COLUMN hash TYPE TEXT COLLATE "C" USING encode(hash, 'hex')`);
    await query('DELETE FROM schema_migrations WHERE version >= 11');
    await query('COMMIT');
  });
}
