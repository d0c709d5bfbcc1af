import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DECISION_ENTRYPOINT, readBundleFile } from '../../src/policy/bundle-reader.js';
import { buildCompiledBundle, bundleFiles, readCompiledBundle } from '../../src/policy/compiled-bundle.js';
import { loadPolicyDir } from '../../src/policy/policy-loader.js';
import { readTarGz } from '../../src/policy/tar-reader.js';
import { WasmEvaluator } from '../../src/policy/wasm-evaluator.js';
import { OPA_BIN } from '../support/opa-cli.js';
import { packBundle } from '../support/pack-bundle.js';
import { startTestPdp, type TestPdp } from '../support/pdp-harness.js';

const run = promisify(execFile);
const CERTIFICATION = 'examples/packs/authzen-certification';
const DECISION = 'authzen/certification/decision';
const ENTITIES = 'authzen/certification/entities';

/** A pack in a fresh temp folder: `files` by name (pack.yaml included). */
function writePack(name: string, files: Readonly<Partial<Record<string, string>>>): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'agent-pdp-pack-')), name);
  mkdirSync(dir);
  for (const [file, text] of Object.entries(files)) if (text !== undefined) writeFileSync(join(dir, file), text);
  return dir;
}

const manifest = (id: string, entrypoints: string[]): string =>
  `pack:\n  id: ${id}\n  description: a test pack\n  entrypoints: [${entrypoints.join(', ')}]\n`;

/** How a build of rego/ with `packs` fails: its exit code and what it said. */
async function buildFailure(packs: string[]): Promise<{ code: number; stderr: string }> {
  const out = join(mkdtempSync(join(tmpdir(), 'agent-pdp-pack-out-')), 'b.tar.gz');
  try {
    await run('scripts/build-bundle.sh', [...packs.flatMap((p) => ['--pack', p]), '--output', out], { env: { ...process.env, OPA: OPA_BIN } });
  } catch (err) {
    const { code, stderr } = err as { code: number; stderr: string };
    return { code, stderr };
  }
  throw new Error('expected the build to fail');
}

const revisionOf = async (packs: string[]): Promise<string> =>
  (await run('node', ['scripts/bundle-revision.mjs', ...packs.flatMap((p) => ['--pack', p])])).stdout.trim();

const alice = { type: 'user', id: 'alice' };
const bob = { type: 'user', id: 'bob' };
const record1 = { type: 'record', id: 'record-1' };
const record2 = { type: 'record', id: 'record-2' };
const harnessContext = { time: '2025-06-27T18:03-07:00', ip: '192.168.1.1' };

/** Scenario C-1.4, as the harness sends each rule (C-2.2), through the WASM of the built bundle. */
const RULES = [
  { note: 'rule 1: alice reads record-1', input: { subject: alice, action: { name: 'read' }, resource: record1 }, decision: true },
  { note: 'rule 2: alice writes record-1', input: { subject: alice, action: { name: 'write' }, resource: record1 }, decision: true },
  { note: 'rule 3: bob reads record-1', input: { subject: bob, action: { name: 'read' }, resource: record1 }, decision: true },
  { note: 'rule 4: bob may not write record-1', input: { subject: bob, action: { name: 'write' }, resource: record1 }, decision: false },
  { note: 'rule 5: alice may not write an archived record', input: { subject: alice, action: { name: 'write' }, resource: { ...record2, properties: { status: 'archived' } } }, decision: false },
  { note: 'rule 6: an admin writes an archived record', input: { subject: { ...bob, properties: { role: 'admin' } }, action: { name: 'write' }, resource: { ...record2, properties: { status: 'archived' } } }, decision: true },
  { note: 'rule 7: alice soft-deletes record-1', input: { subject: alice, action: { name: 'delete', properties: { soft: true } }, resource: record1 }, decision: true },
  { note: 'rule 8: alice may not hard-delete record-1', input: { subject: alice, action: { name: 'delete', properties: { soft: false } }, resource: record1 }, decision: false },
  { note: 'context changes nothing (C-2.2.3)', input: { subject: alice, action: { name: 'read' }, resource: record1, context: harnessContext }, decision: true },
  { note: 'an unknown subject is denied (C-4.6.1)', input: { subject: { type: 'user', id: 'nonexistent-user' }, action: { name: 'read' }, resource: record1 }, decision: false },
  { note: 'a malformed request is a defined deny', input: { subject: 'alice', action: { name: 123 } }, decision: false },
  { note: 'no input object at all is a defined deny', input: null, decision: false },
];

