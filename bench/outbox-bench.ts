/**
 * Break-glass notifications per second: the real SQLite store and the real OutboxWorker (src/notify/) delivering
 * signed generic-JSON webhooks to a loopback receiver in another process (keep-alive, HTTP 200, signature checked).
 *
 * 1. Enqueue: N requestable denials recorded (`recordDecision`), then N access requests with one delivery each,
 *    through `createAccessRequest` (one transaction each: the request, its outbox row, `access_request.submitted`),
 *    64 in flight. Reported as requests committed per second.
 * 2. Deliver: a fresh OutboxWorker (`outbox.concurrency` deliveries in flight, the config's default 32 unless
 *    told) starts on the backlog; the run ends when every row is delivered or at the time limit. Each delivery is
 *    a claim (batched), a read of the request, render + approval link + HMAC signature, the POST, and
 *    `completeDelivery` (the row and an `access_request.notified` event). Reported as deliveries per second, with
 *    this process's CPU per delivery, and checked: outbox counts, the receiver's count and valid signatures.
 *
 *   node .build/bench/bench/outbox-bench.js [--requests 5000] [--concurrency 32] [--timeout 60] [--sink URL]
 *        prints one JSON line; without --sink it starts its own receiver (`--serve-sink`) as a child process
 *   node .build/bench/bench/outbox-bench.js --serve-sink [--port 0]   the receiver alone: prints its URL
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { OutboxConfig, WebhookConfig } from '../src/config/config-types.js';
import { ApprovalLinks, OutboxWorker, verifyWebhookSignature } from '../src/notify/index.js';
import { SqliteStore } from '../src/store/index.js';
import { isMain, round } from './lib/timing.js';

/** The receiver's secret: a bench constant, the receiver is on loopback and lives for one run. */
export const SINK_SECRET = 'outbox-bench-webhook-secret-0123456789abcdef';

export interface OutboxBenchResult {
  requests: number;
  concurrency: number;
  /** Access requests (with their outbox row and event) committed per second, 64 in flight. */
  enqueue_per_s: number;
  delivered: number;
  dead: number;
  retried: number;
  seconds: number;
  /** Deliveries recorded as delivered per second, from the worker's start to the last one. */
  deliveries_per_s: number;
  /** This process's CPU (user + system, all threads) over the delivery run, per delivery. */
  cpu_us_per_delivery: number;
  /** This process's CPU seconds per wall second over the delivery run (1.0 = a core busy throughout). */
  cpu: number;
  /** What the receiver counted: requests, and those whose signature verified. */
  sink: { received: number; signature_valid: number };
  /** The run stopped at the time limit with rows left. */
  timed_out: boolean;
  /** The delivery run on the monotonic clock (µs, as `--cpu-prof` timestamps): `cpuprofile-summary.js --from --to`. */
  window_us: { from: number; to: number };
}

const T0 = Date.now();
const iso = (ms: number): string => new Date(ms).toISOString();

/** A requestable denial as the Decider records it: code-review-agent asks pr:write (its escalation facts in token_grant). */
function denial(i: number) {
  const id = `bench-denial-${String(i).padStart(7, '0')}`;
  const task = { id: `bench-review-${i}`, type: 'review', context: { repo: 'acme/api' } };
  const resource = { type: 'pull_request', id: `acme/api/pulls/${i}` };
  const result = {
    decision_id: id,
    allow: false,
    outcome: 'deny' as const,
    agent_id: 'code-review-agent',
    integration: 'github',
    granted_scopes: [],
    denied_scopes: [{ scope: 'pr:write', reason: 'approval_required' }],
    reasons: [{ code: 'approval_required', message: "requested scopes need an approver's approval: pr:write (approvers: platform-oncall)" }],
    token_ttl_seconds: 0,
  };
  return {
    decision_id: id,
    caller_id: 'bench-pep',
    agent_id: 'code-review-agent',
    task_id: task.id,
    integration: 'github',
    outcome: 'deny' as const,
    request: { agent_id: 'code-review-agent', task: { id: task.id }, integration: 'github', scopes: ['pr:write'], resource },
    input: { agent_id: 'code-review-agent', caller_id: 'bench-pep', task: { ...task, registered: true }, integration: 'github', scopes: ['pr:write'], resource },
    result,
    policy_revision: 'sha256:bench',
    trace_id: null,
    created_at: iso(T0),
    redeemable_until: null,
    token_grant: { access_request: { scopes: ['pr:write'], approvers: ['platform-oncall'], max_duration: 3600, require_reason: true, expires_at: iso(T0 + 600_000) } },
  };
}

function accessRequest(i: number) {
  const d = denial(i);
  return {
    id: `ar_bench-${String(i).padStart(7, '0')}`,
    decision_id: d.decision_id,
    requested_by: 'bench-pep',
    agent_id: 'code-review-agent',
    task_id: d.task_id,
    integration: 'github',
    resource: d.request.resource,
    scopes: ['pr:write'],
    reason: 'Security fix blocks the release; the review must be posted before 17:00',
    duration_seconds: 3600,
    max_duration_seconds: 3600,
    approver_groups: ['platform-oncall'],
    policy_revision: 'sha256:bench',
    now: iso(Date.now()),
    expires_at: iso(Date.now() + 3_600_000),
    idempotency_key: null,
    request_hash: null,
    trace_id: null,
    deliveries: [{ id: `dl_bench-${String(i).padStart(7, '0')}`, destination: 'bench-sink', approver_group: 'platform-oncall' }],
  };
}

