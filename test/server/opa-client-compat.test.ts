import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { OPAClient } from '@styra/opa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPA_BIN } from '../support/opa-cli.js';
import { packBundle } from '../support/pack-bundle.js';
import { KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';

/**
 * A real OPA client from npm (`@styra/opa`, OPA's TypeScript SDK) asks the same questions of our server and of OPA's
 * own (`opa run --server`), through `evaluate` and `evaluateDefault`, with one client configuration (the bearer
 * token is our API key; OPA, started without `--authentication`, ignores it): every answer is equal.
 *
 * The two servers evaluate the same Rego: ours the bundle `make bundle PACKS=…` builds (the packs compiled to
 * WebAssembly beside the agent decision), OPA's server the packs' Rego sources, since it evaluates Rego, not our
 * wasm module. The packs: the shipped example (examples/packs/authzen-certification) and the tests' own
 * (test/fixtures/packs: an undefined rule, an echo, `system/main` for OPA's default decision).
 */

const PACKS = ['examples/packs/authzen-certification', 'test/fixtures/packs/opa-data', 'test/fixtures/packs/opa-default'];

let ours: TestPdp;
let opa: ChildProcess;
let opaUrl: string;

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise<void>((ok) => server.once('listening', ok));
  const { port } = server.address() as { port: number };
  await new Promise<void>((ok) => server.close(() => ok()));
  return port;
}

