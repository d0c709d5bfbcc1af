import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ensureBuilt } from '../audit-e2e/cli.js';
import { KEYS, spawnedServerConfig, startTestPdp } from '../support/pdp-harness.js';

/**
 * `agent-pdp serve` stopping and failing to start, as an operator meets it (the built CLI, a real process): a
 * keep-alive client cannot hold a stopping server open, and a port already taken ends the process instead of leaving
 * it (or its workers) running with nothing listening.
 */
const dirs: string[] = [];
beforeAll(() => ensureBuilt(), 120_000);
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function configFile(listen: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-shutdown-'));
  dirs.push(dir);
  cpSync(resolve('test/fixtures/policies'), join(dir, 'policies'), { recursive: true });
  const path = join(dir, 'agent-pdp.yaml');
  writeFileSync(path, JSON.stringify(spawnedServerConfig({ server: { listen } })));
  return path;
}

function get(url: string, agent: Agent): Promise<{ status: number; connection: string | undefined }> {
  return new Promise((ok, fail) => {
    const req = httpRequest(`${url}/healthz`, { agent }, (res) => {
      res.resume();
      res.on('end', () => ok({ status: res.statusCode ?? 0, connection: res.headers.connection }));
    });
    req.on('error', fail);
    req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

describe('stopping', () => {
  it('a client asking without pause on one keep-alive connection does not hold a SIGTERM\'d server open', async () => {
    const child = spawn(process.execPath, [CLI, 'serve', '--config', configFile('127.0.0.1:0')], { stdio: ['ignore', 'pipe', 'pipe'] });
    const url = await new Promise<string>((ok, fail) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        try {
          const entry = JSON.parse(line) as { msg?: string; url?: string };
          if (entry.msg === 'agent-pdp listening' && entry.url !== undefined) ok(entry.url);
        } catch {
          // not a log line
        }
      });
      child.once('exit', (code) => fail(new Error(`exited ${code} before listening`)));
    });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    expect(await get(url, agent)).toMatchObject({ status: 200, connection: 'keep-alive' });
    const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
    let stopped = false;
    void exited.then(() => (stopped = true));
    // The client keeps asking on its connection, a request every 300 ms (idle in between), from before the signal
    // until the process is gone.
    const hammer = (async () => {
      const seen: Array<{ status: number; connection: string | undefined } | string> = [];
      while (!stopped && seen.length < 200) {
        seen.push(await get(url, agent).catch((err: Error) => err.message));
        await new Promise((r) => setTimeout(r, 300));
      }
      return seen;
    })();
    // A request in flight when the signal comes (its body arrives after it), on the same connection.
    await new Promise((r) => setTimeout(r, 100));
    const body = JSON.stringify({ agent_id: 'code-review-agent', task: { id: 'stop-1' }, integration: 'github', scopes: ['repo:read'] });
    const inFlight = new Promise<{ status: number; connection: string | undefined }>((ok, fail) => {
      const req = httpRequest(`${url}/v1/decide`, { method: 'POST', agent, headers: { authorization: `Bearer ${KEYS.pep}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.resume();
        res.on('end', () => ok({ status: res.statusCode ?? 0, connection: res.headers.connection }));
      });
      req.on('error', fail);
      req.write(body.slice(0, 10));
      setTimeout(() => req.end(body.slice(10)), 300);
    });
    await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGTERM');
    // The request in flight is answered whole, and told to close its connection.
    expect(await inFlight).toMatchObject({ status: 200, connection: 'close' });
    const code = await Promise.race([exited, new Promise<'still running'>((r) => setTimeout(() => r('still running'), 15_000))]);
    if (code === 'still running') child.kill('SIGKILL');
    stopped = true;
    const seen = await hammer;
    agent.destroy();
    expect(code).toBe(0);
    // Every answer the client got was a whole 200 (after the stop, its requests find the port closed: errors).
    expect(seen.filter((s) => typeof s !== 'string' && s.status !== 200)).toEqual([]);
    expect(seen.some((s) => typeof s !== 'string')).toBe(true);
  }, 40_000);
});

describe('readiness while stopping', () => {
  it('/readyz answers 503 "shutting down" once the PDP drains (a balancer stops sending), while requests are still served', async () => {
    const t = await startTestPdp();
    try {
      expect((await fetch(`${t.url}/readyz`)).status).toBe(200);
      t.pdp.drain();
      const res = await fetch(`${t.url}/readyz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ status: 'not_ready', reason: 'shutting down' });
      expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    } finally {
      await t.close();
    }
  });
});

describe('starting on a port already taken', () => {
  it.each([
    { note: 'one process', workers: [] as string[] },
    { note: 'two workers', workers: ['--workers', '2'] },
  ])('$note: exits with an error instead of running on with nothing listening', async ({ workers }) => {
    const taken = createTcpServer();
    await new Promise<void>((ok) => taken.listen(0, '127.0.0.1', ok));
    const port = (taken.address() as AddressInfo).port;
    try {
      const child = spawn(process.execPath, [CLI, 'serve', '--config', configFile(`127.0.0.1:${port}`), ...workers], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout?.resume();
      child.stderr?.resume();
      const code = await Promise.race([
        new Promise<number | null>((ok) => child.once('exit', (c) => ok(c))),
        new Promise<'still running'>((r) => setTimeout(() => r('still running'), 25_000)),
      ]);
      if (code === 'still running') child.kill('SIGKILL');
      expect(code).not.toBe('still running');
      expect(code).not.toBe(0);
    } finally {
      taken.close();
    }
  }, 40_000);
});
