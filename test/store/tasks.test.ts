import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { at, decision, grant, task, tempStore } from './store-fixtures.js';
import type { TempStore } from './store-fixtures.js';

let temp: TempStore;
beforeEach(async () => {
  temp = await tempStore();
});
afterEach(async () => temp.cleanup());

const CALLER = 'support-middleware';

/** Records an allow for `taskId` and redeems it; returns the jti. */
async function tokenFor(taskId: string, decisionId: string): Promise<string> {
  await temp.store.recordDecision(decision(decisionId, { task_id: taskId }));
  const { token } = await temp.store.redeemDecision({ decision_id: decisionId, caller_id: CALLER, now: at(5), makeToken: () => grant() });
  return token.jti;
}

describe('tasks', () => {
  it('registers a task and reads it back', async () => {
    const registered = await temp.store.registerTask(task('t-1', { context: { customer_id: '1234', priority: 2, vip: true } }));
    expect(registered).toMatchObject({ id: 't-1', status: 'active', completed_at: null });
    expect(await temp.store.getTask('t-1')).toEqual(registered);
    expect(await temp.store.getTask('t-2')).toBeUndefined();
    const [event] = await collect(temp.store.iterateEvents({ task_id: 't-1' }));
    expect(event).toMatchObject({
      type: 'task.registered',
      task_id: 't-1',
      agent_id: 'support-resolver',
      caller_id: 'orchestrator-1',
      data: { type: 'complaint_resolution', context: { customer_id: '1234', priority: 2, vip: true } },
    });
  });

  it('answers many reads at once, each with its own task (PostgreSQL reads them with one statement), and sees a completion at once', async () => {
    for (let i = 0; i < 30; i++) await temp.store.registerTask(task(`t-${i}`, { context: { customer_id: String(i) } }));
    const ids = Array.from({ length: 60 }, (_, i) => `t-${i % 40}`);
    const read = await Promise.all(ids.map((id) => temp.store.getTask(id)));
    read.forEach((found, i) => {
      const n = i % 40;
      if (n < 30) expect(found).toMatchObject({ id: `t-${n}`, context: { customer_id: String(n) }, status: 'active' });
      else expect(found).toBeUndefined();
    });
    await temp.store.completeTask({ task_id: 't-7', by: 'orchestrator-1', at: at(5) });
    const [seven, eight] = await Promise.all([temp.store.getTask('t-7'), temp.store.getTask('t-8')]);
    expect(seven).toMatchObject({ status: 'completed' });
    expect(eight).toMatchObject({ status: 'active' });
  });

  it('refuses a second registration of the same id with task_exists', async () => {
    await temp.store.registerTask(task('t-1'));
    await expect(temp.store.registerTask(task('t-1', { agent_id: 'other' }))).rejects.toMatchObject({ code: 'task_exists', status: 409 });
    expect(await temp.store.getTask('t-1')).toMatchObject({ agent_id: 'support-resolver' });
  });

  it('completes a task and revokes its unrevoked tokens in the same transaction', async () => {
    await temp.store.registerTask(task('t-1'));
    await temp.store.registerTask(task('t-2'));
    const a = await tokenFor('t-1', 'd-1');
    const b = await tokenFor('t-1', 'd-2');
    const c = await tokenFor('t-1', 'd-3');
    const other = await tokenFor('t-2', 'd-4');
    await temp.store.revokeToken({ jti: b, caller_id: CALLER, at: at(6) });

    const closure = await temp.store.completeTask({ task_id: 't-1', by: 'orchestrator-1', at: at(10), trace_id: 'trace-9' });
    expect(closure.revoked_jtis.sort()).toEqual([a, c].sort());
    expect(closure.task).toMatchObject({ status: 'completed', completed_at: at(10), completed_by: 'orchestrator-1' });
    expect(await temp.store.getTask('t-1')).toEqual(closure.task);
    for (const jti of [a, c]) {
      expect(await temp.store.getToken(jti)).toMatchObject({ revoked_at: at(10), revoked_by: 'orchestrator-1', revoke_reason: 'task_completed' });
    }
    expect(await temp.store.getToken(b)).toMatchObject({ revoked_at: at(6), revoke_reason: 'revoked_by_caller' });
    expect(await temp.store.getToken(other)).toMatchObject({ revoked_at: null });

    const tail = await collect(temp.store.iterateEvents({ types: ['task.completed', 'token.revoked'], since: at(10) }));
    expect(tail.map((e) => [e.type, e.jti ?? null, e.trace_id])).toEqual([
      ['task.completed', null, 'trace-9'],
      ...closure.revoked_jtis.map((jti) => ['token.revoked', jti, 'trace-9']),
    ]);
  });

  it.each([
    { note: 'an unknown task', id: 't-9', code: 'task_not_found' },
    { note: 'a completed task', id: 't-1', code: 'task_not_active' },
  ])('refuses to complete $note with $code', async ({ id, code }) => {
    await temp.store.registerTask(task('t-1'));
    await temp.store.completeTask({ task_id: 't-1', by: 'orchestrator-1', at: at(10) });
    await expect(temp.store.completeTask({ task_id: id, by: 'orchestrator-1', at: at(11) })).rejects.toMatchObject({ code });
  });

  it('expires the tasks whose time has come and revokes their tokens', async () => {
    await temp.store.registerTask(task('t-early', { expires_at: at(100) }));
    await temp.store.registerTask(task('t-exact', { expires_at: at(200) }));
    await temp.store.registerTask(task('t-late', { expires_at: at(300) }));
    const jti = await tokenFor('t-early', 'd-1');

    const closed = await temp.store.expireTasks({ now: at(200) });
    expect(closed.map((c) => [c.task.id, c.task.status, c.revoked_jtis])).toEqual([
      ['t-early', 'expired', [jti]],
      ['t-exact', 'expired', []],
    ]);
    expect(await temp.store.getTask('t-early')).toMatchObject({ status: 'expired', completed_at: null });
    expect(await temp.store.getTask('t-late')).toMatchObject({ status: 'active' });
    expect(await temp.store.getToken(jti)).toMatchObject({ revoked_at: at(200), revoked_by: null, revoke_reason: 'task_expired' });
    expect(await temp.store.expireTasks({ now: at(200) })).toEqual([]);
  });

  it('expires at most `limit` tasks per call', async () => {
    for (let i = 0; i < 5; i++) await temp.store.registerTask(task(`t-${i}`, { expires_at: at(10 + i) }));
    expect(await temp.store.expireTasks({ now: at(100), limit: 2 })).toHaveLength(2);
    expect(await temp.store.expireTasks({ now: at(100), limit: 2 })).toHaveLength(2);
    expect(await temp.store.expireTasks({ now: at(100), limit: 2 })).toHaveLength(1);
  });
});