interface Entity {
  type: string;
  id: string;
  properties?: Record<string, unknown>;
}
interface Catalog {
  subjects: Entity[];
  resources: Entity[];
  actions: { name: string }[];
}

describe('Rego packs: built into the bundle beside the agent decision', () => {
  let bundlePath: string;
  let pdp: TestPdp;

  beforeAll(async () => {
    bundlePath = await packBundle([CERTIFICATION]);
    pdp = await startTestPdp({ bundle: bundlePath });
  });
  afterAll(async () => {
    await pdp?.close();
  });

  it('lists every entrypoint in the manifest, with a revision covering the pack', async () => {
    const bundle = await readBundleFile(bundlePath);
    expect([...bundle.entrypoints].sort()).toEqual([DECISION_ENTRYPOINT, DECISION, ENTITIES]);
    expect(bundle.revision).toBe(await revisionOf([CERTIFICATION]));
    expect(bundle.revision).not.toBe((await readBundleFile('opa-bundle/bundle.tar.gz')).revision);
    expect(await packBundle([CERTIFICATION])).toBe(bundlePath);
  });

  it('loads in the real PDP, whose agent decision still decides and whose every entrypoint evaluates', async () => {
    const engine = pdp.pdp.engine;
    expect(engine.active?.evaluator.entrypoints).toEqual([DECISION_ENTRYPOINT, DECISION, ENTITIES]);
    const agent = engine.evaluateEntrypoint(DECISION_ENTRYPOINT, { agent_id: 'no-such-agent', caller_id: 'test', integration: 'github', scopes: ['repo:read'], task: { id: 't', context: {}, registered: false } });
    expect(agent).toMatchObject({ defined: true, result: { outcome: 'deny' } });
    expect(engine.evaluateEntrypoint(DECISION, RULES[0]?.input)).toMatchObject({ defined: true, result: { decision: true } });
    expect(engine.evaluateEntrypoint(ENTITIES, {})).toMatchObject({ defined: true });
  });

  it.each(RULES)('$note', ({ input, decision }) => {
    const { defined, result } = pdp.pdp.engine.evaluateEntrypoint(DECISION, input);
    expect(defined).toBe(true);
    expect((result as { decision: unknown }).decision).toBe(decision);
    if (decision) expect(result).toEqual({ decision: true });
    else expect((result as { context: { reason_admin: { en: unknown } } }).context.reason_admin.en).toEqual(expect.any(String));
  });

  it('answers S1-S6 when searched as the AuthZEN router searches: each catalog entry with the request properties over its own', () => {
    const engine = pdp.pdp.engine;
    const catalog = engine.evaluateEntrypoint(ENTITIES, { anything: 'ignored' }).result as Catalog;
    expect(catalog.subjects.map((s) => s.id)).toEqual(['alice', 'bob']);
    expect(catalog.resources.map((r) => r.id)).toEqual(['record-1', 'record-2']);
    expect(catalog.actions).toEqual([{ name: 'read' }, { name: 'write' }, { name: 'delete' }]);
    const allowed = (input: object): boolean => (engine.evaluateEntrypoint(DECISION, input).result as { decision: boolean }).decision;
    const candidate = (entry: Entity, requested: Partial<Entity>): Entity => ({ ...entry, properties: { ...entry.properties, ...requested.properties } });
    type Search = { subject?: Partial<Entity>; action?: { name: string }; resource?: Partial<Entity>; context?: object };
    const subjects = (req: Search & { subject: { type: string } }): string[] =>
      catalog.subjects.filter((s) => s.type === req.subject.type && allowed({ ...req, subject: candidate(s, req.subject) })).map((s) => s.id);
    const resources = (req: Search & { resource: { type: string } }): string[] =>
      catalog.resources.filter((r) => r.type === req.resource.type && allowed({ ...req, resource: candidate(r, req.resource) })).map((r) => r.id);
    const actions = (req: Search): string[] => catalog.actions.filter((a) => allowed({ ...req, action: { name: a.name } })).map((a) => a.name);

    expect(subjects({ subject: { type: 'user' }, action: { name: 'read' }, resource: record1 })).toEqual(expect.arrayContaining(['alice', 'bob'])); // S1
    expect(subjects({ subject: alice, action: { name: 'read' }, resource: record1 })).toEqual(expect.arrayContaining(['alice', 'bob'])); // C-4.2.3
    expect(resources({ subject: alice, action: { name: 'read' }, resource: { type: 'record' } })).toContain('record-1'); // S2
    expect(actions({ subject: alice, resource: record1 })).toEqual(expect.arrayContaining(['read', 'write'])); // S3
    expect(subjects({ subject: { type: 'user' }, action: { name: 'write' }, resource: { ...record2, properties: { status: 'archived' } } })).toContain('bob'); // S4
    expect(resources({ subject: { ...bob, properties: { role: 'admin' } }, action: { name: 'write' }, resource: { type: 'record' } })).toContain('record-2'); // S5
    expect(actions({ subject: { ...bob, properties: { role: 'admin' } }, resource: { ...record2, properties: { status: 'archived' } } })).toContain('write'); // S6
    expect(actions({ subject: { type: 'user', id: 'nonexistent-user' }, resource: record1 })).toEqual([]); // C-4.6.1
    expect(subjects({ subject: { type: 'spaceship' }, action: { name: 'read' }, resource: record1 })).toEqual([]); // C-4.6.2
  });

  it('carries every entrypoint through a compiled bundle (agent-pdp bundle build)', async () => {
    const rego = await readBundleFile(bundlePath);
    const policies = await loadPolicyDir('policies');
    const gz = await buildCompiledBundle(policies, rego, readTarGz(readFileSync(bundlePath)));
    const files = bundleFiles(gz, 'compiled');
    expect([...files.keys()]).toContain('packs/authzen-certification/certification.rego');
    const compiled = await readCompiledBundle(files, 'compiled');
    expect([...compiled.bundle.entrypoints].sort()).toEqual([DECISION_ENTRYPOINT, DECISION, ENTITIES]);
    const evaluator = await WasmEvaluator.create(compiled.bundle, compiled.policySet.data as unknown as Record<string, unknown>, compiled.policySet.revision);
    expect(evaluator.evaluateEntrypoint(DECISION, RULES[3]?.input)).toMatchObject({ defined: true, result: { decision: false } });
  });
});

