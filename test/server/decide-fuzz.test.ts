import { Ajv } from 'ajv';
import fc from 'fast-check';
import request from 'supertest';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { decisionRequestSchema, type DecisionRequestV1, type DecisionResponseV1 } from '../../src/wire/decision-v1.js';
import { OpenApiChecker } from '../support/openapi-check.js';
import { auth, KEYS, startTestPdp, TEST_CALLERS, type TestPdp } from '../support/pdp-harness.js';

/**
 * 10,000 random and malformed bodies at POST /v1/decide. Every answer is a 2xx or 4xx (never a 5xx), matches
 * the OpenAPI document, and is the one class of answer the request deserves; afterwards the process is healthy.
 * fast-check prints the seed and the shrunk counterexample on failure; replay with `{ seed, path }`.
 */

const RUNS = 10_000;
const BODY_LIMIT = 65536;

let t: TestPdp;
let api: OpenApiChecker;
beforeAll(async () => {
  t = await startTestPdp();
  api = await OpenApiChecker.fetch(t.url);
});
afterAll(async () => {
  await t.close();
});

// ---------------------------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------------------------

const AGENTS = ['code-review-agent', 'support-resolver', 'mailbox-summarizer', 'feedback-workflow', 'ghost-agent'];
const INTEGRATIONS = ['github', 'slack', 'crm', 'mail', 'database', 'translation', 'nope'];
const SCOPES = ['repo:read', 'repo:write', 'pr:read', 'issues:write', 'chat:write', 'admin', 'tickets:read', 'tickets:write', 'mail:read', 'translate', 'select:customer_feedback', '*'];

const contextValue = fc.oneof(fc.string({ maxLength: 24 }), fc.integer(), fc.boolean(), fc.double({ noNaN: true, noDefaultInfinity: true }));

const validRequest: fc.Arbitrary<DecisionRequestV1> = fc.record(
  {
    agent_id: fc.constantFrom(...AGENTS),
    task: fc.record(
      {
        id: fc.constantFrom('t1', 'task-42', 'a/b:c@d.e_f-g'),
        type: fc.constantFrom('complaint_resolution', 'triage', 'summarize', 'review'),
        context: fc.dictionary(fc.constantFrom('customer_id', 'mailbox', 'table', 'channel', '_x', '__proto__', 'constructor'), contextValue, { maxKeys: 4 }),
      },
      { requiredKeys: ['id'] },
    ),
    integration: fc.constantFrom(...INTEGRATIONS),
    scopes: fc.uniqueArray(fc.constantFrom(...SCOPES), { minLength: 1, maxLength: 5 }),
    resource: fc.record({ type: fc.constantFrom('customer', 'mailbox', 'repo'), id: fc.string({ minLength: 1, maxLength: 12 }) }),
    ttl_seconds: fc.integer({ min: 1, max: 86400 }),
  },
  { requiredKeys: ['agent_id', 'task', 'integration', 'scopes'] },
);

const nested = (depth: number, leaf: unknown): unknown => {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? { a: value } : [value];
  return value;
};

/** Values that do not belong where they are put: wrong types, huge, deep, odd unicode, numbers for strings. */
const badValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.string({ unit: 'binary', maxLength: 64 }), // lone surrogates included
  fc.string({ unit: 'grapheme', maxLength: 64 }),
  fc.string({ unit: fc.constantFrom('\u0000', '\u202e', '\ufeff', '"', '\\', '\ud800', '\udc00', 'é', '𝄞'), maxLength: 16 }),
  fc.integer(),
  fc.double(),
  fc.constantFrom(null, true, false, 0, -1, 1e308, -0, '', ' ', '0', [], {}),
  fc.array(fc.string({ maxLength: 8 }), { maxLength: 40 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 40 }),
  fc.integer({ min: 10, max: 3000 }).map((d) => nested(d, 'x')),
  fc.integer({ min: 100, max: 80_000 }).map((n) => 'x'.repeat(n)),
);

const FIELD_PATHS = [
  'agent_id', 'task', 'task.id', 'task.type', 'task.context', 'task.context.customer_id', 'integration', 'scopes',
  'scopes.0', 'scopes.40', 'resource', 'resource.id', 'resource.type', 'ttl_seconds', 'extra', 'task.extra',
  'resource.extra', '__proto__', 'task.__proto__',
] as const;

