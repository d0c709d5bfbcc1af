import { spawn, type ChildProcess } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ensureBuilt, runBuiltCli } from '../audit-e2e/cli.js';
import { callOnFreshConnection } from '../support/fresh-connection.js';
import { KEYS, spawnedServerConfig } from '../support/pdp-harness.js';

/**
 * Issue 19, "every core": `agent-pdp serve --workers 2` on one SQLite store. Connections are spread over both
 * workers (each a new connection here); one decision is redeemed exactly once whichever workers race for it; a task
 * completed through one worker denies at once on the other; SIGHUP and POST /v1/admin/reload reach both; a worker
 * killed with SIGKILL is replaced and nothing acknowledged is lost (the chain verifies, every acknowledged decision is
 * in it); SIGTERM stops them all.
 */

const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-workers-'));
const configPath = join(dir, 'agent-pdp.yaml');
let child: ChildProcess;
let url = '';
const lines: Array<{ msg?: string; worker?: number; pid?: number; url?: string; revision?: string }> = [];

/** One request on a connection of its own (so the primary hands it to the next worker). */
const call = (method: string, path: string, key: string, body?: object) => callOnFreshConnection(url, method, path, key, body, 10_000);

/** code-review-agent on a task the trusted PEP asserts inline (no registration). */
const decide = (task: string, scopes: string[], integration = 'github') =>
  call('POST', '/v1/decide', KEYS.pep, { agent_id: 'code-review-agent', task: { id: task }, integration, scopes });
/** support-resolver on its registered complaint task. */
const decideRegistered = (task: string) =>
  call('POST', '/v1/decide', KEYS.pep, { agent_id: 'support-resolver', task: { id: task }, integration: 'crm', scopes: ['tickets:read'] });

async function until<T>(what: string, check: () => T | undefined, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const listening = (): typeof lines => lines.filter((l) => l.msg === 'agent-pdp listening');

beforeAll(async () => {
  ensureBuilt();
  cpSync(resolve('test/fixtures/policies'), join(dir, 'policies'), { recursive: true });
  writeFileSync(
    configPath,
    JSON.stringify(spawnedServerConfig()),
  );
  child = spawn(process.execPath, [CLI, 'serve', '--config', configPath, '--workers', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      lines.push(JSON.parse(line) as (typeof lines)[number]);
    } catch {
      // not a log line
    }
  });
  const ready = await until('both workers to listen', () => (listening().length >= 2 ? listening() : undefined));
  url = ready[0]?.url as string;
  expect(new Set(ready.map((l) => l.worker))).toEqual(new Set([1, 2]));
  expect(ready[1]?.url).toBe(url);
  // The orchestrator registers the tasks the tests use.
  const res = await call('POST', '/v1/tasks', KEYS.orchestrator, { id: 'complete-me', agent_id: 'support-resolver', type: 'complaint_resolution', context: { customer_id: 'c-1' }, expires_in_seconds: 3600 });
  expect(res.status).toBe(201);
}, 120_000);