describe('Rego packs: what a build refuses', () => {
  it.each([
    {
      note: 'a package under agentpdp (a pack must not change the agent decision)',
      files: { 'pack.yaml': manifest('evil', ['evil/decision']), 'p.rego': 'package agentpdp.ext.evil\n\ndecision := true\n' },
      message: /p\.rego: package agentpdp\.ext\.evil is under agentpdp, which the agent decision owns/,
    },
    {
      note: 'the agentpdp package itself',
      files: { 'pack.yaml': manifest('evil', ['evil/decision']), 'p.rego': '# a comment first\npackage agentpdp\n\ndecision := true\n' },
      message: /package agentpdp is under agentpdp/,
    },
    {
      note: 'an entrypoint under agentpdp',
      files: { 'pack.yaml': manifest('evil', ['agentpdp/decision']), 'p.rego': 'package evil\n\ndecision := true\n' },
      message: /entrypoints\[0\] agentpdp\/decision is under agentpdp/,
    },
    {
      note: 'an entrypoint that is not a path',
      files: { 'pack.yaml': manifest('bad', ['Bad/Decision']), 'p.rego': 'package bad\n\ndecision := true\n' },
      message: /entrypoints\[0\] must match/,
    },
    {
      note: 'an entrypoint outside the pack\'s packages',
      files: { 'pack.yaml': manifest('mine', ['theirs/decision']), 'p.rego': 'package mine\n\ndecision := true\n' },
      message: /entrypoint theirs\/decision is not a rule of this pack's packages \(mine\)/,
    },
    {
      note: 'a builtin the WASM SDK lacks (http.send), named by OPA as for rego/',
      files: { 'pack.yaml': manifest('fetch', ['fetch/decision']), 'p.rego': 'package fetch\n\ndecision := http.send({"method": "GET", "url": "http://127.0.0.1:1"}).status_code\n' },
      message: /undefined function http\.send/,
    },
    {
      note: 'a rule reading the compiled policies',
      files: { 'pack.yaml': manifest('peek', ['peek/d']), 'p.rego': 'package peek\n\n# data.policies in a comment is fine\nd := data.policies\n' },
      message: /p\.rego: reads data\.policies, which the agent decision owns/,
    },
    {
      note: 'a rule running the agent decision on an input of the caller\'s making',
      files: { 'pack.yaml': manifest('forge', ['forge/d']), 'p.rego': 'package forge\n\nd := x if {\n\tx := data.agentpdp.decision with input as input.forged\n}\n' },
      message: /p\.rego: reads data\.agentpdp, which the agent decision owns/,
    },
    {
      note: 'a rule reading data whole, or by a computed key',
      files: { 'pack.yaml': manifest('whole', ['whole/d']), 'p.rego': 'package whole\n\nd := data\n\ne := data[input.key]\n' },
      message: /reads data, which[\s\S]*reads data\[\.\.\.\], which/,
    },
    {
      note: 'a pack without pack.yaml',
      files: { 'p.rego': 'package x\n\nd := 1\n' },
      message: /pack\.yaml: missing/,
    },
  ])('$note', async ({ files, message }) => {
    const failure = await buildFailure([writePack('pack', files)]);
    expect(failure.code).toBe(1);
    expect(failure.stderr).toMatch(message);
  });

  it('refuses two packs with the same id', async () => {
    const one = writePack('one', { 'pack.yaml': manifest('same', ['one/d']), 'p.rego': 'package one\n\nd := 1\n' });
    const two = writePack('two', { 'pack.yaml': manifest('same', ['two/d']), 'p.rego': 'package two\n\nd := 1\n' });
    expect((await buildFailure([one, two])).stderr).toMatch(/id same is also .*one's/);
  });

  it('refuses --pack without --output: the committed bundle is built from rego/ alone', async () => {
    const failure = await run('scripts/build-bundle.sh', ['--pack', CERTIFICATION]).then(
      () => undefined,
      (err: { code: number; stderr: string }) => err,
    );
    expect(failure).toMatchObject({ code: 2, stderr: expect.stringMatching(/--pack needs --output/) });
  });
});

describe('Rego packs: the revision names everything compiled', () => {
  it('changes when a pack file changes, not when its tests do; without packs it is the committed bundle\'s', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'agent-pdp-pack-')), 'authzen-certification');
    cpSync(resolve(CERTIFICATION), dir, { recursive: true });
    const before = await revisionOf([dir]);
    expect(before).toBe(await revisionOf([CERTIFICATION])); // where the pack lives does not matter
    writeFileSync(join(dir, 'certification_test.rego'), `${readFileSync(join(dir, 'certification_test.rego'), 'utf8')}\n# more tests\n`);
    expect(await revisionOf([dir])).toBe(before);
    writeFileSync(join(dir, 'entities.rego'), `${readFileSync(join(dir, 'entities.rego'), 'utf8')}\n# a change\n`);
    const after = await revisionOf([dir]);
    expect(after).not.toBe(before);
    expect((await readBundleFile(await packBundle([dir]))).revision).toBe(after);
    writeFileSync(join(dir, 'pack.yaml'), readFileSync(join(dir, 'pack.yaml'), 'utf8').replace('description: The', 'description: the'));
    expect(await revisionOf([dir])).not.toBe(after);
    expect(await revisionOf([])).toBe((await readBundleFile('opa-bundle/bundle.tar.gz')).revision);
  });
});
