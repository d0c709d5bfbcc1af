import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { buildConfig, loadConfigFile } from '../../src/config/config-loader.js';
import { DEV_KEYS, sha256Hex } from '../../src/config/dev-keys.js';
import { PdpError } from '../../src/errors/pdp-error.js';

/** The config file: validated (errors name the path), defaulted, frozen; insecure settings warn or are refused. */

const PEP = { id: 'pep-1', role: 'pep', key_sha256: sha256Hex('a-real-secret-1'), agents: ['support-resolver'] };
const ADMIN = { id: 'ops', role: 'admin', key_sha256: sha256Hex('a-real-secret-2') };
const DEV_PEP = { id: 'dev-pep', role: 'pep', key_sha256: sha256Hex('dev-pep-key') };
const DEV_ADMIN = { id: 'dev-admin', role: 'admin', key_sha256: sha256Hex('dev-admin-key') };
const BASE_DIR = resolve('/srv/agent-pdp');

const build = (raw: unknown, nodeEnv?: string) => buildConfig(raw, join(BASE_DIR, 'agent-pdp.yaml'), BASE_DIR, { nodeEnv });

function refusal(raw: unknown, nodeEnv?: string): PdpError {
  try {
    build(raw, nodeEnv);
  } catch (err) {
    if (err instanceof PdpError) return err;
    throw err;
  }
  throw new Error('the config was accepted');
}

