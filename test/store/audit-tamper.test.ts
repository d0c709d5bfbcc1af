/**
 * Tampering with the database behind the store's back (rawSql: another connection to the SQLite file, or to the
 * PostgreSQL schema), as someone with write access to the database would: `verifyStoredChain` must fail and name
 * the first event touched.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashEvent, sealEvent } from '../../src/audit/index.js';
import type { AuditEventV1 } from '../../src/audit/index.js';
import { at, decision, grant, rawSql, tableColumns, task, tempStore } from './store-fixtures.js';
import type { TempStore } from './store-fixtures.js';
import { eventFromRow, hashText } from '../../src/store/rows.js';
import type { EventRow } from '../../src/store/rows.js';

let temp: TempStore;
afterEach(async () => temp.cleanup());

/** Ten events of several types: seq 1 task.registered, 2-3 decisions, 4 token.issued, ... */
beforeEach(async () => {
  temp = await tempStore();
  const s = temp.store;
  await s.registerTask(task('t-1'));
  await s.recordDecision(decision('d-1', { task_id: 't-1' }));
  await s.recordDecision(decision('d-2', { outcome: 'deny' }));
  await s.redeemDecision({ decision_id: 'd-1', caller_id: 'support-middleware', now: at(5), makeToken: () => grant() });
  await s.recordTokenUse({ jti: 'j', caller_id: 'crm-api', at: at(6), data: { action: 'introspect', active: false } });
  await s.appendEvents([
    { type: 'policy.loaded', time: at(7), data: { revision: 'rev-2' } },
    { type: 'auth.failed', time: at(8), caller_id: 'mallory', data: { reason: 'bad_key' } },
  ]);
  await s.recordDecision(decision('d-3'));
  await s.completeTask({ task_id: 't-1', by: 'orchestrator-1', at: at(10) });
  expect(await s.verifyStoredChain()).toMatchObject({ ok: true, count: 10 });
  await s.close();
});

/** Runs `tamper` on the raw database (the store is closed), reopens the store and verifies. */
async function tamperAndVerify(tamper: () => Promise<void>) {
  await tamper();
  return (await temp.reopen()).verifyStoredChain();
}

/** Every field of a v1 event: the hash covers all of them (and is one of them). */
const EVENT_FIELDS = ['seq', 'v', 'time', 'type', 'decision_id', 'jti', 'task_id', 'agent_id', 'caller_id', 'trace_id', 'data', 'prev_hash', 'hash'];

/** A different, plausible value for each column of row 3 (the deny decision d-2). */
const TAMPERED: Record<string, unknown> = {
  seq: 1003,
  v: 2,
  time: at(999),
  type: 'policy.loaded',
  decision_id: 'd-forged',
  jti: 'j-forged',
  task_id: 't-forged',
  agent_id: 'mallory-agent',
  caller_id: 'mallory',
  trace_id: 'f'.repeat(32),
  outcome: 'allow',
  data: '{"forged":true}',
  // Stored as the store stores a hash: its 32 bytes (PostgreSQL refuses any other length).
  prev_hash: Buffer.from('e'.repeat(64), 'hex'),
  hash: Buffer.from('e'.repeat(64), 'hex'),
};

async function row(seq: number): Promise<Record<string, unknown>> {
  return (await rawSql(temp, 'SELECT * FROM audit_events WHERE seq = ?', [seq]))[0] as Record<string, unknown>;
}

/** Shifts seq of every row from `from` on by `by`, through negative values to dodge the primary key. */
async function renumber(from: number, by: number): Promise<void> {
  await rawSql(temp, 'UPDATE audit_events SET seq = -seq WHERE seq >= ?', [from]);
  await rawSql(temp, 'UPDATE audit_events SET seq = -seq + ? WHERE seq < 0', [by]);
}

/** An event as its row holds it, read as the store reads it (compact decision data, hashes stored as bytes). */
function eventOf(r: Record<string, unknown>): AuditEventV1 {
  return eventFromRow(r as unknown as EventRow);
}

