/**
 * Durability, fail closed: nothing reaches a client before its audit event is committed. The real server runs as
 * a child process (`agent-pdp serve`); eight clients fire decisions and redemptions at it; it is killed with
 * SIGKILL mid-burst and restarted. Every decision id and token a client received a 2xx for must be in the trail,
 * and `agent-pdp audit verify` (the built CLI, a child process too) must pass, on the store and on an export.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { KEYS, spawnedServerConfig } from '../support/pdp-harness.js';
import { CLI, ensureBuilt, runBuiltCli } from './cli.js';

const CLIENTS = 8;
/** Acknowledged decisions + tokens after which the server is killed, with every client mid-request. */
const KILL_AFTER = 120;
/** Each client stops after this many rounds if the server somehow survives. */
const MAX_ROUNDS = 200;

let dir: string;
let configPath: string;
const running = new Set<ChildProcess>();

beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'agent-pdp-crash-'));
  cpSync(resolve('test/fixtures/policies'), join(dir, 'policies'), { recursive: true });
  configPath = join(dir, 'agent-pdp.yaml');
  writeFileSync(
    configPath,
    stringify(spawnedServerConfig()),
  );
}, 120_000);

afterAll(() => {
  for (const child of running) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

interface Server {
  child: ChildProcess;
  url: string;
  exited: Promise<number | null>;
}

/** Starts `agent-pdp serve` and resolves with its URL once it logs "agent-pdp listening". */
function startServer(): Promise<Server> {
  const child = spawn(process.execPath, [CLI, 'serve', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const exited = new Promise<number | null>((ok) => child.once('exit', (code) => {
    running.delete(child);
    ok(code);
  }));
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`the server did not start: ${stderr}`)), 30_000);
    void exited.then((code) => fail(new Error(`the server exited with ${code}: ${stderr}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'agent-pdp listening' && entry.url) {
          clearTimeout(timer);
          ok({ child, url: entry.url, exited });
        }
      } catch {
        // not a log line
      }
    });
  });
}

async function call(url: string, path: string, key: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, unknown> };
}

describe('SIGKILL in the middle of a burst of concurrent decisions', () => {
  it('loses nothing a client was told, and the chain still verifies', async () => {
    const first = await startServer();
    const acked = { decisions: new Set<string>(), jtis: new Set<string>() };
    const tasks: string[] = [];
    for (let c = 0; c < CLIENTS; c++) {
      const id = `crash-task-${c}`;
      const res = await call(first.url, '/v1/tasks', KEYS.orchestrator, { id, agent_id: 'support-resolver', type: 'complaint_resolution', context: { customer_id: '1234' } });
      expect(res.status).toBe(201);
      tasks.push(id);
    }

    let killed = false;
    /** Clients whose request failed because the server died: every one of them, if it died mid-burst. */
    let cutOff = 0;
    const acknowledge = (): void => {
      if (!killed && acked.decisions.size + acked.jtis.size >= KILL_AFTER) {
        killed = true;
        first.child.kill('SIGKILL');
      }
    };
    const client = async (taskId: string): Promise<void> => {
      for (let round = 0; round < MAX_ROUNDS; round++) {
        try {
          const decided = await call(first.url, '/v1/decide', KEYS.pep, {
            agent_id: 'support-resolver', task: { id: taskId }, integration: 'crm', scopes: ['tickets:write'], resource: { type: 'customer', id: '1234' },
          });
          if (decided.status !== 200) throw new Error(`decide answered ${decided.status}`);
          const decisionId = decided.body['decision_id'] as string;
          acked.decisions.add(decisionId);
          acknowledge();
          const redeemed = await call(first.url, '/v1/tokens', KEYS.pep, { decision_id: decisionId });
          if (redeemed.status !== 201) throw new Error(`redeem answered ${redeemed.status}`);
          acked.jtis.add(redeemed.body['jti'] as string);
          acknowledge();
        } catch (err) {
          if (killed) {
            cutOff++; // the server is gone: what this client was told is all it knows
            return;
          }
          throw err;
        }
      }
    };
    await Promise.all(tasks.map(client));
    expect(killed).toBe(true);
    expect(cutOff).toBe(CLIENTS);
    expect(await first.exited).toBe(null); // killed by the signal, not exited
    expect(acked.decisions.size).toBeGreaterThan(KILL_AFTER / 2 - CLIENTS);

    // Restart on the same store: it must come up, and the CLI reads the trail while it serves.
    const second = await startServer();
    try {
      const exportFile = join(dir, 'after-crash.jsonl');
      const exported = await runBuiltCli(['audit', 'export', '--config', configPath, '--out', exportFile]);
      expect(exported.code, exported.stderr).toBe(0);
      const events = readFileSync(exportFile, 'utf8').split('\n').filter((l) => l.includes('"seq"')).map((l) => JSON.parse(l) as { type: string; decision_id?: string; jti?: string });
      const recordedDecisions = new Set(events.filter((e) => e.type === 'decision').map((e) => e.decision_id));
      const issuedJtis = new Set(events.filter((e) => e.type === 'token.issued').map((e) => e.jti));
      expect([...acked.decisions].filter((id) => !recordedDecisions.has(id))).toEqual([]);
      expect([...acked.jtis].filter((jti) => !issuedJtis.has(jti))).toEqual([]);

      const store = await runBuiltCli(['audit', 'verify', '--config', configPath]);
      expect(store.code, store.stdout + store.stderr).toBe(0);
      expect(store.stdout).toMatch(/^ok: the audit chain in .+ verifies: \d+ events/);
      const file = await runBuiltCli(['audit', 'verify', '--file', exportFile]);
      expect(file.code, file.stdout + file.stderr).toBe(0);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  }, 120_000);
});