async function inFlight(total: number, concurrency: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < total) await fn(next++);
  }));
  return Number(process.hrtime.bigint() - started) / 1e9;
}

const cpuSecondsNow = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

async function sinkCounts(url: string): Promise<{ received: number; signature_valid: number }> {
  const res = await fetch(new URL('/count', url));
  return (await res.json()) as { received: number; signature_valid: number };
}

export async function runOutboxBench(options: { requests: number; concurrency: number; timeoutSeconds: number; sinkUrl: string }): Promise<OutboxBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-outbox-bench-'));
  const store = SqliteStore.open(join(dir, 'bench.db'));
  try {
    const n = options.requests;
    await inFlight(n, 256, (i) => store.recordDecision(denial(i)));
    const enqueueSeconds = await inFlight(n, 64, (i) => store.createAccessRequest(accessRequest(i)));
    const counts0 = await store.outboxCounts();
    if (counts0.pending !== n) throw new Error(`expected ${n} pending deliveries, found ${counts0.pending}`);
    const before = await sinkCounts(options.sinkUrl);

    const webhook: WebhookConfig = { id: 'bench-sink', groups: ['platform-oncall'], format: 'generic', url: options.sinkUrl, secret: SINK_SECRET, routing_key: null };
    const outbox: OutboxConfig = { max_attempts: 10, initial_backoff_ms: 500, max_backoff_ms: 300_000, timeout_ms: 5000, concurrency: options.concurrency };
    const worker = new OutboxWorker({ store, webhooks: [webhook], links: new ApprovalLinks(randomBytes(32), 900), publicUrl: 'http://127.0.0.1:8181', outbox });
    const cpu0 = cpuSecondsNow();
    const started = process.hrtime.bigint();
    const deadline = Date.now() + options.timeoutSeconds * 1000;
    worker.start();
    worker.wake();
    let lastAt = started;
    let timedOut = false;
    for (;;) {
      const s = worker.stats();
      if (s.delivered + s.dead >= n) {
        lastAt = process.hrtime.bigint();
        break;
      }
      if (Date.now() > deadline) {
        timedOut = true;
        lastAt = process.hrtime.bigint();
        break;
      }
      await new Promise((ok) => setTimeout(ok, 2));
    }
    const cpu1 = cpuSecondsNow();
    await worker.stop();
    const stats = worker.stats();
    const seconds = Number(lastAt - started) / 1e9;
    const counts = await store.outboxCounts();
    const after = await sinkCounts(options.sinkUrl);
    if (!timedOut && counts.delivered !== stats.delivered) throw new Error(`the store counts ${counts.delivered} delivered, the worker ${stats.delivered}`);
    return {
      requests: n,
      concurrency: options.concurrency,
      enqueue_per_s: Math.round(n / enqueueSeconds),
      delivered: stats.delivered,
      dead: stats.dead,
      retried: stats.retried,
      seconds: round(seconds, 2),
      deliveries_per_s: Math.round(stats.delivered / seconds),
      cpu_us_per_delivery: round(((cpu1 - cpu0) / Math.max(1, stats.delivered)) * 1e6, 1),
      cpu: round((cpu1 - cpu0) / seconds, 2),
      sink: { received: after.received - before.received, signature_valid: after.signature_valid - before.signature_valid },
      timed_out: timedOut,
      window_us: { from: Number(started / 1000n), to: Number(lastAt / 1000n) },
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The loopback receiver: 200 for every POST after checking its signature; `GET /count` answers the counts. */
export async function serveSink(port: number): Promise<string> {
  let received = 0;
  let valid = 0;
  const server = createServer((req, res) => {
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ received, signature_valid: valid }));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received++;
      if (verifyWebhookSignature(SINK_SECRET, req.headers['x-agentpdp-signature'], Buffer.concat(chunks).toString('utf8')).valid) valid++;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' }).end('ok');
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(port, '127.0.0.1');
  await new Promise<void>((ok) => server.once('listening', ok));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', default: '5000' },
      concurrency: { type: 'string', default: '32' },
      timeout: { type: 'string', default: '60' },
      sink: { type: 'string' },
      'serve-sink': { type: 'boolean', default: false },
      port: { type: 'string', default: '0' },
    },
  });
  if (values['serve-sink']) {
    process.stdout.write(`${await serveSink(Number(values.port))}\n`);
  } else {
    let sinkUrl = values.sink;
    let child: ReturnType<typeof spawn> | undefined;
    if (sinkUrl === undefined) {
      child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve-sink'], { stdio: ['ignore', 'pipe', 'inherit'] });
      sinkUrl = await new Promise<string>((ok, fail) => {
        child?.stdout?.once('data', (b: Buffer) => ok(b.toString().trim()));
        child?.once('exit', (code) => fail(new Error(`the receiver exited (${code})`)));
      });
    }
    try {
      const result = await runOutboxBench({ requests: Number(values.requests), concurrency: Number(values.concurrency), timeoutSeconds: Number(values.timeout), sinkUrl });
      process.stdout.write(`${JSON.stringify(result)}\n`);
    } finally {
      child?.kill();
    }
  }
}
