import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/config-loader.js';
import { isPdpError } from '../../src/errors/pdp-error.js';
import { createPdp, type Pdp } from '../../src/main.js';
import { readBundleFile } from '../../src/policy/bundle-reader.js';
import { buildCompiledBundle } from '../../src/policy/compiled-bundle.js';
import { loadPolicyDir } from '../../src/policy/policy-loader.js';
import { readTarGz } from '../../src/policy/tar-reader.js';
import { createLogger } from '../../src/server/logger.js';
import { TEST_CALLERS } from '../support/pdp-harness.js';

/**
 * Issue 19: replicas pull the compiled bundle from a bundle server with OPA's protocol (ETag, If-None-Match, 304),
 * check its signature, keep the last good one on disk, and refuse (serving on) a corrupt, an unsigned and a wrongly
 * signed bundle. The bundle server is a real HTTP server on loopback; the PDP is the real one on a temp folder.
 */

const work = mkdtempSync(join(tmpdir(), 'agent-pdp-bundle-service-'));
const pair = (): { priv: string; pub: string } => {
  const p = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { priv: p.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), pub: p.publicKey.export({ type: 'spki', format: 'pem' }).toString() };
};
const release = pair();
const intruder = pair();
writeFileSync(join(work, 'release.pub'), release.pub);
writeFileSync(join(work, 'token'), 'bundle-server-token\n', { mode: 0o600 });

/** What the bundle server serves now, and what it saw. */
const served: { body: Buffer; etag: string; status?: number } = { body: Buffer.alloc(0), etag: '"none"' };
const seen: Array<{ ifNoneMatch: string | undefined; authorization: string | undefined; status: number }> = [];
let bundleServer: Server;
let bundleUrl: string;

function answer(req: IncomingMessage): { status: number; body?: Buffer } {
  if (served.status !== undefined) return { status: served.status };
  if (req.headers['if-none-match'] === served.etag) return { status: 304 };
  return { status: 200, body: served.body };
}

async function startBundleServer(port = 0): Promise<void> {
  bundleServer = createServer((req, res) => {
    const { status, body } = answer(req);
    seen.push({ ifNoneMatch: req.headers['if-none-match'], authorization: req.headers.authorization, status });
    res.writeHead(status, status === 200 ? { etag: served.etag, 'content-type': 'application/gzip' } : {});
    res.end(body);
  }).listen(port, '127.0.0.1');
  await new Promise<void>((ok) => bundleServer.once('listening', ok));
  bundleUrl = `http://127.0.0.1:${(bundleServer.address() as AddressInfo).port}/bundles/agent-pdp.tar.gz`;
}
const stopBundleServer = (): Promise<void> =>
  new Promise((ok) => {
    bundleServer.closeAllConnections();
    bundleServer.close(() => ok());
  });

const policies = join(work, 'policies');
let bundleA: Buffer;
let bundleB: Buffer;
let revisionA: string;
let revisionB: string;

async function build(signing: string | null): Promise<{ gz: Buffer; revision: string }> {
  const set = await loadPolicyDir(policies);
  const rego = await readBundleFile('opa-bundle/bundle.tar.gz');
  const gz = await buildCompiledBundle(set, rego, readTarGz(readFileSync('opa-bundle/bundle.tar.gz')), signing === null ? undefined : { algorithm: 'ES256', key: signing, keyId: 'release' });
  return { gz, revision: `${rego.revision}.${set.revision}` };
}

const replicaDir = join(work, 'replica');

async function replica(): Promise<Pdp> {
  const raw = {
    server: { listen: '127.0.0.1:0' },
    policy: {
      service: { url: bundleUrl, token_file: join(work, 'token'), min_delay_seconds: 3600, max_delay_seconds: 3600, timeout_seconds: 5 },
      verification: { keys: { release: { algorithm: 'ES256', key_file: join(work, 'release.pub') } } },
    },
    store: { url: 'sqlite:data/pdp.db' },
    issuer: { issuer: 'http://127.0.0.1:8181', keys: 'data/keys' },
    log: { level: 'silent' },
    callers: TEST_CALLERS,
  };
  const { config } = buildConfig(raw, join(replicaDir, 'config.yaml'), replicaDir);
  return createPdp(config, { logger: createLogger('silent'), defaultMetrics: false });
}

