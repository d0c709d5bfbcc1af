import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CallerConfig } from '../../src/config/config-types.js';
import { PdpError } from '../../src/errors/pdp-error.js';
import { loadKeyRing } from '../../src/issuer/key-ring.js';
import { Decider } from '../../src/pdp/decider.js';
import { IssuerKeys } from '../../src/pdp/issuer-keys.js';
import type { PolicyEngine } from '../../src/pdp/policy-engine.js';
import { TokenService, type TokenEvent, type TokenObserver } from '../../src/pdp/token-service.js';
import { Metrics } from '../../src/server/metrics.js';
import type { RegisterTaskInput, Store } from '../../src/store/index.js';
import type { DecisionRequestV1 } from '../../src/wire/decision-v1.js';
import { decodePart, signWith } from '../issuer/fixtures.js';
import {
  CALLERS,
  T0,
  at,
  frozenClock,
  loadEngine,
  memoryStore,
  removeTempDirs,
  taskRegistration,
  tempDir,
  ticketRequest,
  type Clock,
} from './pdp-fixtures.js';

const ISSUER = 'https://pdp.test';
const WINDOW = 60;
/** support-resolver's token_ttl (policies/agents/support-resolver.yaml). */
const AGENT_TTL = 900;
const CRM_AUDIENCE = 'https://crm.example.com/api';
const T0_S = T0 / 1000;

let engine: PolicyEngine;
let keyDir: string;
beforeAll(async () => {
  engine = await loadEngine();
  keyDir = join(tempDir(), 'keys');
});
afterAll(removeTempDirs);

