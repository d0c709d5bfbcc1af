import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isPepError, PdpClient, PepError, type PepErrorCode } from '../../src/pep/index.js';
import { ALLOW_DECISION, closedPort, startFakePdp, TOKEN_RESPONSE, type FakePdp, type Reply } from './fake-pdp.js';

const API_KEY = 'secret-pep-key-0123456789';
const DECIDE_BODY = {
  agent_id: 'support-resolver', task: { id: 'task-42' }, integration: 'crm', scopes: ['tickets:write'],
  resource: { type: 'customer', id: '1234' },
};

let fake: FakePdp;
beforeAll(async () => {
  fake = await startFakePdp();
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  fake.requests.length = 0;
});

const client = (overrides: Partial<ConstructorParameters<typeof PdpClient>[0]> = {}) =>
  new PdpClient({ url: fake.url, apiKey: API_KEY, timeoutMs: 300, maxAttempts: 3, retryDelayMs: 1, ...overrides });

type Call = 'decide' | 'redeem' | 'registerTask' | 'completeTask' | 'introspect';
const PATHS: Record<Call, string> = {
  decide: '/v1/decide',
  redeem: '/v1/tokens',
  registerTask: '/v1/tasks',
  completeTask: '/v1/tasks/task-42/complete',
  introspect: '/v1/introspect',
};
const invoke = (c: PdpClient, call: Call): Promise<unknown> => {
  switch (call) {
    case 'decide': return c.decide(DECIDE_BODY);
    case 'redeem': return c.redeem('dec-1');
    case 'registerTask': return c.registerTask({ id: 'task-42', agent_id: 'support-resolver', type: 'complaint_resolution' });
    case 'completeTask': return c.completeTask('task-42');
    case 'introspect': return c.introspect('header.payload.signature');
  }
};

const unavailable: Reply = { status: 503, json: { error: { code: 'store_unavailable', message: 'the PDP could not answer this request; nothing was allowed' } } };
const TASK = { id: 'task-42', agent_id: 'support-resolver', type: 'complaint_resolution', context: {}, status: 'active' };

