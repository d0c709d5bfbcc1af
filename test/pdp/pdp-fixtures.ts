/**
 * Shared material for the src/pdp/ unit tests: the real policy engine (committed WASM bundle, a temp copy of the
 * shipped policies/), a real SQLite store, callers, a settable clock, and an observer that writes down its calls.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { CallerConfig } from '../../src/config/config-types.js';
import { PolicyEngine } from '../../src/pdp/policy-engine.js';
import { openStore, type RegisterTaskInput, type Store } from '../../src/store/index.js';
import type { DecisionRequestV1 } from '../../src/wire/decision-v1.js';

/** A whole second, so token `iat`/`exp` (seconds) line up with the clock. */
export const T0 = Date.parse('2026-03-01T09:00:00.000Z');
/** ISO time `seconds` after T0. */
export const at = (seconds = 0): string => new Date(T0 + seconds * 1000).toISOString();

/** Settable clock: tests move time instead of sleeping. */
export interface Clock {
  now: Date;
  /** Moves to `seconds` after T0 (fractions allowed). */
  set(seconds: number): void;
  read: () => Date;
}

export function frozenClock(seconds = 0): Clock {
  const clock: Clock = {
    now: new Date(T0 + seconds * 1000),
    set(s) {
      clock.now = new Date(T0 + s * 1000);
    },
    read: () => clock.now,
  };
  return clock;
}

const caller = (c: Pick<CallerConfig, 'id' | 'role'> & Partial<CallerConfig>): CallerConfig => ({
  key_sha256: '0'.repeat(64),
  agents: [],
  may_assert_context: false,
  ...c,
});

export const CALLERS = {
  /** A PEP trusted to assert task context inline. */
  trusted: caller({ id: 'pep-trusted', role: 'pep', agents: ['support-resolver', 'code-review-agent'], may_assert_context: true }),
  /** A PEP that must name registered tasks. */
  strict: caller({ id: 'pep-strict', role: 'pep', agents: ['support-resolver'] }),
  /** Another PEP speaking for the same agent. */
  other: caller({ id: 'pep-other', role: 'pep', agents: ['support-resolver'] }),
  resourceServer: caller({ id: 'crm-api', role: 'resource_server' }),
} as const;

/** A registration of a complaint task about customer 1234, for support-resolver, living an hour from T0. */
export function taskRegistration(id: string, overrides: Partial<RegisterTaskInput> = {}): RegisterTaskInput {
  return {
    id,
    agent_id: 'support-resolver',
    type: 'complaint_resolution',
    context: { customer_id: '1234' },
    registered_by: 'orchestrator',
    registered_at: at(0),
    expires_at: at(3600),
    trace_id: null,
    ...overrides,
  };
}

/** What the shipped policies allow for that task: write tickets of customer 1234. */
export function ticketRequest(taskId: string, overrides: Partial<DecisionRequestV1> = {}): DecisionRequestV1 {
  return {
    agent_id: 'support-resolver',
    task: { id: taskId },
    integration: 'crm',
    scopes: ['tickets:write'],
    resource: { type: 'customer', id: '1234' },
    ...overrides,
  };
}

const dirs: string[] = [];

/** The real engine: the committed bundle and a temp copy of policies/, loaded. */
export async function loadEngine(): Promise<PolicyEngine> {
  const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-pdp-'));
  dirs.push(dir);
  cpSync(resolve('test/fixtures/policies'), join(dir, 'policies'), { recursive: true });
  const engine = new PolicyEngine({ bundlePath: resolve('opa-bundle/bundle.tar.gz'), policyDir: join(dir, 'policies') });
  await engine.reload();
  return engine;
}

/** A fresh temp directory, removed by `removeTempDirs`. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-pdp-'));
  dirs.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** A private in-memory SQLite store (the real store, nothing mocked). */
export function memoryStore(): Promise<Store> {
  return openStore('sqlite::memory:');
}

/** A store that has been closed: every write rejects as a failed database would (store_unavailable). */
export async function closedStore(): Promise<Store> {
  const store = await memoryStore();
  await store.close();
  return store;
}

export async function allEvents(store: Store): Promise<Array<{ type: string; decision_id?: string; data: unknown }>> {
  const out = [];
  for await (const event of store.iterateEvents()) out.push(event);
  return out;
}