const tempDirs: string[] = [];
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe('invalid configs are refused with config_invalid, naming the path', () => {
  it.each([
    { note: 'unknown top-level key', raw: { callers: [PEP], servr: {} }, path: 'servr', message: 'unknown field' },
    { note: 'unknown nested key', raw: { callers: [PEP], server: { port: 8181 } }, path: 'server.port', message: 'unknown field' },
    { note: 'unknown key in a caller', raw: { callers: [{ ...PEP, key: 'plaintext' }] }, path: 'callers[0].key', message: 'unknown field' },
    { note: 'no callers', raw: {}, path: 'callers', message: 'is required' },
    { note: 'an empty caller list', raw: { callers: [] }, path: 'callers', message: 'must NOT have fewer than 1 items' },
    { note: 'a role that does not exist', raw: { callers: [PEP, { ...ADMIN, role: 'superuser' }] }, path: 'callers[1].role', message: 'must be equal to one of the allowed values' },
    { note: 'a key hash too short', raw: { callers: [{ ...PEP, key_sha256: 'abc123' }] }, path: 'callers[0].key_sha256', message: expect.stringContaining('must match pattern') },
    { note: 'a key hash that is not hex', raw: { callers: [{ ...PEP, key_sha256: 'z'.repeat(64) }] }, path: 'callers[0].key_sha256', message: expect.stringContaining('must match pattern') },
    { note: 'a key instead of its hash', raw: { callers: [{ ...PEP, key_sha256: 'a-real-secret-1' }] }, path: 'callers[0].key_sha256', message: expect.stringContaining('must match pattern') },
    { note: 'a caller id with a space', raw: { callers: [{ ...PEP, id: 'pep 1' }] }, path: 'callers[0].id', message: expect.stringContaining('must match pattern') },
    { note: 'duplicate caller id', raw: { callers: [PEP, { ...ADMIN, id: 'pep-1' }] }, path: 'callers[1].id', message: 'duplicate caller id "pep-1"' },
    { note: 'two callers with one key', raw: { callers: [PEP, { ...ADMIN, key_sha256: PEP.key_sha256 }] }, path: 'callers', message: 'two callers share one API key' },
    { note: 'one key, spelled in upper and lower case', raw: { callers: [PEP, { ...ADMIN, key_sha256: PEP.key_sha256.toUpperCase() }] }, path: 'callers', message: 'two callers share one API key' },
    { note: 'agents on a non-pep caller', raw: { callers: [PEP, { ...ADMIN, agents: ['support-resolver'] }] }, path: 'callers[1]', message: 'agents and may_assert_context apply to role pep only' },
    { note: 'may_assert_context on a non-pep caller', raw: { callers: [{ ...ADMIN, may_assert_context: true }] }, path: 'callers[0]', message: 'agents and may_assert_context apply to role pep only' },
    { note: 'a port above 65535', raw: { callers: [PEP], server: { listen: '127.0.0.1:70000' } }, path: 'server.listen', message: 'port must be at most 65535' },
    { note: 'listen without a port', raw: { callers: [PEP], server: { listen: '127.0.0.1' } }, path: 'server.listen', message: expect.stringContaining('must match pattern') },
    { note: 'a body limit below 1 KiB', raw: { callers: [PEP], server: { body_limit_bytes: 10 } }, path: 'server.body_limit_bytes', message: 'must be >= 1024' },
    { note: 'a store that is neither sqlite nor postgres', raw: { callers: [PEP], store: { url: 'mysql://db/pdp' } }, path: 'store.url', message: expect.stringContaining('must match pattern') },
    { note: 'a watch interval below 100 ms', raw: { callers: [PEP], policy: { watch_interval_ms: 10 } }, path: 'policy.watch_interval_ms', message: 'must be >= 100' },
    { note: 'default task ttl above the maximum', raw: { callers: [PEP], tasks: { default_ttl_seconds: 7200, max_ttl_seconds: 3600 } }, path: 'tasks.default_ttl_seconds', message: 'exceeds tasks.max_ttl_seconds' },
    { note: 'an issuer that is not a URL', raw: { callers: [PEP], issuer: { issuer: 'pdp.example.com' } }, path: 'issuer.issuer', message: expect.stringContaining('must match pattern') },
    { note: 'an unknown signing algorithm', raw: { callers: [PEP], issuer: { alg: 'HS256' } }, path: 'issuer.alg', message: 'must be equal to one of the allowed values' },
    { note: 'a mask path with an empty segment', raw: { callers: [PEP], audit: { mask: ['input..ssn'] } }, path: 'audit.mask[0]', message: expect.stringContaining('must match pattern') },
    { note: 'a log level that does not exist', raw: { callers: [PEP], log: { level: 'verbose' } }, path: 'log.level', message: 'must be equal to one of the allowed values' },
    { note: 'suggestions: min_days above window_days', raw: { callers: [PEP], suggestions: { min_days: 60, window_days: 30 } }, path: 'suggestions.min_days', message: 'exceeds suggestions.window_days: nothing could ever be suggested' },
    { note: 'policy.compiled with policy.agents', raw: { callers: [PEP], policy: { compiled: 'p.tar.gz', agents: 'policies' } }, path: 'policy.agents', message: 'policy.compiled replaces policy.agents: set one or the other' },
    { note: 'policy.verification without policy.compiled', raw: { callers: [PEP], policy: { verification: { keys: { k: { algorithm: 'RS256', key_file: 'k.pem' } } } } }, path: 'policy.verification', message: 'checks the signature of policy.compiled or policy.service, neither of which is set' },
    { note: 'policy.service with policy.compiled', raw: { callers: [PEP], policy: { service: { url: 'https://b.example.com/p.tar.gz' }, compiled: 'p.tar.gz' } }, path: 'policy.compiled', message: 'policy.service replaces policy.compiled: set one or the other' },
    { note: 'policy.service over plain http off loopback', raw: { callers: [PEP], policy: { service: { url: 'http://bundles.example.com/p.tar.gz' } } }, path: 'policy.service.url', message: 'must be https (plain http only on a loopback host)' },
    { note: 'a suggestion schedule on a compiled bundle', raw: { callers: [PEP], policy: { compiled: 'p.tar.gz' }, suggestions: { schedule: {} } }, path: 'suggestions.schedule', message: 'needs the YAML policy folder, which a server on policy.compiled or policy.service does not read: run agent-pdp suggest where the policies are kept' },
    { note: 'policy.service: max delay below min', raw: { callers: [PEP], policy: { service: { url: 'https://b.example.com/p', min_delay_seconds: 60, max_delay_seconds: 10 } } }, path: 'policy.service.max_delay_seconds', message: 'is below policy.service.min_delay_seconds' },
    { note: 'policy.verification: an algorithm OPA does not sign with', raw: { callers: [PEP], policy: { compiled: 'p.tar.gz', verification: { keys: { k: { algorithm: 'none', key_file: 'k.pem' } } } } }, path: 'policy.verification.keys.k.algorithm', message: expect.stringContaining('must match pattern') },
    { note: 'policy.verification: no keys', raw: { callers: [PEP], policy: { compiled: 'p.tar.gz', verification: { keys: {} } } }, path: 'policy.verification.keys', message: expect.stringContaining('fewer than 1') },
    { note: 'authzen: a subject type routed to the agent decision', raw: { callers: [PEP], authzen: { subjects: { user: { decision: 'agentpdp/decision' } } } }, path: 'authzen.subjects.user.decision', message: "agentpdp/decision is the agent decision's own: route a subject type to a Rego pack's entrypoint" },
    { note: 'authzen: a route to the compiled policies', raw: { callers: [PEP], authzen: { subjects: { user: { decision: 'a/decision', entities: 'policies/agents' } } } }, path: 'authzen.subjects.user.entities', message: "policies/agents is the agent decision's own: route a subject type to a Rego pack's entrypoint" },
    { note: 'authzen: type agent cannot be routed', raw: { callers: [PEP], authzen: { subjects: { agent: { decision: 'a/decision' } } } }, path: 'authzen.subjects.agent', message: 'type agent is built in (the agent decision) and cannot be routed' },
    { note: 'authzen: a pdp_url with a path', raw: { callers: [PEP], authzen: { pdp_url: 'https://pdp.example.com/tenant1' } }, path: 'authzen.pdp_url', message: expect.stringContaining('must match pattern') },
    { note: 'suggestions: a ttl_factor below 2', raw: { callers: [PEP], suggestions: { ttl_factor: 1.5 } }, path: 'suggestions.ttl_factor', message: 'must be >= 2' },
    { note: 'production refuses a documented dev key', raw: { callers: [PEP, DEV_ADMIN] }, env: 'production', path: 'callers[1].key_sha256', message: 'a documented dev key is refused in production' },
    { note: 'production refuses a plain-http issuer', raw: { callers: [PEP], issuer: { issuer: 'http://pdp.example.com' } }, env: 'production', path: 'issuer.issuer', message: 'must be https in production' },
    { note: 'production refuses the default issuer on a public listen address', raw: { callers: [PEP], server: { listen: '0.0.0.0:8181' } }, env: 'production', path: 'issuer.issuer', message: 'must be https in production' },
    { note: 'production: a host that only starts like a loopback address', raw: { callers: [PEP], issuer: { issuer: 'http://127.0.0.1.nip.io:8181' } }, env: 'production', path: 'issuer.issuer', message: 'must be https in production' },
    { note: 'production: localhost as a subdomain', raw: { callers: [PEP], issuer: { issuer: 'http://localhost.example.com/' } }, env: 'production', path: 'issuer.issuer', message: 'must be https in production' },
  ])('$note → $path', ({ raw, env, path, message }) => {
    const error = refusal(raw, env);
    expect(error.code).toBe('config_invalid');
    expect(error.details).toContainEqual({ path, message });
    expect(error.message).toContain(path);
  });

  it('reports every problem at once, not only the first', () => {
    const error = refusal({ callers: [{ ...PEP, role: 'root' }, { ...ADMIN, key_sha256: 'nope' }], servr: 1 });
    expect(error.details.map((d) => d.path).sort()).toEqual(['callers[0].role', 'callers[1].key_sha256', 'servr']);
  });

  it('never echoes a key: a refusal names the caller, not its key or hash', () => {
    const error = refusal({ callers: [PEP, DEV_ADMIN] }, 'production');
    const text = JSON.stringify({ message: error.message, details: error.details });
    for (const key of DEV_KEYS) {
      expect(text).not.toContain(key);
      expect(text).not.toContain(sha256Hex(key));
    }
  });
});

