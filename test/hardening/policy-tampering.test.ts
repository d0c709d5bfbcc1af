import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEventV1 } from '../../src/audit/index.js';
import { buildConfig } from '../../src/config/config-loader.js';
import { auth, KEYS, startTestPdp, TEST_CALLERS, type TestPdp } from '../support/pdp-harness.js';

/**
 * Issue 13, items 5 and 10, on a running server with the watcher on: with the policy folder at 0777, any local
 * user rewrote an agent's file and the watcher granted `admin:org` within 1.5 s; a 16 MB policy file stopped the
 * event loop for 25 s. Now the watcher refuses such a set and the one in force keeps deciding; the
 * `policy.loaded` trail can say which files (path and SHA-256) a revision came from (`PolicySet.files`).
 */

const AGENT = 'policies/agents/code-review-agent.yaml';
const ADMIN_ORG = { agent_id: 'code-review-agent', task: { id: 'tamper' }, integration: 'github', scopes: ['admin:org'] };

// A bundle of our own, so that its mode can be changed.
const bundleDir = mkdtempSync(join(tmpdir(), 'agent-pdp-bundle-'));
const bundle = join(bundleDir, 'bundle.tar.gz');
copyFileSync(resolve('opa-bundle/bundle.tar.gz'), bundle);
chmodSync(bundle, 0o644);

let t: TestPdp;
beforeAll(async () => {
  t = await startTestPdp({ watch: true, bundle });
});
afterAll(async () => {
  await t.close();
  rmSync(bundleDir, { recursive: true, force: true });
});

const decide = async (): Promise<{ outcome: string; granted_scopes: string[] }> =>
  (await request(t.url).post('/v1/decide').set(auth(KEYS.pep)).send(ADMIN_ORG).expect(200)).body;

async function events(type: AuditEventV1['type']): Promise<AuditEventV1[]> {
  const found: AuditEventV1[] = [];
  for await (const event of t.pdp.store.iterateEvents()) if (event.type === type) found.push(event);
  return found;
}

/** Waits (polling the audit trail, no fixed delay) until there are `count` events of `type`. */
async function untilEvents(type: AuditEventV1['type'], count: number): Promise<AuditEventV1[]> {
  for (let i = 0; i < 200; i++) {
    const found = await events(type);
    if (found.length >= count) return found;
    await new Promise((ok) => setTimeout(ok, 50));
  }
  throw new Error(`no ${count} ${type} events`);
}

