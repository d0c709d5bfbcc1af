/**
 * The `proxy` config section: defaults; the provider credential from exactly one of an environment variable or a
 * file; fixed upstream origins (https, or plain http on loopback only; plain http elsewhere is refused in
 * production and warned about otherwise); every refusal is config_invalid naming the field, never the credential.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/config-loader.js';
import { sha256Hex } from '../../src/config/dev-keys.js';
import { isPdpError, type PdpError } from '../../src/errors/pdp-error.js';

const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-proxy-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = 'ghs_the-provider-credential-0123456789';
const variables = { GITHUB_TOKEN: SECRET, EMPTY_TOKEN: '  ' };
const credentialFile = join(dir, 'github-token');
writeFileSync(credentialFile, `${SECRET}\n`);
chmodSync(credentialFile, 0o600);

const PEP = { id: 'pep-1', role: 'pep', key_sha256: sha256Hex('a-real-secret-1') };
const upstream = (over: Record<string, unknown> = {}) => ({ integration: 'github', origin: 'https://api.github.com', credential: { env: 'GITHUB_TOKEN' }, ...over });
const raw = (proxy: Record<string, unknown>) => ({ callers: [PEP], issuer: { issuer: 'https://pdp.example.com', keys: 'keys' }, proxy: { listen: '127.0.0.1:8282', upstreams: [upstream()], ...proxy } });
const build = (proxy: Record<string, unknown>, nodeEnv?: string) => buildConfig(raw(proxy), join(dir, 'c.yaml'), dir, { nodeEnv, variables });

function refusal(proxy: Record<string, unknown>, nodeEnv?: string): PdpError {
  try {
    build(proxy, nodeEnv);
  } catch (err) {
    if (isPdpError(err)) return err;
    throw err;
  }
  throw new Error('the config was accepted');
}

describe('the proxy section', () => {
  it('is null when absent', () => {
    const { config } = buildConfig({ callers: [PEP] }, join(dir, 'c.yaml'), dir, { variables });
    expect(config.proxy).toBeNull();
  });

  it('defaults every setting and reads the credential from env', () => {
    const { config, warnings } = build({});
    expect(warnings).toEqual([]);
    expect(config.proxy).toEqual({
      host: '127.0.0.1',
      port: 8282,
      serve: false,
      id: 'proxy',
      revocation_poll_ms: 200,
      token_cache_entries: 10000,
      max_request_bytes: 10485760,
      max_response_bytes: 104857600,
      upstreams: [
        {
          integration: 'github',
          origin: 'https://api.github.com',
          base_path: '',
          credential: { header: 'authorization', prefix: 'Bearer ', value: SECRET, file: null },
          forward_headers: [],
          connect_timeout_ms: 5000,
          headers_timeout_ms: 30000,
          body_timeout_ms: 30000,
          connections: 32,
        },
      ],
    });
    expect(Object.isFrozen(config.proxy?.upstreams[0]?.credential)).toBe(true);
  });

  it('accepts a revocation poll from 50 to 500 ms (the bound on refusing a revoked token stays under a second)', () => {
    for (const ms of [50, 500]) expect(build({ revocation_poll_ms: ms }).config.proxy?.revocation_poll_ms).toBe(ms);
  });

  it('names a credential file (resolved against the config folder) without reading it into the config', () => {
    const { config, warnings } = build({ upstreams: [upstream({ credential: { file: 'github-token', header: 'X-Api-Key', prefix: '' } })] });
    expect(warnings).toEqual([]);
    expect(config.proxy?.upstreams[0]?.credential).toEqual({ header: 'x-api-key', prefix: '', value: null, file: credentialFile });
  });

  it('accepts plain http on loopback in production (the fakes of the tests, a sidecar)', () => {
    for (const origin of ['http://127.0.0.1:9000', 'http://localhost:9000', 'http://[::1]:9000']) {
      expect(build({ upstreams: [upstream({ origin })] }, 'production').warnings).toEqual([]);
    }
  });

  it('warns about plain http on a non-loopback origin outside production, naming the field', () => {
    const { warnings } = build({ upstreams: [upstream({ origin: 'http://api.github.internal' })] });
    expect(warnings).toEqual([expect.stringContaining('proxy.upstreams[0].origin')]);
    expect(warnings.join('\n')).not.toContain(SECRET);
  });

  it('warns about a credential file that group or others can read', () => {
    const loose = join(dir, 'loose-token');
    writeFileSync(loose, SECRET);
    chmodSync(loose, 0o644);
    const { warnings } = build({ upstreams: [upstream({ credential: { file: loose } })] });
    expect(warnings).toEqual([expect.stringContaining('proxy.upstreams[0].credential.file')]);
    expect(warnings.join('\n')).not.toContain(SECRET);
  });

  it.each([
    { note: 'neither env nor file', proxy: { upstreams: [upstream({ credential: {} })] }, path: 'proxy.upstreams[0].credential' },
    { note: 'both env and file', proxy: { upstreams: [upstream({ credential: { env: 'GITHUB_TOKEN', file: credentialFile } })] }, path: 'proxy.upstreams[0].credential' },
    { note: 'an unset environment variable', proxy: { upstreams: [upstream({ credential: { env: 'NO_SUCH_TOKEN' } })] }, path: 'proxy.upstreams[0].credential.env' },
    { note: 'an environment variable of blanks', proxy: { upstreams: [upstream({ credential: { env: 'EMPTY_TOKEN' } })] }, path: 'proxy.upstreams[0].credential.env' },
    { note: 'a credential file that does not exist', proxy: { upstreams: [upstream({ credential: { file: 'no-such-file' } })] }, path: 'proxy.upstreams[0].credential.file' },
    { note: 'an origin with a path', proxy: { upstreams: [upstream({ origin: 'https://api.github.com/v3' })] }, path: 'proxy.upstreams[0].origin' },
    { note: 'an origin of another scheme', proxy: { upstreams: [upstream({ origin: 'ftp://api.github.com' })] }, path: 'proxy.upstreams[0].origin' },
    { note: 'an origin with a trailing slash', proxy: { upstreams: [upstream({ origin: 'https://api.github.com/' })] }, path: 'proxy.upstreams[0].origin' },
    { note: 'an origin with a query', proxy: { upstreams: [upstream({ origin: 'https://api.github.com?x=1' })] }, path: 'proxy.upstreams[0].origin' },
    { note: 'two upstreams for one integration', proxy: { upstreams: [upstream(), upstream({ origin: 'https://github.example.com' })] }, path: 'proxy.upstreams[1].integration' },
    { note: 'no upstream', proxy: { upstreams: [] }, path: 'proxy.upstreams' },
    { note: 'no listen address', proxy: { listen: undefined }, path: 'proxy.listen' },
    { note: 'a port above 65535', proxy: { listen: '127.0.0.1:70000' }, path: 'proxy.listen' },
    { note: 'a revocation poll beyond the one-second bound', proxy: { revocation_poll_ms: 5000 }, path: 'proxy.revocation_poll_ms' },
    { note: 'a revocation poll that leaves two reads no room within the 900 ms staleness bound', proxy: { revocation_poll_ms: 501 }, path: 'proxy.revocation_poll_ms' },
    { note: 'a base path with a query', proxy: { upstreams: [upstream({ base_path: '/api?x=1' })] }, path: 'proxy.upstreams[0].base_path' },
    { note: 'a base path with a dot-dot segment', proxy: { upstreams: [upstream({ base_path: '/api/..' })] }, path: 'proxy.upstreams[0].base_path' },
    { note: 'a base path with a dot segment', proxy: { upstreams: [upstream({ base_path: '/./api' })] }, path: 'proxy.upstreams[0].base_path' },
    { note: 'an origin with user info', proxy: { upstreams: [upstream({ origin: 'https://user:pass@api.github.com' })] }, path: 'proxy.upstreams[0].origin' },
    { note: 'an unknown field', proxy: { upstream: 'https://evil.example.com' }, path: 'proxy.upstream' },
  ])('refuses $note: config_invalid naming $path', ({ proxy, path }) => {
    const err = refusal(proxy);
    expect(err.code).toBe('config_invalid');
    expect(err.details.map((d) => d.path)).toContain(path);
    expect(JSON.stringify(err.details) + err.message).not.toContain(SECRET);
  });

  it('refuses plain http on a non-loopback origin in production, naming the field and not the credential', () => {
    const err = refusal({ upstreams: [upstream({ origin: 'http://api.github.com' })] }, 'production');
    expect(err.code).toBe('config_invalid');
    expect(err.details).toEqual([{ path: 'proxy.upstreams[0].origin', message: expect.stringContaining('https') }]);
    expect(JSON.stringify(err.details) + err.message).not.toContain(SECRET);
  });

  it('refuses a look-alike of loopback in production (the host itself must be loopback)', () => {
    const err = refusal({ upstreams: [upstream({ origin: 'http://127.0.0.1.nip.io' })] }, 'production');
    expect(err.details.map((d) => d.path)).toEqual(['proxy.upstreams[0].origin']);
  });
});
