import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PdpError } from '../../src/errors/pdp-error.js';
import type { PdpErrorCode } from '../../src/errors/pdp-error.js';
import type { RedeemDecisionInput } from '../../src/store/index.js';
import { at, decision, grant, task, tempStore } from './store-fixtures.js';
import type { TempStore } from './store-fixtures.js';

let temp: TempStore;
beforeEach(async () => {
  temp = await tempStore();
});
afterEach(async () => temp.cleanup());

const CALLER = 'support-middleware';
const redeem = (decision_id: string, overrides: Partial<RedeemDecisionInput> = {}) =>
  temp.store.redeemDecision({ decision_id, caller_id: CALLER, now: at(10), makeToken: () => grant(), ...overrides });

describe('redeemDecision', () => {
  it('issues one token for an allow, recording it and its event in the same transaction', async () => {
    await temp.store.recordDecision(decision('d-1'));
    const { decision: redeemed, token } = await redeem('d-1', { makeToken: () => grant({ jti: 'j-1' }) });
    expect(redeemed).toMatchObject({ decision_id: 'd-1', redeemed_jti: 'j-1', redeemed_at: at(10) });
    expect(token).toMatchObject({ jti: 'j-1', decision_id: 'd-1', caller_id: CALLER, revoked_at: null });
    expect(await temp.store.getToken('j-1')).toEqual(token);
    expect(await temp.store.getDecision('d-1')).toMatchObject({ redeemed_jti: 'j-1' });
    const events = await temp.store.decisionChain('d-1');
    expect(events.map((e) => [e.type, e.jti])).toEqual([
      ['decision', undefined],
      ['token.issued', 'j-1'],
    ]);
  });

  it.each<{ note: string; setup: () => Promise<unknown>; input: Partial<RedeemDecisionInput>; code: PdpErrorCode }>([
    { note: 'unknown decision', setup: async () => undefined, input: {}, code: 'decision_not_found' },
    {
      note: 'another caller',
      setup: () => temp.store.recordDecision(decision('d-1')),
      input: { caller_id: 'someone-else' },
      code: 'decision_wrong_caller',
    },
    {
      note: 'a deny',
      setup: () => temp.store.recordDecision(decision('d-1', { outcome: 'deny' })),
      input: {},
      code: 'decision_not_allowed',
    },
    {
      note: 'an undefined outcome',
      setup: () => temp.store.recordDecision(decision('d-1', { outcome: 'undefined', redeemable_until: null })),
      input: {},
      code: 'decision_not_allowed',
    },
    {
      note: 'already redeemed',
      setup: async () => {
        await temp.store.recordDecision(decision('d-1'));
        await redeem('d-1');
      },
      input: {},
      code: 'decision_already_redeemed',
    },
    {
      note: 'after redeemable_until',
      setup: () => temp.store.recordDecision(decision('d-1', { redeemable_until: at(60) })),
      input: { now: at(60.001) },
      code: 'decision_expired',
    },
    {
      note: 'its task was completed since',
      setup: async () => {
        await temp.store.registerTask(task('t-1'));
        await temp.store.recordDecision(decision('d-1', { task_id: 't-1' }));
        await temp.store.completeTask({ task_id: 't-1', by: 'orchestrator-1', at: at(5) });
      },
      input: {},
      code: 'task_not_active',
    },
    {
      note: 'its task expired since',
      setup: async () => {
        await temp.store.registerTask(task('t-1', { expires_at: at(8) }));
        await temp.store.recordDecision(decision('d-1', { task_id: 't-1' }));
      },
      input: { now: at(9) },
      code: 'task_not_active',
    },
  ])('refuses $note with $code, and writes nothing', async ({ setup, input, code }) => {
    await setup();
    const eventsBefore = (await temp.store.chainHead()).seq;
    const tokenBefore = (await temp.store.getDecision('d-1'))?.redeemed_jti ?? null;
    let called = false;
    const attempt = redeem('d-1', {
      ...input,
      makeToken: () => {
        called = true;
        return grant();
      },
    });
    await expect(attempt).rejects.toSatisfy((e) => e instanceof PdpError && e.code === code);
    expect(called).toBe(false);
    expect((await temp.store.chainHead()).seq).toBe(eventsBefore);
    expect((await temp.store.getDecision('d-1'))?.redeemed_jti ?? null).toBe(tokenBefore);
  });

  it('redeems at exactly redeemable_until', async () => {
    await temp.store.recordDecision(decision('d-1', { redeemable_until: at(60) }));
    await expect(redeem('d-1', { now: at(60) })).resolves.toMatchObject({ token: { decision_id: 'd-1' } });
  });

  it('lets a refusal thrown by makeToken refuse only that redemption', async () => {
    await temp.store.recordDecision(decision('d-1'));
    await expect(
      redeem('d-1', {
        makeToken: () => {
          throw new PdpError('issuer_unavailable', 'no signing key');
        },
      }),
    ).rejects.toMatchObject({ code: 'issuer_unavailable' });
    expect(await temp.store.getDecision('d-1')).toMatchObject({ redeemed_jti: null });
    await expect(redeem('d-1')).resolves.toBeDefined();
  });

  it('redeems a decision exactly once under concurrent attempts', async () => {
    await temp.store.recordDecision(decision('d-1'));
    const attempts = await Promise.allSettled(Array.from({ length: 20 }, () => redeem('d-1')));
    const won = attempts.filter((a) => a.status === 'fulfilled');
    const lost = attempts.filter((a): a is PromiseRejectedResult => a.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(19);
    expect(lost.every((a) => (a.reason as PdpError).code === 'decision_already_redeemed')).toBe(true);
    const issued = (await temp.store.decisionChain('d-1')).filter((e) => e.type === 'token.issued');
    expect(issued).toHaveLength(1);
    expect(await temp.store.verifyStoredChain()).toMatchObject({ ok: true, count: 2 });
  });
});

describe('claims for a provider mint (claimProviderMint, endProviderMint)', () => {
  const claim = (claimId: string, now: number, until: number, caller = CALLER) =>
    temp.store.claimProviderMint({ decision_id: 'd-1', caller_id: caller, claim: claimId, now: at(now), until: at(until) });
  const AWS_RECORD = {
    provider: 'aws' as const,
    request_id: 'req-1',
    expires_at: at(900),
    role_arn: 'arn:aws:iam::123456789012:role/r',
    session_name: 'agentpdp-d-1',
    source_identity: 'support-resolver',
    session_tags: { agent_id: 'support-resolver', decision_id: 'd-1' },
    session_policy: { Version: '2012-10-17', Statement: [] },
  };

  it('a live claim refuses other claims and other redemptions; its holder redeems and the claim ends', async () => {
    await temp.store.recordDecision(decision('d-1'));
    await claim('c-1', 5, 40);
    await expect(claim('c-2', 6, 41)).rejects.toMatchObject({ code: 'redemption_in_progress' });
    await expect(redeem('d-1')).rejects.toMatchObject({ code: 'redemption_in_progress' });
    await expect(redeem('d-1', { mint_claim: 'c-2' })).rejects.toMatchObject({ code: 'redemption_in_progress' });
    const { token } = await redeem('d-1', { mint_claim: 'c-1' });
    expect(token.decision_id).toBe('d-1');
    await expect(claim('c-3', 11, 40)).rejects.toMatchObject({ code: 'decision_already_redeemed' });
    expect((await temp.store.decisionChain('d-1')).map((e) => e.type)).toEqual(['decision', 'token.issued']);
  });

  it('claims only what a redemption could redeem, and writes no event', async () => {
    await temp.store.recordDecision(decision('d-1'));
    const before = (await temp.store.chainHead()).seq;
    await expect(claim('c-1', 5, 40, 'someone-else')).rejects.toMatchObject({ code: 'decision_wrong_caller' });
    await expect(claim('c-1', 62, 90)).rejects.toMatchObject({ code: 'decision_expired' });
    await temp.store.recordDecision(decision('d-2', { outcome: 'deny' }));
    await expect(temp.store.claimProviderMint({ decision_id: 'd-2', caller_id: CALLER, claim: 'c', now: at(5), until: at(40) })).rejects.toMatchObject({ code: 'decision_not_allowed' });
    await claim('c-1', 5, 40);
    expect((await temp.store.chainHead()).seq).toBe(before + 1); // d-2's decision event only
  });

  it('a released claim frees the decision; a claim past its time is taken over, and its holder can no longer redeem', async () => {
    await temp.store.recordDecision(decision('d-1'));
    await claim('c-1', 5, 40);
    await temp.store.endProviderMint({ decision_id: 'd-1', claim: 'c-1', now: at(6) });
    await claim('c-2', 7, 20);
    // c-2's holder died mid-mint: after its time another redemption takes the decision over.
    await claim('c-3', 21, 50);
    await expect(redeem('d-1', { mint_claim: 'c-2', now: at(22) })).rejects.toMatchObject({ code: 'redemption_in_progress' });
    // Releasing a claim no longer held leaves the holder's alone.
    await temp.store.endProviderMint({ decision_id: 'd-1', claim: 'c-2', now: at(23) });
    await expect(redeem('d-1', { now: at(24) })).rejects.toMatchObject({ code: 'redemption_in_progress' });
    await expect(redeem('d-1', { mint_claim: 'c-3', now: at(24) })).resolves.toBeDefined();
  });

  it('a discarded credential is recorded in the decision chain with the end of the claim', async () => {
    await temp.store.recordDecision(decision('d-1'));
    await claim('c-1', 5, 40);
    await temp.store.endProviderMint({
      decision_id: 'd-1',
      claim: 'c-1',
      now: at(8),
      discarded: { agent_id: 'support-resolver', caller_id: CALLER, task_id: null, trace_id: null, integration: 'crm', reason: 'task_not_active', provider_credential: AWS_RECORD },
    });
    const events = await temp.store.decisionChain('d-1');
    expect(events.map((e) => e.type)).toEqual(['decision', 'provider.credential_discarded']);
    expect(events[1]).toMatchObject({ decision_id: 'd-1', agent_id: 'support-resolver', caller_id: CALLER, data: { integration: 'crm', reason: 'task_not_active', provider_credential: AWS_RECORD } });
    await expect(claim('c-2', 9, 40)).resolves.toBeUndefined();
    expect(await temp.store.verifyStoredChain()).toMatchObject({ ok: true, count: 2 });
  });
});

describe('revokeToken and recordTokenUse', () => {
  beforeEach(async () => {
    await temp.store.registerTask(task('t-1'));
    await temp.store.recordDecision(decision('d-1', { task_id: 't-1' }));
    await redeem('d-1', { makeToken: () => grant({ jti: 'j-1' }) });
  });

  it.each([
    { note: 'an unknown token', jti: 'nope', caller_id: CALLER },
    { note: 'a token issued to another caller', jti: 'j-1', caller_id: 'someone-else' },
  ])('does not revoke $note', async ({ jti, caller_id }) => {
    expect(await temp.store.revokeToken({ jti, caller_id, at: at(20) })).toBe(false);
    expect(await temp.store.getToken('j-1')).toMatchObject({ revoked_at: null });
  });

  it('revokes for the caller it was issued to, once', async () => {
    expect(await temp.store.revokeToken({ jti: 'j-1', caller_id: CALLER, at: at(20) })).toBe(true);
    expect(await temp.store.revokeToken({ jti: 'j-1', caller_id: CALLER, at: at(21) })).toBe(false);
    expect(await temp.store.getToken('j-1')).toMatchObject({
      revoked_at: at(20),
      revoked_by: CALLER,
      revoke_reason: 'revoked_by_caller',
    });
    const revoked = (await temp.store.decisionChain('d-1')).filter((e) => e.type === 'token.revoked');
    expect(revoked).toHaveLength(1);
  });

  it('records a use with the token’s decision, task and agent', async () => {
    await temp.store.recordTokenUse({ jti: 'j-1', caller_id: 'crm-api', at: at(30), data: { action: 'introspect', active: true } });
    const [use] = (await temp.store.decisionChain('d-1')).filter((e) => e.type === 'token.used');
    expect(use).toMatchObject({
      jti: 'j-1',
      decision_id: 'd-1',
      task_id: 't-1',
      agent_id: 'support-resolver',
      caller_id: 'crm-api',
      data: { action: 'introspect', active: true },
    });
  });
});