/** A valid request with one field replaced (or, for `undefined`, removed). */
const mutatedRequest = fc
  .tuple(validRequest, fc.array(fc.tuple(fc.constantFrom(...FIELD_PATHS), fc.option(badValue, { nil: undefined, freq: 8 })), { minLength: 1, maxLength: 3 }))
  .map(([req, edits]) => {
    const body = JSON.parse(JSON.stringify(req)) as Record<string, unknown>;
    // A shallow copy per edit: fc.constantFrom hands out the same `{}` / `[]` each time, and two edits putting that one
    // object under itself (`resource` = {}, then `resource.type` = the same {}) made a circle JSON cannot encode.
    for (const [path, value] of edits) setPath(body, path.split('.'), Array.isArray(value) ? [...value] : typeof value === 'object' && value !== null ? { ...value } : value);
    return body;
  });

function setPath(target: Record<string, unknown>, keys: string[], value: unknown): void {
  let node: unknown = target;
  for (const key of keys.slice(0, -1)) {
    if (typeof node !== 'object' || node === null) return;
    const record = node as Record<string, unknown>;
    if (typeof record[key] !== 'object' || record[key] === null) Object.defineProperty(record, key, { value: {}, enumerable: true, writable: true, configurable: true });
    node = record[key];
  }
  if (typeof node !== 'object' || node === null) return;
  const last = keys[keys.length - 1] ?? '';
  if (value === undefined) delete (node as Record<string, unknown>)[last];
  // defineProperty, so "__proto__" becomes an own field as it would from JSON.parse
  else Object.defineProperty(node, last, { value, enumerable: true, writable: true, configurable: true });
}

const encoder = new TextEncoder();
const json = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value) ?? 'null');

/** A body to send; fast-check prints a counterexample as its kind and text, not as a byte array. */
interface Sample {
  kind: string;
  bytes: Uint8Array;
}
const sample = (kind: string, bytes: Uint8Array): Sample =>
  Object.assign({ kind, bytes }, { [fc.toStringMethod]: () => `${kind}: ${JSON.stringify(new TextDecoder().decode(bytes).slice(0, 2000))}` });

/** Body bytes, and how they were made (for the failure report). */
const body: fc.Arbitrary<Sample> = fc.oneof(
  { weight: 8, arbitrary: validRequest.map((r) => sample('valid', json(r))) },
  { weight: 6, arbitrary: mutatedRequest.map((r) => sample('mutated', json(r))) },
  { weight: 2, arbitrary: fc.jsonValue().map((v) => sample('random JSON', json(v))) },
  {
    weight: 1,
    arbitrary: fc
      .anything({ withNullPrototype: true, withBoxedValues: true, withMap: false, withSet: false, withObjectString: true })
      .map((v) => sample('anything', json(v))),
  },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }).map((s) => sample('raw string', encoder.encode(s))) },
  {
    weight: 1,
    arbitrary: validRequest.chain((r) => {
      const text = JSON.stringify(r);
      return fc.integer({ min: 0, max: text.length - 1 }).map((n) => sample('truncated', encoder.encode(text.slice(0, n))));
    }),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((bytes) => sample('raw bytes', bytes)) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 40_000 }).map((n) => sample('deep array', encoder.encode(`${'['.repeat(n)}${']'.repeat(n)}`))) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: BODY_LIMIT - 300, max: BODY_LIMIT + 300 }).map((n) =>
      sample('near the size limit', json({ agent_id: 'code-review-agent', task: { id: 't1', context: { pad: 'x'.repeat(n) } }, integration: 'github', scopes: ['repo:read'] })),
    ),
  },
);

type Caller = 'pep' | 'strictPep' | 'none' | 'wrong' | 'orchestrator';
const caller = fc.constantFrom<Caller>('pep', 'pep', 'pep', 'pep', 'pep', 'pep', 'strictPep', 'strictPep', 'none', 'wrong', 'orchestrator');
const contentType = fc.constantFrom('application/json', 'application/json', 'application/json', 'application/json; charset=utf-8', 'application/merge-patch+json', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1');

// ---------------------------------------------------------------------------------------------------------------
// The oracle: which status and code each request deserves
// ---------------------------------------------------------------------------------------------------------------

const isDecisionRequest = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true }).compile<DecisionRequestV1>(decisionRequestSchema);
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const pepAgents = (id: string): readonly string[] => TEST_CALLERS.find((c) => c.id === id)?.agents ?? [];

/**
 * The server's order (src/server/request-pipeline.ts): authentication, then the role, then the body reader
 * (media type, charset, size, syntax; JSON only on this route, any other media type reads as no body), then the
 * schema, then the agent and task checks.
 */
