import { copyFileSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DecisionResponseV1 } from '../../src/wire/decision-v1.js';
import { OpenApiChecker } from '../support/openapi-check.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';
import { sampleValue } from '../support/prometheus-text.js';
import { ALWAYS_UNDEFINED_REGO, buildTestBundle } from '../support/test-bundle.js';

/**
 * Reloading under traffic: while 8 clients keep deciding, a good policy change is swapped in and bad ones are
 * refused. No request fails, and every answer is exactly the answer of the revision it names.
 */

const AGENT_FILE = 'policies/agents/code-review-agent.yaml';
const OLD_SLACK = 'max_scope: [channels:read, chat:write]';
const NEW_SLACK = 'max_scope: [channels:read, chat:write, chat:write.public]';
const TRAFFIC = { total: 300, concurrency: 8, swapAt: 100, afterSwap: 40, hardCap: 5000 };

/** The requests the traffic cycles through, and the one field of the answer each revision must give. */
const REQUESTS = [
  { kind: 'public-post', body: { agent_id: 'code-review-agent', task: { id: 'reload' }, integration: 'slack', scopes: ['chat:write.public'] } },
  { kind: 'read', body: { agent_id: 'code-review-agent', task: { id: 'reload' }, integration: 'github', scopes: ['repo:read'] } },
  { kind: 'denied', body: { agent_id: 'code-review-agent', task: { id: 'reload' }, integration: 'github', scopes: ['repo:write'] } },
] as const;
type Kind = (typeof REQUESTS)[number]['kind'];

const OLD_ANSWERS: Record<Kind, Partial<DecisionResponseV1>> = {
  'public-post': {
    outcome: 'allow',
    granted_scopes: ['chat:write'],
    denied_scopes: [{ scope: 'chat:write.public', reason: 'capped', granted_instead: ['chat:write'] }],
  },
  read: { outcome: 'allow', granted_scopes: ['repo:read'], denied_scopes: [] },
  denied: { outcome: 'deny', granted_scopes: [], denied_scopes: [{ scope: 'repo:write', reason: 'deny_scope' }] },
};
const NEW_ANSWERS: Record<Kind, Partial<DecisionResponseV1>> = {
  ...OLD_ANSWERS,
  'public-post': { outcome: 'allow', granted_scopes: ['chat:write.public'], denied_scopes: [] },
};

interface Answer {
  kind: Kind;
  status: number;
  body: DecisionResponseV1;
  /** Started after the swap had answered: it must see the swap's result. */
  afterSwap: boolean;
}

/**
 * Runs `total` decisions on `concurrency` keep-alive clients; when the `swapAt`-th starts, `swap` runs alongside.
 * Clients keep going until `total` have started and `afterSwap` more started after the swap had finished
 * (at most `hardCap` requests).
 */