describe('verifyStoredChain after tampering with the database', () => {
  it('names an event whose data was edited', async () => {
    const result = await tamperAndVerify(async () => {
      await rawSql(temp, `UPDATE audit_events SET data = replace(data, '"tickets:write"', '"tickets:admin"') WHERE seq = 4`);
    });
    expect(result).toMatchObject({ ok: false, kind: 'changed', seq: 4 });
  });

  it('names an event that was edited and re-hashed by someone who knows the algorithm', async () => {
    const result = await tamperAndVerify(async () => {
      const edited = { ...eventOf(await row(6)), data: { revision: 'rev-evil' } };
      const { hash: _old, ...unsealed } = edited;
      await rawSql(temp, 'UPDATE audit_events SET data = ?, hash = ? WHERE seq = 6', [JSON.stringify(edited.data), Buffer.from(hashEvent(unsealed), 'hex')]);
    });
    expect(result).toMatchObject({ ok: false, kind: 'changed', seq: 6 });
  });

  it('names a deleted event', async () => {
    const result = await tamperAndVerify(async () => {
      await rawSql(temp, 'DELETE FROM audit_events WHERE seq = 5');
    });
    expect(result).toMatchObject({ ok: false, kind: 'removed', seq: 5 });
  });

  it('names a deleted event even when the rows after it were renumbered to hide the gap', async () => {
    const result = await tamperAndVerify(async () => {
      await rawSql(temp, 'DELETE FROM audit_events WHERE seq = 5');
      await renumber(6, -1);
    });
    expect(result).toMatchObject({ ok: false, kind: 'removed', seq: 5 });
  });

  it('names an inserted event (forged with a valid hash, rows after it renumbered)', async () => {
    const result = await tamperAndVerify(async () => {
      const prev = eventOf(await row(4));
      const forged = sealEvent(prev, { type: 'token.issued', time: at(5), jti: 'forged', data: { scopes: ['admin'] } });
      await renumber(5, 1);
      await rawSql(temp, `INSERT INTO audit_events (seq, v, time, type, jti, data, prev_hash, hash) VALUES (?, 1, ?, ?, ?, ?, ?, ?)`, [
        forged.seq,
        forged.time,
        forged.type,
        forged.jti,
        JSON.stringify(forged.data),
        Buffer.from(forged.prev_hash, 'hex'),
        Buffer.from(forged.hash, 'hex'),
      ]);
    });
    expect(result).toMatchObject({ ok: false, kind: 'inserted', seq: 5 });
  });

  it('names two swapped events', async () => {
    const result = await tamperAndVerify(async () => {
      const a = await row(3);
      const b = await row(4);
      const columns = Object.keys(a).filter((c) => c !== 'seq');
      const update = `UPDATE audit_events SET ${columns.map((c) => `${c} = ?`).join(', ')} WHERE seq = ?`;
      await rawSql(temp, 'DELETE FROM audit_events WHERE seq IN (3, 4)');
      const zero = Buffer.alloc(32);
      await rawSql(temp, `INSERT INTO audit_events (seq, v, time, type, data, prev_hash, hash) VALUES (3, 1, '0', '0', '0', ?, ?), (4, 1, '0', '0', '0', ?, ?)`, [zero, zero, zero, zero]);
      await rawSql(temp, update, [...columns.map((c) => b[c]), 3]);
      await rawSql(temp, update, [...columns.map((c) => a[c]), 4]);
    });
    expect(result).toMatchObject({ ok: false, kind: 'reordered', seq: 3 });
  });

  it('keeps no column outside the hashed event: a query or filter can only read what the hash covers', async () => {
    const columns = await tableColumns(temp, 'audit_events');
    expect(columns.sort()).toEqual([...EVENT_FIELDS].sort());
  });

  it('fails verification when any column of a row is edited, whichever it is', async () => {
    // The deny decision d-2 at seq 3; every column the table has, whether or not this build knows it.
    const original = await row(3);
    const passed: string[] = [];
    for (const column of Object.keys(original)) {
      const value = column in TAMPERED ? TAMPERED[column] : 'tampered';
      const result = await tamperAndVerify(async () => {
        await rawSql(temp, `UPDATE audit_events SET "${column}" = ? WHERE seq = 3`, [value]);
      });
      if (result.ok) passed.push(column);
      await temp.store.close();
      await rawSql(temp, `UPDATE audit_events SET "${column}" = ? WHERE seq = ?`, [original[column], column === 'seq' ? value : 3]);
    }
    expect(passed).toEqual([]);
    expect(await (await temp.reopen()).verifyStoredChain()).toMatchObject({ ok: true, count: 10 });
  });

  it('detects a deleted tail only against a head recorded elsewhere', async () => {
    const head = await (await temp.reopen()).chainHead();
    expect(head.seq).toBe(10);
    await temp.store.close();
    const result = await tamperAndVerify(async () => {
      await rawSql(temp, 'DELETE FROM audit_events WHERE seq >= 9');
    });
    expect(result).toMatchObject({ ok: true, count: 8 });
    expect(await temp.store.verifyStoredChain({ expectedLast: head })).toMatchObject({ ok: false, kind: 'removed', seq: 9 });
  });
});
