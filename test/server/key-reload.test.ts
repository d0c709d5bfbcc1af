import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { COMMANDS } from '../../src/cli/commands.js';
import { loadConfigFile } from '../../src/config/config-loader.js';
import { createPdp, type Pdp } from '../../src/main.js';
import { createLogger } from '../../src/server/logger.js';
import { TEST_CALLERS } from '../support/pdp-harness.js';

/**
 * `agent-pdp keys rotate` reaches a running server without a signal: `serve` reads the key ring again now and then
 * (here every 50 ms instead of 30 s), so the rotated ring's new next key is published in its JWKS and its old next key
 * signs. A key folder that does not load keeps the ring in force.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function privateTree(path: string): void {
  chmodSync(path, 0o755);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.isDirectory()) privateTree(join(path, entry.name));
    else if (entry.isFile()) chmodSync(join(path, entry.name), 0o644);
  }
}

describe('the key ring read again while serving', () => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-key-reload-'));
  const configPath = join(dir, 'agent-pdp.yaml');
  let pdp: Pdp;
  let server: Server;
  let url: string;
  const logLines: Array<{ level: number; msg: string; err?: string }> = [];
  const logStream = new PassThrough();
  logStream.setEncoding('utf8');
  let pending = '';
  logStream.on('data', (chunk: string) => {
    const parts = (pending + chunk).split('\n');
    pending = parts.pop() ?? '';
    for (const line of parts) if (line !== '') logLines.push(JSON.parse(line) as (typeof logLines)[number]);
  });

  beforeAll(async () => {
    cpSync(resolve('test/fixtures/policies'), join(dir, 'policies'), { recursive: true });
    privateTree(join(dir, 'policies'));
    cpSync(resolve('opa-bundle/bundle.tar.gz'), join(dir, 'bundle.tar.gz'));
    chmodSync(join(dir, 'bundle.tar.gz'), 0o644);
    writeFileSync(
      configPath,
      JSON.stringify({
        server: { listen: '127.0.0.1:0' },
        policy: { bundle: 'bundle.tar.gz', agents: 'policies', watch: false },
        store: { url: 'sqlite:data/pdp.db' },
        issuer: { issuer: 'http://127.0.0.1:8181', keys: 'data/keys' },
        log: { level: 'info' },
        callers: TEST_CALLERS,
      }),
    );
    const { config } = loadConfigFile(configPath);
    pdp = await createPdp(config, { logger: createLogger('info', logStream), defaultMetrics: false, keyReloadMs: 50 });
    server = createServer(pdp.handler).listen(0, '127.0.0.1');
    await new Promise<void>((ok) => server.once('listening', ok));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise<void>((ok) => (server === undefined ? ok() : server.close(() => ok())));
    await pdp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const jwksKids = async (): Promise<string[]> => {
    const res = await fetch(`${url}/.well-known/jwks.json`);
    expect(res.status).toBe(200);
    return ((await res.json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
  };

  async function until<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
    for (let i = 0; i < 400; i++) {
      const value = await check();
      if (value !== undefined) return value;
      await sleep(25);
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  it('publishes the key a CLI rotation added, and signs with the promoted one, without a reload', async () => {
    const before = await jwksKids();
    const signingBefore = pdp.keys.ring.signingKey.kid;
    const rotate = COMMANDS.find((c) => c.name === 'keys rotate');
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      expect(await rotate!.run({ config: configPath }, [])).toBe(0);
    } finally {
      vi.restoreAllMocks();
    }
    const after = await until('the rotated ring in the JWKS', async () => {
      const kids = await jwksKids();
      return kids.some((k) => !before.includes(k)) ? kids : undefined;
    });
    expect(after.filter((k) => !before.includes(k))).toHaveLength(1);
    // The old next key signs now; the old active key is still published (retired: tokens it signed still verify).
    expect(pdp.keys.ring.signingKey.kid).not.toBe(signingBefore);
    expect(before).toContain(pdp.keys.ring.signingKey.kid);
    expect(after).toContain(signingBefore);
    await until('the reload logged', async () => (logLines.some((l) => l.msg === 'issuer key ring reloaded: its keys changed') ? true : undefined));
  });

  it('keeps the ring in force when the key folder does not load', async () => {
    const kids = await jwksKids();
    const keyDir = join(dir, 'data', 'keys');
    const pem = readdirSync(keyDir).find((f) => f.endsWith('.pem'));
    expect(pem).toBeDefined();
    const secret = readFileSync(join(keyDir, pem as string), 'utf8');
    const failedBefore = logLines.filter((l) => l.msg.startsWith('reading the issuer key ring failed')).length;
    // A key file group and others may read is refused by the loader (as at start).
    chmodSync(join(keyDir, pem as string), 0o644);
    try {
      await until('the failed read logged', async () =>
        logLines.filter((l) => l.msg.startsWith('reading the issuer key ring failed')).length > failedBefore ? true : undefined,
      );
      expect(await jwksKids()).toEqual(kids);
    } finally {
      chmodSync(join(keyDir, pem as string), 0o600);
    }
    const failure = logLines.find((l) => l.msg.startsWith('reading the issuer key ring failed'));
    expect(failure?.level).toBe(50);
    const body = secret.split('\n').filter((l) => l !== '' && !l.startsWith('-----'))[0] as string;
    expect(JSON.stringify(logLines)).not.toContain(body);
  });
});
