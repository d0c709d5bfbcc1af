/**
 * A filtered or time-ranged export reads what the hash covers, not what a column beside it says: someone with
 * write access to the database who edits a row to drop an event from a filtered export, or to slip one in, or to
 * move the edge of a time range, gets an export that fails verification, or one that still holds exactly the
 * events the hashed data selects.
 */
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exportLines, planExport, verifyExportLines } from '../../src/audit/index.js';
import type { ExportRequest } from '../../src/audit/index.js';
import { at, decision, task, tempStore } from '../store/store-fixtures.js';
import type { TempStore } from '../store/store-fixtures.js';

let temp: TempStore;

/**
 * 1 task.registered t-1, 2 decision d-1 (support-resolver, t-1), 3 decision d-2 (deny), 4 policy.loaded,
 * 5 decision d-3 (code-review-agent), 6 decision d-4 (code-review-agent, deny), 7 policy.loaded, 8 decision d-5;
 * event n at at(10 n).
 */
beforeEach(async () => {
  temp = await tempStore();
  const s = temp.store;
  const deny = { outcome: 'deny' as const, redeemable_until: null };
  await s.registerTask(task('t-1', { registered_at: at(10) }));
  await s.recordDecision(decision('d-1', { task_id: 't-1', created_at: at(20) }));
  await s.recordDecision(decision('d-2', { ...deny, created_at: at(30) }));
  await s.appendEvents([{ type: 'policy.loaded', time: at(40), data: { revision: 'rev-2' } }]);
  await s.recordDecision(decision('d-3', { agent_id: 'code-review-agent', created_at: at(50) }));
  await s.recordDecision(decision('d-4', { ...deny, agent_id: 'code-review-agent', created_at: at(60) }));
  await s.appendEvents([{ type: 'policy.loaded', time: at(70), data: { revision: 'rev-3' } }]);
  await s.recordDecision(decision('d-5', { created_at: at(80) }));
  await s.close();
});
afterEach(async () => temp.cleanup());

function tamper(sql: string): void {
  const db = new Database(temp.path);
  try {
    db.prepare(sql).run();
  } finally {
    db.close();
  }
}

async function exported(request: ExportRequest): Promise<string[]> {
  const store = await temp.reopen();
  const lines: string[] = [];
  for await (const line of exportLines(store, await planExport(store, request), 'jsonl')) lines.push(line);
  return lines;
}

const decisionIds = (lines: string[]): string[] =>
  lines.map((l) => JSON.parse(l) as { decision_id?: string; seq?: number }).flatMap((v) => (v.seq !== undefined && v.decision_id ? [v.decision_id] : []));

/** The fields of a v1 event: every one of them is hashed. */
const HASHED = new Set(['seq', 'v', 'time', 'type', 'decision_id', 'jti', 'task_id', 'agent_id', 'caller_id', 'trace_id', 'data', 'prev_hash', 'hash']);

describe('an export after a column was edited in the database', () => {
  it.each([
    { note: 'an event dropped from an agent filter', request: { agent_id: 'support-resolver' }, sql: `UPDATE audit_events SET agent_id = 'code-review-agent' WHERE seq = 3`, seq: 3 },
    { note: 'an event slipped into an agent filter', request: { agent_id: 'support-resolver' }, sql: `UPDATE audit_events SET agent_id = 'support-resolver' WHERE seq = 5`, seq: 5 },
    { note: 'an event dropped from a task filter', request: { task_id: 't-1' }, sql: 'UPDATE audit_events SET task_id = NULL WHERE seq = 2', seq: 2 },
    { note: 'an event dropped from a type filter', request: { types: ['decision' as const] }, sql: `UPDATE audit_events SET type = 'policy.loaded' WHERE seq = 6`, seq: 6 },
    { note: 'an event slipped into a type filter', request: { types: ['policy.loaded' as const] }, sql: `UPDATE audit_events SET type = 'policy.loaded' WHERE seq = 5`, seq: 5 },
    { note: 'a time range started after an event moved back in time', request: { since: at(30) }, sql: `UPDATE audit_events SET time = '${at(25)}' WHERE seq = 3`, seq: 3 },
    { note: 'a time range ended before an event moved forward in time', request: { until: at(60) }, sql: `UPDATE audit_events SET time = '${at(65)}' WHERE seq = 4`, seq: 4 },
  ])('fails verification: $note', async ({ request, sql, seq }) => {
    expect(await verifyExportLines(await exported(request))).toMatchObject({ ok: true });
    tamper(sql);
    expect(await verifyExportLines(await exported(request))).toMatchObject({ ok: false, kind: 'changed', seq });
  });

  it('selects by outcome from the hashed decision, whatever any other column of the row says', async () => {
    expect(decisionIds(await exported({ outcome: 'deny' }))).toEqual(['d-2', 'd-4']);
    const db = new Database(temp.path);
    const unhashed = (db.prepare('PRAGMA table_info(audit_events)').all() as Array<{ name: string }>).map((c) => c.name).filter((c) => !HASHED.has(c));
    for (const column of unhashed) {
      db.prepare(`UPDATE audit_events SET "${column}" = 'allow' WHERE seq = 3`).run();
      db.prepare(`UPDATE audit_events SET "${column}" = 'deny' WHERE seq = 5`).run();
    }
    db.close();
    const lines = await exported({ outcome: 'deny' });
    expect(decisionIds(lines)).toEqual(['d-2', 'd-4']);
    expect(await verifyExportLines(lines)).toMatchObject({ ok: true, count: 2 });
  });

  it('leaves out only events it checked: a skip line carries the hashes of the events it stands for', async () => {
    const lines = await exported({ agent_id: 'code-review-agent' });
    const skips = lines.map((l) => JSON.parse(l) as { skip?: { from_seq: number; to_seq: number } }).flatMap((v) => (v.skip ? [v.skip] : []));
    expect(skips.map((s) => [s.from_seq, s.to_seq])).toEqual([[1, 4]]);
    expect(await verifyExportLines(lines)).toMatchObject({ ok: true, count: 2, last_seq: 6 });
  });
});
