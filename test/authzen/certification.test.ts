/**
 * The OpenID AuthZEN Authorization API 1.0 certification scenario (openid/authzen,
 * `certification/authorization-api-1_0-scenario.md`) against the real server (`startTestPdp`: real bundle, store,
 * HTTP listener on loopback) with the example pack (examples/packs/authzen-certification) routed for subjects of
 * type `user`. One `it` per test of the scenario's Test ID Matrix, named by its id and title, grouped by level and
 * sub-level; where a matrix id has numbered sub-tests (C-2.4.1 …) each is its own `it`. Requests are the scenario's,
 * byte for byte; assertions are what its "Expected" and "The harness validates" say, nothing weaker. Then the
 * transport requirements (C-5), the metadata (C-6), and the bad input of issue 21 for this door.
 *
 * Deviation, stated once: the scenario speaks of HTTPS (C-5.1, C-6.3, C-6.5). This server is plain HTTP on
 * 127.0.0.1, so the metadata URLs are asserted to be exactly this server's `http://127.0.0.1:<port>` URLs (same shape:
 * an absolute URL, no query, no fragment); nothing else is relaxed.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PdpClient } from '../../src/pep/index.js';
import { packBundle } from '../support/pack-bundle.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';

let pdp: TestPdp;

beforeAll(async () => {
  pdp = await startTestPdp({
    bundle: await packBundle(['examples/packs/authzen-certification']),
    // The issuer is the server's own URL (a free port picked first); `authzen.pdp_url` defaults to it (through
    // `escalation.public_url`), so the metadata's policy_decision_point is the base URL the tests discover from
    // (C-6.5). The harness cannot know the port before it starts, so pdp_url is not written out here; the first
    // Discovery test checks that the config holds exactly this URL.
    issuerIsUrl: true,
    config: {
      authzen: { subjects: { user: { decision: 'authzen/certification/decision', entities: 'authzen/certification/entities' } } },
    },
  });
});
afterAll(async () => {
  await pdp?.close();
});

// --- Calling the server ----------------------------------------------------------------------------------------

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed body; undefined when it is empty (a body that is not JSON fails the test where it is parsed). */
  body: Record<string, any> | undefined;
}

