import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPdpError } from '../../src/errors/pdp-error.js';
import type { DecisionResponseV1 } from '../../src/wire/decision-v1.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';
import { cli } from '../suggest/cli-world.js';

/**
 * Issue 19, "policies as bundles": `agent-pdp bundle build` compiles the YAML once; a server configured with
 * `policy.compiled` (and `policy.verification`) serves it without reading any YAML, decides exactly as a server on
 * the YAML does, reloads a newly built bundle, and refuses (keeping the last good one) a bundle signed with another
 * key, an unsigned one and an edited one.
 */

const work = mkdtempSync(join(tmpdir(), 'agent-pdp-compiled-'));
const policies = join(work, 'policies');
const keys = (): { privatePem: string; publicPem: string } => {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    privatePem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
};
const release = keys();
const intruder = keys();
for (const [name, text] of [['release.pem', release.privatePem], ['release.pub', release.publicPem], ['intruder.pem', intruder.privatePem]] as const) {
  writeFileSync(join(work, name), text, { mode: 0o600 });
}
const bundlePath = join(work, 'served', 'policies.tar.gz');

/** Folders 0755, files 0644: the PDP refuses policy that others may write. */
function tidy(path: string): void {
  chmodSync(path, 0o755);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.isDirectory()) tidy(join(path, entry.name));
    else chmodSync(join(path, entry.name), 0o644);
  }
}

/** `agent-pdp bundle build` into a temp file, then moved over the served one (as a deploy would). */
async function build(signingKey: string | null, out = bundlePath): Promise<string> {
  const staged = join(work, `staged-${Math.random().toString(36).slice(2)}.tar.gz`);
  const args = ['bundle', 'build', policies, '--out', staged, '--bundle', resolve('opa-bundle/bundle.tar.gz')];
  if (signingKey !== null) args.push('--signing-key', join(work, signingKey), '--signing-alg', 'ES256', '--key-id', 'release');
  const run = await cli(...args);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  chmodSync(staged, 0o644);
  renameSync(staged, out);
  return run.stdout;
}

const REQUESTS = [
  { agent_id: 'code-review-agent', task: { id: 'compiled' }, integration: 'slack', scopes: ['chat:write.public'] },
  { agent_id: 'code-review-agent', task: { id: 'compiled' }, integration: 'github', scopes: ['repo:read'] },
  { agent_id: 'code-review-agent', task: { id: 'compiled' }, integration: 'github', scopes: ['repo:write'] },
  { agent_id: 'support-resolver', task: { id: 'compiled', type: 'complaint_resolution', context: { customer_id: 'c-1' } }, integration: 'crm', scopes: ['crm:read'], resource: { type: 'customer', id: 'c-1' } },
  { agent_id: 'code-review-agent', task: { id: 'compiled' }, integration: 'not-an-integration', scopes: ['repo:read'] },
];

async function decide(t: TestPdp, body: object): Promise<DecisionResponseV1> {
  const res = await fetch(`${t.url}/v1/decide`, { method: 'POST', headers: { ...auth(KEYS.pep), 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status).toBe(200);
  return (await res.json()) as DecisionResponseV1;
}

/** What must not differ between two servers: everything but the ids and times. */
const comparable = (d: DecisionResponseV1): object => ({ ...d, decision_id: undefined, redeemable_until: undefined });

const compiledConfig = (verification: object | null): Record<string, unknown> => ({
  policy: {
    compiled: bundlePath,
    ...(verification === null ? {} : { verification }),
    watch: true,
    watch_interval_ms: 100,
  },
});
const VERIFY = { key_id: 'release', keys: { release: { algorithm: 'ES256', key_file: join(work, 'release.pub') } } };

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 50));
  if (!check()) throw new Error(`timed out waiting for ${what}`);
}

let yaml: TestPdp;
let compiled: TestPdp;

beforeAll(async () => {
  cpSync(resolve('test/fixtures/policies'), policies, { recursive: true });
  tidy(policies);
  mkdirSync(join(work, 'served'), { mode: 0o755 });
  expect(await build('release.pem')).toMatch(/staged-.*: \d+ agents, revision [0-9a-f]{16}\.[0-9a-f]{16}, \d+ bytes, signed ES256 \(kid release\)/);
  yaml = await startTestPdp({ policies });
  compiled = await startTestPdp({ config: compiledConfig(VERIFY) });
});

afterAll(async () => {
  await yaml?.close();
  await compiled?.close();
});

