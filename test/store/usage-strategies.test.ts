/**
 * The usage rollup gives the same aggregates however it reads the trail (issue 18): on one bulk-loaded trail (several
 * agents, days, task types, records; tokens used across midnight and across batches; proxy calls forwarded, refused
 * and failed; resource servers' reports; introspections; denials and scopes asked above a ceiling), the tables
 * usage_daily and token_use_span after a rollup from zero are compared between strategies (on the event loop or in
 * worker threads, one batch or many, slices of a few events) and with a reference fold written here, which parses
 * each event's whole payload in JavaScript and sums it event by event, as src/store/README.md states what counts.
 * In the `postgres` project the same trail (the SQLite file's rows) is copied into a PostgreSQL store and rolled up
 * there (the database reads the payloads, no worker threads): the same tables as the reference fold's.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BulkLoader } from '../../src/store/bulk-load.js';
import type { BulkEvent } from '../../src/store/bulk-load.js';
import { SqliteStore } from '../../src/store/index.js';
import { PostgresStore } from '../../src/store/postgres-store.js';
import type { RollupUsageInput, Store } from '../../src/store/index.js';
import { dropSchema, newSchema, pgQuery, pgSession, postgresUrl } from '../support/postgres.js';
import { ENGINE } from './store-fixtures.js';
import { hashText } from '../../src/store/rows.js';

const T0 = Date.parse('2026-03-01T00:00:00.000Z');
const iso = (ms: number): string => new Date(ms).toISOString();

/** Deterministic numbers in [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const AGENTS = [
  { id: 'agent-a', integration: 'github', via: 'proxy', scopes: ['repo:read', 'pr:read', 'pr:write', 'repo:write'], types: ['review', 'triage'], record: 'repo' },
  { id: 'agent-b', integration: 'crm', via: 'resource_server', scopes: ['tickets:read', 'customers:read', 'tickets:write'], types: ['resolution', 'report'], record: 'customer' },
  { id: 'agent-c', integration: 'slack', via: 'proxy', scopes: ['chat:write', 'channels:read'], types: ['report'], record: 'channel' },
] as const;

/** About 3,000 events over 5 days, tasks starting late in the day so that tokens are used after midnight. */
function writeTrail(path: string): number {
  const rand = prng(7);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)] as T;
  const loader = BulkLoader.open(path);
  const events: Array<BulkEvent & { ms: number }> = [];
  const add = (ms: number, e: Omit<BulkEvent, 'time'>): void => void events.push({ ...e, time: iso(ms), ms });
  for (let n = 0; n < 260; n++) {
    const agent = pick(AGENTS);
    const taskId = `task-${n}`;
    const type = pick(agent.types);
    // Every fifth task is not registered: its decisions carry the type a trusted PEP asserted.
    const registered = n % 5 !== 0;
    const t0 = T0 + Math.floor(n / 52) * 86_400_000 + 18 * 3600_000 + Math.floor(rand() * 6 * 3600_000);
    if (registered) {
      loader.task({ id: taskId, agent_id: agent.id, type, context: '{}', registered_by: 'orch', registered_at: iso(t0), expires_at: iso(t0 + 4 * 3600_000), status: 'completed' });
      add(t0, { type: 'task.registered', task_id: taskId, agent_id: agent.id, caller_id: 'orch', data: `{"context":{},"type":"${type}"}` });
    }
    let t = t0;
    for (let d = 0; d < 1 + Math.floor(rand() * 3); d++) {
      t += 1000 + Math.floor(rand() * 60_000);
      const asked = [...new Set([pick(agent.scopes), pick(agent.scopes)])];
      const above = rand() < 0.15 ? 'admin:all' : null;
      const deny = rand() < 0.1;
      const requested = above === null ? asked : [...asked, above];
      const denied = deny ? requested : above === null ? [] : [above];
      const record = rand() < 0.6 ? { id: `r-${Math.floor(rand() * 9)}`, type: agent.record } : null;
      const decisionId = `d-${n}-${d}`;
      const input = { agent_id: agent.id, integration: agent.integration, ...(record === null ? {} : { resource: record }), scopes: requested, task: { id: taskId, registered, ...(registered ? {} : { type }) } };
      const result = { outcome: deny ? 'deny' : 'allow', denied_scopes: denied.map((scope) => ({ reason: 'above_ceiling', scope })), granted_scopes: deny ? [] : asked };
      add(t, { type: 'decision', decision_id: decisionId, task_id: taskId, agent_id: agent.id, caller_id: 'pep', data: JSON.stringify({ input, result }) });
      if (deny) continue;
      const issued = t + 200;
      const jti = `jti-${n}-${d}`;
      loader.token({ jti, decision_id: decisionId, caller_id: 'pep', agent_id: agent.id, task_id: taskId, scopes: asked, audience: agent.integration, issued_at: iso(issued), expires_at: iso(issued + 3600_000) });
      const ids = { decision_id: decisionId, jti, task_id: taskId, agent_id: agent.id };
      add(issued, { type: 'token.issued', ...ids, caller_id: 'pep', data: JSON.stringify({ integration: agent.integration, issued_at: iso(issued), resource: record, scopes: asked }) });
      for (let c = 0; c < Math.floor(rand() * 9); c++) {
        const when = issued + 1000 + Math.floor(rand() * 3000_000);
        const scope = pick(asked);
        const touched = rand() < 0.8 ? (record ?? { id: 'r-x', type: agent.record }) : null;
        if (agent.via === 'proxy') {
          const r = rand();
          const outcome = r < 0.8 ? 'forwarded' : r < 0.9 ? 'refused' : 'failed';
          add(when, { type: 'token.used', ...ids, caller_id: 'proxy', data: JSON.stringify({ action: 'proxy', integration: agent.integration, outcome, record: touched, scope }) });
        } else {
          add(when, { type: 'token.used', ...ids, caller_id: 'crm-api', data: JSON.stringify({ action: 'resource_server', integration: agent.integration, record: touched, scope, used_at: iso(when - Math.floor(rand() * 5000)) }) });
        }
      }
      if (rand() < 0.3) add(issued + 500, { type: 'token.used', ...ids, caller_id: 'crm-api', data: '{"action":"introspect","active":true}' });
    }
    add(t + 3600_000, { type: 'task.completed', task_id: taskId, agent_id: agent.id, caller_id: 'orch', data: '{"status":"completed"}' });
  }
  events.sort((a, b) => a.ms - b.ms);
  for (const e of events) loader.event(e);
  const written = loader.lastSeq;
  loader.close();
  return written;
}