describe('PdpClient: retries only where repeating is safe, and fails closed with a code', () => {
  it.each<{ note: string; call: Call; replies: Reply[]; code: PepErrorCode; attempts: number; pdpCode?: string; status?: number }>([
    { note: 'decide is retried on 503, up to maxAttempts', call: 'decide', replies: [unavailable], code: 'pdp_unavailable', attempts: 3, pdpCode: 'store_unavailable', status: 503 },
    { note: 'decide is retried on timeout', call: 'decide', replies: [{ hang: true }], code: 'pdp_unavailable', attempts: 3 },
    { note: 'decide is not retried on a 4xx', call: 'decide', replies: [{ status: 403, json: { error: { code: 'forbidden_agent', message: 'no' } } }], code: 'pdp_error', attempts: 1, pdpCode: 'forbidden_agent', status: 403 },
    { note: 'decide is not retried on a 500', call: 'decide', replies: [{ status: 500, json: { error: { code: 'internal', message: 'x' } } }], code: 'pdp_error', attempts: 1, pdpCode: 'internal' },
    { note: 'an unknown API key is pdp_error, not a denial', call: 'decide', replies: [{ status: 401, json: { error: { code: 'unauthenticated', message: 'missing or invalid API key' } } }], code: 'pdp_error', attempts: 1, pdpCode: 'unauthenticated' },
    { note: 'a redirect is not followed', call: 'decide', replies: [{ status: 302, headers: { location: 'http://127.0.0.1:1/elsewhere' } }], code: 'pdp_error', attempts: 1 },
    { note: 'a 200 that is not JSON', call: 'decide', replies: [{ status: 200, text: '<html>proxy</html>' }], code: 'pdp_error', attempts: 1 },
    { note: 'a 200 whose allow and outcome disagree', call: 'decide', replies: [{ status: 200, json: { ...ALLOW_DECISION, outcome: 'deny' } }], code: 'pdp_error', attempts: 1 },
    { note: 'a 200 with allow as a string', call: 'decide', replies: [{ status: 200, json: { ...ALLOW_DECISION, allow: 'true' } }], code: 'pdp_error', attempts: 1 },
    { note: 'redeem is not retried on 503', call: 'redeem', replies: [{ status: 503, json: { error: { code: 'issuer_unavailable', message: '' } } }], code: 'token_unavailable', attempts: 1, pdpCode: 'issuer_unavailable' },
    { note: 'redeem is not retried on timeout (it may have reached the server)', call: 'redeem', replies: [{ hang: true }], code: 'token_unavailable', attempts: 1 },
    { note: 'redeem of a spent decision', call: 'redeem', replies: [{ status: 409, json: { error: { code: 'decision_already_redeemed', message: 'once' } } }], code: 'token_unavailable', attempts: 1, pdpCode: 'decision_already_redeemed' },
    { note: 'a token answer without a token', call: 'redeem', replies: [{ status: 201, json: { ...TOKEN_RESPONSE, access_token: '' } }], code: 'token_unavailable', attempts: 1 },
    { note: 'register is not retried on 503', call: 'registerTask', replies: [unavailable], code: 'pdp_unavailable', attempts: 1 },
    { note: 'complete is not retried on timeout', call: 'completeTask', replies: [{ hang: true }], code: 'pdp_unavailable', attempts: 1 },
    { note: 'introspect is retried on 503', call: 'introspect', replies: [unavailable], code: 'pdp_unavailable', attempts: 3 },
  ])('$note', async ({ call, replies, code, attempts, pdpCode, status }) => {
    fake.script(PATHS[call], ...replies);
    const error = await invoke(client(), call).then(() => undefined, (e: unknown) => e);
    expect(isPepError(error)).toBe(true);
    const e = error as PepError;
    expect(e.code).toBe(code);
    if (pdpCode !== undefined) expect(e.pdpCode).toBe(pdpCode);
    if (status !== undefined) expect(e.status).toBe(status);
    expect(fake.count(PATHS[call])).toBe(attempts);
    expect(`${e.message} ${String(e.cause)}`).not.toContain(API_KEY);
  });

  it.each<{ note: string; call: Call; replies: Reply[]; attempts: number }>([
    { note: 'decide succeeds on the third attempt after two 503s', call: 'decide', replies: [unavailable, unavailable, { status: 200, json: ALLOW_DECISION }], attempts: 3 },
    { note: 'decide succeeds after a timeout', call: 'decide', replies: [{ hang: true }, { status: 200, json: ALLOW_DECISION }], attempts: 2 },
    { note: 'introspect succeeds after a 503', call: 'introspect', replies: [unavailable, { status: 200, json: { active: false } }], attempts: 2 },
    { note: 'redeem answers once', call: 'redeem', replies: [{ status: 201, json: TOKEN_RESPONSE }], attempts: 1 },
    { note: 'register answers 201', call: 'registerTask', replies: [{ status: 201, json: TASK }], attempts: 1 },
    { note: 'complete answers 200', call: 'completeTask', replies: [{ status: 200, json: { ...TASK, status: 'completed', revoked_tokens: 2 } }], attempts: 1 },
  ])('$note', async ({ call, replies, attempts }) => {
    fake.script(PATHS[call], ...replies);
    await expect(invoke(client(), call)).resolves.toBeDefined();
    expect(fake.count(PATHS[call])).toBe(attempts);
  });

  it('an unreachable PDP is pdp_unavailable for a decision and token_unavailable for a redemption', async () => {
    const down = new PdpClient({ url: `http://127.0.0.1:${await closedPort()}`, apiKey: API_KEY, retryDelayMs: 1 });
    await expect(down.decide(DECIDE_BODY)).rejects.toMatchObject({ code: 'pdp_unavailable', message: expect.stringContaining('connection refused') });
    await expect(down.redeem('dec-1')).rejects.toMatchObject({ code: 'token_unavailable', message: expect.stringContaining('connection refused') });
  });

  it('sends the API key only as a bearer header, and not to the public metadata endpoint', async () => {
    fake.script('/v1/decide', { status: 200, json: ALLOW_DECISION });
    fake.script('/.well-known/oauth-authorization-server', { status: 200, json: { issuer: 'http://pdp', jwks_uri: 'http://pdp/.well-known/jwks.json' } });
    const c = client();
    await c.decide(DECIDE_BODY);
    await c.metadata();
    const [decide, metadata] = fake.requests;
    expect(decide?.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(JSON.parse(decide?.body ?? '')).toEqual(DECIDE_BODY);
    expect(metadata?.headers.authorization).toBeUndefined();
    expect(c.jwksUri).toBe(`${fake.url}/.well-known/jwks.json`);
  });

  it('returns a deny as an answer (enforcing it is the guard\'s job)', async () => {
    const deny = { ...ALLOW_DECISION, allow: false, outcome: 'deny', granted_scopes: [], reasons: [{ code: 'record_binding_mismatch', message: 'no' }], redeemable_until: null };
    fake.script('/v1/decide', { status: 200, json: deny });
    await expect(client().decide(DECIDE_BODY)).resolves.toMatchObject({ allow: false, outcome: 'deny' });
  });

  it.each([
    { note: 'another agent', change: { agent_id: 'evil' }, field: 'agent_id' },
    { note: 'another integration', change: { integration: 'other' }, field: 'integration' },
    { note: 'another task', change: { task_id: 'zzz' }, field: 'task_id' },
    { note: 'another record', change: { resource: { type: 'customer', id: '999' } }, field: 'resource' },
    { note: 'no record', change: { resource: null }, field: 'resource' },
  ])('an allow about $note than the one asked is not an answer to this request: pdp_error naming $field', async ({ change, field }) => {
    fake.script('/v1/decide', { status: 200, json: { ...ALLOW_DECISION, ...change } });
    await expect(client().decide(DECIDE_BODY)).rejects.toMatchObject({ code: 'pdp_error', message: expect.stringContaining(`"${field}"`) });
  });

  it.each<{ note: string; options: Record<string, unknown> }>([
    { note: 'a user and password in the URL (never sent, would leak in errors)', options: { url: 'http://u:pw@127.0.0.1', apiKey: 'k' } },
    { note: 'no url', options: { apiKey: 'k' } },
    { note: 'not a URL', options: { url: 'pdp', apiKey: 'k' } },
    { note: 'not http(s)', options: { url: 'ftp://127.0.0.1', apiKey: 'k' } },
    { note: 'a query', options: { url: 'http://127.0.0.1/?x=1', apiKey: 'k' } },
    { note: 'no API key', options: { url: 'http://127.0.0.1' } },
    { note: 'an API key with a space', options: { url: 'http://127.0.0.1', apiKey: 'a b' } },
    { note: 'zero attempts', options: { url: 'http://127.0.0.1', apiKey: 'k', maxAttempts: 0 } },
    { note: 'a fractional timeout', options: { url: 'http://127.0.0.1', apiKey: 'k', timeoutMs: 0.5 } },
  ])('refuses misuse at construction: $note', ({ options }) => {
    expect(() => new PdpClient(options as never)).toThrow(TypeError);
  });

  it('PepError refuses a code outside its union', () => {
    expect(() => new PepError('nope' as PepErrorCode, 'x')).toThrow(TypeError);
    expect(new PepError('pdp_unavailable', 'x').retryable).toBe(true);
    expect(new PepError('permission_denied', 'x').retryable).toBe(false);
  });
});