describe('TokenService', () => {
  let store: Store;
  let clock: Clock;
  let events: TokenEvent[];
  let tokens: TokenService;
  let decider: Decider;
  let keys: IssuerKeys;
  let taskCount: number;

  beforeEach(async () => {
    store = await memoryStore();
    clock = frozenClock(0);
    events = [];
    taskCount = 0;
    keys = await IssuerKeys.load(keyDir, { maxTokenTtlSeconds: 3600 }, clock.read);
    tokens = new TokenService({
      store,
      keys,
      issuer: ISSUER,
      audienceFor: (integration) => engine.active?.policySet.integrations[integration]?.audience ?? integration,
      observer: { tokenEvent: (event) => void events.push(event) },
      now: clock.read,
    });
    decider = new Decider({ engine, store, redeemWindowSeconds: WINDOW, now: clock.read });
  });
  afterEach(async () => {
    await store.close();
  });

  /** Registers a fresh task and has `caller` decide on it at the current time; returns the decision id. */
  async function decided(
    caller: CallerConfig = CALLERS.strict,
    task: Partial<RegisterTaskInput> = {},
    request: Partial<DecisionRequestV1> = {},
  ): Promise<string> {
    const id = `task-${++taskCount}`;
    await store.registerTask(taskRegistration(id, task));
    return (await decider.decide(caller, ticketRequest(id, request), null)).decision_id;
  }
  const refusal = (promise: Promise<unknown>): Promise<string> =>
    promise.then(
      () => expect.unreachable('the redemption must be refused'),
      (err: unknown) => {
        expect(err).toBeInstanceOf(PdpError);
        return (err as PdpError).code;
      },
    );
  const active = async (token: string): Promise<boolean> => (await tokens.introspect(CALLERS.resourceServer, token, null)).active;

  describe('redeem', () => {
    it('issues one token for an allowed decision, once', async () => {
      const decisionId = await decided();
      clock.set(5);

      const issued = await tokens.redeem(CALLERS.strict, decisionId, 'trace-9');

      expect(issued).toMatchObject({ token_type: 'Bearer', scope: 'tickets:write', iat: T0_S + 5, exp: T0_S + 5 + AGENT_TTL, expires_in: AGENT_TTL });
      expect(decodePart(issued.access_token, 1)).toMatchObject({
        iss: ISSUER,
        sub: 'support-resolver',
        aud: CRM_AUDIENCE,
        client_id: 'pep-strict',
        jti: issued.jti,
        decision_id: decisionId,
        task_id: 'task-1',
        authorization_details: [{ type: 'crm', actions: ['tickets:write'], identifier: '1234', resource_type: 'customer' }],
      });
      expect(await store.getToken(issued.jti)).toMatchObject({ caller_id: 'pep-strict', decision_id: decisionId, expires_at: at(5 + AGENT_TTL) });
      expect(await refusal(tokens.redeem(CALLERS.strict, decisionId, null))).toBe('decision_already_redeemed');
      expect(events).toEqual(['issued', 'refused']);
    });

    it.each([
      { note: 'another caller redeems it', code: 'decision_wrong_caller', redeemer: CALLERS.other, at: 1, stillRedeemable: true },
      { note: 'the decision is unknown', code: 'decision_not_found', redeemer: CALLERS.strict, at: 1, decisionId: 'no-such-decision', stillRedeemable: true },
      { note: 'the redeem window has passed by a millisecond', code: 'decision_expired', redeemer: CALLERS.strict, at: WINDOW + 0.001 },
      { note: 'its task was completed since', code: 'task_not_active', redeemer: CALLERS.strict, at: 1, complete: true },
    ])('refuses ($code) when $note', async ({ code, redeemer, at: seconds, decisionId, complete, stillRedeemable }) => {
      const id = await decided();
      if (complete) await store.completeTask({ task_id: 'task-1', by: 'orchestrator', at: at(0.5) });
      clock.set(seconds);

      expect(await refusal(tokens.redeem(redeemer, decisionId ?? id, null))).toBe(code);
      expect(await store.getDecision(id)).toMatchObject({ redeemed_jti: null });
      if (stillRedeemable) {
        // The refusal wrote nothing: the decision is intact for its own caller.
        await expect(tokens.redeem(CALLERS.strict, id, null)).resolves.toMatchObject({ token_type: 'Bearer' });
        expect(events).toEqual(['refused', 'issued']);
      } else {
        expect(events).toEqual(['refused']);
      }
    });

    it('redeems at the last instant of the window', async () => {
      const id = await decided();
      clock.set(WINDOW);
      await expect(tokens.redeem(CALLERS.strict, id, null)).resolves.toMatchObject({ iat: T0_S + WINDOW });
    });

    it('refuses (decision_not_allowed) a deny', async () => {
      const id = await decided(CALLERS.strict, {}, { scopes: ['tickets:delete'] });
      expect(await refusal(tokens.redeem(CALLERS.strict, id, null))).toBe('decision_not_allowed');
      expect(events).toEqual(['refused']);
    });

    it.each([
      { note: 'the task expires before the TTL ends: capped at the task', expiresIn: 100, exp: 100 },
      { note: 'the task expiry has a fraction of a second: rounded down', expiresIn: 100.7, exp: 100 },
      { note: 'the task outlives the TTL: the TTL', expiresIn: AGENT_TTL + 1, exp: AGENT_TTL },
    ])('caps the token expiry by its task when $note', async ({ expiresIn, exp }) => {
      const id = await decided(CALLERS.strict, { expires_at: at(expiresIn) });
      const issued = await tokens.redeem(CALLERS.strict, id, null);
      expect(issued.exp - T0_S).toBe(exp);
      expect(issued.expires_in).toBe(exp);
    });
  });

  describe('introspect', () => {
    it('answers an active token with its claims', async () => {
      const issued = await tokens.redeem(CALLERS.strict, await decided(), null);
      const answer = await tokens.introspect(CALLERS.resourceServer, issued.access_token, 'trace-3');
      expect(answer).toEqual({ active: true, token_type: 'Bearer', ...decodePart(issued.access_token, 1) });
      expect(events).toEqual(['issued', 'introspected']);
      const chain = await store.decisionChain(answer.active ? answer.decision_id : '');
      expect(chain.map((e) => e.type)).toEqual(['decision', 'token.issued', 'token.used']);
    });

    it.each([
      { note: 'revoked by its caller', spoil: (t: Ctx) => t.tokens.revoke(CALLERS.strict, t.token, null) },
      { note: 'at exactly its expiry', spoil: (t: Ctx) => t.clock.set(AGENT_TTL) },
      { note: 'its task completed', spoil: (t: Ctx) => t.store.completeTask({ task_id: 'task-1', by: 'orchestrator', at: at(1) }) },
    ])('answers { active: false } for a token $note', async ({ spoil }) => {
      const token = (await tokens.redeem(CALLERS.strict, await decided(), null)).access_token;
      clock.set(AGENT_TTL - 1);
      expect(await active(token)).toBe(true); // alive until spoiled: the test below can fail
      await spoil({ tokens, token, clock, store });
      expect(await tokens.introspect(CALLERS.resourceServer, token, null)).toEqual({ active: false });
    });

    it.each([
      { note: 'signed by another issuer key', forge: async (claims: Claims) => signWith(await loadKeyRing(join(tempDir(), 'k'), { now: new Date(T0), maxTokenTtlSeconds: 3600 }), claims) },
      { note: 'ours but for another issuer', forge: (claims: Claims, ring: Ring) => signWith(ring, { ...claims, iss: 'https://elsewhere.test' }) },
      { note: 'ours but with a jti we never issued', forge: (claims: Claims, ring: Ring) => signWith(ring, { ...claims, jti: 'AAAAAAAAAAAAAAAAAAAAAA' }) },
      { note: 'not a JWT', forge: () => Promise.resolve('not-a-token') },
    ])('answers { active: false } for a token $note', async ({ forge }) => {
      const issued = await tokens.redeem(CALLERS.strict, await decided(), null);
      const ring = keys.ring;
      const claims = decodePart(issued.access_token, 1);
      expect(await active(await signWith(ring, claims))).toBe(true); // the same claims, signed by us, are active
      events.length = 0;

      expect(await tokens.introspect(CALLERS.resourceServer, await forge(claims, ring), null)).toEqual({ active: false });
      expect(events).toEqual(['introspected']);
    });
  });

  describe('revoke', () => {
    it('revokes a token only for the caller it was issued to', async () => {
      const issued = await tokens.redeem(CALLERS.strict, await decided(), null);
      events.length = 0;

      await tokens.revoke(CALLERS.other, issued.access_token, null);
      expect(await active(issued.access_token)).toBe(true);
      expect((await store.getToken(issued.jti))?.revoked_at).toBeNull();

      await tokens.revoke(CALLERS.strict, issued.access_token, null);
      expect(await active(issued.access_token)).toBe(false);
      expect(await store.getToken(issued.jti)).toMatchObject({ revoked_by: 'pep-strict', revoke_reason: 'revoked_by_caller' });

      await tokens.revoke(CALLERS.strict, issued.access_token, null); // already revoked: nothing happens
      expect(events).toEqual(['introspected', 'revoked', 'introspected']);
    });
  });

  it('counts its events in agentpdp_tokens_total when Metrics is its observer', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const observer: TokenObserver = metrics;
    const counted = new TokenService({
      store,
      keys,
      issuer: ISSUER,
      audienceFor: (i) => i,
      observer,
      now: clock.read,
    });
    const id = await decided();
    const issued = await counted.redeem(CALLERS.strict, id, null);
    await refusal(counted.redeem(CALLERS.strict, id, null));
    await counted.introspect(CALLERS.resourceServer, issued.access_token, null);
    await counted.revoke(CALLERS.strict, issued.access_token, null);
    await counted.introspect(CALLERS.resourceServer, issued.access_token, null);

    const values = Object.fromEntries((await metrics.tokens.get()).values.map((v) => [v.labels['event'], v.value]));
    expect(values).toEqual({ issued: 1, refused: 1, introspected: 2, revoked: 1 });
  });
});

type Claims = Record<string, unknown>;
type Ring = Parameters<typeof signWith>[0];
interface Ctx {
  tokens: TokenService;
  token: string;
  clock: Clock;
  store: Store;
}