type Tables = { daily: string[]; spans: string[] };

const DAILY_COLUMNS = 'day, agent_id, integration, scope, task_type, record_type, source, n, first_at, last_at';
const SPAN_COLUMNS = 'day, agent_id, integration, issued, issued_first_at, issued_last_at, tokens, max_seconds';

function tablesOf(path: string): Tables {
  const db = new Database(path, { readonly: true });
  try {
    const rows = (sql: string): string[] => (db.prepare(sql).raw(true).all() as unknown[][]).map((r) => r.join(' ')).sort();
    return {
      daily: rows(`SELECT ${DAILY_COLUMNS} FROM usage_daily`),
      spans: rows(`SELECT ${SPAN_COLUMNS} FROM token_use_span`),
    };
  } finally {
    db.close();
  }
}

/** What counts, event by event, from whole payloads (the contract the rollup implements). */
function referenceFold(path: string): Tables {
  const db = new Database(path, { readonly: true });
  const daily = new Map<string, { n: number; first: string; last: string }>();
  const spans = new Map<string, { issued: number; first: string | null; last: string | null; tokens: number; max: number }>();
  const taskTypes = new Map<string, string>();
  const issuedMs = new Map<string, number>();
  const counted = new Set<string>();
  try {
    const registered = db.prepare('SELECT type FROM tasks WHERE id = ?').pluck();
    const typeOf = (id: string | null): string => {
      if (id === null) return '';
      if (!taskTypes.has(id)) taskTypes.set(id, (registered.get(id) as string | undefined) ?? '');
      return taskTypes.get(id) as string;
    };
    const count = (time: string, parts: string[]): void => {
      const key = [time.slice(0, 10), ...parts].join(' ');
      const cell = daily.get(key);
      if (cell === undefined) daily.set(key, { n: 1, first: time, last: time });
      else {
        cell.n++;
        if (time < cell.first) cell.first = time;
        if (time > cell.last) cell.last = time;
      }
    };
    const spanCell = (time: string, agent: string, integration: string) => {
      const key = `${time.slice(0, 10)} ${agent} ${integration}`;
      if (!spans.has(key)) spans.set(key, { issued: 0, first: null, last: null, tokens: 0, max: 0 });
      return spans.get(key) as { issued: number; first: string | null; last: string | null; tokens: number; max: number };
    };
    type Row = { type: string; time: string; agent_id: string; task_id: string | null; jti: string | null; data: string };
    for (const e of db.prepare('SELECT type, time, agent_id, task_id, jti, data FROM audit_events ORDER BY seq').iterate() as Iterable<Row>) {
      const data = JSON.parse(e.data) as Record<string, any>;
      if (e.type === 'decision') {
        const input = data['input'];
        const asserted = input.task?.type;
        if (typeof asserted === 'string' && e.task_id !== null) taskTypes.set(e.task_id, asserted);
        const task = typeof asserted === 'string' ? asserted : typeOf(e.task_id);
        const record = input.resource?.type ?? '';
        for (const scope of new Set<string>(input.scopes)) count(e.time, [e.agent_id, input.integration, scope, task, record, 'requested']);
        for (const scope of new Set<string>(data['result'].denied_scopes.map((d: { scope: string }) => d.scope))) count(e.time, [e.agent_id, input.integration, scope, task, record, 'denied']);
      } else if (e.type === 'token.issued') {
        for (const scope of new Set<string>(data['scopes'])) count(e.time, [e.agent_id, data['integration'], scope, typeOf(e.task_id), data['resource']?.type ?? '', 'granted']);
        const cell = spanCell(e.time, e.agent_id, data['integration']);
        cell.issued++;
        if (cell.first === null || e.time < cell.first) cell.first = e.time;
        if (cell.last === null || e.time > cell.last) cell.last = e.time;
        issuedMs.set(e.jti as string, Date.parse(data['issued_at']));
      } else if (e.type === 'token.used') {
        const source = data['action'] === 'resource_server' ? 'resource_server' : data['action'] === 'proxy' && data['outcome'] === 'forwarded' ? 'proxy' : null;
        if (source === null) continue;
        count(e.time, [e.agent_id, data['integration'], data['scope'], typeOf(e.task_id), data['record']?.type ?? '', source]);
        const cell = spanCell(e.time, e.agent_id, data['integration']);
        if (!counted.has(e.jti as string)) {
          counted.add(e.jti as string);
          cell.tokens++;
        }
        const end = source === 'resource_server' ? data['used_at'] : e.time;
        cell.max = Math.max(cell.max, Math.ceil((Date.parse(end) - (issuedMs.get(e.jti as string) as number)) / 1000));
      }
    }
  } finally {
    db.close();
  }
  return {
    daily: [...daily].map(([key, c]) => `${key} ${c.n} ${c.first} ${c.last}`).sort(),
    spans: [...spans].map(([key, c]) => `${key} ${c.issued} ${c.first ?? ''} ${c.last ?? ''} ${c.tokens} ${c.max}`).sort(),
  };
}