async function startOpa(): Promise<void> {
  const sources = PACKS.flatMap((dir) => readdirSync(dir).filter((f) => f.endsWith('.rego') && !f.endsWith('_test.rego')).map((f) => join(dir, f)));
  const port = await freePort();
  opaUrl = `http://127.0.0.1:${port}`;
  opa = spawn(OPA_BIN, ['run', '--server', '--addr', `127.0.0.1:${port}`, '--log-level', 'error', ...sources], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  opa.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (opa.exitCode !== null) throw new Error(`opa run exited ${opa.exitCode}: ${stderr}`);
    const ready = await fetch(`${opaUrl}/health`).then((r) => r.ok, () => false);
    if (ready) return;
    if (Date.now() > deadline) throw new Error(`opa run did not answer /health: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  ours = await startTestPdp({ bundle: await packBundle(PACKS) });
  await startOpa();
}, 60_000);
afterAll(async () => {
  if (opa?.pid !== undefined && opa.exitCode === null) {
    const exited = new Promise((ok) => opa.once('exit', ok));
    process.kill(opa.pid, 'SIGTERM');
    await exited;
  }
  await ours?.close();
});

const client = (url: string): OPAClient => new OPAClient(url, { headers: { Authorization: `Bearer ${KEYS.pep}` } });

/** What the client gave back: the value, or that it threw. */
async function outcome(call: () => Promise<unknown>): Promise<{ value: unknown } | { threw: true }> {
  try {
    return { value: await call() };
  } catch {
    return { threw: true };
  }
}

const alice = { type: 'user', id: 'alice' };
const bob = { type: 'user', id: 'bob' };
const record1 = { type: 'record', id: 'record-1' };
const record2 = { type: 'record', id: 'record-2' };
const archived = (r: object) => ({ ...r, properties: { status: 'archived' } });

/** The certification scenario's eight decisions (C-1.4), then inputs beyond it. */
const DECISIONS = [
  { note: 'rule 1: alice reads record-1', input: { subject: alice, action: { name: 'read' }, resource: record1 } },
  { note: 'rule 2: alice writes record-1', input: { subject: alice, action: { name: 'write' }, resource: record1 } },
  { note: 'rule 3: bob reads record-1', input: { subject: bob, action: { name: 'read' }, resource: record1 } },
  { note: 'rule 4: bob may not write record-1', input: { subject: bob, action: { name: 'write' }, resource: record1 } },
  { note: 'rule 5: alice may not write an archived record', input: { subject: alice, action: { name: 'write' }, resource: archived(record2) } },
  { note: 'rule 6: an admin writes an archived record', input: { subject: { ...bob, properties: { role: 'admin' } }, action: { name: 'write' }, resource: archived(record2) } },
  { note: 'rule 7: alice soft-deletes record-1', input: { subject: alice, action: { name: 'delete', properties: { soft: true } }, resource: record1 } },
  { note: 'rule 8: alice may not hard-delete record-1', input: { subject: alice, action: { name: 'delete', properties: { soft: false } }, resource: record1 } },
  { note: 'an unknown subject', input: { subject: { type: 'user', id: 'carol' }, action: { name: 'read' }, resource: record1 } },
  { note: 'an unknown action, with a context', input: { subject: alice, action: { name: 'fly' }, resource: record1, context: { time: '2025-06-27T18:03-07:00' } } },
  { note: 'an empty input', input: {} },
];

const OTHER: Array<{ note: string; call: (c: OPAClient) => Promise<unknown> }> = [
  { note: 'a data document, no input (GET)', call: (c) => c.evaluate('authzen/certification/entities') },
  { note: 'a rule defined for the input', call: (c) => c.evaluate('opa_data/allow', { x: 1 }) },
  { note: 'a rule undefined for the input', call: (c) => c.evaluate('opa_data/allow', { x: 2 }) },
  { note: 'a rule undefined without input (GET)', call: (c) => c.evaluate('opa_data/echo') },
  { note: 'an array input', call: (c) => c.evaluate('opa_data/echo', [1, 'a', { b: null }]) },
  { note: 'a scalar input', call: (c) => c.evaluate('opa_data/echo', 42) },
  { note: 'a string input', call: (c) => c.evaluate('opa_data/echo', 'text') },
  { note: 'a unicode input', call: (c) => c.evaluate('opa_data/echo', { name: 'Zoë 🚀' }) },
  { note: 'evaluateDefault: system/main defined', call: (c) => c.evaluateDefault({ subject: alice, action: { name: 'write' }, resource: record1 }) },
  { note: 'evaluateDefault: system/main denies', call: (c) => c.evaluateDefault({ subject: bob, action: { name: 'write' }, resource: record1 }) },
  { note: 'evaluateDefault: system/main undefined (404 from both)', call: (c) => c.evaluateDefault({ action: { name: 'read' } }) },
];

describe('@styra/opa against our server and against opa run --server: the same answers', () => {
  it.each(DECISIONS)('evaluate authzen/certification/decision, $note', async ({ input }) => {
    const theirs = await outcome(() => client(opaUrl).evaluate('authzen/certification/decision', input));
    const mine = await outcome(() => client(ours.url).evaluate('authzen/certification/decision', input));
    expect(theirs).toHaveProperty('value');
    expect(mine).toEqual(theirs);
  });

  it.each(DECISIONS)('evaluateDefault (system/main), $note', async ({ input }) => {
    expect(await outcome(() => client(ours.url).evaluateDefault(input))).toEqual(await outcome(() => client(opaUrl).evaluateDefault(input)));
  });

  it.each(OTHER)('$note', async ({ call }) => {
    const theirs = await outcome(() => call(client(opaUrl)));
    expect(await outcome(() => call(client(ours.url)))).toEqual(theirs);
  });

  it('the fixture answers are what the scenario requires (the comparison is not of two empty answers)', async () => {
    const decided = await Promise.all(DECISIONS.slice(0, 8).map(({ input }) => client(ours.url).evaluate<object, { decision: boolean }>('authzen/certification/decision', input)));
    expect(decided.map((d) => d.decision)).toEqual([true, true, true, false, false, true, true, false]);
  });

  it('where we differ on purpose: a path that is no entrypoint is 404 entrypoint_not_found here, undefined at OPA', async () => {
    expect(await outcome(() => client(opaUrl).evaluate('authzen/certification/nothing', {}))).toEqual({ value: undefined });
    expect(await outcome(() => client(ours.url).evaluate('authzen/certification/nothing', {}))).toEqual({ threw: true });
    const res = await fetch(`${ours.url}/v1/data/authzen/certification/nothing`, { method: 'POST', headers: { authorization: `Bearer ${KEYS.pep}`, 'content-type': 'application/json' }, body: '{"input":{}}' });
    expect(res.status).toBe(404);
    expect((await res.json()) as object).toMatchObject({ code: 'resource_not_found', pdp_error: { code: 'entrypoint_not_found' } });
  });

  it('errors are OPA\'s: the SDK throws the same typed ClientError with OPA\'s code (ours rides along as pdp_error)', async () => {
    const undefinedDefault = { action: { name: 'read' } };
    const theirs = await client(opaUrl).evaluateDefault(undefinedDefault).then(() => undefined, (err: unknown) => err as { name: string; code?: string });
    const mine = await client(ours.url).evaluateDefault(undefinedDefault).then(() => undefined, (err: unknown) => err as { name: string; code?: string });
    expect(theirs).toMatchObject({ name: 'ClientError', code: 'undefined_document' });
    expect(mine).toMatchObject({ name: 'ClientError', code: 'undefined_document' });
  });
});
