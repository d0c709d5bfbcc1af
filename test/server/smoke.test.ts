import request from 'supertest';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';

let t: TestPdp;
beforeAll(async () => {
  t = await startTestPdp();
});
afterAll(async () => {
  await t.close();
});

it('registers a task and decides on its trusted context', async () => {
  await request(t.url).post('/v1/tasks').set(auth(KEYS.orchestrator)).send({ id: 'task-42', agent_id: 'support-resolver', type: 'complaint_resolution', context: { customer_id: '1234' } }).expect(201);
  const res = await request(t.url)
    .post('/v1/decide')
    .set(auth(KEYS.strictPep))
    .send({ agent_id: 'support-resolver', task: { id: 'task-42' }, integration: 'crm', scopes: ['tickets:write'], resource: { type: 'customer', id: '1234' } })
    .expect(200);
  expect(res.body).toMatchObject({ allow: true, outcome: 'allow', granted_scopes: ['tickets:write'], task_id: 'task-42' });
});