describe('decisionChain', () => {
  it('returns the decision and what followed from it, in order, and nothing else', async () => {
    await temp.store.registerTask(task('t-1'));
    const jti = await tokenFor('t-1', 'd-1');
    await tokenFor('t-1', 'd-2');
    await temp.store.recordDecision(decision('d-3', { outcome: 'deny' }));
    await temp.store.recordTokenUse({ jti, caller_id: 'crm-api', at: at(20), data: { action: 'introspect', active: true } });
    await temp.store.completeTask({ task_id: 't-1', by: 'orchestrator-1', at: at(30) });

    const chain = await temp.store.decisionChain('d-1');
    expect(chain.map((e) => [e.type, e.decision_id ?? null])).toEqual([
      ['decision', 'd-1'],
      ['token.issued', 'd-1'],
      ['token.used', 'd-1'],
      ['task.completed', null],
      ['token.revoked', 'd-1'],
    ]);
    expect(chain.map((e) => e.seq)).toEqual([...chain.map((e) => e.seq)].sort((x, y) => x - y));
    expect((await temp.store.decisionChain('d-3')).map((e) => e.type)).toEqual(['decision']);
    expect(await temp.store.decisionChain('d-404')).toEqual([]);
  });
});

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of source) out.push(item);
  return out;
}