describe('insecure settings outside production warn, and the warnings never contain a key', () => {
  it('one warning per caller on a documented dev key', () => {
    const { warnings } = build({ callers: [DEV_PEP, PEP, DEV_ADMIN] });
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/caller "dev-pep" uses a documented DEV KEY/);
    expect(warnings[1]).toMatch(/caller "dev-admin" uses a documented DEV KEY/);
    for (const key of DEV_KEYS) {
      for (const warning of warnings) {
        expect(warning).not.toContain(key);
        expect(warning).not.toContain(sha256Hex(key));
      }
    }
  });

  it('a PostgreSQL store.url no URL parser reads is config_invalid naming store.url, without quoting it (it may hold the password)', () => {
    const err = refusal({ callers: [PEP], store: { url: 'postgres://pdp:Sup3r-Secret@127.0.0.1:notaport/pdp' } });
    expect(err.code).toBe('config_invalid');
    expect(err.details).toContainEqual({ path: 'store.url', message: expect.stringContaining('is not a URL') });
    expect(JSON.stringify({ message: err.message, details: err.details })).not.toContain('Sup3r-Secret');
    // What node-postgres reads is accepted: a Unix socket (no host after the user), a space in the password.
    for (const url of ['postgres://pdp@/agentpdp?host=/var/run/postgresql', 'postgresql://pdp:a b@127.0.0.1:5432/pdp', 'postgres:///pdp?host=/tmp']) {
      expect(build({ callers: [PEP], store: { url } }).config.store.url).toBe(url);
    }
  });

  it('listening on port 0 with the default issuer warns: the issuer would name port 0', () => {
    expect(build({ callers: [PEP], server: { listen: '127.0.0.1:0' } }).warnings).toEqual([expect.stringMatching(/server\.listen 127\.0\.0\.1:0 picks a free port .* set issuer\.issuer/)]);
    expect(build({ callers: [PEP], server: { listen: '127.0.0.1:0' }, issuer: { issuer: 'http://127.0.0.1:9999' } }).warnings).toEqual([]);
    expect(build({ callers: [PEP], server: { listen: '127.0.0.1:8080' } }).warnings).toEqual([]);
  });

  it('the shipped dev config loads with a warning for each of its seven keys', () => {
    const { config, warnings } = loadConfigFile('agent-pdp.dev.yaml');
    expect(config.callers).toHaveLength(7);
    expect(warnings.filter((w) => w.includes('DEV KEY'))).toHaveLength(7);
    expect(warnings.join('\n')).not.toMatch(/dev-[a-z-]+-key|[0-9a-f]{64}/);
  });

  it('the shipped AuthZEN config (make run-authzen) loads and routes type user to the certification pack\'s entrypoints', () => {
    const { config, warnings } = loadConfigFile('agent-pdp.authzen.yaml');
    expect(warnings.filter((w) => !w.includes('DEV KEY'))).toEqual([]);
    const exported = execFileSync(process.execPath, ['scripts/rego-pack.mjs', 'examples/packs/authzen-certification'], { encoding: 'utf8' }).trim().split('\n');
    expect(config.authzen.subjects['user']).toEqual({ decision: 'authzen/certification/decision', entities: 'authzen/certification/entities' });
    expect(exported).toEqual(expect.arrayContaining([config.authzen.subjects['user']!.decision, config.authzen.subjects['user']!.entities]));
    expect(config.authzen.pdp_url).toBe(config.issuer.issuer);
  });

  it('authzen.pdp_url defaults to the origin of the public URL: a path there is not carried into the metadata', () => {
    const { config } = build({ callers: [PEP], issuer: { issuer: 'https://auth.example.com/pdp' } });
    expect(config.escalation.public_url).toBe('https://auth.example.com/pdp');
    expect(config.authzen.pdp_url).toBe('https://auth.example.com');
    expect(build({ callers: [PEP], issuer: { issuer: 'https://auth.example.com:8443/' } }).config.authzen.pdp_url).toBe('https://auth.example.com:8443');
    // A URL the schema's pattern lets through but no parser reads: a config error naming it, not a crash.
    expect(() => build({ callers: [PEP], escalation: { public_url: 'https://pdp.example.com:99999' } })).toThrow(expect.objectContaining({ code: 'config_invalid', details: expect.arrayContaining([expect.objectContaining({ path: 'escalation.public_url' })]) }));
  });

  it('ships the secure setting: the README\'s PEP may not assert task context; only the separate trusted PEP may', () => {
    const { config } = loadConfigFile('agent-pdp.dev.yaml');
    const byKey = (key: string) => config.callers.find((c) => c.key_sha256 === sha256Hex(key));
    expect(byKey('dev-pep-key')).toMatchObject({ id: 'support-middleware', role: 'pep', may_assert_context: false });
    expect(byKey('dev-trusted-pep-key')).toMatchObject({ id: 'trusted-middleware', role: 'pep', may_assert_context: true });
    expect(config.callers.filter((c) => c.may_assert_context).map((c) => c.id)).toEqual(['trusted-middleware']);
  });

  it.each([
    { note: 'a plain-http issuer on a public host warns', issuer: 'http://pdp.example.com', warns: true },
    { note: 'a host that only starts like a loopback address warns', issuer: 'http://127.0.0.1.nip.io', warns: true },
    { note: 'https does not warn', issuer: 'https://pdp.example.com', warns: false },
    { note: 'loopback IPv4 does not warn', issuer: 'http://127.0.0.1:8181', warns: false },
    { note: 'localhost does not warn', issuer: 'http://localhost:8181', warns: false },
    { note: 'localhost without a port does not warn', issuer: 'http://localhost', warns: false },
    { note: 'IPv6 loopback does not warn', issuer: 'http://[::1]:8181', warns: false },
  ])('$note', ({ issuer, warns }) => {
    const { warnings } = build({ callers: [PEP], issuer: { issuer } });
    expect(warnings.some((w) => w.includes('plain http'))).toBe(warns);
    // And production refuses exactly those that warn.
    if (warns) expect(refusal({ callers: [PEP], issuer: { issuer } }, 'production').code).toBe('config_invalid');
    else expect(() => build({ callers: [PEP], issuer: { issuer } }, 'production')).not.toThrow();
  });

  it('production accepts a config without dev keys and with an https issuer, silently', () => {
    const { warnings } = build({ callers: [PEP, ADMIN], issuer: { issuer: 'https://pdp.example.com' } }, 'production');
    expect(warnings).toEqual([]);
  });
});

