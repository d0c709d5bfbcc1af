/** The real SQLite store in a temp folder, access requests submitted through it, and a worker with short backoffs. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OutboxConfig, WebhookConfig } from '../../src/config/config-types.js';
import { ApprovalLinks, OutboxWorker } from '../../src/notify/index.js';
import type { DeliveryLogFields, OutboxWorkerOptions } from '../../src/notify/index.js';
import { openStore } from '../../src/store/index.js';
import type { AccessRequestRecord, Store } from '../../src/store/index.js';

export const PUBLIC_URL = 'https://pdp.example.com';
export const LINK_KEY = Buffer.alloc(32, 9);
export const GROUP = 'platform-oncall';
export const PEP = 'support-middleware';

/** Tests never wait on these: retries fall due within tens of milliseconds. */
export const FAST: OutboxConfig = { max_attempts: 50, initial_backoff_ms: 10, max_backoff_ms: 80, timeout_ms: 2000, concurrency: 4 };

export interface TempStore {
  store: Store;
  path: string;
  /** Closes the store and opens the same file again (a restart). */
  reopen(): Promise<Store>;
  cleanup(): Promise<void>;
}

export async function tempStore(): Promise<TempStore> {
  const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-notify-'));
  const path = join(dir, 'pdp.db');
  const temp: TempStore = {
    store: await openStore(`sqlite:${path}`),
    path,
    async reopen() {
      await temp.store.close();
      temp.store = await openStore(`sqlite:${path}`);
      return temp.store;
    },
    async cleanup() {
      await temp.store.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return temp;
}

export function webhook(id: string, url: string, overrides: Partial<WebhookConfig> = {}): WebhookConfig {
  return { id, groups: [GROUP], format: 'generic', url, secret: `secret-of-${id}`, routing_key: null, ...overrides };
}

let serial = 0;

/**
 * A requestable denial for the PEP, then an access request for it through createAccessRequest, with one outbox row
 * per destination: what POST /v1/access-requests commits. Its rows are due now (real clock).
 */
export async function submit(store: Store, destinations: readonly string[], overrides: { reason?: string } = {}): Promise<AccessRequestRecord> {
  serial += 1;
  const n = `${process.pid}-${serial}`;
  const now = new Date();
  const decisionId = `dec-${n}`;
  await store.recordDecision({
    decision_id: decisionId,
    caller_id: PEP,
    agent_id: 'support-resolver',
    task_id: 'task-1',
    integration: 'github',
    outcome: 'deny',
    input: {},
    result: { outcome: 'deny', granted_scopes: [] },
    policy_revision: 'rev-7',
    created_at: now.toISOString(),
    redeemable_until: null,
  });
  const { request, created } = await store.createAccessRequest({
    id: `ar-${n}`,
    decision_id: decisionId,
    requested_by: PEP,
    agent_id: 'support-resolver',
    task_id: 'task-1',
    integration: 'github',
    resource: { type: 'customer', id: '1234' },
    scopes: ['repo:write'],
    reason: overrides.reason ?? 'hotfix for INC-42',
    duration_seconds: 1800,
    max_duration_seconds: 3600,
    approver_groups: [GROUP],
    policy_revision: 'rev-7',
    expires_at: new Date(now.getTime() + 3600_000).toISOString(),
    deliveries: destinations.map((destination) => ({ id: `dl-${n}-${destination}`, destination, approver_group: GROUP })),
    now: now.toISOString(),
  });
  if (!created) throw new Error('the access request was not created');
  return request;
}

export interface LogLine {
  level: 'info' | 'warn';
  fields: Partial<DeliveryLogFields> & { error?: string };
  message: string;
}

export function worker(store: Store, webhooks: readonly WebhookConfig[], overrides: Partial<OutboxWorkerOptions> = {}): { worker: OutboxWorker; logs: LogLine[] } {
  const logs: LogLine[] = [];
  const logger = {
    info: (fields: LogLine['fields'], message: string) => logs.push({ level: 'info', fields, message }),
    warn: (fields: LogLine['fields'], message: string) => logs.push({ level: 'warn', fields, message }),
  };
  const w = new OutboxWorker({
    store,
    webhooks,
    links: new ApprovalLinks(LINK_KEY, 900),
    publicUrl: PUBLIC_URL,
    outbox: FAST,
    logger,
    pollIntervalMs: 60_000, // only start(), wake() and scheduled retries deliver, unless a test says otherwise
    ...overrides,
  });
  return { worker: w, logs };
}
