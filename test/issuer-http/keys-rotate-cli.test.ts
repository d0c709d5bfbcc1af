/**
 * `agent-pdp keys rotate --config FILE`, run as the command function (the built CLI may be stale): it rotates the
 * key folder the config names, with the config's alg and max token TTL, and says what it did by kid.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { COMMANDS } from '../../src/cli/commands.js';
import { sha256Hex } from '../../src/config/dev-keys.js';
import { isPdpError } from '../../src/errors/pdp-error.js';
import { loadKeyRing } from '../../src/issuer/key-ring.js';

const roots: string[] = [];
afterAll(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
});

const rotate = COMMANDS.find((c) => c.name === 'keys rotate');

/** A config file whose issuer keys live in `<root>/keys`, 10 minutes max token TTL. */
function configFile(alg: 'EdDSA' | 'ES256'): { path: string; keyDir: string } {
  const root = mkdtempSync(join(tmpdir(), 'agent-pdp-cli-'));
  roots.push(root);
  const path = join(root, 'agent-pdp.yaml');
  writeFileSync(
    path,
    [
      'issuer:',
      '  issuer: http://127.0.0.1:8181',
      '  keys: keys',
      `  alg: ${alg}`,
      '  max_token_ttl_seconds: 600',
      'callers:',
      `  - { id: ops, role: admin, key_sha256: ${sha256Hex('cli-test-admin-key')} }`,
      '',
    ].join('\n'),
  );
  return { path, keyDir: join(root, 'keys') };
}

async function run(values: Record<string, string>): Promise<{ code: number; out: string }> {
  let out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  const code = await rotate!.run(values, []);
  vi.restoreAllMocks();
  return { code, out };
}

describe('agent-pdp keys rotate', () => {
  it.each([
    { note: 'EdDSA keys', created: 'EdDSA', alg: 'EdDSA' },
    { note: 'ES256 keys', created: 'ES256', alg: 'ES256' },
    { note: 'a config switched to ES256: the new next key is ES256', created: 'EdDSA', alg: 'ES256' },
  ] as const)('promotes next, retires active, adds a next key of the config alg, and says so by kid: $note', async ({ created, alg }) => {
    const { path, keyDir } = configFile(alg);
    const now = new Date();
    const first = await loadKeyRing(keyDir, { alg: created, now, maxTokenTtlSeconds: 600 }); // the server's first start
    const [active, next] = first.publishedKeys.map((k) => k.kid);

    const { code, out } = await run({ config: path });

    expect(code).toBe(0);
    const ring = await loadKeyRing(keyDir, { now: new Date(), maxTokenTtlSeconds: 600 });
    expect(ring.signingKey.kid).toBe(next);
    const [, newNext] = ring.publishedKeys.map((k) => k.kid);
    expect(ring.publishedKeys.map((k) => [k.kid, k.state, k.alg])).toEqual([
      [next, 'active', created],
      [newNext, 'next', alg],
      [active, 'retired', created],
    ]);
    expect(out).toContain(`active   ${next}`);
    expect(out).toContain(`next     ${newNext}`);
    expect(out).toMatch(new RegExp(`retired  ${active} .*published until \\S+Z`));
    expect(out).toContain('every server (each replica and worker) reads the key folder again within 30 s; SIGHUP or POST /v1/admin/reload makes one start signing with the new key at once');
  });

  it('refuses a key folder the server never created, and a missing --config', async () => {
    const { path } = configFile('EdDSA');
    const err = await rotate!.run({ config: path }, []).catch((e: unknown) => e);
    expect(isPdpError(err) && err.code).toBe('issuer_unavailable');
    vi.stubEnv('AGENT_PDP_CONFIG', '');
    const none = await rotate!.run({}, []).catch((e: unknown) => e);
    expect(isPdpError(none) && none.code).toBe('config_invalid');
    vi.unstubAllEnvs();
  });
});