function expected(who: Caller, type: string, bytes: Uint8Array): { statuses: number[]; codes: string[] } {
  const one = (status: number, ...codes: string[]) => ({ statuses: [status], codes });
  if (who === 'none' || who === 'wrong') return one(401, 'unauthenticated');
  if (who === 'orchestrator') return one(403, 'forbidden_role');
  const isJson = /^application\/(json|[^;]+\+json)/.test(type);
  if (isJson && type.includes('latin1')) return one(415, 'unsupported_media_type');
  if (isJson && bytes.length > BODY_LIMIT) return one(400, 'body_too_large');
  const parsed = isJson ? parseLikeExpressJson(bytes) : { ok: true as const, value: undefined };
  if (!parsed.ok) return one(400, 'invalid_request');
  if (!isDecisionRequest(parsed.value) || hasLoneSurrogate(parsed.value)) return one(400, 'invalid_request');
  const request = parsed.value;
  if (who === 'pep') return pepAgents('pep-1').includes(request.agent_id) ? one(200) : one(403, 'forbidden_agent');
  if (!pepAgents('pep-strict').includes(request.agent_id)) return one(403, 'forbidden_agent');
  if (request.task.type !== undefined || request.task.context !== undefined) return one(403, 'context_assertion_forbidden');
  return one(200);
}

/** express.json: strict (an object or array at the top), UTF-8 with a BOM dropped, an empty body read as {}. */
function parseLikeExpressJson(bytes: Uint8Array): { ok: true; value: unknown } | { ok: false } {
  const text = new TextDecoder('utf-8', { ignoreBOM: false }).decode(bytes);
  if (text.length === 0) return { ok: true, value: {} };
  if (!/^[\x20\x09\x0a\x0d]*[{[]/.test(text)) return { ok: false };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

function hasLoneSurrogate(value: unknown): boolean {
  if (typeof value === 'string') return LONE_SURROGATE.test(value);
  if (Array.isArray(value)) return value.some(hasLoneSurrogate);
  if (typeof value === 'object' && value !== null) return Object.entries(value).some(([k, v]) => LONE_SURROGATE.test(k) || hasLoneSurrogate(v));
  return false;
}

const headersFor = (who: Caller): Record<string, string> =>
  who === 'none' ? {} : who === 'wrong' ? auth('not-a-configured-key') : auth(KEYS[who]);

// ---------------------------------------------------------------------------------------------------------------

it(
  `answers ${RUNS} random and malformed bodies with 2xx/4xx only, each as deserved, and stays healthy`,
  async () => {
    const seen = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(caller, contentType, body, async (who, type, { bytes }) => {
        const res = await fetch(`${t.url}/v1/decide`, { method: 'POST', headers: { ...headersFor(who), 'content-type': type }, body: bytes });
        const answer = (await res.json()) as DecisionResponseV1 & { error?: { code: string } };
        seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
        expect(res.status).toBeLessThan(500);
        const want = expected(who, type, bytes);
        expect(want.statuses).toContain(res.status);
        if (res.status !== 200) expect(want.codes).toContain(answer.error?.code);
        api.expectResponseMatches('POST', '/v1/decide', res.status, answer);
        if (res.status === 200) {
          expect(answer.allow).toBe(answer.outcome === 'allow');
          if (who === 'strictPep') expect(answer).toMatchObject({ allow: false, reasons: [{ code: 'task_not_registered' }] });
        }
      }),
      { numRuns: RUNS },
    );

    // Every class of answer was exercised, not just the easy ones.
    for (const status of [200, 400, 401, 403, 415]) expect(seen.get(status) ?? 0).toBeGreaterThan(0);
    expect(seen.get(200) ?? 0).toBeGreaterThan(RUNS / 25);

    await request(t.url).get('/healthz').expect(200, { status: 'ok' });
    await request(t.url).get('/readyz').expect(200);
    const after = await request(t.url)
      .post('/v1/decide')
      .set(auth(KEYS.pep))
      .send({ agent_id: 'code-review-agent', task: { id: 't1' }, integration: 'github', scopes: ['issues:write'] })
      .expect(200);
    expect(after.body).toMatchObject({ allow: true, granted_scopes: ['issues:read'] });
    expect(t.pdp.store.stats()).toMatchObject({ failed_transactions: 0, queued: 0 });
  },
  180_000,
);