describe('a policy folder others can write', () => {
  it('refuses the rewritten agent file; the set in force keeps deciding; fixing the mode reloads it', async () => {
    expect(await decide()).toMatchObject({ outcome: 'deny' });
    const before = t.pdp.engine.active?.revision;
    const refusedBefore = (await events('policy.refused')).length;

    const agents = join(t.dir, 'policies', 'agents');
    chmodSync(agents, 0o777);
    // What any local user could now do: write a file granting admin:org.
    const file = join(t.dir, AGENT);
    writeFileSync(file, readFileSync(file, 'utf8').replace('repo:read, pr:read', 'repo:read, admin:org, pr:read').replace('repo:write, admin:org,', 'repo:write,'));

    const [refused] = (await untilEvents('policy.refused', refusedBefore + 1)).slice(-1);
    expect(refused?.data).toMatchObject({ code: 'policy_invalid', details: [{ file: 'agents', message: expect.stringMatching(/^folder writable by group or others \(mode 0777\)/) }] });
    expect(t.pdp.engine.active?.revision).toBe(before);
    expect(await decide()).toMatchObject({ outcome: 'deny', granted_scopes: [] });

    // The owner fixes the mode (no content change): the watcher sees it and loads what the files now say.
    const loadedBefore = (await events('policy.loaded')).length;
    chmodSync(agents, 0o755);
    await untilEvents('policy.loaded', loadedBefore + 1);
    expect(t.pdp.engine.active?.revision).not.toBe(before);
    expect(await decide()).toMatchObject({ outcome: 'allow', granted_scopes: ['admin:org'] });
  });

  it('refuses a symbolic link out of the folder and a group-writable bundle', async () => {
    const before = t.pdp.engine.active?.revision;
    const outside = join(t.dir, 'outside.yaml');
    writeFileSync(outside, readFileSync(join(t.dir, AGENT), 'utf8').replace('code-review-agent', 'smuggled'), { mode: 0o644 });
    const link = join(t.dir, 'policies', 'agents', 'smuggled.yaml');
    symlinkSync(outside, link);
    await expect(t.pdp.reload()).rejects.toMatchObject({
      code: 'policy_invalid',
      details: [{ file: 'agents/smuggled.yaml', message: expect.stringMatching(/outside the policy directory: not followed/) }],
    });
    unlinkSync(link);
    expect(t.pdp.engine.active?.revision).toBe(before);

    chmodSync(bundle, 0o664);
    try {
      await expect(t.pdp.reload()).rejects.toMatchObject({
        code: 'bundle_invalid',
        details: [{ file: bundle, message: expect.stringMatching(/^policy bundle writable by group or others \(mode 0664\)/) }],
      });
    } finally {
      chmodSync(bundle, 0o644);
    }
    expect(t.pdp.engine.active?.revision).toBe(before);
  });

  it('lists the files of the loaded set with the SHA-256 of each', () => {
    const files = t.pdp.engine.active?.policySet.files ?? [];
    expect(files.map((f) => f.path)).toContain('agents/code-review-agent.yaml');
    for (const f of files) expect(f.sha256).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('a huge policy file', () => {
  it('is refused before it is parsed, naming the file; the set in force keeps deciding', async () => {
    const before = t.pdp.engine.active?.revision;
    const decisionBefore = await decide();
    const huge = join(t.dir, 'policies', 'agents', 'huge.yaml');
    writeFileSync(huge, `agent_policy:\n  id: huge\n  description: "${'x'.repeat(16 * 1024 * 1024)}"\n`, { mode: 0o644 });
    try {
      const error = await t.pdp.reload().then(
        () => undefined,
        (err: unknown) => err as { code: string; message: string; details: unknown[] },
      );
      expect(error?.code).toBe('policy_invalid');
      expect(error?.message).toMatch(/agents\/huge\.yaml is \d+ bytes, more than the limit of 1048576 bytes per policy file/);
      expect(error?.details).toEqual([expect.objectContaining({ file: 'agents/huge.yaml', message: expect.stringMatching(/not parsed$/) })]);
      expect(t.pdp.engine.active?.revision).toBe(before);
      expect(await decide()).toMatchObject({ outcome: decisionBefore.outcome, granted_scopes: decisionBefore.granted_scopes });
    } finally {
      unlinkSync(huge);
    }
  });
});

describe('policy.allow_insecure_permissions', () => {
  it('loads a world-writable set with an INSECURE warning per problem, announced at boot, refused in production', async () => {
    const policy = { bundle, agents: 'policies', watch: false, allow_insecure_permissions: true };
    const raw = { callers: TEST_CALLERS, policy };
    expect(buildConfig(raw, 'c.yaml', '/srv').warnings).toEqual([expect.stringMatching(/^policy\.allow_insecure_permissions is on: /)]);
    expect(() => buildConfig(raw, 'c.yaml', '/srv', { nodeEnv: 'production' })).toThrow(expect.objectContaining({ code: 'config_invalid' }));

    chmodSync(bundle, 0o666);
    const insecure = await startTestPdp({ bundle, config: { policy } }).finally(() => chmodSync(bundle, 0o644));
    try {
      chmodSync(join(insecure.dir, AGENT), 0o666);
      chmodSync(bundle, 0o666);
      const active = await insecure.pdp.reload().then(() => insecure.pdp.engine.active).finally(() => chmodSync(bundle, 0o644));
      expect(active?.policySet.warnings).toEqual([
        expect.objectContaining({ file: bundle, message: expect.stringMatching(/^INSECURE: policy bundle writable/) }),
        expect.objectContaining({ file: 'agents/code-review-agent.yaml', message: expect.stringMatching(/^INSECURE: file writable by group or others \(mode 0666\)/) }),
      ]);
    } finally {
      await insecure.close();
    }
  });
});