describe('serving a compiled bundle (policy.compiled)', () => {
  it('decides exactly as the server on the YAML, revision included', async () => {
    const active = compiled.pdp.engine.active;
    expect(active?.revision).toBe(yaml.pdp.engine.active?.revision);
    expect(active?.policySet.agents).toEqual(yaml.pdp.engine.active?.policySet.agents);
    for (const body of REQUESTS) {
      expect(comparable(await decide(compiled, body))).toEqual(comparable(await decide(yaml, body)));
    }
  });

  it('applies no policy suggestion over HTTP (it would not change what is served): a real apply → 400 naming dry_run', async () => {
    const res = await fetch(`${compiled.url}/v1/suggestions/sg_any/apply`, { method: 'POST', headers: { ...auth(KEYS.admin), 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; details: Array<{ path: string }> } };
    expect(body.error.code).toBe('invalid_request');
    expect(body.error.details.map((d) => d.path)).toEqual(['dry_run']);
  });

  it('reloads a newly built bundle, and refuses one signed with another key, an unsigned one and an edited one', async () => {
    const before = compiled.pdp.engine.active?.revision;
    const answer = async (): Promise<string[]> => (await decide(compiled, REQUESTS[0] as object)).granted_scopes;
    expect(await answer()).toEqual(['chat:write']);

    // A new policy: chat:write.public within the ceiling.
    const file = join(policies, 'agents/code-review-agent.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('max_scope: [channels:read, chat:write]', 'max_scope: [channels:read, chat:write, chat:write.public]'));
    await build('release.pem');
    await until(() => compiled.pdp.engine.active?.revision !== before, 'the new bundle to load');
    expect(await answer()).toEqual(['chat:write.public']);
    const good = compiled.pdp.engine.active?.revision;

    // The next three are refused; the last good bundle keeps serving.
    for (const [note, bad] of [
      ['another key', async () => build('intruder.pem')],
      ['unsigned', async () => build(null)],
      [
        'edited after signing',
        async () => {
          const { bundleFiles } = await import('../../src/policy/compiled-bundle.js');
          const { writeTarGz } = await import('../../src/policy/tar-writer.js');
          await build('release.pem', join(work, 'fresh.tar.gz'));
          const files = bundleFiles(readFileSync(join(work, 'fresh.tar.gz')), 'fresh');
          files.set('data.json', Buffer.from((files.get('data.json') as Buffer).toString().replace(/"token_ttl":\d+/, '"token_ttl":86400')));
          writeFileSync(join(work, 'edited.tar.gz'), writeTarGz([...files].map(([path, content]) => ({ path, content }))), { mode: 0o644 });
          renameSync(join(work, 'edited.tar.gz'), bundlePath);
        },
      ],
    ] as const) {
      const since = compiled.pdp.engine.refusal;
      await bad();
      await until(() => compiled.pdp.engine.refusal !== since && compiled.pdp.engine.refusal !== undefined, `the ${note} bundle to be refused`);
      expect(compiled.pdp.engine.refusal?.code, note).toBe('bundle_invalid');
      expect(compiled.pdp.engine.active?.revision, note).toBe(good);
      expect(await answer(), note).toEqual(['chat:write.public']);
      // Let the next build differ in time from this one (the watcher compares mtime and size).
      await new Promise((r) => setTimeout(r, 20));
    }
  });

  it('refuses to start on an unsigned bundle when a verification is configured, and warns on a signed one when none is', async () => {
    await build(null);
    const refused = await startTestPdp({ config: compiledConfig(VERIFY) }).then(
      async (t) => {
        await t.close();
        return 'started';
      },
      (err: unknown) => (isPdpError(err) ? `${err.code}: ${err.message}` : String(err)),
    );
    expect(refused).toMatch(/^bundle_invalid: bundle signature: the bundle is not signed/);

    await build('release.pem');
    const unchecked = await startTestPdp({ config: compiledConfig(null) });
    try {
      expect(unchecked.pdp.engine.active?.policySet.warnings.map((w) => w.message)).toContain(
        'the compiled bundle is signed, but policy.verification is not set: its signature was not checked',
      );
    } finally {
      await unchecked.close();
    }
  });

  it('bundle inspect checks the bundle and its signature and says what it holds', async () => {
    await build('release.pem');
    const ok = await cli('bundle', 'inspect', bundlePath, '--verification-key', join(work, 'release.pub'), '--signing-alg', 'ES256', '--key-id', 'release');
    expect(ok.code).toBe(0);
    const report = JSON.parse(ok.stdout) as { signed: boolean; signature_verified: boolean; agents: number; revision: string };
    expect(report).toMatchObject({ signed: true, signature_verified: true });
    expect(report.agents).toBeGreaterThan(3);
    const wrong = await cli('bundle', 'inspect', bundlePath, '--verification-key', join(work, 'release.pub'), '--signing-alg', 'RS256', '--key-id', 'release');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/does not verify/);
    const usage = await cli('bundle', 'build', policies);
    expect(usage.code).toBe(2);
  });
});