describe('defaults, freezing and paths', () => {
  it('applies every default to a minimal config', () => {
    const { config, warnings } = build({ callers: [PEP] });
    expect(warnings).toEqual([]);
    expect(config).toEqual({
      source: join(BASE_DIR, 'agent-pdp.yaml'),
      server: { host: '127.0.0.1', port: 8181, body_limit_bytes: 65536, workers: 1 },
      policy: {
        bundle: join(BASE_DIR, 'opa-bundle/bundle.tar.gz'),
        agents: join(BASE_DIR, 'policies'),
        watch: true,
        watch_interval_ms: 1000,
        allow_insecure_permissions: false,
        max_file_bytes: 1048576,
        max_entries_per_file: 10000,
        compiled: null,
        verification: null,
        service: null,
      },
      store: { url: `sqlite:${join(BASE_DIR, 'data/agent-pdp.db')}`, synchronous: 'normal', schema: null, pool_size: 8 },
      issuer: { issuer: 'http://127.0.0.1:8181', keys: join(BASE_DIR, 'data/keys'), alg: 'EdDSA', redeem_window_seconds: 60, max_token_ttl_seconds: 3600, audiences: {} },
      tasks: { default_ttl_seconds: 3600, max_ttl_seconds: 86400 },
      audit: { mask: [], mask_key_file: null, retention_days: null },
      log: { level: 'info' },
      authzen: { pdp_url: 'http://127.0.0.1:8181', max_evaluations: 100, max_page_size: 100, subjects: {} },
      console: { enabled: true, session_idle_seconds: 900, session_max_seconds: 28800, secure_cookie: false },
      escalation: {
        public_url: 'http://127.0.0.1:8181',
        request_window_seconds: 600,
        pending_ttl_seconds: 3600,
        link_ttl_seconds: 900,
        link_key_file: join(BASE_DIR, 'data/keys/approval-link.key'),
        sweep_interval_ms: 1000,
        outbox: { max_attempts: 10, initial_backoff_ms: 500, max_backoff_ms: 300000, timeout_ms: 5000, concurrency: 32 },
        webhooks: [],
      },
      suggestions: { min_days: 30, min_tokens: 20, window_days: 90, ttl_factor: 4, schedule: null },
      proxy: null,
      providers: [],
      callers: [{ id: 'pep-1', role: 'pep', roles: ['pep'], key_sha256: PEP.key_sha256, agents: ['support-resolver'], may_assert_context: false }],
    });
  });

  it('defaults a caller without agents to none and may_assert_context to false, and lowercases key hashes', () => {
    const { config } = build({ callers: [{ id: 'p', role: 'pep', key_sha256: PEP.key_sha256.toUpperCase() }] });
    expect(config.callers[0]).toEqual({ id: 'p', role: 'pep', roles: ['pep'], key_sha256: PEP.key_sha256, agents: [], may_assert_context: false });
  });

  it('console.secure_cookie auto: Secure when escalation.public_url is https; a max below the idle timeout is refused', () => {
    expect(build({ callers: [PEP], escalation: { public_url: 'https://pdp.example.com' } }).config.console.secure_cookie).toBe(true);
    expect(build({ callers: [PEP], escalation: { public_url: 'https://pdp.example.com' }, console: { secure_cookie: false } }).config.console.secure_cookie).toBe(false);
    expect(build({ callers: [PEP], console: { secure_cookie: true } }).config.console.secure_cookie).toBe(true);
    expect(() => build({ callers: [PEP], console: { session_idle_seconds: 3600, session_max_seconds: 600 } })).toThrow(/console.session_max_seconds/);
    // In production the public URL is https (refused otherwise), so auto is Secure; turning it off warns.
    const https = { issuer: { issuer: 'https://pdp.example.com' }, escalation: { public_url: 'https://pdp.example.com' } };
    expect(build({ callers: [PEP], ...https }, 'production').warnings.filter((w) => w.includes('console'))).toEqual([]);
    expect(build({ callers: [PEP], ...https, console: { secure_cookie: false } }, 'production').warnings).toContainEqual(expect.stringContaining('console.secure_cookie is off in production'));
  });

  it.each([
    { key: 'endpoint', provider: { kind: 'aws', role_arn: 'arn:aws:iam::123456789012:role/agents', region: 'eu-west-1', endpoint: 'http://sts.example.com' } },
    { key: 'token_endpoint', provider: { kind: 'google_workspace', token_endpoint: 'http://oauth2.example.com/token' } },
    { key: 'sts_endpoint', provider: { kind: 'gcp_storage', sts_endpoint: 'http://127.0.0.1.nip.io/v1/token' } },
  ])('a provider $key over plain http off loopback is refused, in any NODE_ENV (tokens would travel in clear)', ({ key, provider }) => {
    const raw = { callers: [PEP], providers: [{ integration: 'x', credential: { env: 'AGENTPDP_TEST_UNUSED' }, ...provider }] };
    let error: unknown;
    try {
      buildConfig(raw, join(BASE_DIR, 'agent-pdp.yaml'), BASE_DIR, { variables: { AGENTPDP_TEST_UNUSED: 'x' } });
    } catch (e) {
      error = e;
    }
    expect((error as { details?: Array<{ path: string; message: string }> }).details).toContainEqual({ path: `providers[0].${key}`, message: expect.stringContaining('must be https (plain http only on a loopback host)') });
    // On a loopback host it stays allowed (the tests' and the demo's fakes).
    const loopback = { ...provider, [key]: key === 'endpoint' ? 'http://127.0.0.1:9' : 'http://127.0.0.1:9/x' };
    expect(() => buildConfig({ callers: [PEP], providers: [{ integration: 'x', credential: { env: 'AGENTPDP_TEST_UNUSED' }, ...loopback }] }, join(BASE_DIR, 'agent-pdp.yaml'), BASE_DIR, { variables: { AGENTPDP_TEST_UNUSED: 'x' } })).not.toThrow();
  });

  it.each([
    { note: 'default: a new role maximum', extra: {}, expected: 3600 },
    { note: 'a role raised to 12 hours', extra: { max_session_seconds: 43200 }, expected: 43200 },
    { note: 'shorter than the role allows', extra: { max_session_seconds: 900 }, expected: 900 },
    { note: 'below STS minimum', extra: { max_session_seconds: 899 }, expected: /providers\[0\]\.max_session_seconds/ },
    { note: 'above AssumeRole ceiling', extra: { max_session_seconds: 43201 }, expected: /providers\[0\]\.max_session_seconds/ },
    { note: 'for a Google kind', extra: { kind: 'google_workspace', role_arn: undefined, region: undefined, max_session_seconds: 3600 }, expected: /providers\[0\]\.max_session_seconds.*is for kind aws/ },
  ])('providers[].max_session_seconds: $note', ({ extra, expected }) => {
    const provider = JSON.parse(JSON.stringify({ integration: 'x', kind: 'aws', role_arn: 'arn:aws:iam::123456789012:role/agents', region: 'eu-west-1', credential: { env: 'AGENTPDP_TEST_UNUSED' }, ...extra })) as Record<string, unknown>;
    const load = () => buildConfig({ callers: [PEP], providers: [provider] }, join(BASE_DIR, 'agent-pdp.yaml'), BASE_DIR, { variables: { AGENTPDP_TEST_UNUSED: 'x' } });
    if (typeof expected === 'number') {
      const [loaded] = load().config.providers;
      expect(loaded?.kind === 'aws' ? loaded.max_session_seconds : undefined).toBe(expected);
      return;
    }
    let error: unknown;
    try {
      load();
    } catch (e) {
      error = e;
    }
    expect(JSON.stringify((error as { details?: unknown }).details)).toMatch(expected);
  });

  it('strips trailing slashes from the issuer', () => {
    expect(build({ callers: [PEP], issuer: { issuer: 'https://pdp.example.com//' } }).config.issuer.issuer).toBe('https://pdp.example.com');
  });

  it.each([
    { note: 'the config', get: (c: ReturnType<typeof build>['config']) => c },
    { note: 'a section', get: (c: ReturnType<typeof build>['config']) => c.server },
    { note: 'the caller list', get: (c: ReturnType<typeof build>['config']) => c.callers },
    { note: 'a caller', get: (c: ReturnType<typeof build>['config']) => c.callers[0] },
    { note: "a caller's agents", get: (c: ReturnType<typeof build>['config']) => c.callers[0]?.agents },
    { note: 'the audiences map', get: (c: ReturnType<typeof build>['config']) => c.issuer.audiences },
    { note: 'the mask list', get: (c: ReturnType<typeof build>['config']) => c.audit.mask },
  ])('is deeply frozen: $note', ({ get }) => {
    const { config } = build({ callers: [PEP], issuer: { audiences: { crm: 'https://crm.example.com' } }, audit: { mask: ['input.task.context.ssn'] } });
    const part = get(config) as object;
    expect(Object.isFrozen(part)).toBe(true);
    expect(() => Object.assign(part, { injected: true })).toThrow(TypeError);
  });

  it('does not keep a reference to the raw object it was given', () => {
    const raw = { callers: [{ ...PEP, agents: ['support-resolver'] }] };
    const { config } = build(raw);
    raw.callers[0]?.agents.push('code-review-agent');
    expect(config.callers[0]?.agents).toEqual(['support-resolver']);
  });

  it('resolves relative paths against the config file’s folder, and keeps absolute ones', () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-config-'));
    tempDirs.push(dir);
    const confDir = join(dir, 'conf');
    const file = join(confDir, 'pdp.yaml');
    const absoluteKeys = join(tmpdir(), 'elsewhere', 'keys');
    mkdirSync(confDir);
    writeFileSync(
      file,
      stringify({
        policy: { bundle: '../bundles/b.tar.gz', agents: 'policies' },
        store: { url: 'sqlite:data/pdp.db' },
        issuer: { keys: absoluteKeys },
        callers: [PEP],
      }),
    );
    const { config } = loadConfigFile(file);
    expect(config.source).toBe(file);
    expect(config.policy.bundle).toBe(join(dir, 'bundles/b.tar.gz'));
    expect(config.policy.agents).toBe(join(confDir, 'policies'));
    expect(config.store.url).toBe(`sqlite:${join(confDir, 'data/pdp.db')}`);
    expect(config.issuer.keys).toBe(absoluteKeys);
  });

  it('keeps an in-memory store as it is', () => {
    expect(build({ callers: [PEP], store: { url: 'sqlite::memory:' } }).config.store.url).toBe('sqlite::memory:');
  });

  it.each([
    { note: 'a missing file', text: undefined, message: 'cannot read config file' },
    { note: 'YAML that does not parse', text: 'callers: [ {id: x', message: 'is not valid YAML' },
    { note: 'YAML that is not a mapping', text: '- just\n- a list\n', message: 'is invalid' },
  ])('a config file with $note → config_invalid', ({ text, message }) => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-config-'));
    tempDirs.push(dir);
    const file = join(dir, 'pdp.yaml');
    if (text !== undefined) writeFileSync(file, text);
    expect(() => loadConfigFile(file)).toThrow(expect.objectContaining({ code: 'config_invalid', message: expect.stringContaining(message) }));
  });
});