async function underTraffic<T>(t: TestPdp, swap: () => Promise<T>): Promise<{ answers: Answer[]; swapped: T }> {
  const answers: Answer[] = [];
  let started = 0;
  let startedAfterSwap = 0;
  let swapDone = false;
  let swapping: Promise<T> | undefined;
  const client = async (): Promise<void> => {
    while ((started < TRAFFIC.total || startedAfterSwap < TRAFFIC.afterSwap) && started < TRAFFIC.hardCap) {
      const i = started++;
      if (i === TRAFFIC.swapAt) swapping = swap().finally(() => (swapDone = true));
      const afterSwap = swapDone;
      if (afterSwap) startedAfterSwap++;
      const { kind, body } = REQUESTS[i % REQUESTS.length] ?? REQUESTS[0];
      const res = await fetch(`${t.url}/v1/decide`, {
        method: 'POST',
        headers: { ...auth(KEYS.pep), 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      answers.push({ kind, status: res.status, body: (await res.json()) as DecisionResponseV1, afterSwap });
      // Yield between requests so the swap's file I/O interleaves with traffic rather than after it.
      await new Promise((ok) => setImmediate(ok));
    }
  };
  await Promise.all(Array.from({ length: TRAFFIC.concurrency }, client));
  if (!swapping) throw new Error('the swap never started');
  return { answers, swapped: await swapping };
}

/** Writes a file whole (write a sibling, then rename), so a poller never reads half of it. */
function replaceFile(path: string, text: string | Buffer): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

const metricsText = async (t: TestPdp): Promise<string> => (await request(t.url).get('/metrics').expect(200)).text;
const reloads = (text: string, result: string): number => sampleValue(text, 'agentpdp_policy_reloads_total', { result });

describe('POST /v1/admin/reload under traffic', () => {
  let t: TestPdp;
  let api: OpenApiChecker;
  let bundlePath: string;
  let shippedBundle: Buffer;
  let originalPolicy: string;

  beforeAll(async () => {
    // The bundle is a private copy: a test may overwrite it.
    bundlePath = join(mkdtempSync(join(tmpdir(), 'agent-pdp-reload-')), 'bundle.tar.gz');
    copyFileSync(resolve('opa-bundle/bundle.tar.gz'), bundlePath);
    shippedBundle = readFileSync(bundlePath);
    t = await startTestPdp({ bundle: bundlePath });
    api = await OpenApiChecker.fetch(t.url);
    originalPolicy = readFileSync(join(t.dir, AGENT_FILE), 'utf8');
    expect(originalPolicy).toContain(OLD_SLACK);
  });
  afterAll(async () => {
    await t.close();
  });

  const reload = () => request(t.url).post('/v1/admin/reload').set(auth(KEYS.admin));

  it('a good change swaps in atomically: every answer is exactly its revision’s answer', async () => {
    const oldRevision = t.pdp.engine.active?.revision;
    const before = await metricsText(t);
    const { answers, swapped } = await underTraffic(t, async () => {
      replaceFile(join(t.dir, AGENT_FILE), originalPolicy.replace(OLD_SLACK, NEW_SLACK));
      return reload();
    });

    expect(swapped.status).toBe(200);
    api.expectResponse(swapped);
    const newRevision: string = swapped.body.policy_revision;
    expect(swapped.body).toEqual({ status: 'loaded', policy_revision: newRevision, loaded_at: t.clock.now.toISOString() });
    expect(newRevision).not.toBe(oldRevision);
    expect(newRevision.split('.')[0]).toBe(oldRevision?.split('.')[0]); // same bundle, new agent policies

    expect(answers.length).toBeGreaterThanOrEqual(TRAFFIC.total);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    for (const a of answers) {
      expect([oldRevision, newRevision]).toContain(a.body.policy_revision);
      const expected = (a.body.policy_revision === newRevision ? NEW_ANSWERS : OLD_ANSWERS)[a.kind];
      expect({ kind: a.kind, ...a.body }).toMatchObject({ kind: a.kind, ...expected, allow: expected.outcome === 'allow' });
    }
    expect(answers.some((a) => a.body.policy_revision === oldRevision)).toBe(true);
    const afterSwap = answers.filter((a) => a.afterSwap);
    expect(afterSwap.length).toBeGreaterThan(0);
    expect(afterSwap.filter((a) => a.body.policy_revision !== newRevision)).toEqual([]);

    const ready = await request(t.url).get('/readyz').expect(200);
    expect(ready.body).toMatchObject({ policy_revision: newRevision, loaded_at: swapped.body.loaded_at });
    expect(reloads(await metricsText(t), 'loaded') - reloads(before, 'loaded')).toBe(1);
  });

  it.each([
    {
      note: 'a schema error in a policy file',
      file: AGENT_FILE,
      text: (original: string) => original.replace(OLD_SLACK, 'max_scopes: [channels:read]').replace(NEW_SLACK, 'max_scopes: [channels:read]'),
      detail: { file: 'agents/code-review-agent.yaml', path: expect.stringContaining('max_scopes') },
    },
    {
      note: 'a YAML syntax error',
      file: AGENT_FILE,
      text: (original: string) => `${original}\n  bad: [unclosed\n`,
      detail: { file: 'agents/code-review-agent.yaml', line: expect.any(Number) },
    },
    {
      note: 'an unknown integration scope (compile error)',
      file: AGENT_FILE,
      text: (original: string) => original.replace('repo:read, pr:read', 'repo:raed, pr:read'),
      detail: { file: 'agents/code-review-agent.yaml', message: expect.stringContaining('repo:raed') },
    },
    { note: 'a corrupt bundle', file: 'bundle', text: () => Buffer.from('not a tarball'), detail: undefined },
    { note: 'a bundle that cannot decide an unknown agent', file: 'bundle', text: () => readFileSync(buildTestBundle(ALWAYS_UNDEFINED_REGO)), detail: undefined },
  ])('a bad change is refused with 422 policy_invalid and the old revision keeps answering: $note', async ({ file, text, detail }) => {
    const current = t.pdp.engine.active;
    const before = await metricsText(t);
    const path = file === 'bundle' ? bundlePath : join(t.dir, file);
    const good = readFileSync(path);
    // What each request is answered before the attempt: every answer during and after it must be the same.
    const baseline = {} as Record<Kind, Partial<DecisionResponseV1>>;
    for (const { kind, body } of REQUESTS) {
      const res = await request(t.url).post('/v1/decide').set(auth(KEYS.pep)).send(body).expect(200);
      const { decision_id: _id, redeemable_until: _until, ...answer } = res.body as DecisionResponseV1;
      baseline[kind] = answer;
    }
    expect(baseline['read'].policy_revision).toBe(current?.revision);

    const { answers, swapped } = await underTraffic(t, async () => {
      replaceFile(path, text(good.toString('utf8')));
      return reload();
    });
    try {
      expect(swapped.status).toBe(422);
      api.expectResponse(swapped);
      expect(swapped.body.error).toMatchObject({ code: 'policy_invalid', message: expect.stringContaining('the previous one stays in force') });
      if (detail) expect(swapped.body.error.details).toContainEqual(expect.objectContaining(detail));

      expect(answers.filter((a) => a.status !== 200)).toEqual([]);
      for (const a of answers) expect(a.body).toMatchObject(baseline[a.kind]);
      expect(t.pdp.engine.active).toBe(current);
      // Still ready on the last good set, and saying the files on disk were refused, why, and since when.
      const ready = await request(t.url).get('/readyz').expect(200);
      api.expectResponse(ready);
      expect(ready.body).toMatchObject({
        policy_revision: current?.revision,
        loaded_at: current?.loadedAt.toISOString(),
        policy_on_disk: 'refused',
        refused: { code: expect.any(String), since: expect.any(String) },
      });
      if (detail?.file) expect(ready.body.refused.first_error).toContain(detail.file);
      else expect(ready.body.refused.first_error).toBeNull();
      expect(JSON.stringify(ready.body)).not.toContain(t.dir); // no absolute path on an unauthenticated route
      const after = await metricsText(t);
      expect(reloads(after, 'refused') - reloads(before, 'refused')).toBe(1);
      expect(reloads(after, 'loaded') - reloads(before, 'loaded')).toBe(0);
    } finally {
      replaceFile(path, good);
    }
    // Once the files are fixed, the same set loads again, with the same revision, and readiness says so.
    const fixed = await reload().expect(200);
    expect(fixed.body.policy_revision).toBe(current?.revision);
    expect((await request(t.url).get('/readyz').expect(200)).body).toMatchObject({ policy_on_disk: 'loaded' });
    expect((await request(t.url).get('/readyz')).body).not.toHaveProperty('refused');
  });

  it('the shipped bundle was never touched (the tests wrote a private copy)', () => {
    expect(readFileSync(resolve('opa-bundle/bundle.tar.gz')).equals(shippedBundle)).toBe(true);
  });
});

describe('the file watcher', () => {
  let t: TestPdp;

  beforeAll(async () => {
    t = await startTestPdp({ watch: true });
  });
  afterAll(async () => {
    await t.close();
  });

  /** Polls until `check` passes, at most 100 times 50 ms apart (the watcher polls every 100 ms). */
  async function eventually<T>(probe: () => Promise<T>, check: (value: T) => boolean): Promise<T> {
    let value = await probe();
    for (let i = 0; i < 100 && !check(value); i++) {
      await new Promise((ok) => setTimeout(ok, 50));
      value = await probe();
    }
    return value;
  }

  const decidePublicPost = async () =>
    (await request(t.url).post('/v1/decide').set(auth(KEYS.pep)).send(REQUESTS[0].body).expect(200)).body as DecisionResponseV1;

  it('picks up a good change by itself', async () => {
    const oldRevision = t.pdp.engine.active?.revision;
    expect(await decidePublicPost()).toMatchObject({ policy_revision: oldRevision, ...OLD_ANSWERS['public-post'] });
    const path = join(t.dir, AGENT_FILE);
    replaceFile(path, readFileSync(path, 'utf8').replace(OLD_SLACK, NEW_SLACK));

    const ready = await eventually(
      async () => (await request(t.url).get('/readyz').expect(200)).body as { policy_revision: string },
      (body) => body.policy_revision !== oldRevision,
    );
    expect(ready.policy_revision).not.toBe(oldRevision);
    expect(await decidePublicPost()).toMatchObject({ policy_revision: ready.policy_revision, ...NEW_ANSWERS['public-post'] });
  });

  it('refuses a broken change by itself, once, and keeps the revision in force', async () => {
    const current = t.pdp.engine.active?.revision;
    const path = join(t.dir, AGENT_FILE);
    replaceFile(path, readFileSync(path, 'utf8').replace(NEW_SLACK, 'max_scopes: [channels:read]'));

    const metrics = await eventually(() => metricsText(t), (text) => reloads(text, 'refused') >= 1);
    expect(reloads(metrics, 'refused')).toBe(1);
    // A few more polls of the same broken files are not retried.
    await new Promise((ok) => setTimeout(ok, 300));
    expect(reloads(await metricsText(t), 'refused')).toBe(1);
    expect((await request(t.url).get('/readyz').expect(200)).body.policy_revision).toBe(current);
    expect(await decidePublicPost()).toMatchObject({ policy_revision: current, ...NEW_ANSWERS['public-post'] });
  });
});