afterAll(() => {
  child?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('serve --workers 2 on one SQLite store', () => {
  it('runs every worker with the server V8 flags, though the primary was started without them (process-flags.ts)', () => {
    for (const { pid } of listening()) {
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      expect(args).toContain('--no-memory-reducer');
    }
    expect(lines.filter((l) => 'missing_node_flags' in l)).toEqual([]);
  });

  it('spreads connections over both workers, and a decision is redeemed exactly once whichever workers race', async () => {
    const served = new Set<number>();
    const seenServing = (): Set<number> => {
      for (const l of lines) if (l.msg === 'request' && typeof l.worker === 'number') served.add(l.worker);
      return served;
    };
    // The kernel picks the worker of each new connection: ask until both have answered (it takes a few).
    for (let i = 0; i < 200 && seenServing().size < 2; i++) expect((await decide('spread', ['repo:read'])).status).toBe(200);
    expect(seenServing()).toEqual(new Set([1, 2]));
    for (let round = 0; round < 5; round++) {
      const allow = await decide('race', ['repo:read']);
      expect(allow.status).toBe(200);
      const redeems = await Promise.all(Array.from({ length: 8 }, () => call('POST', '/v1/tokens', KEYS.pep, { decision_id: allow.json['decision_id'] })));
      expect(redeems.filter((r) => r.status === 201), JSON.stringify(redeems.map((r) => [r.status, r.json]))).toHaveLength(1);
      expect(redeems.filter((r) => r.status !== 201).every((r) => r.status === 409)).toBe(true);
    }
  });

  it('/metrics on any worker answers every worker\'s counts, added up: scrapes agree whichever worker answers', async () => {
    const scrape = (): Promise<{ status: number; text: string }> =>
      new Promise((ok, fail) => {
        const req = httpRequest(`${url}/metrics`, { agent: false, timeout: 10_000 }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => ok({ status: res.statusCode ?? 0, text }));
        });
        req.on('error', fail).end();
      });
    const decisionsIn = (text: string): number =>
      text.split('\n').filter((l) => l.startsWith('agentpdp_decisions_total{')).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
    const before = await scrape();
    expect(before.status).toBe(200);
    const made = 12;
    for (let i = 0; i < made; i++) expect((await decide('metrics', ['repo:read'])).status).toBe(200);
    // Each scrape (on its own connection: the kernel picks either worker) counts every decision, whichever worker
    // made it; scraped until both workers have answered one.
    const scrapedBy = (): Set<unknown> => new Set(lines.filter((l) => l.msg === 'request' && (l as { route?: string }).route === '/metrics').map((l) => l.worker));
    for (let i = 0; i < 100 && (i < 4 || scrapedBy().size < 2); i++) {
      const s = await scrape();
      expect(s.status).toBe(200);
      expect(decisionsIn(s.text)).toBe(decisionsIn(before.text) + made);
      // An info gauge every worker sets to 1 stays 1 (max), not the number of workers.
      expect(s.text).toMatch(/^agentpdp_policy_active_revision_info\{[^}]*\} 1$/m);
    }
    expect(scrapedBy()).toEqual(new Set([1, 2]));
  });

  it('a task completed through one worker is denied at once through either', async () => {
    expect((await decideRegistered('complete-me')).json['outcome']).toBe('allow');
    expect((await call('POST', '/v1/tasks/complete-me/complete', KEYS.orchestrator, {})).status).toBe(200);
    for (let i = 0; i < 6; i++) {
      const after = await decideRegistered('complete-me');
      expect(after.json['outcome']).toBe('deny');
      expect((after.json['reasons'] as Array<{ code: string }>)[0]?.code).toBe('task_completed');
    }
  });

  it('SIGHUP to the supervisor and POST /v1/admin/reload reach both workers', async () => {
    const file = join(dir, 'policies/agents/code-review-agent.yaml');
    const granted = async (): Promise<string[]> => (await decide('reload', ['chat:write.public'], 'slack')).json['granted_scopes'] as string[];
    const loads = (): number => lines.filter((l) => l.msg === 'policy loaded').length;
    const before = loads();
    for (let i = 0; i < 4; i++) expect(await granted()).toEqual(['chat:write']);
    writeFileSync(file, readFileSync(file, 'utf8').replace('max_scope: [channels:read, chat:write]', 'max_scope: [channels:read, chat:write, chat:write.public]'));
    child.kill('SIGHUP');
    await until('both workers to reload', () => (loads() >= before + 2 ? true : undefined));
    for (let i = 0; i < 6; i++) expect(await granted()).toEqual(['chat:write.public']);
    writeFileSync(file, readFileSync(file, 'utf8').replace('max_scope: [channels:read, chat:write, chat:write.public]', 'max_scope: [channels:read, chat:write]'));
    expect((await call('POST', '/v1/admin/reload', KEYS.admin)).status).toBe(200);
    await until('the other worker to reload', () => (loads() >= before + 4 ? true : undefined));
    for (let i = 0; i < 6; i++) expect(await granted()).toEqual(['chat:write']);
  });

  it('a worker killed mid-burst is replaced; every acknowledged decision is in the verified trail', async () => {
    const victim = listening().find((l) => l.worker === 2)?.pid as number;
    const acknowledged: string[] = [];
    let failed = 0;
    const burst = async (): Promise<void> => {
      for (let i = 0; i < 40; i++) {
        const r = await decide('burst', ['repo:read']).catch(() => undefined);
        if (r?.status === 200) acknowledged.push(r.json['decision_id'] as string);
        else failed++;
      }
    };
    const running = Promise.all([burst(), burst(), burst()]);
    await new Promise((r) => setTimeout(r, 150));
    process.kill(victim, 'SIGKILL');
    await running;
    expect(acknowledged.length).toBeGreaterThan(60);
    const replaced = await until('a new worker 2', () => listening().find((l) => l.worker === 2 && l.pid !== victim));
    expect(replaced.url).toBe(url);
    expect((await decide('burst', ['repo:read'])).status).toBe(200);
    // The trail: verified, and holding every decision a client was told about.
    const verify = await runBuiltCli(['audit', 'verify', '--config', configPath]);
    expect(verify.code, verify.stderr).toBe(0);
    const exported = await runBuiltCli(['audit', 'export', '--config', configPath, '--format', 'jsonl']);
    const ids = new Set(exported.stdout.split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { decision_id?: string }).decision_id));
    for (const id of acknowledged) expect(ids.has(id)).toBe(true);
    expect(failed).toBeLessThan(120); // connections to the killed worker fail; the rest are answered
  });

  it('SIGTERM stops every worker, then the supervisor', async () => {
    const pids = listening().map((l) => l.pid as number);
    const exit = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
    const alive = pids.filter((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    });
    expect(alive).toEqual([]);
  });
});