async function send(method: 'GET' | 'POST', path: string, init: { body?: string | Uint8Array; headers?: Record<string, string> } = {}): Promise<Reply> {
  const res = await fetch(`${pdp.url}${path}`, { method, headers: { ...auth(KEYS.pep), ...init.headers }, ...(init.body === undefined ? {} : { body: init.body }) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: text === '' ? undefined : (JSON.parse(text) as Record<string, any>) };
}

/** POST a JSON value (as the harness does: `Content-Type: application/json`). */
const post = (path: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> =>
  send('POST', path, { body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });

/** POST raw bytes, with the content type given (or none: a byte array gets no default content type from fetch). */
const postRaw = (path: string, raw: string, contentType: string | undefined, headers: Record<string, string> = {}): Promise<Reply> =>
  send('POST', path, { body: new TextEncoder().encode(raw), headers: { ...(contentType === undefined ? {} : { 'content-type': contentType }), ...headers } });

const EVALUATION = '/access/v1/evaluation';
const EVALUATIONS = '/access/v1/evaluations';
const SEARCH = { subject: '/access/v1/search/subject', resource: '/access/v1/search/resource', action: '/access/v1/search/action' } as const;
const POST_ENDPOINTS = [EVALUATION, EVALUATIONS, SEARCH.subject, SEARCH.resource, SEARCH.action] as const;

// --- What the harness validates ----------------------------------------------------------------------------------

function expectJsonContentType(res: Reply): void {
  // `application/json`, with at most parameters (a charset) after it.
  expect(res.headers.get('content-type')).toMatch(/^application\/json\s*(;|$)/);
}

/** C-2.3: HTTP 200, JSON, a boolean `decision`, a `context` that is an object when present; the value when fixed. */
function expectDecision(res: Reply, decision?: boolean): void {
  expect(res.status, res.text).toBe(200);
  expectJsonContentType(res);
  expect(res.body).toBeDefined();
  expect(typeof res.body!['decision']).toBe('boolean');
  if ('context' in res.body!) expect(isObject(res.body!['context'])).toBe(true);
  if (decision !== undefined) expect(res.body!['decision']).toBe(decision);
}

/**
 * C-3.3: HTTP 200, JSON, an `evaluations` array as long as the request's, each a decision object (C-3.3.3), in
 * request order: `expected[i]` is item i's decision, or undefined where the fixture does not fix it.
 */
function expectEvaluations(res: Reply, expected: ReadonlyArray<boolean | undefined>): Array<Record<string, any>> {
  expect(res.status, res.text).toBe(200);
  expectJsonContentType(res);
  const items = res.body?.['evaluations'] as unknown;
  expect(Array.isArray(items)).toBe(true);
  const list = items as Array<Record<string, any>>;
  expect(list).toHaveLength(expected.length);
  list.forEach((item, i) => {
    expect(isObject(item)).toBe(true);
    expect(typeof item['decision'], `evaluations[${i}].decision`).toBe('boolean');
    if ('context' in item) expect(isObject(item['context'])).toBe(true);
  });
  expect(list.map((item, i) => (expected[i] === undefined ? undefined : item['decision']))).toEqual([...expected]);
  return list;
}

/**
 * C-4.2.1, C-4.3.1, C-4.4.1 and C-4.5: HTTP 200, JSON, a `results` array whose elements carry `type` (the requested
 * type) and `id`, or `name` for actions; a `page`, when present, is an object with a string `next_token` and the
 * optional members of C-4.5.3 well typed. Answers the ids (or names) found.
 */
function expectResults(res: Reply, kind: 'subject' | 'resource' | 'action', type?: string): string[] {
  expect(res.status, res.text).toBe(200);
  expectJsonContentType(res);
  const results = res.body?.['results'] as unknown;
  expect(Array.isArray(results)).toBe(true);
  const list = results as Array<Record<string, unknown>>;
  for (const element of list) {
    expect(isObject(element)).toBe(true);
    if (kind === 'action') {
      expect(typeof element['name']).toBe('string');
    } else {
      expect(typeof element['type']).toBe('string');
      expect(typeof element['id']).toBe('string');
      expect(element['type']).toBe(type);
    }
  }
  expectPageFormat(res);
  return list.map((e) => (kind === 'action' ? (e['name'] as string) : (e['id'] as string)));
}

/** C-4.5.1, C-4.5.3: `page`, if present, is an object; `next_token` a string; `count`, `total`, `properties` typed. */
function expectPageFormat(res: Reply): void {
  const page = res.body?.['page'] as unknown;
  if (page === undefined) return;
  expect(isObject(page)).toBe(true);
  const p = page as Record<string, unknown>;
  if ('next_token' in p) expect(typeof p['next_token']).toBe('string');
  if ('count' in p) {
    expect(Number.isSafeInteger(p['count'])).toBe(true);
    expect(p['count']).toBe((res.body!['results'] as unknown[]).length);
  }
  if ('total' in p) expect(Number.isSafeInteger(p['total'])).toBe(true);
  if ('properties' in p) expect(isObject(p['properties'])).toBe(true);
}

/** HTTP 400 (C-2.4, C-4.7, C-5.3), with our error body naming the problem by code. */
function expectBadRequest(res: Reply, code = 'invalid_request'): void {
  expect(res.status, res.text).toBe(400);
  expectJsonContentType(res);
  expect(res.body?.['error']?.['code']).toBe(code);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const sorted = (xs: readonly string[]): string[] => [...xs].sort();

// --- The scenario's requests -------------------------------------------------------------------------------------

const harnessContext = { time: '2025-06-27T18:03-07:00', ip: '192.168.1.1' };

/** C-2.2.1, fixture rule 1. */
const ALICE_READS_RECORD_1 = { subject: { type: 'user', id: 'alice' }, action: { name: 'read' }, resource: { type: 'record', id: 'record-1' } };
/** C-2.2.2, fixture rule 4. */
const BOB_WRITES_RECORD_1 = { subject: { type: 'user', id: 'bob' }, action: { name: 'write' }, resource: { type: 'record', id: 'record-1' } };
/** C-4.2.1 (S1). */
const SUBJECT_SEARCH = { subject: { type: 'user' }, action: { name: 'read' }, resource: { type: 'record', id: 'record-1' } };
/** C-4.3.1 (S2). */
const RESOURCE_SEARCH = { subject: { type: 'user', id: 'alice' }, action: { name: 'read' }, resource: { type: 'record' } };
/** C-4.4.1 (S3). */
const ACTION_SEARCH = { subject: { type: 'user', id: 'alice' }, resource: { type: 'record', id: 'record-1' } };

// =================================================================================================================

describe('Basic: Access Evaluation API (C-2)', () => {
  describe('Basic Core', () => {
    it('C-2.2.1 fixture request -- permit decision', async () => {
      expectDecision(await post(EVALUATION, ALICE_READS_RECORD_1), true);
    });

    it('C-2.2.2 fixture request -- deny decision', async () => {
      expectDecision(await post(EVALUATION, BOB_WRITES_RECORD_1), false);
    });

    it('C-2.2.3 request with optional context', async () => {
      const res = await post(EVALUATION, {
        subject: { type: 'user', id: 'alice' },
        action: { name: 'read' },
        resource: { type: 'record', id: 'record-1' },
        context: { time: '2025-06-27T18:03-07:00', ip: '192.168.1.1' },
      });
      expectDecision(res, true);
    });

    it('C-2.2.8 request with additional properties', async () => {
      const res = await post(EVALUATION, {
        subject: { type: 'user', id: 'alice', properties: { department: 'Sales', role: 'manager' } },
        action: { name: 'read', properties: { method: 'GET' } },
        resource: { type: 'record', id: 'record-1', properties: { status: 'active', owner: 'bob' } },
      });
      expectDecision(res, true);
    });

    it('C-2.2.9 request with unknown fields', async () => {
      const res = await post(EVALUATION, {
        subject: { type: 'user', id: 'alice' },
        action: { name: 'read' },
        resource: { type: 'record', id: 'record-1' },
        foo: 'bar',
        futureField: { nested: true },
      });
      expectDecision(res, true);
    });

    describe('C-2.3 Response Format', () => {
      it('C-2.3.1 decision field is required -- valid JSON with a boolean decision, for a permit and for a deny', async () => {
        for (const request of [ALICE_READS_RECORD_1, BOB_WRITES_RECORD_1]) {
          const res = await post(EVALUATION, request);
          expect(() => JSON.parse(res.text) as unknown).not.toThrow();
          expect(res.body).toHaveProperty('decision');
          expectDecision(res);
        }
      });

      it('C-2.3.2 response context is permitted -- when present it is a JSON object', async () => {
        // The pack's deny carries a context (a reason), its permit none: both shapes are checked.
        const deny = await post(EVALUATION, BOB_WRITES_RECORD_1);
        expectDecision(deny, false);
        expect(isObject(deny.body!['context'])).toBe(true);
        const permit = await post(EVALUATION, ALICE_READS_RECORD_1);
        expectDecision(permit, true);
        if ('context' in permit.body!) expect(isObject(permit.body!['context'])).toBe(true);
      });
    });

    describe('C-2.4 Error Handling', () => {
      it.each([
        { note: 'missing subject', body: { action: { name: 'read' }, resource: { type: 'record', id: 'record-1' } }, path: 'subject' },
        { note: 'missing action', body: { subject: { type: 'user', id: 'alice' }, resource: { type: 'record', id: 'record-1' } }, path: 'action' },
        { note: 'missing resource', body: { subject: { type: 'user', id: 'alice' }, action: { name: 'read' } }, path: 'resource' },
      ])('C-2.4.1 missing required fields -- $note: HTTP 400', async ({ body, path }) => {
        const res = await post(EVALUATION, body);
        expectBadRequest(res);
        expect(res.body!['error'].details.map((d: { path: string }) => d.path)).toEqual([path]);
      });

      it.each([
        { note: 'subject missing type', body: { subject: { id: 'alice' }, action: { name: 'read' }, resource: { type: 'record', id: 'record-1' } }, path: 'subject.type' },
        { note: 'subject missing id', body: { subject: { type: 'user' }, action: { name: 'read' }, resource: { type: 'record', id: 'record-1' } }, path: 'subject.id' },
        { note: 'action missing name', body: { subject: { type: 'user', id: 'alice' }, action: {}, resource: { type: 'record', id: 'record-1' } }, path: 'action.name' },
        { note: 'resource missing type', body: { subject: { type: 'user', id: 'alice' }, action: { name: 'read' }, resource: { id: 'record-1' } }, path: 'resource.type' },
        { note: 'resource missing id', body: { subject: { type: 'user', id: 'alice' }, action: { name: 'read' }, resource: { type: 'record' } }, path: 'resource.id' },
      ])('C-2.4.2 missing required sub-fields -- $note: HTTP 400', async ({ body, path }) => {
        const res = await post(EVALUATION, body);
        expectBadRequest(res);
        expect(res.body!['error'].details.map((d: { path: string }) => d.path)).toEqual([path]);
      });

      it.each([
        { note: 'text/plain', contentType: 'text/plain' },
        { note: 'application/x-www-form-urlencoded', contentType: 'application/x-www-form-urlencoded' },
        { note: 'application/xml', contentType: 'application/xml' },
        { note: 'no Content-Type header', contentType: undefined },
      ])('C-2.4.3 invalid content type -- a valid JSON body sent as $note: HTTP 400', async ({ contentType }) => {
        expectBadRequest(await postRaw(EVALUATION, JSON.stringify(ALICE_READS_RECORD_1), contentType));
      });

      it.each([
        { note: 'truncated object', raw: '{"subject":' },
        { note: 'trailing comma', raw: '{"subject": {"type": "user", "id": "alice"},}' },
        { note: 'single quotes', raw: "{'subject': {'type': 'user', 'id': 'alice'}}" },
        { note: 'not JSON at all', raw: 'subject=alice&action=read' },
      ])('C-2.4.4 malformed JSON -- $note: HTTP 400', async ({ raw }) => {
        expectBadRequest(await postRaw(EVALUATION, raw, 'application/json'));
      });

      it('C-2.4.5 empty request body: HTTP 400', async () => {
        expectBadRequest(await postRaw(EVALUATION, '', 'application/json'));
      });

      it.each([
        { note: 'subject is string instead of object', body: { subject: 'alice', action: { name: 'read' }, resource: { type: 'record', id: 'record-1' } }, path: 'subject' },
        { note: 'action.name is number instead of string', body: { subject: { type: 'user', id: 'alice' }, action: { name: 123 }, resource: { type: 'record', id: 'record-1' } }, path: 'action.name' },
      ])('C-2.4.6 invalid field types -- $note: HTTP 400', async ({ body, path }) => {
        const res = await post(EVALUATION, body);
        expectBadRequest(res);
        expect(res.body!['error'].details.map((d: { path: string }) => d.path)).toEqual([path]);
      });
    });

    describe('C-2.5 Header Handling', () => {
      it('C-2.5.1 X-Request-ID echo', async () => {
        const id = randomUUID();
        const res = await post(EVALUATION, ALICE_READS_RECORD_1, { 'x-request-id': id });
        expectDecision(res, true);
        expect(res.headers.get('x-request-id')).toBe(id);
      });

      it('C-2.5.2 X-Request-ID absent -- the PDP does not fail', async () => {
        const res = await post(EVALUATION, ALICE_READS_RECORD_1);
        expectDecision(res, true);
      });
    });

    it('C-2.6 idempotency -- the same fixture request sent consecutively gets the same decision each time', async () => {
      for (const [request, decision] of [[ALICE_READS_RECORD_1, true], [BOB_WRITES_RECORD_1, false]] as const) {
        const answers: boolean[] = [];
        for (let i = 0; i < 5; i++) {
          const res = await post(EVALUATION, request);
          expectDecision(res);
          answers.push(res.body!['decision'] as boolean);
        }
        expect(answers).toEqual(Array(5).fill(decision));
      }
    });
  });

  describe('Basic Properties', () => {
    it('C-2.2.4 fixture request -- deny based on properties', async () => {
      const res = await post(EVALUATION, {
        subject: { type: 'user', id: 'alice' },
        action: { name: 'write' },
        resource: { type: 'record', id: 'record-2', properties: { status: 'archived' } },
      });
      expectDecision(res, false);
    });

    it('C-2.2.5 fixture request -- permit based on subject properties', async () => {
      const res = await post(EVALUATION, {
        subject: { type: 'user', id: 'bob', properties: { role: 'admin' } },
        action: { name: 'write' },
        resource: { type: 'record', id: 'record-2', properties: { status: 'archived' } },
      });
      expectDecision(res, true);
    });

    it('C-2.2.6 fixture request -- permit based on action properties', async () => {
      const res = await post(EVALUATION, {
        subject: { type: 'user', id: 'alice' },
        action: { name: 'delete', properties: { soft: true } },
        resource: { type: 'record', id: 'record-1' },
      });
      expectDecision(res, true);
    });

    it('C-2.2.7 fixture request -- deny based on action properties', async () => {
      const res = await post(EVALUATION, {
        subject: { type: 'user', id: 'alice' },
        action: { name: 'delete', properties: { soft: false } },
        resource: { type: 'record', id: 'record-1' },
      });
      expectDecision(res, false);
    });
  });
});

// =================================================================================================================

describe('Batch: Access Evaluations API (C-3)', () => {
  describe('Batch Core', () => {
    it('C-3.2.1 batch request with evaluations array', async () => {
      const res = await post(EVALUATIONS, {
        subject: { type: 'user', id: 'alice' },
        action: { name: 'read' },
        evaluations: [{ resource: { type: 'record', id: 'record-1' } }, { resource: { type: 'record', id: 'record-2' } }],
      });
      // Structure only: the second item is not a fixture rule.
      expectEvaluations(res, [undefined, undefined]);
    });

    it('C-3.2.2 batch with fixture decisions validated', async () => {
      const res = await post(EVALUATIONS, {
        subject: { type: 'user', id: 'bob' },
        resource: { type: 'record', id: 'record-1' },
        evaluations: [{ action: { name: 'read' } }, { action: { name: 'write' } }],
      });
      expectEvaluations(res, [true, false]);
    });

    it('C-3.2.5 batch with fully specified evaluations (no defaults)', async () => {
      const res = await post(EVALUATIONS, {
        evaluations: [
          { subject: { type: 'user', id: 'alice' }, action: { name: 'read' }, resource: { type: 'record', id: 'record-1' } },
          { subject: { type: 'user', id: 'bob' }, action: { name: 'write' }, resource: { type: 'record', id: 'record-1' } },
        ],
      });
      expectEvaluations(res, [true, false]);
    });

    it('C-3.2.6 batch with context inheritance', async () => {
      const res = await post(EVALUATIONS, {
        subject: { type: 'user', id: 'alice' },
        action: { name: 'read' },
        context: { time: '2025-06-27T18:03-07:00' },
        evaluations: [
          { resource: { type: 'record', id: 'record-1' } },
          { resource: { type: 'record', id: 'record-2' }, context: { time: '2025-06-27T19:00-07:00', source: 'batch-override' } },
        ],
      });
      expectEvaluations(res, [undefined, undefined]);
    });

    describe('C-3.3 Response Format', () => {
      /** Fixture rules 1-4 interleaved, so that a wrong order or a lost item cannot pass. */
      const MIXED = [
        { item: { subject: { type: 'user', id: 'bob' }, action: { name: 'write' }, resource: { type: 'record', id: 'record-1' } }, decision: false },
        { item: { subject: { type: 'user', id: 'alice' }, action: { name: 'read' }, resource: { type: 'record', id: 'record-1' } }, decision: true },
        { item: { subject: { type: 'user', id: 'bob' }, action: { name: 'write' }, resource: { type: 'record', id: 'record-1' } }, decision: false },
        { item: { subject: { type: 'user', id: 'alice' }, action: { name: 'write' }, resource: { type: 'record', id: 'record-1' } }, decision: true },
        { item: { subject: { type: 'user', id: 'bob' }, action: { name: 'read' }, resource: { type: 'record', id: 'record-1' } }, decision: true },
        { item: { subject: { type: 'user', id: 'bob' }, action: { name: 'write' }, resource: { type: 'record', id: 'record-1' } }, decision: false },
        { item: { subject: { type: 'user', id: 'alice' }, action: { name: 'read' }, resource: { type: 'record', id: 'record-1' } }, decision: true },
      ];

      it('C-3.3.1 response array length matches request', async () => {
        for (const n of [1, 2, 7]) {
          const res = await post(EVALUATIONS, { evaluations: MIXED.slice(0, n).map((m) => m.item) });
          expectEvaluations(res, Array(n).fill(undefined));
        }
      });

      it('C-3.3.2 response ordering', async () => {
        const res = await post(EVALUATIONS, { evaluations: MIXED.map((m) => m.item) });
        expectEvaluations(res, MIXED.map((m) => m.decision));
        const reversed = [...MIXED].reverse();
        expectEvaluations(await post(EVALUATIONS, { evaluations: reversed.map((m) => m.item) }), reversed.map((m) => m.decision));
      });

      it('C-3.3.3 each evaluation contains a decision', async () => {
        const items = expectEvaluations(await post(EVALUATIONS, { evaluations: MIXED.map((m) => m.item) }), MIXED.map(() => undefined));
        for (const item of items) expect(typeof item['decision']).toBe('boolean');
      });

      it('C-3.3.4 top-level decision field -- omitted when the response has an evaluations array', async () => {
        // A SHOULD (the harness ignores a top-level decision if present); this server holds itself to it.
        const res = await post(EVALUATIONS, { evaluations: MIXED.map((m) => m.item) });
        expectEvaluations(res, MIXED.map((m) => m.decision));
        expect(res.body).not.toHaveProperty('decision');
      });
    });

    describe('C-3.4 Error Handling', () => {
      it('C-3.4.1 evaluation-level errors (execute_all semantic) -- the item missing resource is decision false', async () => {
        const res = await post(EVALUATIONS, {
          subject: { type: 'user', id: 'alice' },
          action: { name: 'read' },
          options: { evaluations_semantic: 'execute_all' },
          evaluations: [{ resource: { type: 'record', id: 'record-1' } }, {}],
        });
        const items = expectEvaluations(res, [true, false]);
        // It MAY carry error details in its context; ours names the missing member.
        expect(items[1]!['context']['error']).toMatchObject({ status: 400, code: 'invalid_request', details: [{ path: 'evaluations[1].resource' }] });
      });

      it('C-3.4.2 missing evaluations array (backwards-compatible)', async () => {
        const res = await post(EVALUATIONS, { subject: { type: 'user', id: 'alice' }, action: { name: 'read' }, resource: { type: 'record', id: 'record-1' } });
        expectDecision(res, true);
        expect(res.body).not.toHaveProperty('evaluations');
      });

      it('C-3.4.3 empty evaluations array (backwards-compatible)', async () => {
        const res = await post(EVALUATIONS, { subject: { type: 'user', id: 'alice' }, action: { name: 'read' }, resource: { type: 'record', id: 'record-1' }, evaluations: [] });
        expectDecision(res, true);
        expect(res.body).not.toHaveProperty('evaluations');
      });
    });
  });

  describe('Batch Properties', () => {
    it('C-3.2.3 batch with properties validated', async () => {
      const res = await post(EVALUATIONS, {
        subject: { type: 'user', id: 'alice' },
        action: { name: 'write' },
        evaluations: [
          { resource: { type: 'record', id: 'record-1', properties: { status: 'active' } } },
          { resource: { type: 'record', id: 'record-2', properties: { status: 'archived' } } },
        ],
      });
      expectEvaluations(res, [true, false]);
    });

    it('C-3.2.4 batch with subject properties validated', async () => {
      const res = await post(EVALUATIONS, {
        action: { name: 'write' },
        resource: { type: 'record', id: 'record-2', properties: { status: 'archived' } },
        evaluations: [{ subject: { type: 'user', id: 'alice' } }, { subject: { type: 'user', id: 'bob', properties: { role: 'admin' } } }],
      });
      expectEvaluations(res, [false, true]);
    });

    it('C-3.2.7 batch with default value merging: an item lacking resource.type takes the top-level one', async () => {
      const res = await post(EVALUATIONS, {
        subject: { type: 'user', id: 'alice' },
        action: { name: 'write' },
        resource: { type: 'record' },
        evaluations: [
          { resource: { id: 'record-1', properties: { status: 'active' } } },
          { resource: { type: 'record', id: 'record-2', properties: { status: 'archived' } } },
        ],
      });
      expectEvaluations(res, [true, false]);
    });

    it('C-3.2.7 (and entity-level replacement): an item\'s resource replaces the default\'s properties, not its identifiers', async () => {
      // The default is archived; the item names record-1 with no properties of its own: the default's do not apply.
      const res = await post(EVALUATIONS, {
        subject: { type: 'user', id: 'alice' },
        action: { name: 'write' },
        resource: { type: 'record', id: 'record-2', properties: { status: 'archived' } },
        evaluations: [{ resource: { id: 'record-1' } }, {}],
      });
      expectEvaluations(res, [true, false]);
    });

    it('C-3.2.7 (the limit of the fallback): an item naming another type does not take the default\'s id', async () => {
      const res = await post(EVALUATIONS, {
        subject: { type: 'user', id: 'alice' },
        action: { name: 'read' },
        resource: { type: 'record', id: 'record-1' },
        evaluations: [{ resource: { type: 'document' } }, { resource: { id: 'record-1' } }],
      });
      const items = expectEvaluations(res, [false, true]);
      expect(items[0]?.['context']?.['error']).toMatchObject({ status: 400, details: [{ path: 'evaluations[0].resource.id' }] });
    });

    it('C-3.2.7 batch with top-level default inheritance', async () => {
      const res = await post(EVALUATIONS, {
        subject: { type: 'user', id: 'alice' },
        action: { name: 'write' },
        resource: { type: 'record', id: 'record-1', properties: { status: 'active' } },
        evaluations: [{}, { resource: { type: 'record', id: 'record-2', properties: { status: 'archived' } } }],
      });
      expectEvaluations(res, [true, false]);
    });
  });
});

// =================================================================================================================

describe('Search (C-4)', () => {
  describe('Search Core', () => {
    describe('C-4.2 Subject Search', () => {
      it('C-4.2.1 valid subject search request with non-empty results', async () => {
        const ids = expectResults(await post(SEARCH.subject, SUBJECT_SEARCH), 'subject', 'user');
        expect(ids.length).toBeGreaterThan(0);
        expect(ids).toEqual(expect.arrayContaining(['alice', 'bob']));
      });

      it('C-4.2.2 subject search with context -- identical to C-4.2.1', async () => {
        const plain = expectResults(await post(SEARCH.subject, SUBJECT_SEARCH), 'subject', 'user');
        const ids = expectResults(await post(SEARCH.subject, { ...SUBJECT_SEARCH, context: harnessContext }), 'subject', 'user');
        expect(ids).toEqual(expect.arrayContaining(['alice', 'bob']));
        expect(sorted(ids)).toEqual(sorted(plain));
      });

      it('C-4.2.3 subject search with subject id present -- ignored, identical to C-4.2.1', async () => {
        const plain = expectResults(await post(SEARCH.subject, SUBJECT_SEARCH), 'subject', 'user');
        const ids = expectResults(
          await post(SEARCH.subject, { subject: { type: 'user', id: 'alice' }, action: { name: 'read' }, resource: { type: 'record', id: 'record-1' } }),
          'subject',
          'user',
        );
        expect(ids).toEqual(expect.arrayContaining(['alice', 'bob']));
        expect(sorted(ids)).toEqual(sorted(plain));
      });
    });

    describe('C-4.3 Resource Search', () => {
      it('C-4.3.1 valid resource search request with non-empty results', async () => {
        const ids = expectResults(await post(SEARCH.resource, RESOURCE_SEARCH), 'resource', 'record');
        expect(ids.length).toBeGreaterThan(0);
        expect(ids).toContain('record-1');
      });

      it('C-4.3.2 resource search with context -- identical to C-4.3.1', async () => {
        const plain = expectResults(await post(SEARCH.resource, RESOURCE_SEARCH), 'resource', 'record');
        const ids = expectResults(await post(SEARCH.resource, { ...RESOURCE_SEARCH, context: harnessContext }), 'resource', 'record');
        expect(ids).toContain('record-1');
        expect(sorted(ids)).toEqual(sorted(plain));
      });

      it('C-4.3.3 resource search with resource id present -- ignored, identical to C-4.3.1', async () => {
        const plain = expectResults(await post(SEARCH.resource, RESOURCE_SEARCH), 'resource', 'record');
        const ids = expectResults(
          await post(SEARCH.resource, { subject: { type: 'user', id: 'alice' }, action: { name: 'read' }, resource: { type: 'record', id: 'record-1' } }),
          'resource',
          'record',
        );
        expect(ids).toContain('record-1');
        expect(sorted(ids)).toEqual(sorted(plain));
      });
    });

    describe('C-4.4 Action Search', () => {
      it('C-4.4.1 valid action search request with non-empty results', async () => {
        const names = expectResults(await post(SEARCH.action, ACTION_SEARCH), 'action');
        expect(names.length).toBeGreaterThan(0);
        expect(names).toEqual(expect.arrayContaining(['read', 'write']));
      });

      it('C-4.4.2 action search with context -- identical to C-4.4.1', async () => {
        const plain = expectResults(await post(SEARCH.action, ACTION_SEARCH), 'action');
        const names = expectResults(await post(SEARCH.action, { ...ACTION_SEARCH, context: harnessContext }), 'action');
        expect(names).toEqual(expect.arrayContaining(['read', 'write']));
        expect(sorted(names)).toEqual(sorted(plain));
      });
    });

    describe('C-4.5 Pagination', () => {
      it('C-4.5.1 request with page limit', async () => {
        const res = await post(SEARCH.subject, { subject: { type: 'user' }, action: { name: 'read' }, resource: { type: 'record', id: 'record-1' }, page: { limit: 1 } });
        const ids = expectResults(res, 'subject', 'user');
        // This PDP paginates: the limit holds, and with alice and bob both able to read record-1 there is a next page.
        expect(ids).toHaveLength(1);
        expect(res.body!['page']['next_token']).not.toBe('');
      });

      it('C-4.5.2 request with page token -- the follow-up page, and the end of the results', async () => {
        const all = expectResults(await post(SEARCH.subject, SUBJECT_SEARCH), 'subject', 'user');
        const first = await post(SEARCH.subject, { subject: { type: 'user' }, action: { name: 'read' }, resource: { type: 'record', id: 'record-1' }, page: { limit: 1 } });
        const seen = expectResults(first, 'subject', 'user');
        const token = first.body!['page']['next_token'] as string;
        expect(token).not.toBe('');
        const next = await post(SEARCH.subject, { subject: { type: 'user' }, action: { name: 'read' }, resource: { type: 'record', id: 'record-1' }, page: { token } });
        seen.push(...expectResults(next, 'subject', 'user'));
        expect(isObject(next.body!['page'])).toBe(true);
        expect(typeof next.body!['page']['next_token']).toBe('string');
        // If more results exist the token is non-empty, else empty: here the follow-up (no limit) holds the rest.
        const more = seen.length < all.length;
        expect(next.body!['page']['next_token'] === '').toBe(!more);
        expect(more).toBe(false);
        expect(seen).toEqual(all);
      });

      it('C-4.5.3 pagination response format -- next_token a string (empty at the end), count and total numbers', async () => {
        for (const [path, body] of [[SEARCH.subject, SUBJECT_SEARCH], [SEARCH.resource, RESOURCE_SEARCH], [SEARCH.action, ACTION_SEARCH]] as const) {
          const res = await post(path, body);
          expect(res.status, res.text).toBe(200);
          expectPageFormat(res);
          const page = res.body!['page'] as Record<string, unknown> | undefined;
          if (page !== undefined) {
            expect(page['next_token']).toBe('');
            if ('total' in page) expect(page['total']).toBe((res.body!['results'] as unknown[]).length);
          }
        }
      });

      it('C-4.5.4 pagination is optional -- an empty page object is accepted, all results in one response', async () => {
        const all = expectResults(await post(SEARCH.subject, SUBJECT_SEARCH), 'subject', 'user');
        const res = await post(SEARCH.subject, { ...SUBJECT_SEARCH, page: {} });
        expect(expectResults(res, 'subject', 'user')).toEqual(all);
        if (res.body!['page'] !== undefined) expect(res.body!['page']['next_token']).toBe('');
      });
    });

    describe('C-4.6 Empty results', () => {
      it.each([
        { note: 'Action Search, unknown subject id (the scenario\'s example)', path: SEARCH.action, kind: 'action' as const, body: { subject: { type: 'user', id: 'nonexistent-user' }, resource: { type: 'record', id: 'record-1' } } },
        { note: 'Action Search, unknown resource id', path: SEARCH.action, kind: 'action' as const, body: { subject: { type: 'user', id: 'alice' }, resource: { type: 'record', id: 'nonexistent-record' } } },
        { note: 'Subject Search, unknown resource id', path: SEARCH.subject, kind: 'subject' as const, body: { subject: { type: 'user' }, action: { name: 'read' }, resource: { type: 'record', id: 'nonexistent-record' } } },
        { note: 'Resource Search, unknown subject id', path: SEARCH.resource, kind: 'resource' as const, body: { subject: { type: 'user', id: 'nonexistent-user' }, action: { name: 'read' }, resource: { type: 'record' } } },
      ])('C-4.6.1 unknown entity identifier -- $note: results []', async ({ path, kind, body }) => {
        const res = await post(path, body);
        expectResults(res, kind, kind === 'subject' ? 'user' : 'record');
        expect(res.body!['results']).toEqual([]);
      });

      it.each([
        { note: 'Subject Search, unrecognised subject type (the scenario\'s example)', path: SEARCH.subject, body: { subject: { type: 'spaceship' }, action: { name: 'read' }, resource: { type: 'record', id: 'record-1' } } },
        { note: 'Resource Search, unrecognised resource type', path: SEARCH.resource, body: { subject: { type: 'user', id: 'alice' }, action: { name: 'read' }, resource: { type: 'spaceship' } } },
        { note: 'Resource Search, unrecognised subject type', path: SEARCH.resource, body: { subject: { type: 'spaceship', id: 'alice' }, action: { name: 'read' }, resource: { type: 'record' } } },
        { note: 'Action Search, unrecognised subject type', path: SEARCH.action, body: { subject: { type: 'spaceship', id: 'alice' }, resource: { type: 'record', id: 'record-1' } } },
        { note: 'Action Search, unrecognised resource type', path: SEARCH.action, body: { subject: { type: 'user', id: 'alice' }, resource: { type: 'spaceship', id: 'record-1' } } },
      ])('C-4.6.2 unknown entity type -- $note: results [], not HTTP 400', async ({ path, body }) => {
        const res = await post(path, body);
        expect(res.status, res.text).toBe(200);
        expectJsonContentType(res);
        expect(res.body!['results']).toEqual([]);
        expectPageFormat(res);
      });
    });

    describe('C-4.7 Search Error Handling', () => {
      it.each([
        { note: 'Subject Search missing action', path: SEARCH.subject, body: { subject: { type: 'user' }, resource: { type: 'record', id: 'record-1' } }, field: 'action' },
        { note: 'Resource Search missing subject', path: SEARCH.resource, body: { action: { name: 'read' }, resource: { type: 'record' } }, field: 'subject' },
        { note: 'Action Search missing resource', path: SEARCH.action, body: { subject: { type: 'user', id: 'alice' } }, field: 'resource' },
      ])('C-4.7.1 missing required fields -- $note: HTTP 400', async ({ path, body, field }) => {
        const res = await post(path, body);
        expectBadRequest(res);
        expect(res.body!['error'].details.map((d: { path: string }) => d.path)).toEqual([field]);
      });

      it.each([
        { note: 'Subject Search, input resource missing id', path: SEARCH.subject, body: { subject: { type: 'user' }, action: { name: 'read' }, resource: { type: 'record' } }, field: 'resource.id' },
        { note: 'Resource Search, input subject missing id', path: SEARCH.resource, body: { subject: { type: 'user' }, action: { name: 'read' }, resource: { type: 'record' } }, field: 'subject.id' },
        { note: 'Action Search, input subject missing id', path: SEARCH.action, body: { subject: { type: 'user' }, resource: { type: 'record', id: 'record-1' } }, field: 'subject.id' },
      ])('C-4.7.2 missing required sub-fields -- $note: HTTP 400', async ({ path, body, field }) => {
        const res = await post(path, body);
        expectBadRequest(res);
        expect(res.body!['error'].details.map((d: { path: string }) => d.path)).toEqual([field]);
      });
    });
  });

  describe('Search Properties', () => {
    it('C-4.2.4 subject search with resource properties -- fixture validated (S4)', async () => {
      const res = await post(SEARCH.subject, {
        subject: { type: 'user' },
        action: { name: 'write' },
        resource: { type: 'record', id: 'record-2', properties: { status: 'archived' } },
      });
      const ids = expectResults(res, 'subject', 'user');
      expect(ids).toContain('bob');
    });

    it('C-4.3.4 resource search with subject properties -- fixture validated (S5)', async () => {
      const res = await post(SEARCH.resource, {
        subject: { type: 'user', id: 'bob', properties: { role: 'admin' } },
        action: { name: 'write' },
        resource: { type: 'record' },
      });
      const ids = expectResults(res, 'resource', 'record');
      expect(ids).toContain('record-2');
    });

    it('C-4.4.3 action search with properties -- fixture validated (S6)', async () => {
      const res = await post(SEARCH.action, {
        subject: { type: 'user', id: 'bob', properties: { role: 'admin' } },
        resource: { type: 'record', id: 'record-2', properties: { status: 'archived' } },
      });
      const names = expectResults(res, 'action');
      expect(names).toContain('write');
    });
  });
});

// =================================================================================================================

describe('Transport Requirements (C-5)', () => {
  /** A valid request for each endpoint, and how its success is checked. */
  const VALID: Record<(typeof POST_ENDPOINTS)[number], { body: Record<string, unknown>; check: (res: Reply) => void }> = {
    [EVALUATION]: { body: ALICE_READS_RECORD_1, check: (res) => expectDecision(res, true) },
    [EVALUATIONS]: { body: { subject: { type: 'user', id: 'bob' }, resource: { type: 'record', id: 'record-1' }, evaluations: [{ action: { name: 'read' } }, { action: { name: 'write' } }] }, check: (res) => void expectEvaluations(res, [true, false]) },
    [SEARCH.subject]: { body: SUBJECT_SEARCH, check: (res) => expect(expectResults(res, 'subject', 'user')).toEqual(expect.arrayContaining(['alice', 'bob'])) },
    [SEARCH.resource]: { body: RESOURCE_SEARCH, check: (res) => expect(expectResults(res, 'resource', 'record')).toContain('record-1') },
    [SEARCH.action]: { body: ACTION_SEARCH, check: (res) => expect(expectResults(res, 'action')).toEqual(expect.arrayContaining(['read', 'write'])) },
  };

  it.each(POST_ENDPOINTS)('C-5.1 accepts requests with Content-Type: application/json (and a UTF-8 charset) -- %s', async (path) => {
    // Deviation: plain HTTP on loopback, not HTTPS (see the file's comment).
    VALID[path].check(await postRaw(path, JSON.stringify(VALID[path].body), 'application/json'));
    VALID[path].check(await postRaw(path, JSON.stringify(VALID[path].body), 'application/json; charset=utf-8'));
  });

  it.each(POST_ENDPOINTS)('C-5.2 a successful response is HTTP 200 with Content-Type: application/json -- %s', async (path) => {
    const res = await post(path, VALID[path].body);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json\s*(;|$)/);
    VALID[path].check(res);
  });

  it.each([
    { note: 'evaluation without subject', path: EVALUATION, body: { action: { name: 'read' }, resource: { type: 'record', id: 'record-1' } } },
    { note: 'evaluations without subject and without items', path: EVALUATIONS, body: { action: { name: 'read' }, resource: { type: 'record', id: 'record-1' } } },
    { note: 'evaluations without resource and with an empty list', path: EVALUATIONS, body: { subject: { type: 'user', id: 'alice' }, action: { name: 'read' }, evaluations: [] } },
    { note: 'subject search without resource', path: SEARCH.subject, body: { subject: { type: 'user' }, action: { name: 'read' } } },
    { note: 'resource search without action', path: SEARCH.resource, body: { subject: { type: 'user', id: 'alice' }, resource: { type: 'record' } } },
    { note: 'action search without subject', path: SEARCH.action, body: { resource: { type: 'record', id: 'record-1' } } },
  ])('C-5.3 missing required fields are HTTP 400 -- $note', async ({ path, body }) => {
    expectBadRequest(await post(path, body));
  });

  it.each(POST_ENDPOINTS)('C-5.4 echoes X-Request-ID, on success and on a 400 -- %s', async (path) => {
    const id = randomUUID();
    const ok = await post(path, VALID[path].body, { 'x-request-id': id });
    VALID[path].check(ok);
    expect(ok.headers.get('x-request-id')).toBe(id);
    const bad = await postRaw(path, '{"subject":', 'application/json', { 'x-request-id': id });
    expectBadRequest(bad);
    expect(bad.headers.get('x-request-id')).toBe(id);
  });

  it.each(POST_ENDPOINTS)('C-5.5 ignores unknown fields in the body, at the top and inside entities -- %s', async (path) => {
    const body = structuredClone(VALID[path].body) as Record<string, any>;
    body['foo'] = 'bar';
    body['futureField'] = { nested: true };
    for (const key of ['subject', 'action', 'resource'] as const) if (isObject(body[key])) body[key].futureMember = [1, 2, 3];
    if (Array.isArray(body['evaluations'])) body['evaluations'] = body['evaluations'].map((e: Record<string, any>) => ({ ...e, futureItemField: 'x' }));
    if (path === EVALUATIONS) body['options'] = { futureOption: true };
    VALID[path].check(await post(path, body));
  });
});

// =================================================================================================================

describe('Discovery: PDP Metadata (C-6)', () => {
  const ENDPOINTS = {
    access_evaluation_endpoint: EVALUATION,
    access_evaluations_endpoint: EVALUATIONS,
    search_subject_endpoint: SEARCH.subject,
    search_resource_endpoint: SEARCH.resource,
    search_action_endpoint: SEARCH.action,
  } as const;

  /** The base URL used for discovery: the server's own. */
  const base = (): string => pdp.url;

  async function metadata(): Promise<{ res: Response; text: string }> {
    // The harness discovers without credentials: the metadata is public.
    const res = await fetch(`${base()}/.well-known/authzen-configuration`);
    return { res, text: await res.text() };
  }

  /**
   * An absolute URL with no query or fragment, exactly `base + path`. The scenario requires HTTPS; this server is
   * plain HTTP on loopback, so the scheme asserted is the server's own (`http:`): the one deviation.
   */
  function expectEndpointUrl(value: unknown, path: string): void {
    expect(typeof value).toBe('string');
    const url = new URL(value as string);
    expect(url.protocol).toBe(new URL(base()).protocol);
    expect(url.protocol).toBe('http:');
    expect(url.search).toBe('');
    expect(url.hash).toBe('');
    expect(value).toBe(`${base()}${path}`);
  }

  it('C-6.1 metadata endpoint -- at the well-known URI derived from the base URL (no path component)', async () => {
    // Precondition of C-6.5: the configured policy_decision_point is this server's base URL.
    expect(pdp.pdp.config.authzen.pdp_url).toBe(base());
    expect(new URL(base()).pathname).toBe('/');
    const { res } = await metadata();
    expect(res.status).not.toBe(404);
    expect(res.status).toBe(200);
  });

  it('C-6.2 metadata response format -- HTTP 200 with Content-Type: application/json', async () => {
    const { res, text } = await metadata();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json\s*(;|$)/);
    expect(isObject(JSON.parse(text))).toBe(true);
  });

  it('C-6.3 required metadata fields -- policy_decision_point (the base URL) and access_evaluation_endpoint', async () => {
    const meta = JSON.parse((await metadata()).text) as Record<string, unknown>;
    expect(meta['policy_decision_point']).toBe(base());
    const pdpUrl = new URL(meta['policy_decision_point'] as string);
    expect(pdpUrl.search).toBe('');
    expect(pdpUrl.hash).toBe('');
    expectEndpointUrl(meta['access_evaluation_endpoint'], EVALUATION);
  });

  it('C-6.4 optional metadata fields -- the batch and search endpoints, capabilities, signed_metadata', async () => {
    const meta = JSON.parse((await metadata()).text) as Record<string, unknown>;
    for (const [field, path] of Object.entries(ENDPOINTS)) if (field in meta) expectEndpointUrl(meta[field], path);
    if ('capabilities' in meta) {
      expect(Array.isArray(meta['capabilities'])).toBe(true);
      for (const c of meta['capabilities'] as unknown[]) expect(typeof c).toBe('string');
    }
    // This server does not sign its metadata. Were it to, the harness verifies the JWT's signature and its `iss`;
    // this test would then have to do the same, so it fails until it does.
    expect(meta).not.toHaveProperty('signed_metadata');
    // Every endpoint this server serves is advertised.
    for (const field of Object.keys(ENDPOINTS)) expect(meta).toHaveProperty(field);
  });

  it('C-6.5 metadata validation -- JSON; policy_decision_point matches the base URL used for discovery; every endpoint a valid URL', async () => {
    const { res, text } = await metadata();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json\s*(;|$)/);
    const meta = JSON.parse(text) as Record<string, unknown>;
    expect(meta['policy_decision_point']).toBe(base());
    for (const [field, path] of Object.entries(ENDPOINTS)) if (field in meta) expectEndpointUrl(meta[field], path);
  });

  it('C-6.6 metadata endpoint available -- and each advertised endpoint answers the fixture requests', async () => {
    const { res, text } = await metadata();
    expect(res.status).toBe(200);
    const meta = JSON.parse(text) as Record<string, string>;
    const at = async (url: string, body: unknown): Promise<Reply> => {
      const r = await fetch(url, { method: 'POST', headers: { ...auth(KEYS.pep), 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const t = await r.text();
      return { status: r.status, headers: r.headers, text: t, body: JSON.parse(t) as Record<string, any> };
    };
    expectDecision(await at(meta['access_evaluation_endpoint']!, ALICE_READS_RECORD_1), true);
    expectEvaluations(await at(meta['access_evaluations_endpoint']!, { evaluations: [ALICE_READS_RECORD_1, BOB_WRITES_RECORD_1] }), [true, false]);
    expect(expectResults(await at(meta['search_subject_endpoint']!, SUBJECT_SEARCH), 'subject', 'user')).toEqual(expect.arrayContaining(['alice', 'bob']));
    expect(expectResults(await at(meta['search_resource_endpoint']!, RESOURCE_SEARCH), 'resource', 'record')).toContain('record-1');
    expect(expectResults(await at(meta['search_action_endpoint']!, ACTION_SEARCH), 'action')).toEqual(expect.arrayContaining(['read', 'write']));
  });
});

// =================================================================================================================

describe('Bad input on the AuthZEN door (issue 21)', () => {
  it.each(POST_ENDPOINTS.flatMap((path) => [
    { path, note: 'malformed JSON', raw: '{"subject": {"type": "user", "id": "alice"', contentType: 'application/json' },
    { path, note: 'an empty body', raw: '', contentType: 'application/json' },
    { path, note: 'a JSON array', raw: '[]', contentType: 'application/json' },
    { path, note: 'a JSON string', raw: '"alice"', contentType: 'application/json' },
    { path, note: 'JSON null', raw: 'null', contentType: 'application/json' },
    { path, note: 'JSON sent as text/plain', raw: '{}', contentType: 'text/plain' },
    { path, note: 'no content type', raw: '{}', contentType: undefined },
  ]))('$path: $note is HTTP 400', async ({ path, raw, contentType }) => {
    expectBadRequest(await postRaw(path, raw, contentType));
  });

  it.each(POST_ENDPOINTS.flatMap((path) => [
    { path, note: 'nesting 4,500 levels deep in subject.properties', at: /^subject\.properties\.x(\[0\])+…$/, raw: `{"subject":{"type":"user","id":"alice","properties":{"x":${'['.repeat(4500)}${']'.repeat(4500)}}},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"}}` },
    { path, note: 'nesting 120 levels deep (within what JSON.parse takes, beyond what the trail records)', at: /^subject\.properties\.x(\[0\])+/, raw: `{"subject":{"type":"user","id":"alice","properties":{"x":${'['.repeat(120)}${']'.repeat(120)}}},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"}}` },
    { path, note: 'a lone surrogate in resource.properties', at: /^resource\.properties\.k$/, raw: '{"subject":{"type":"user","id":"alice"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1","properties":{"k":"\\udc00"}}}' },
    { path, note: 'a lone surrogate in a context key', at: /^context\./, raw: '{"subject":{"type":"user","id":"alice"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"},"context":{"\\ud800":1}}' },
  ]))('$path: $note is HTTP 400 naming the field (before anything evaluates it), and the door keeps answering', async ({ path, raw, at }) => {
    const res = await postRaw(path, raw, 'application/json');
    expectBadRequest(res);
    expect(res.body!['error'].details.map((d: { path: string }) => d.path)).toEqual([expect.stringMatching(at)]);
    expect((await post(EVALUATION, ALICE_READS_RECORD_1)).body).toMatchObject({ decision: true });
  });

  it.each([
    { note: 'evaluations not an array', body: { ...ALICE_READS_RECORD_1, evaluations: { resource: { type: 'record', id: 'record-1' } } }, path: 'evaluations' },
    { note: 'options not an object', body: { ...ALICE_READS_RECORD_1, options: 'execute_all', evaluations: [{}] }, path: 'options' },
    { note: 'an unknown evaluations_semantic', body: { ...ALICE_READS_RECORD_1, options: { evaluations_semantic: 'some' }, evaluations: [{}] }, path: 'options.evaluations_semantic' },
    { note: 'a top-level default of the wrong type', body: { subject: 'alice', action: { name: 'read' }, evaluations: [{ resource: { type: 'record', id: 'record-1' } }] }, path: 'subject' },
    { note: 'a context that is not an object', body: { ...ALICE_READS_RECORD_1, context: 'x' }, path: 'context' },
    { note: 'properties that are not an object', body: { ...ALICE_READS_RECORD_1, subject: { type: 'user', id: 'alice', properties: 'admin' } }, path: 'subject.properties' },
  ])('Access Evaluations: $note is HTTP 400 naming it', async ({ body, path }) => {
    const res = await post(EVALUATIONS, body);
    expectBadRequest(res);
    expect(res.body!['error'].details.map((d: { path: string }) => d.path)).toEqual([path]);
  });

  it('Access Evaluations: a malformed item is that item\'s deny, the others answered', async () => {
    const res = await post(EVALUATIONS, {
      subject: { type: 'user', id: 'alice' },
      action: { name: 'read' },
      evaluations: ['record-1', { resource: { type: 'record', id: 'record-1' } }, { action: { name: 123 } }, { resource: { type: 'record', id: 'record-1' }, context: [] }],
    });
    const items = expectEvaluations(res, [false, true, false, false]);
    expect(items[0]!['context']['error']).toMatchObject({ status: 400, code: 'invalid_request', details: [{ path: 'evaluations[0]' }] });
    expect(items[2]!['context']['error']).toMatchObject({ details: [{ path: 'evaluations[2].action.name' }, { path: 'evaluations[2].resource' }] });
    expect(items[3]!['context']['error']).toMatchObject({ details: [{ path: 'evaluations[3].context' }] });
  });

  it.each([
    { note: 'page not an object', page: 'next', path: 'page' },
    { note: 'a negative page.limit', page: { limit: -1 }, path: 'page.limit' },
    { note: 'a fractional page.limit', page: { limit: 1.5 }, path: 'page.limit' },
    { note: 'a page.token that is not a string', page: { token: 7 }, path: 'page.token' },
    { note: 'a page.token this PDP never issued', page: { token: 'bm90LWEtdG9rZW4' }, path: 'page.token' },
  ])('Search: $note is HTTP 400 naming it', async ({ page, path }) => {
    const res = await post(SEARCH.subject, { ...SUBJECT_SEARCH, page });
    expectBadRequest(res);
    expect(res.body!['error'].details.map((d: { path: string }) => d.path)).toEqual([path]);
  });

  it('Search: a page token is bound to its request (a token used with another request is HTTP 400)', async () => {
    const first = await post(SEARCH.subject, { ...SUBJECT_SEARCH, page: { limit: 1 } });
    const token = first.body!['page']['next_token'] as string;
    expect(token).not.toBe('');
    const other = await post(SEARCH.subject, { ...SUBJECT_SEARCH, action: { name: 'write' }, page: { token } });
    expectBadRequest(other);
    expect(other.body!['error'].details[0].path).toBe('page.token');
  });

  it('oversized batch: more than authzen.max_evaluations items is HTTP 400 as a whole; exactly the limit is answered', async () => {
    const max = pdp.pdp.config.authzen.max_evaluations;
    const item = { resource: { type: 'record', id: 'record-1' } };
    const base = { subject: { type: 'user', id: 'alice' }, action: { name: 'read' } };
    const over = await post(EVALUATIONS, { ...base, evaluations: Array.from({ length: max + 1 }, () => item) });
    expectBadRequest(over);
    expect(over.body!['error'].details).toEqual([{ path: 'evaluations', message: expect.stringContaining(String(max)) }]);
    expectEvaluations(await post(EVALUATIONS, { ...base, evaluations: Array.from({ length: max }, () => item) }), Array(max).fill(true));
  });

  it('a batch mixing pack subjects with agents the caller may and may not speak for: each item judged, nothing leaked', async () => {
    // pep-strict may speak for support-resolver only; the task is registered by the orchestrator, as a PEP's would be.
    const orchestrator = new PdpClient({ url: pdp.url, apiKey: KEYS.orchestrator });
    const taskId = `cert-mix-${randomUUID()}`;
    await orchestrator.registerTask({ id: taskId, agent_id: 'support-resolver', type: 'complaint_resolution', context: { customer_id: '1234' }, expires_in_seconds: 900 });
    const agentContext = { integration: 'crm', task_id: taskId };
    const res = await send('POST', EVALUATIONS, {
      headers: { ...auth(KEYS.strictPep), 'content-type': 'application/json' },
      body: JSON.stringify({
        evaluations: [
          ALICE_READS_RECORD_1,
          { subject: { type: 'agent', id: 'code-review-agent' }, action: { name: 'repo:read' }, resource: { type: 'integration', id: 'github' }, context: { task_id: taskId } },
          { subject: { type: 'agent', id: 'support-resolver' }, action: { name: 'tickets:read' }, resource: { type: 'customer', id: '1234' }, context: agentContext },
          BOB_WRITES_RECORD_1,
          { subject: { type: 'agent', id: 'support-resolver' }, action: { name: 'tickets:write' }, resource: { type: 'customer', id: '5678' }, context: agentContext },
          { subject: { type: 'user', id: 'bob', properties: { role: 'admin' } }, action: { name: 'write' }, resource: { type: 'record', id: 'record-2', properties: { status: 'archived' } } },
        ],
      }),
    });
    const items = expectEvaluations(res, [true, false, true, false, false, true]);
    // The refused agent is its own deny, with its own error only.
    expect(items[1]!['context']).toEqual({ error: { status: 403, code: 'forbidden_agent', message: expect.any(String), details: [{ path: 'evaluations[1].subject.id', message: expect.any(String) }] } });
    const refused = JSON.stringify(items[1]);
    for (const other of ['alice', 'bob', 'record-', 'tickets', 'support-resolver', 'customer', '1234', 'repo:read']) expect(refused).not.toContain(other);
    // No other item mentions it.
    for (const [i, item] of items.entries()) if (i !== 1) expect(JSON.stringify(item)).not.toContain('code-review-agent');
    // The permitted agent item is a real decision (a redeemable id), the pack items are the pack's.
    expect(items[2]!['context']).toMatchObject({ outcome: 'allow', granted_scopes: ['tickets:read'], decision_id: expect.any(String) });
    expect(items[4]!['context']).toMatchObject({ outcome: 'deny' });
    expect(items[3]!['context']['reason_admin']).toBeDefined();
  });
});
