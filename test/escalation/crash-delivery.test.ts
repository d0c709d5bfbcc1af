/**
 * Issue 16's attack "SIGKILL between the request's commit and its delivery (delivered after restart, once)". The
 * built server runs as a child process (`agent-pdp serve`), its webhook receiver is down, so nothing can be
 * delivered before the kill; an access request is accepted (202: committed with its outbox row), the server is
 * SIGKILLed at once, the receiver comes up, the server restarts on the same store: the notification arrives, once,
 * and `agent-pdp audit verify` (the built CLI) passes on the store.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { CLI, ensureBuilt, runBuiltCli } from '../audit-e2e/cli.js';
import { KEYS, spawnedServerConfig } from '../support/pdp-harness.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

const SECRET = 'crash-delivery-webhook-secret-3e7a91c0d2';

let dir: string;
let configPath: string;
let receiver: WebhookReceiver;
/** Everything the servers wrote (stdout and stderr): no secret may be in it. */
let output = '';
const running = new Set<ChildProcess>();

/** Folders 0755, files 0644 (the PDP refuses policy files group or others may write). */
function privateTree(path: string): void {
  chmodSync(path, 0o755);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.isDirectory()) privateTree(join(path, entry.name));
    else if (entry.isFile()) chmodSync(join(path, entry.name), 0o644);
  }
}

beforeAll(async () => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'agent-pdp-crash-delivery-'));
  cpSync(resolve('test/escalation/policies'), join(dir, 'policies'), { recursive: true });
  privateTree(join(dir, 'policies'));
  const secretFile = join(dir, 'webhook.secret');
  writeFileSync(secretFile, `${SECRET}\n`);
  chmodSync(secretFile, 0o600);
  // The receiver's port is taken, then the receiver goes down: the server will find nobody listening there.
  receiver = await startWebhookReceiver(SECRET);
  await receiver.stop();
  configPath = join(dir, 'agent-pdp.yaml');
  writeFileSync(
    configPath,
    stringify(
      spawnedServerConfig({
        escalation: {
          // Short backoffs so the retry after the restart comes quickly; many attempts so the refused ones before
          // the kill never reach the dead letter.
          outbox: { initial_backoff_ms: 50, max_backoff_ms: 400, timeout_ms: 300, max_attempts: 100 },
          webhooks: [{ id: 'oncall-hook', groups: ['platform-oncall'], format: 'generic', url: receiver.url, secret_file: secretFile }],
        },
      }),
    ),
  );
}, 120_000);

afterAll(async () => {
  for (const child of running) child.kill('SIGKILL');
  await receiver?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
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
  const exited = new Promise<number | null>((ok) =>
    child.once('exit', (code) => {
      running.delete(child);
      ok(code);
    }),
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    output += chunk.toString();
  });
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`the server did not start: ${stderr}`)), 30_000);
    void exited.then((code) => fail(new Error(`the server exited with ${code}: ${stderr}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output += `${line}\n`;
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

type Json = Record<string, any>;

async function call(url: string, method: string, path: string, key: string, body?: unknown): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as Json };
}

async function waitUntil<T>(what: string, check: () => T | Promise<T>, timeoutMs: number): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, 50));
  }
}

describe('SIGKILL between an access request’s commit and its notification', () => {
  it('delivers the notification after the restart, exactly once, and the chain verifies', async () => {
    const first = await startServer();
    const task = await call(first.url, 'POST', '/v1/tasks', KEYS.orchestrator, { id: 'crash-delivery-task', agent_id: 'release-bot', type: 'incident', context: { customer_id: '1234' } });
    expect(task.status).toBe(201);
    const denial = await call(first.url, 'POST', '/v1/decide', KEYS.pep, {
      agent_id: 'release-bot',
      task: { id: 'crash-delivery-task' },
      integration: 'crm',
      scopes: ['tickets:write'],
      resource: { type: 'customer', id: '1234' },
    });
    expect(denial.status).toBe(200);
    expect(denial.body['allow']).toBe(false);
    const decisionId = denial.body['decision_id'] as string;
    const submitted = await call(first.url, 'POST', '/v1/access-requests', KEYS.pep, { decision_id: decisionId, reason: 'hotfix for incident 42', duration_seconds: 600 });
    expect(submitted.status).toBe(202);
    const requestId = submitted.body['id'] as string;

    // Committed and acknowledged; the receiver is down, so it cannot have been delivered. Kill now.
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe(null); // killed by the signal, not exited
    expect(receiver.arrivals).toEqual([]);

    await receiver.start();
    const second = await startServer();
    try {
      // The row is due at once, or when its lease runs out (timeout_ms + 5 s): the wake after the commit often
      // claims it before the kill lands, and a claim that was never completed is retried only after its lease.
      await receiver.waitFor(1, 60_000);
      const rows = await waitUntil(
        'the row delivered',
        async () => {
          const res = await call(second.url, 'GET', `/v1/admin/notifications?access_request_id=${requestId}`, KEYS.admin);
          expect(res.status).toBe(200);
          const items = res.body['items'] as Json[];
          return items[0]?.['status'] === 'delivered' ? items : undefined;
        },
        10_000,
      );
      // Long past the largest backoff (400 ms) and the worker's poll (1 s): a second send would have come.
      await new Promise((ok) => setTimeout(ok, 2_500));

      expect(rows).toHaveLength(1);
      expect(receiver.deliveries).toHaveLength(1);
      expect(receiver.arrivals).toHaveLength(1);
      const [delivery] = receiver.deliveries;
      expect(delivery!.signatureValid).toBe(true);
      expect(delivery!.headers['x-agentpdp-delivery']).toBe(rows[0]!['id']);
      expect((delivery!.json as Json)['access_request']).toMatchObject({ id: requestId, decision_id: decisionId, agent_id: 'release-bot', scopes: ['tickets:write'] });

      const chain = await call(second.url, 'GET', `/v1/audit/decisions/${decisionId}`, KEYS.auditor);
      expect(chain.status).toBe(200);
      const types = (chain.body['events'] as Json[]).map((e) => e['type']);
      expect(types.filter((t) => t === 'access_request.submitted')).toHaveLength(1);
      expect(types.filter((t) => t === 'access_request.notified')).toHaveLength(1);
      expect((await call(second.url, 'GET', `/v1/access-requests/${requestId}`, KEYS.pep)).body['status']).toBe('pending');
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }

    const verified = await runBuiltCli(['audit', 'verify', '--config', configPath]);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(/^ok: the audit chain in .+ verifies: \d+ events/);

    // Neither server logged the signing secret or the receiver's URL.
    expect(output).toContain('agent-pdp listening');
    expect(output).not.toContain(SECRET);
    expect(output).not.toContain(receiver.url);
  }, 120_000);
});