/** A PostgreSQL store's tables, as tablesOf gives SQLite's. */
async function postgresTablesOf(schema: string): Promise<Tables> {
  const rows = async (sql: string): Promise<string[]> =>
    (await pgQuery(schema, sql)).map((r) => Object.values(r).map((v) => (v === null ? '' : String(v))).join(' ')).sort();
  return { daily: await rows(`SELECT ${DAILY_COLUMNS} FROM usage_daily`), spans: await rows(`SELECT ${SPAN_COLUMNS} FROM token_use_span`) };
}

/** Copies the rows the rollup reads (tasks, tokens, the trail) from the SQLite file into a new PostgreSQL store's schema. */
async function copyToPostgres(path: string): Promise<string> {
  const schema = newSchema('usage');
  await (await PostgresStore.open(postgresUrl(), { schema })).close();
  const db = new Database(path, { readonly: true });
  try {
    await pgSession(schema, async (query) => {
      // The bulk loader writes no decisions rows (bulk-load.ts): no foreign key checks for this session, as there.
      await query('SET session_replication_role = replica');
      for (const table of ['tasks', 'tokens', 'audit_events']) {
        const rows = db.prepare(`SELECT * FROM ${table} ORDER BY rowid`).raw(true).all() as unknown[][];
        const columns = db.prepare(`SELECT * FROM ${table}`).columns().map((c) => c.name);
        for (let i = 0; i < rows.length; i += 500) {
          const chunk = rows.slice(i, i + 500);
          let n = 0;
          const values = chunk.map((r) => `(${r.map(() => `$${++n}`).join(', ')})`).join(', ');
          // Hashes are bytes in both (chain-writer.ts); a SQLite row written before may hold hex text.
          const hashes = new Set(columns.flatMap((c, k) => (c === 'hash' || c === 'prev_hash' ? [k] : [])));
          const params = chunk.flatMap((r) => r.map((v, k) => (hashes.has(k) ? Buffer.from(hashText(v as string | Uint8Array), 'hex') : v)));
          await query(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${values}`, params);
        }
      }
    });
  } finally {
    db.close();
  }
  return schema;
}

/**
 * Rolls the trail up with `open()`'s store, and with a second one at once when `other` is given (two processes or
 * replicas: each goes on where the other's last batch left, reading back from the trail what it does not remember):
 * every event folded once, the cursor at the end.
 */
async function rollUp(open: () => Promise<Store>, input: RollupUsageInput, other?: RollupUsageInput): Promise<void> {
  const stores = await Promise.all(other === undefined ? [open()] : [open(), open()]);
  try {
    const results = await Promise.all(stores.map((store, i) => store.rollupUsage(i === 0 ? input : (other as RollupUsageInput))));
    expect(results.reduce((sum, r) => sum + r.events, 0)).toBe(events);
    for (const r of results) expect(r.seq).toBe(events);
  } finally {
    for (const store of stores) await store.close();
  }
}

let dir: string;
let trail: string;
let events: number;
let reference: Tables;
/** The trail in PostgreSQL (the `postgres` project). */
let schema: string | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'agent-pdp-usage-strategies-'));
  trail = join(dir, 'trail.db');
  events = writeTrail(trail);
  reference = referenceFold(trail);
  if (ENGINE === 'postgres') schema = await copyToPostgres(trail);
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  if (schema !== undefined) await dropSchema(schema);
});

describe('rollupUsage: the same aggregates whatever the strategy', () => {
  it('the trail is what the test means: several days, every source, tokens counted across midnight', () => {
    expect(events).toBeGreaterThan(2500);
    const sources = new Set(reference.daily.map((line) => line.split(' ')[6]));
    expect([...sources].sort()).toEqual(['denied', 'granted', 'proxy', 'requested', 'resource_server']);
    expect(new Set(reference.spans.map((line) => line.split(' ')[0])).size).toBeGreaterThanOrEqual(5);
  });

  // Each project runs its engine's strategies: worker threads and file copies on SQLite, schemas on PostgreSQL.
  const cases: Array<{ engine: 'sqlite' | 'postgres'; note: string; input: RollupUsageInput; other?: RollupUsageInput }> = [
    { engine: 'sqlite', note: 'on the event loop, one batch', input: { workers: 0, batch: 1_000_000 } },
    { engine: 'sqlite', note: 'on the event loop, batches of 97 events', input: { workers: 0, batch: 97 } },
    { engine: 'sqlite', note: 'two workers, one batch (two slices)', input: { workers: 2, batch: 1_000_000 } },
    { engine: 'sqlite', note: 'two workers, batches of 101 (slices of about 50: tokens issued in one slice, used in the next)', input: { workers: 2, batch: 101 } },
    { engine: 'sqlite', note: 'three workers, batches of 1,000', input: { workers: 3, batch: 1000 } },
    { engine: 'sqlite', note: 'the defaults', input: {} },
    { engine: 'sqlite', note: 'two stores at once, batches of 97 and 101 on the event loop', input: { workers: 0, batch: 97 }, other: { workers: 0, batch: 101 } },
    { engine: 'postgres', note: 'PostgreSQL, one batch', input: { batch: 1_000_000 } },
    { engine: 'postgres', note: 'PostgreSQL, batches of 97 events (tokens issued in one batch, used in the next)', input: { batch: 97 } },
    { engine: 'postgres', note: 'PostgreSQL, workers asked for (none on PostgreSQL), batches of 1,000', input: { workers: 2, batch: 1000 } },
    { engine: 'postgres', note: 'PostgreSQL, the defaults', input: {} },
    { engine: 'postgres', note: 'PostgreSQL, two stores at once (two replicas), batches of 97 and 101', input: { batch: 97 }, other: { batch: 101 } },
  ];

  it.each(cases.filter((c) => c.engine === ENGINE))('$note: the reference fold\'s tables', async ({ input, other }) => {
    if (ENGINE === 'sqlite') {
      const path = join(dir, `copy-${input.workers ?? 'd'}-${input.batch ?? 'd'}${other === undefined ? '' : '-2'}.db`);
      copyFileSync(trail, path);
      await rollUp(async () => SqliteStore.open(path), input, other);
      const tables = tablesOf(path);
      expect(tables.daily).toEqual(reference.daily);
      expect(tables.spans).toEqual(reference.spans);
      return;
    }
    const on = schema as string;
    // One copy of the trail for every case: each starts from zero.
    for (const table of ['usage_daily', 'token_use_span', 'usage_rollup_cursor']) await pgQuery(on, `DELETE FROM ${table}`);
    await rollUp(() => PostgresStore.open(postgresUrl(), { schema: on }), input, other);
    const tables = await postgresTablesOf(on);
    expect(tables.daily).toEqual(reference.daily);
    expect(tables.spans).toEqual(reference.spans);
  });
});
