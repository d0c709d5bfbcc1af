import { statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';

/**
 * Issue 13, item 6: with `audit.mask: ["**.ssn"]`, `GET /v1/tasks/{id}` as an auditor returned the SSN in clear,
 * and the SQLite file holding it was 0644 in a 0755 folder. Every task a caller reads now shows the context as
 * the audit trail does; the PDP still decides on the real values; the store's files are private.
 */

let t: TestPdp;
beforeAll(async () => {
  t = await startTestPdp({ config: { audit: { mask: ['**.ssn', 'input.task.context.customer_id'] } } });
});
afterAll(async () => {
  await t.close();
});

const SSN = '123-45-6789';
const CONTEXT = { customer_id: '1234', ssn: SSN, priority: 2 };
const DIGEST = /^sha256:[0-9a-f]{64}$/;

async function register(id: string): Promise<request.Response> {
  return request(t.url)
    .post('/v1/tasks')
    .set(auth(KEYS.orchestrator))
    .send({ id, agent_id: 'support-resolver', type: 'complaint_resolution', context: CONTEXT })
    .expect(201);
}

describe('a task read by a caller', () => {
  it('shows masked fields as the digests the audit trail holds, to every role that may read it', async () => {
    const registered = await register('masked-1');
    const events = [];
    for await (const event of t.pdp.store.iterateEvents({ task_id: 'masked-1' })) events.push(event);
    const trail = (events.find((e) => e.type === 'task.registered')?.data as { context: Record<string, unknown> }).context;
    expect(trail['ssn']).toMatch(DIGEST);
    // customer_id is masked in decision events only (input.task.context.customer_id): masked in reads too.
    expect(trail['customer_id']).toBe('1234');

    for (const key of [KEYS.auditor, KEYS.admin, KEYS.orchestrator]) {
      const read = await request(t.url).get('/v1/tasks/masked-1').set(auth(key)).expect(200);
      expect(read.body.context).toEqual({ customer_id: expect.stringMatching(DIGEST), ssn: trail['ssn'], priority: 2 });
      expect(JSON.stringify(read.body)).not.toContain(SSN);
    }
    expect(registered.body.context).toEqual({ customer_id: expect.stringMatching(DIGEST), ssn: trail['ssn'], priority: 2 });

    const completed = await request(t.url).post('/v1/tasks/masked-1/complete').set(auth(KEYS.orchestrator)).expect(200);
    expect(JSON.stringify(completed.body)).not.toContain(SSN);
    expect(completed.body.context.ssn).toBe(trail['ssn']);
  });

  it('is decided on the real values: the binding on customer_id still matches customer 1234 only', async () => {
    await register('masked-2');
    const decide = async (customer: string) =>
      (
        await request(t.url)
          .post('/v1/decide')
          .set(auth(KEYS.pep))
          .send({ agent_id: 'support-resolver', task: { id: 'masked-2' }, integration: 'crm', scopes: ['tickets:write'], resource: { type: 'customer', id: customer } })
          .expect(200)
      ).body as { outcome: string };
    expect((await decide('1234')).outcome).toBe('allow');
    expect((await decide('5678')).outcome).toBe('deny');
  });
});

describe('the store on disk', () => {
  it('keeps its folder 0700 and its files 0600, -wal and -shm included', () => {
    const data = join(t.dir, 'data');
    expect(statSync(data).mode & 0o777).toBe(0o700);
    for (const file of ['pdp.db', 'pdp.db-wal', 'pdp.db-shm']) {
      expect({ file, mode: (statSync(join(data, file)).mode & 0o777).toString(8) }).toEqual({ file, mode: '600' });
    }
  });

  it('holds the unmasked context only in the task row the PDP decides on, not in any event or decision', () => {
    const db = new Database(join(t.dir, 'data', 'pdp.db'), { readonly: true });
    try {
      const task = db.prepare('SELECT context FROM tasks WHERE id = ?').get('masked-2') as { context: string };
      expect(JSON.parse(task.context)).toEqual(CONTEXT);
      const events = db.prepare('SELECT data FROM audit_events').all() as Array<{ data: string }>;
      expect(events.length).toBeGreaterThan(0);
      for (const e of events) expect(e.data).not.toContain(SSN);
    } finally {
      db.close();
    }
  });
});
