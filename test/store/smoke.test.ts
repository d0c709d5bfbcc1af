import { it, expect } from 'vitest';
import { tempStore, task, decision, grant, at } from './store-fixtures.js';
it('smoke', async () => {
  const t = tempStore();
  const s = t.store;
  await s.registerTask(task('t1'));
  await s.recordDecision(decision('d1', { task_id: 't1' }));
  const r = await s.redeemDecision({ decision_id: 'd1', caller_id: 'support-middleware', now: at(5), makeToken: () => grant() });
  await s.recordTokenUse({ jti: r.token.jti, caller_id: 'crm-rs', at: at(6), data: { active: true } });
  const c = await s.completeTask({ task_id: 't1', by: 'orchestrator-1', at: at(10) });
  console.log(c, s.stats());
  console.log(await s.decisionChain('d1'));
  console.log(await s.verifyStoredChain());
  await t.cleanup();
});