beforeAll(async () => {
  cpSync(resolve('test/fixtures/policies'), policies, { recursive: true });
  const tidy = (p: string): void => {
    chmodSync(p, 0o755);
    for (const e of readdirSync(p, { withFileTypes: true })) e.isDirectory() ? tidy(join(p, e.name)) : chmodSync(join(p, e.name), 0o644);
  };
  tidy(policies);
  ({ gz: bundleA, revision: revisionA } = await build(release.priv));
  const file = join(policies, 'agents/code-review-agent.yaml');
  writeFileSync(file, readFileSync(file, 'utf8').replace('max_scope: [channels:read, chat:write]', 'max_scope: [channels:read, chat:write, chat:write.public]'));
  ({ gz: bundleB, revision: revisionB } = await build(release.priv));
  expect(revisionB).not.toBe(revisionA);
  await startBundleServer();
});

afterAll(async () => {
  await stopBundleServer().catch(() => undefined);
});

describe('pulling the compiled bundle from a bundle server (policy.service)', () => {
  let pdp: Pdp;

  it('starts on the first download, with the bearer token, and persists it with its ETag', async () => {
    Object.assign(served, { body: bundleA, etag: '"a"' });
    pdp = await replica();
    expect(pdp.engine.active?.revision).toBe(revisionA);
    expect(seen[0]).toEqual({ ifNoneMatch: undefined, authorization: 'Bearer bundle-server-token', status: 200 });
    expect(readFileSync(join(replicaDir, 'data/policy-bundle.tar.gz')).equals(bundleA)).toBe(true);
    expect(readFileSync(join(replicaDir, 'data/policy-bundle.tar.gz.etag'), 'utf8').trim()).toBe('"a"');
    expect(await pdp.bundlePoller?.poll()).toBe('not_modified');
    expect(seen.at(-1)).toMatchObject({ ifNoneMatch: '"a"', status: 304 });
  });

  it('refuses a corrupt, an unsigned and a wrongly signed bundle; the last good one serves and stays persisted', async () => {
    const unsigned = (await build(null)).gz;
    const wrongKey = (await build(intruder.priv)).gz;
    for (const [note, body, etag] of [
      ['corrupt', Buffer.from('this is not a gzip stream'), '"corrupt"'],
      ['unsigned', unsigned, '"unsigned"'],
      ['another key', wrongKey, '"intruder"'],
    ] as const) {
      Object.assign(served, { body, etag });
      expect(await pdp.bundlePoller?.poll(), note).toBe('refused');
      expect(pdp.engine.refusal?.code, note).toBe('bundle_invalid');
      expect(pdp.engine.active?.revision, note).toBe(revisionA);
      expect(readFileSync(join(replicaDir, 'data/policy-bundle.tar.gz')).equals(bundleA), note).toBe(true);
      // The same refused bytes are not fetched again, a restart included.
      expect(await pdp.bundlePoller?.poll(), note).toBe('not_modified');
      expect(seen.at(-1), note).toMatchObject({ ifNoneMatch: etag, status: 304 });
      expect(readFileSync(join(replicaDir, 'data/policy-bundle.tar.gz.refused-etag'), 'utf8').trim(), note).toBe(etag);
    }
    expect(readdirSync(join(replicaDir, 'data')).filter((f) => f.includes('.download-'))).toEqual([]);
  });

  it('adopts a new good bundle, and keeps serving when the bundle server fails or is gone', async () => {
    Object.assign(served, { body: bundleB, etag: '"b"' });
    expect(await pdp.bundlePoller?.poll()).toBe('loaded');
    expect(pdp.engine.active?.revision).toBe(revisionB);
    expect(pdp.engine.refusal).toBeUndefined();
    expect(readFileSync(join(replicaDir, 'data/policy-bundle.tar.gz')).equals(bundleB)).toBe(true);
    expect(existsSync(join(replicaDir, 'data/policy-bundle.tar.gz.refused-etag'))).toBe(false);
    served.status = 503;
    expect(await pdp.bundlePoller?.poll()).toBe('failed');
    delete served.status;
    await stopBundleServer();
    expect(await pdp.bundlePoller?.poll()).toBe('failed');
    expect(pdp.engine.active?.revision).toBe(revisionB);
  });

  it('restarts on the persisted bundle with the bundle server down, and picks up the next one when it is back', async () => {
    await pdp.close();
    pdp = await replica();
    try {
      expect(pdp.engine.active?.revision).toBe(revisionB);
      const port = Number(new URL(bundleUrl).port);
      await startBundleServer(port);
      Object.assign(served, { body: bundleA, etag: '"a2"' });
      expect(await pdp.bundlePoller?.poll()).toBe('loaded');
      expect(pdp.engine.active?.revision).toBe(revisionA);
    } finally {
      await pdp.close();
    }
  });

  it('a restart whose persisted bundle is refused (the key was rotated) downloads afresh; leftovers of a crash are removed', async () => {
    const rotated = pair();
    writeFileSync(join(work, 'release.pub'), rotated.pub);
    const fresh = (await build(rotated.priv)).gz;
    Object.assign(served, { body: fresh, etag: '"rotated"' });
    writeFileSync(join(replicaDir, 'data/policy-bundle.tar.gz.download-deadbeef'), 'half a download');
    const restarted = await replica();
    try {
      expect(restarted.engine.active).toBeDefined();
      expect(readFileSync(join(replicaDir, 'data/policy-bundle.tar.gz')).equals(fresh)).toBe(true);
      expect(seen.at(-1)?.status === 200 || seen.some((s) => s.ifNoneMatch === undefined && s.status === 200)).toBe(true);
      expect(existsSync(join(replicaDir, 'data/policy-bundle.tar.gz.download-deadbeef'))).toBe(false);
    } finally {
      await restarted.close();
      writeFileSync(join(work, 'release.pub'), release.pub);
    }
  });

  it('a token file that cannot be a bearer token fails the poll without quoting it', async () => {
    const { BundlePoller } = await import('../../src/bundle-service/bundle-poller.js');
    const errors: string[] = [];
    const poller = new BundlePoller({
      url: bundleUrl,
      token: async () => 'SECRET-TOKEN-123\nsecond-line',
      minDelayMs: 1000,
      maxDelayMs: 1000,
      timeoutMs: 2000,
      maxBytes: 1 << 20,
      persistPath: join(work, 'unused.tar.gz'),
      adopt: async () => undefined,
      observed: (_outcome, error) => errors.push(`${error?.code}: ${error?.message}`),
    });
    expect(await poller.poll()).toBe('failed');
    expect(errors.join(' ')).toMatch(/config_invalid: policy.service.token_file holds characters a bearer token cannot have/);
    expect(errors.join(' ')).not.toContain('SECRET');
  });

  it('makes the folder of policy.service.persist when it does not exist (a replica whose store is not SQLite has none)', async () => {
    Object.assign(served, { body: bundleA, etag: '"a"' });
    const fresh = mkdtempSync(join(tmpdir(), 'agent-pdp-bundle-service-fresh-'));
    const { config } = buildConfig(
      {
        server: { listen: '127.0.0.1:0' },
        policy: {
          service: { url: bundleUrl, token_file: join(work, 'token'), min_delay_seconds: 3600, max_delay_seconds: 3600, timeout_seconds: 5, persist: 'bundles/pulled/policy.tar.gz' },
          verification: { keys: { release: { algorithm: 'ES256', key_file: join(work, 'release.pub') } } },
        },
        store: { url: 'sqlite:store/pdp.db' },
        issuer: { issuer: 'http://127.0.0.1:8181', keys: 'keys' },
        log: { level: 'silent' },
        callers: TEST_CALLERS,
      },
      join(fresh, 'config.yaml'),
      fresh,
    );
    expect(existsSync(join(fresh, 'bundles'))).toBe(false);
    const started = await createPdp(config, { logger: createLogger('silent'), defaultMetrics: false });
    try {
      expect(started.engine.active?.revision).toBe(revisionA);
      expect(readFileSync(join(fresh, 'bundles/pulled/policy.tar.gz')).equals(bundleA)).toBe(true);
    } finally {
      await started.close();
    }
  });

  it('refuses to start with neither a persisted bundle nor a bundle server that answers', async () => {
    const port = Number(new URL(bundleUrl).port);
    await stopBundleServer();
    const empty = mkdtempSync(join(tmpdir(), 'agent-pdp-bundle-service-empty-'));
    const { config } = buildConfig(
      {
        policy: { service: { url: `http://127.0.0.1:${port}/gone.tar.gz`, timeout_seconds: 2 } },
        store: { url: 'sqlite:data/pdp.db' },
        issuer: { keys: 'data/keys' },
        log: { level: 'silent' },
        callers: TEST_CALLERS,
      },
      join(empty, 'config.yaml'),
      empty,
    );
    const refused = await createPdp(config, { logger: createLogger('silent'), defaultMetrics: false }).then(
      async (p) => {
        await p.close();
        return 'started';
      },
      (err: unknown) => (isPdpError(err) ? `${err.code}: ${err.message}` : String(err)),
    );
    expect(refused).toMatch(/^bundle_missing: no policy: the first download from policy.service failed, and none is persisted/);
    expect(existsSync(join(empty, 'data/policy-bundle.tar.gz'))).toBe(false);
  });
});
