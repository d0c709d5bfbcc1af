import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { verifyAccessToken } from '../../src/issuer/verify-access-token.js';
import {
  guardTool,
  isPermissionDenied,
  PdpClient,
  PepError,
  PermissionDenied,
  TokenCache,
  type CachedToken,
  type TaskRef,
  type ToolGrant,
} from '../../src/pep/index.js';
import { KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';

let pdp: TestPdp;
let pep: PdpClient;
let orchestrator: PdpClient;
let taskSeq = 0;

beforeAll(async () => {
  pdp = await startTestPdp();
  pep = new PdpClient({ url: pdp.url, apiKey: KEYS.pep, retryDelayMs: 1 });
  orchestrator = new PdpClient({ url: pdp.url, apiKey: KEYS.orchestrator });
});
afterAll(async () => {
  await pdp.close();
});

/** A registered complaint_resolution (or other) task for support-resolver. */
async function task(type = 'complaint_resolution', context: Record<string, string> = { customer_id: '1234' }, agent = 'support-resolver'): Promise<string> {
  const id = `guard-${++taskSeq}`;
  await orchestrator.registerTask({ id, agent_id: agent, type, context, expires_in_seconds: 900 });
  return id;
}

interface TicketArgs {
  customerId: string;
}

/** A ticket tool whose calls are recorded; the guard decides what reaches it. */
function ticketTool(taskRef: FromTask, options: { scopes?: string[]; tokens?: TokenCache | false; ttlSeconds?: number; client?: PdpClient } = {}) {
  const calls: ToolGrant[] = [];
  const tool = vi.fn(async (_args: TicketArgs, grant: ToolGrant) => {
    calls.push(grant);
    return grant;
  });
  const guarded = guardTool({
    pdp: options.client ?? pep,
    agentId: 'support-resolver',
    task: taskRef,
    integration: 'crm',
    scopes: options.scopes ?? ['tickets:write'],
    resource: (a: TicketArgs) => ({ type: 'customer', id: a.customerId }),
    ...(options.tokens === undefined ? {} : { tokens: options.tokens }),
    ...(options.ttlSeconds === undefined ? {} : { ttlSeconds: options.ttlSeconds }),
  }, tool);
  return { guarded, tool, calls };
}
type FromTask = TaskRef | ((args: TicketArgs) => TaskRef);

describe('guardTool: the tool runs only with a token covering the call', () => {
  it('decides, redeems and hands the tool a token bound to the task, scopes and record', async () => {
    const id = await task();
    const { guarded, tool } = ticketTool(id);
    const grant = await guarded({ customerId: '1234' });
    expect(tool).toHaveBeenCalledOnce();
    expect(grant).toMatchObject({ scopes: ['tickets:write'], taskId: id, resource: { type: 'customer', id: '1234' }, reused: false });
    const claims = await verifyAccessToken(grant.accessToken, {
      jwks: pdp.pdp.keys.resolver, issuer: 'http://127.0.0.1:8181', audience: 'https://crm.example.com/api',
      integration: 'crm', scope: 'tickets:write', resource: { type: 'customer', id: '1234' },
    });
    expect(claims).toMatchObject({ sub: 'support-resolver', task_id: id, decision_id: grant.decisionId, jti: grant.jti });
    expect(grant.authorization).toBe(`Bearer ${grant.accessToken}`);
  });

  it('keeps the token out of logs and JSON', async () => {
    const { guarded } = ticketTool(await task());
    const grant = await guarded({ customerId: '1234' });
    expect(grant.accessToken.length).toBeGreaterThan(20);
    expect(JSON.stringify(grant)).not.toContain(grant.accessToken);
    expect(inspect(grant, { depth: 5 })).not.toContain(grant.accessToken);
    // With every option on, inspect would call the getters; the grant shows its facts and redacts the token.
    const everything = inspect(grant, { depth: 5, showHidden: true, getters: true });
    expect(everything).not.toContain(grant.accessToken);
    expect(everything).toContain(grant.decisionId);
    expect(everything).toContain("accessToken: '[redacted]'");
    expect(Object.keys(grant)).not.toContain('accessToken');
  });

  it.each<{ note: string; setup: () => Promise<FromTask>; args: TicketArgs; scopes?: string[]; strict?: boolean; outcome: string; reason: string; missing: string[] }>([
    { note: 'another customer than the task\'s (record binding)', setup: () => task(), args: { customerId: '5678' }, outcome: 'deny', reason: 'record_binding_mismatch', missing: ['tickets:write'] },
    { note: 'a scope on the deny list', setup: () => task(), args: { customerId: '1234' }, scopes: ['tickets:delete'], outcome: 'deny', reason: 'deny_scope', missing: ['tickets:delete'] },
    { note: 'a task of another agent', setup: () => task('categorize', { mailbox: 'a@example.com' }, 'mailbox-summarizer'), args: { customerId: '1234' }, outcome: 'deny', reason: 'task_agent_mismatch', missing: ['tickets:write'] },
    { note: 'a task nobody registered (caller that may not assert context)', setup: async () => 'never-registered', strict: true, args: { customerId: '1234' }, outcome: 'deny', reason: 'task_not_registered', missing: ['tickets:write'] },
    { note: 'a completed task', setup: async () => { const id = await task(); await orchestrator.completeTask(id); return id; }, args: { customerId: '1234' }, outcome: 'deny', reason: 'task_completed', missing: ['tickets:write'] },
    { note: 'a partial grant (triage caps tickets:write to tickets:read)', setup: () => task('triage'), args: { customerId: '1234' }, outcome: 'allow', reason: 'scopes_capped', missing: ['tickets:write'] },
  ])('denies $note with PermissionDenied, and never calls the tool', async ({ setup, args, scopes, strict, outcome, reason, missing }) => {
    const client = strict === true ? new PdpClient({ url: pdp.url, apiKey: KEYS.strictPep }) : pep;
    const { guarded, tool } = ticketTool(await setup(), { client, ...(scopes === undefined ? {} : { scopes }) });
    const error = await guarded(args).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(PermissionDenied);
    expect(error).toBeInstanceOf(PepError);
    const denied = error as PermissionDenied;
    expect(denied.code).toBe('permission_denied');
    expect(denied.outcome).toBe(outcome);
    expect(denied.decisionId).toMatch(/\S/);
    expect(denied.reasons.map((r) => r.code)).toContain(reason);
    expect(denied.missingScopes).toEqual(missing);
    expect(denied.message).toContain(reason);
    expect(tool).not.toHaveBeenCalled();
  });

  it('never redeems a partial grant: the decision is still unredeemed afterwards', async () => {
    const { guarded } = ticketTool(await task('triage'));
    const denied = (await guarded({ customerId: '1234' }).catch((e: unknown) => e)) as PermissionDenied;
    expect(isPermissionDenied(denied)).toBe(true);
    expect(denied.grantedScopes).toEqual(['tickets:read']);
    await expect(pep.redeem(denied.decisionId)).resolves.toMatchObject({ scope: 'tickets:read' });
  });
});

describe('guardTool: token reuse', () => {
  it('reuses one token for the same task, integration, scopes and record, and decides anew for another record', async () => {
    const id = await task('complaint_resolution', { customer_id: '1234' });
    const { guarded } = ticketTool(id);
    const first = await guarded({ customerId: '1234' });
    const second = await guarded({ customerId: '1234' });
    expect(second).toMatchObject({ reused: true, jti: first.jti, decisionId: first.decisionId });
    await expect(guarded({ customerId: '5678' })).rejects.toBeInstanceOf(PermissionDenied);
  });

  it('a shared cache shares tokens between guards; a different task gets its own', async () => {
    const tokens = new TokenCache();
    const [a, b] = [await task(), await task()];
    const one = await ticketTool(a, { tokens }).guarded({ customerId: '1234' });
    const two = await ticketTool(a, { tokens }).guarded({ customerId: '1234' });
    const other = await ticketTool(b, { tokens }).guarded({ customerId: '1234' });
    expect(two.jti).toBe(one.jti);
    expect(other.jti).not.toBe(one.jti);
    expect(tokens.forgetTask(a)).toBe(1);
    expect((await ticketTool(a, { tokens }).guarded({ customerId: '1234' })).jti).not.toBe(one.jti);
  });

  it('stops reusing a token once it is within the margin of its expiry', async () => {
    const clock = { now: new Date() };
    const tokens = new TokenCache({ marginSeconds: 30, now: () => clock.now });
    const { guarded } = ticketTool(await task(), { tokens, ttlSeconds: 60 });
    const first = await guarded({ customerId: '1234' });
    // expires_in counts from the issuer's iat, up to a second before the answer arrived: the cache counts a second less.
    expect(first.expiresAt.getTime() - clock.now.getTime()).toBe(59_000);
    clock.now = new Date(clock.now.getTime() + 28_000);
    expect((await guarded({ customerId: '1234' })).jti).toBe(first.jti);
    clock.now = new Date(clock.now.getTime() + 2_000);
    const renewed = await guarded({ customerId: '1234' });
    expect(renewed).toMatchObject({ reused: false });
    expect(renewed.jti).not.toBe(first.jti);
  });

  it('with tokens: false, every call is a new decision', async () => {
    const { guarded } = ticketTool(await task(), { tokens: false });
    const [a, b] = [await guarded({ customerId: '1234' }), await guarded({ customerId: '1234' })];
    expect(b.decisionId).not.toBe(a.decisionId);
  });

  it('concurrent calls with the same key share one decision', async () => {
    const { guarded } = ticketTool(await task());
    const grants = await Promise.all([1, 2, 3].map(() => guarded({ customerId: '1234' })));
    expect(new Set(grants.map((g) => g.decisionId)).size).toBe(1);
    expect(grants.filter((g) => !g.reused)).toHaveLength(1);
  });
});

describe('guardTool: fails closed', () => {
  it('a PDP stopped mid-workflow makes the next guarded call fail with pdp_unavailable, and the tool is never called', async () => {
    const own = await startTestPdp();
    const client = new PdpClient({ url: own.url, apiKey: KEYS.pep, timeoutMs: 500, retryDelayMs: 1 });
    await new PdpClient({ url: own.url, apiKey: KEYS.orchestrator }).registerTask({
      id: 'wf-1', agent_id: 'support-resolver', type: 'complaint_resolution', context: { customer_id: '1234' },
    });
    const step1 = ticketTool('wf-1', { client });
    const step2 = ticketTool('wf-1', { client, scopes: ['tickets:read'] });
    await step1.guarded({ customerId: '1234' });
    expect(step1.tool).toHaveBeenCalledOnce();

    await own.close();

    const error = await step2.guarded({ customerId: '1234' }).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(PepError);
    expect(error).not.toBeInstanceOf(PermissionDenied);
    expect(error).toMatchObject({ code: 'pdp_unavailable', retryable: true, message: expect.stringMatching(/did not answer decide: connection refused/) });
    expect(step2.tool).not.toHaveBeenCalled();
  });

  it('an allow whose redemption fails is token_unavailable, and the tool is never called', async () => {
    const failingRedeem: typeof fetch = (input, init) =>
      String(input).endsWith('/v1/tokens') ? Promise.reject(new TypeError('fetch failed')) : fetch(input, init);
    const client = new PdpClient({ url: pdp.url, apiKey: KEYS.pep, fetch: failingRedeem, retryDelayMs: 1 });
    const { guarded, tool } = ticketTool(await task(), { client });
    await expect(guarded({ customerId: '1234' })).rejects.toMatchObject({ code: 'token_unavailable' });
    expect(tool).not.toHaveBeenCalled();
  });

  it('a caller the PDP does not accept is pdp_error, not a denial', async () => {
    const stranger = new PdpClient({ url: pdp.url, apiKey: 'not-a-key' });
    const { guarded, tool } = ticketTool(await task(), { client: stranger });
    await expect(guarded({ customerId: '1234' })).rejects.toMatchObject({ code: 'pdp_error', pdpCode: 'unauthenticated', status: 401 });
    expect(tool).not.toHaveBeenCalled();
  });

  it('a task id derived from the arguments, and an asserted context for a caller allowed to assert one', async () => {
    const asserted = (a: TicketArgs): TaskRef => ({ id: `asserted-${a.customerId}`, type: 'complaint_resolution', context: { customer_id: a.customerId } });
    const { guarded } = ticketTool(asserted);
    await expect(guarded({ customerId: '777' })).resolves.toMatchObject({ taskId: 'asserted-777', resource: { id: '777' } });
  });

  it.each<{ note: string; declaration: Record<string, unknown> }>([
    { note: 'no pdp', declaration: { agentId: 'a', task: 't', integration: 'crm', scopes: ['s'] } },
    { note: 'no agent', declaration: { pdp: 'P', task: 't', integration: 'crm', scopes: ['s'] } },
    { note: 'no task', declaration: { pdp: 'P', agentId: 'a', integration: 'crm', scopes: ['s'] } },
    { note: 'no scopes', declaration: { pdp: 'P', agentId: 'a', task: 't', integration: 'crm' } },
    { note: 'a TTL of 0', declaration: { pdp: 'P', agentId: 'a', task: 't', integration: 'crm', scopes: ['s'], ttlSeconds: 0 } },
    { note: 'tokens that are not a TokenCache', declaration: { pdp: 'P', agentId: 'a', task: 't', integration: 'crm', scopes: ['s'], tokens: {} } },
  ])('refuses a declaration with $note', ({ declaration }) => {
    const withClient = { ...declaration, ...(declaration['pdp'] === 'P' ? { pdp: pep } : {}) };
    expect(() => guardTool(withClient as never, async () => 1)).toThrow(TypeError);
  });

  it('refuses, per call, scopes or a record that are not well formed, before asking the PDP', async () => {
    const guarded = guardTool({ pdp: pep, agentId: 'support-resolver', task: 't', integration: 'crm', scopes: (a: { s: string[] }) => a.s }, async () => 1);
    await expect(guarded({ s: [] })).rejects.toThrow(TypeError);
    const bad = guardTool({ pdp: pep, agentId: 'support-resolver', task: 't', integration: 'crm', scopes: ['x'], resource: () => ({ type: '', id: '1' }) }, async () => 1);
    await expect(bad(undefined)).rejects.toThrow(TypeError);
  });
});

describe('TokenCache: a token keep refuses', () => {
  const token = (n: number): CachedToken => ({ accessToken: `t${n}`, scopes: ['s'], expiresAt: new Date(Date.now() + 600_000), decisionId: `d${n}`, taskId: 'task', jti: `j${n}` });

  it('is neither kept nor shared with the calls waiting for it: each mints its own', async () => {
    const cache = new TokenCache();
    let minted = 0;
    const mint = async (): Promise<CachedToken> => {
      const n = ++minted;
      await new Promise((r) => setTimeout(r, 20));
      return token(n);
    };
    const keep = (t: CachedToken): boolean => t.jti === 'never';
    const got = await Promise.all([1, 2, 3].map(() => cache.obtain('k', 'task', mint, keep)));
    expect(new Set(got.map((g) => g.token.jti)).size).toBe(3);
    expect(got.every((g) => !g.reused)).toBe(true);
    expect(cache.size).toBe(0);
    // A kept one is shared, as before.
    const shared = await Promise.all([1, 2].map(() => cache.obtain('k2', 'task', mint)));
    expect(shared.map((g) => g.reused).sort()).toEqual([false, true]);
  });
});
