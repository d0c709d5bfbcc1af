/**
 * The audit console at 1 million events (issue 22: "first page of a search ≤ 300 ms on this machine"). A trail of N
 * audit events is bulk-loaded (`src/store/bulk-load.ts`: placeholder hashes, so it does not verify) into a SQLite
 * file, and the same rows are copied into a PostgreSQL schema (scripts/postgres-cluster.sh); our real PDP serves each
 * (`agent-pdp serve`, NODE_ENV=production, one process per store, both on the server core); this process signs in
 * to the console as the browser does (`POST /console/session` with an auditor key, then only the session cookie) and
 * times, over keep-alive loopback HTTP, the first page (limit 50) of `GET /v1/audit/decisions` for a set of filters,
 * the page after the unfiltered one, the overview, the integrity summary and the time to first byte of an export of
 * one agent. Rounds alternate the two stores (order flipped every round); the first round is a warm-up, reported
 * apart (`cold_ms`) and not in p50 / max.
 *
 * The trail: 30 days ending when it is generated (so the overview's last hour holds decisions), ~40% decision events
 * over AGENTS agents on four integrations (outcomes ~78% allow, ~22% deny, 0.1% undefined; reason codes varied, one
 * rare: `task_context_mismatch`, ~0.05% of decisions), the rest token.issued / token.used / token.revoked and
 * task.registered / task.completed. Decision events carry `{ input, policy_revision, result }` as the Decider writes
 * them, so the search reads `result.outcome` and `result.reasons[].code` from them.
 *
 *   node .build/bench/bench/console-bench.js [--events 1000000] [--rounds 9] [--server-cpu 0] [--json]
 * Prints one JSON line with --json.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { sha256Hex } from '../src/config/dev-keys.js';
import { BulkLoader, type BulkEvent } from '../src/store/bulk-load.js';
import { PostgresStore } from '../src/store/postgres-store.js';
import { hashText } from '../src/store/rows.js';
import { startPostgres, type BenchPostgres } from './lib/postgres.js';
import { CpuWatch, stopProcess } from './lib/processes.js';
import { startOurs, type RunningServer } from './lib/servers.js';
import { isMain, median, round } from './lib/timing.js';

export const GOAL_MS = 300;
const AGENTS = 300;
const DAYS = 30;
const DAY_MS = 86_400_000;
const AUDITOR = { id: 'bench-auditor', key: 'bench-auditor-key-not-a-dev-key' } as const;
const PG_SCHEMA = 'bench_console';
/** The agent the per-agent queries ask about (an average one: agents are picked uniformly). */
const AGENT = 'agent-123';
const RARE_REASON = 'task_context_mismatch';

export type StoreName = 'sqlite' | 'postgres';

export interface ConsoleQueryResult {
  query: string;
  path: string;
  /** What is timed: the whole answer, or the first byte of the body (the export). */
  timed: 'answer' | 'first byte';
  stores: Record<StoreName, { p50_ms: number; max_ms: number; cold_ms: number; samples_ms: number[]; returned: number | null; within_goal: boolean }>;
}

export interface ConsoleBenchResult {
  events: number;
  decisions: number;
  agents: number;
  days: number;
  outcomes: Record<string, number>;
  rare_reason: { code: string; decisions: number };
  generate_s: number;
  postgres_load_s: number;
  sqlite_mb: number;
  rounds: number;
  goal_ms: number;
  load1_start: number;
  load1_end: number;
  /** Load average (1 min) when the timed rounds began (after the trail was built and loaded). */
  load1_rounds_start: number;
  /** CPU other processes used during the rounds (not this client, the two PDPs or PostgreSQL), in cores. */
  other_cores: number;
  iowait_cores: number;
  loadavg_end: number[];
  placement: string;
  queries: ConsoleQueryResult[];
}

// ---- the trail ------------------------------------------------------------------------------------------------

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

const INTEGRATIONS = [
  { id: 'github', scopes: ['repo:read', 'pr:read', 'pr:write', 'issues:write'], record: 'repo' },
  { id: 'slack', scopes: ['chat:write', 'channels:read', 'files:read'], record: 'channel' },
  { id: 'crm', scopes: ['tickets:read', 'tickets:write', 'customers:read'], record: 'customer' },
  { id: 'jira', scopes: ['issues:read', 'issues:write', 'comments:write'], record: 'project' },
] as const;
const TASK_TYPES = ['triage', 'review', 'resolution', 'report'] as const;
/** Deny reasons and their shares of denials (the rare one is drawn apart). */
const DENY_REASONS: ReadonlyArray<readonly [string, number]> = [
  ['deny_scope', 0.3],
  ['task_type_not_allowed', 0.2],
  ['integration_not_allowed', 0.15],
  ['record_binding_mismatch', 0.1],
  ['approval_required', 0.1],
  ['task_completed', 0.07],
  ['task_expired', 0.05],
  ['unknown_agent', 0.03],
];
const ALLOW_REASONS: ReadonlyArray<readonly [string, number]> = [
  ['allowed', 0.88],
  ['scopes_capped', 0.08],
  ['scopes_dropped', 0.03],
  ['elevated', 0.01],
];

const iso = (ms: number): string => new Date(ms).toISOString();

/** A UUIDv7-shaped id from a time and the generator. */
function uuid7(ms: number, rand: () => number): string {
  const hex = (n: number, digits: number): string => Math.floor(n).toString(16).padStart(digits, '0').slice(-digits);
  const t = hex(ms, 12);
  return `${t.slice(0, 8)}-${t.slice(8, 12)}-7${hex(rand() * 0x1000, 3)}-${hex(0x8000 + rand() * 0x4000, 4)}-${hex(rand() * 0x1000000, 6)}${hex(rand() * 0x1000000, 6)}`;
}

interface Timed extends BulkEvent {
  ms: number;
}

export interface GeneratedTrail {
  events: number;
  decisions: number;
  outcomes: Record<string, number>;
  rare: number;
  /** A decision id from the middle of the trail, and the trail's middle time. */
  middle_decision_id: string;
  middle_ms: number;
  seconds: number;
}

/** Generates about `events` events over DAYS days ending at `endMs` into a fresh store file. */
export function generateConsoleTrail(path: string, events: number, endMs: number): GeneratedTrail {
  const started = process.hrtime.bigint();
  const rand = prng(22);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)] as T;
  const weighted = (list: ReadonlyArray<readonly [string, number]>): string => {
    let r = rand();
    for (const [v, w] of list) if ((r -= w) < 0) return v;
    return (list[0] as readonly [string, number])[0];
  };
  const loader = BulkLoader.open(path);
  const startMs = endMs - DAYS * DAY_MS;
  const current = new Map<string, { id: string; type: string; left: number; context: string }>();
  const outcomes: Record<string, number> = { allow: 0, deny: 0, undefined: 0 };
  let decisions = 0;
  let rare = 0;
  let tasks = 0;
  let jtis = 0;
  let middle: { id: string; ms: number } | undefined;
  const middleMs = startMs + (DAYS / 2) * DAY_MS;
  for (let day = 0; day < DAYS; day++) {
    const quota = Math.round((events * (day + 1)) / DAYS) - loader.lastSeq;
    const dayStart = startMs + day * DAY_MS;
    const out: Timed[] = [];
    const add = (ms: number, e: Omit<BulkEvent, 'time'>): void => void out.push({ ...e, ms, time: iso(ms) });
    while (out.length < quota) {
      const t = dayStart + Math.floor(rand() * (DAY_MS - 40_000));
      const agent = `agent-${String(Math.floor(rand() * AGENTS)).padStart(3, '0')}`;
      const spec = INTEGRATIONS[Number(agent.slice(6)) % INTEGRATIONS.length] as (typeof INTEGRATIONS)[number];
      const pep = `pep-${spec.id}`;
      let task = current.get(agent);
      if (task === undefined || task.left <= 0) {
        if (task !== undefined) add(t - 600, { type: 'task.completed', task_id: task.id, agent_id: agent, caller_id: 'orchestrator-1', data: `{"expires_at":"${iso(t + 3600_000)}","revoked_jtis":[],"status":"completed"}` });
        const type = pick(TASK_TYPES);
        const context = `{"customer_id":"${Math.floor(rand() * 100_000)}"}`;
        task = { id: `task-${tasks++}`, type, left: 3 + Math.floor(rand() * 8), context };
        current.set(agent, task);
        add(t - 500, { type: 'task.registered', task_id: task.id, agent_id: agent, caller_id: 'orchestrator-1', data: `{"context":${context},"expires_at":"${iso(t + 4 * 3600_000)}","type":"${type}"}` });
      }
      task.left--;
      const decisionId = uuid7(t, rand);
      const r = rand();
      const isRare = rand() < 0.0005;
      const outcome = isRare ? 'deny' : r < 0.001 ? 'undefined' : r < 0.221 ? 'deny' : 'allow';
      const reason = isRare ? RARE_REASON : outcome === 'undefined' ? 'undefined' : outcome === 'deny' ? weighted(DENY_REASONS) : weighted(ALLOW_REASONS);
      const requested = [pick(spec.scopes), ...(rand() < 0.4 ? [pick(spec.scopes)] : [])].filter((s, i, a) => a.indexOf(s) === i);
      const allow = outcome === 'allow';
      const granted = allow ? requested : [];
      const denied = allow ? [] : requested.map((scope) => ({ reason: outcome === 'deny' ? 'deny_scope' : 'task_type', scope }));
      const record = rand() < 0.6 ? { id: `${spec.record}-${Math.floor(rand() * 500)}`, type: spec.record } : null;
      const date = new Date(t);
      const input =
        `{"agent_id":"${agent}","caller_id":"${pep}","integration":"${spec.id}",${record === null ? '' : `"resource":${JSON.stringify(record)},`}"scopes":${JSON.stringify(requested)},` +
        `"task":{"context":${task.context},"id":"${task.id}","registered":true,"type":"${task.type}"},` +
        `"time":{"clock":[${date.getUTCHours()},${date.getUTCMinutes()},${date.getUTCSeconds()}],"date":[${date.getUTCFullYear()},${date.getUTCMonth() + 1},${date.getUTCDate()}],"now_ns":${t}000000,"rfc3339":"${iso(t)}","weekday":"Monday"}}`;
      const result =
        `{"agent_id":"${agent}","allow":${allow},"decision_id":"${decisionId}","denied_scopes":${JSON.stringify(denied)},"granted_scopes":${JSON.stringify(granted)},` +
        `"integration":"${spec.id}","outcome":"${outcome}","policy_revision":"b1.p1","reasons":[{"code":"${reason}","message":"bench reason ${reason}"}],"redeemable_until":${allow ? `"${iso(t + 60_000)}"` : 'null'},` +
        `"resource":${record === null ? 'null' : JSON.stringify(record)},"task_id":"${task.id}","token_ttl_seconds":900}`;
      add(t, { type: 'decision', decision_id: decisionId, task_id: task.id, agent_id: agent, caller_id: pep, data: `{"input":${input},"policy_revision":"b1.p1","result":${result}}` });
      decisions++;
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      if (isRare) rare++;
      if (middle === undefined && t >= middleMs) middle = { id: decisionId, ms: t };
      if (!allow || rand() < 0.1) continue;
      const issued = t + 150;
      const jti = `jti-${jtis++}`;
      const ids = { decision_id: decisionId, jti, task_id: task.id, agent_id: agent };
      add(issued, {
        type: 'token.issued', ...ids, caller_id: pep,
        data: `{"audience":"${spec.id}","expires_at":"${iso(issued + 900_000)}","integration":"${spec.id}","issued_at":"${iso(issued)}","kid":"key-1","resource":${record === null ? 'null' : JSON.stringify(record)},"scopes":${JSON.stringify(granted)}}`,
      });
      const uses = rand() < 0.5 ? 0 : 1 + Math.floor(rand() * 2);
      for (let u = 0; u < uses; u++) {
        const at = issued + 1000 + Math.floor(rand() * 30_000);
        add(at, {
          type: 'token.used', ...ids, caller_id: 'proxy',
          data: `{"action":"proxy","bytes_in":0,"bytes_out":${2000 + Math.floor(rand() * 8000)},"code":null,"integration":"${spec.id}","latency_ms":${5 + Math.floor(rand() * 80)},"method":"GET","outcome":"forwarded","path_template":"/x/{id}","record":${JSON.stringify(record ?? { id: `${spec.record}-1`, type: spec.record })},"scope":"${granted[0] ?? ''}","upstream_status":200}`,
        });
      }
      if (rand() < 0.03) add(issued + 35_000, { type: 'token.revoked', ...ids, caller_id: 'orchestrator-1', data: '{"issued_to":"pep","reason":"revoked"}' });
    }
    out.sort((a, b) => a.ms - b.ms);
    for (const e of out) loader.event(e);
  }
  const written = loader.lastSeq;
  loader.close();
  if (middle === undefined) throw new Error('no decision in the middle of the trail');
  return { events: written, decisions, outcomes, rare, middle_decision_id: middle.id, middle_ms: middle.ms, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

/** The same audit_events rows, copied into a migrated PostgreSQL schema; then VACUUM ANALYZE (as autovacuum would). */
export async function copyToPostgres(sqlitePath: string, url: string, schema: string): Promise<number> {
  const started = process.hrtime.bigint();
  const store = await PostgresStore.open(url, { schema });
  await store.close();
  const source = new Database(sqlitePath, { readonly: true });
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`SET search_path TO ${schema}`);
    const read = source.prepare('SELECT seq, v, time, type, decision_id, jti, task_id, agent_id, caller_id, trace_id, data, prev_hash, hash FROM audit_events WHERE seq > ? ORDER BY seq LIMIT 2000');
    const cols = ['seq', 'v', 'time', 'type', 'decision_id', 'jti', 'task_id', 'agent_id', 'caller_id', 'trace_id', 'data', 'prev_hash', 'hash'] as const;
    const types = ['bigint', 'bigint', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'bytea', 'bytea'];
    const sql = `INSERT INTO audit_events (${cols.join(', ')}) SELECT * FROM unnest(${types.map((t, i) => `$${i + 1}::${t}[]`).join(', ')})`;
    let after = 0;
    for (;;) {
      const rows = read.all(after) as Array<Record<(typeof cols)[number], unknown>>;
      if (rows.length === 0) break;
      // Hashes are bytes in both (chain-writer.ts); a SQLite row written before may hold hex text.
      await client.query(sql, cols.map((c) => rows.map((r) => (c === 'hash' || c === 'prev_hash' ? Buffer.from(hashText(r[c] as string | Uint8Array), 'hex') : r[c]))));
      after = Number(rows[rows.length - 1]?.seq);
    }
    await client.query('VACUUM ANALYZE audit_events');
    // The load's dirty buffers written now, not by a checkpoint during the timed rounds.
    await client.query('CHECKPOINT');
  } finally {
    await client.end();
    source.close();
  }
  return Number(process.hrtime.bigint() - started) / 1e9;
}

// ---- the client ---------------------------------------------------------------------------------------------------

interface Answer {
  status: number;
  ms: number;
  body: string;
  headers: IncomingMessage['headers'];
}

function call(url: string, o: { method?: string; headers?: Record<string, string>; agent?: Agent; firstByte?: boolean }): Promise<Answer> {
  return new Promise((ok, fail) => {
    const t0 = process.hrtime.bigint();
    const req = httpRequest(url, { method: o.method ?? 'GET', headers: o.headers ?? {}, agent: o.agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        if (o.firstByte === true) {
          const ms = Number(process.hrtime.bigint() - t0) / 1e6;
          req.destroy();
          ok({ status: res.statusCode ?? 0, ms, body: c.subarray(0, 200).toString(), headers: res.headers });
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => ok({ status: res.statusCode ?? 0, ms: Number(process.hrtime.bigint() - t0) / 1e6, body: Buffer.concat(chunks).toString(), headers: res.headers }));
      res.on('error', fail);
    });
    req.on('error', (err) => {
      if (o.firstByte !== true) fail(err);
    });
    req.end();
  });
}

interface Session {
  server: RunningServer;
  cookie: string;
  agent: Agent;
}

/** Signs in as the browser does: the auditor key once, then only the session cookie. */
async function signIn(server: RunningServer): Promise<Session> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const res = await call(`${server.url}/console/session`, { method: 'POST', headers: { authorization: `Bearer ${AUDITOR.key}` }, agent });
  if (res.status !== 201) throw new Error(`POST /console/session: ${res.status} ${res.body.slice(0, 300)}`);
  const set = res.headers['set-cookie']?.[0];
  if (set === undefined) throw new Error('POST /console/session set no cookie');
  return { server, cookie: set.slice(0, set.indexOf(';')), agent };
}

interface Query {
  name: string;
  /** The path, or a function of the no-filter page's cursor. */
  path: string | ((cursor: string) => string);
  firstByte?: boolean;
  /** The count the answer returned (decisions on a page), or null. */
  count?: (body: string) => number | null;
}

const page = (body: string): number | null => (JSON.parse(body) as { decisions: unknown[] }).decisions.length;

export async function runConsoleBench(o: { events: number; rounds: number; serverCpu: string | undefined }): Promise<ConsoleBenchResult> {
  const load1Start = round(loadavg()[0] ?? 0, 2);
  const work = mkdtempSync(join(tmpdir(), 'agent-pdp-console-bench-'));
  const servers: RunningServer[] = [];
  let pgc: BenchPostgres | undefined;
  try {
    const dbDir = join(work, 'sqlite-data');
    mkdirSync(dbDir, { recursive: true, mode: 0o700 });
    const dbPath = join(dbDir, 'pdp.db');
    log(`generating ${o.events} events over ${DAYS} days`);
    const trail = generateConsoleTrail(dbPath, o.events, Math.floor(Date.now() / 1000) * 1000);
    log(`generated ${trail.events} events (${trail.decisions} decisions) in ${round(trail.seconds, 1)} s; starting PostgreSQL`);
    pgc = startPostgres();
    const pgLoad = await copyToPostgres(dbPath, pgc.url, PG_SCHEMA);
    // Both loads' dirty pages on disk before anything is timed (the OS would write them back during the rounds).
    execFileSync('sync');
    log(`copied to PostgreSQL in ${round(pgLoad, 1)} s; starting both servers`);
    const auditor = [{ id: AUDITOR.id, role: 'auditor', key_sha256: sha256Hex(AUDITOR.key) }];
    const sqliteServer = await startOurs({ dir: join(work, 'sqlite'), cpu: o.serverCpu, logLevel: 'warn', extraCallers: auditor, config: { store: { url: `sqlite:${dbPath}` } } });
    servers.push(sqliteServer);
    const pgServer = await startOurs({ dir: join(work, 'postgres'), cpu: o.serverCpu, logLevel: 'warn', extraCallers: auditor, config: { store: { url: pgc.url, schema: PG_SCHEMA } } });
    servers.push(pgServer);
    const sessions: Record<StoreName, Session> = { sqlite: await signIn(sqliteServer), postgres: await signIn(pgServer) };
    const mid = trail.middle_ms;
    const queries: Query[] = [
      { name: 'no filter', path: '/v1/audit/decisions?limit=50', count: page },
      { name: 'no filter, the page after (next_cursor)', path: (cursor) => `/v1/audit/decisions?limit=50&cursor=${encodeURIComponent(cursor)}`, count: page },
      { name: 'one agent', path: `/v1/audit/decisions?limit=50&agent_id=${AGENT}`, count: page },
      { name: 'outcome=deny', path: '/v1/audit/decisions?limit=50&outcome=deny', count: page },
      { name: `rare reason (${RARE_REASON}, ${trail.rare} decisions)`, path: `/v1/audit/decisions?limit=50&reason=${RARE_REASON}`, count: page },
      { name: `rare outcome (undefined, ${trail.outcomes['undefined'] ?? 0} decisions)`, path: '/v1/audit/decisions?limit=50&outcome=undefined', count: page },
      { name: 'time range in the middle (24 h)', path: `/v1/audit/decisions?limit=50&since=${iso(mid - 12 * 3600_000)}&until=${iso(mid + 12 * 3600_000)}`, count: page },
      { name: 'agent + outcome=deny', path: `/v1/audit/decisions?limit=50&agent_id=${AGENT}&outcome=deny`, count: page },
      { name: 'one decision id', path: `/v1/audit/decisions?limit=50&decision_id=${trail.middle_decision_id}`, count: page },
      { name: 'overview, 60 minutes', path: '/v1/audit/overview?minutes=60', count: (b) => Object.values((JSON.parse(b) as { by_outcome: Record<string, number> }).by_outcome).reduce((a, n) => a + n, 0) },
      { name: 'integrity', path: '/v1/audit/integrity' },
      { name: 'export of one agent (JSON Lines)', path: `/v1/audit/export?agent_id=${AGENT}`, firstByte: true },
    ];
    const samples = new Map<string, number[]>();
    const cold = new Map<string, number>();
    const returned = new Map<string, number | null>();
    const key = (q: Query, s: StoreName): string => `${q.name}\u0000${s}`;
    let load1Rounds = 0;
    let watch: CpuWatch | undefined;
    for (let r = 0; r <= o.rounds; r++) {
      const order: StoreName[] = r % 2 === 0 ? ['sqlite', 'postgres'] : ['postgres', 'sqlite'];
      for (const s of order) {
        const session = sessions[s];
        let cursor: string | null = null;
        for (const q of queries) {
          let path: string;
          if (typeof q.path === 'string') path = q.path;
          else {
            if (cursor === null) throw new Error('the no-filter page had no next_cursor');
            path = q.path(cursor);
          }
          const headers = { cookie: session.cookie };
          const res = q.firstByte === true ? await call(`${session.server.url}${path}`, { headers, firstByte: true }) : await call(`${session.server.url}${path}`, { headers, agent: session.agent });
          if (res.status !== 200) throw new Error(`${s} GET ${path}: ${res.status} ${res.body.slice(0, 300)}`);
          if (q.name === 'no filter') cursor = (JSON.parse(res.body) as { next_cursor: string | null }).next_cursor;
          if (r === 0) {
            cold.set(key(q, s), round(res.ms, 1));
            returned.set(key(q, s), q.count === undefined ? null : q.count(res.body));
          } else samples.set(key(q, s), [...(samples.get(key(q, s)) ?? []), round(res.ms, 2)]);
          // The export's request was cut after its first byte: let the server notice before the next one.
          if (q.firstByte === true) await new Promise((ok) => setTimeout(ok, 100));
        }
      }
      if (r === 0) {
        log('warm-up round done');
        // From here: PostgreSQL's backends for the PDP's read pool exist now, so their CPU is not counted as others'.
        load1Rounds = round(loadavg()[0] ?? 0, 2);
        watch = new CpuWatch([sqliteServer.pid, pgServer.pid, pgc.pid, ...childPids(pgc.pid)]);
      }
    }
    const machine = (watch as CpuWatch).stop();
    const stat = (q: Query, s: StoreName): ConsoleQueryResult['stores'][StoreName] => {
      const xs = samples.get(key(q, s)) ?? [];
      const p50 = round(median(xs), 1);
      const max = round(Math.max(...xs), 1);
      return { p50_ms: p50, max_ms: max, cold_ms: cold.get(key(q, s)) ?? Number.NaN, samples_ms: xs, returned: returned.get(key(q, s)) ?? null, within_goal: max <= GOAL_MS };
    };
    const result: ConsoleBenchResult = {
      events: trail.events,
      decisions: trail.decisions,
      agents: AGENTS,
      days: DAYS,
      outcomes: trail.outcomes,
      rare_reason: { code: RARE_REASON, decisions: trail.rare },
      generate_s: round(trail.seconds, 1),
      postgres_load_s: round(pgLoad, 1),
      sqlite_mb: round(statSync(dbPath).size / 1048576, 0),
      rounds: o.rounds,
      goal_ms: GOAL_MS,
      load1_start: load1Start,
      load1_end: round(loadavg()[0] ?? 0, 2),
      load1_rounds_start: load1Rounds,
      other_cores: machine.other_cores,
      iowait_cores: machine.iowait_cores,
      loadavg_end: loadavg().map((x) => round(x, 2)),
      placement: `both PDPs (one per store) on core ${o.serverCpu ?? 'any'}; PostgreSQL unpinned; this client on the core it was started on`,
      queries: queries.map((q) => ({
        query: q.name,
        path: typeof q.path === 'string' ? q.path : q.path('<next_cursor>'),
        timed: q.firstByte === true ? 'first byte' : 'answer',
        stores: { sqlite: stat(q, 'sqlite'), postgres: stat(q, 'postgres') },
      })),
    };
    return result;
  } finally {
    for (const s of servers) await stopProcess(s.child);
    pgc?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).split('\n').filter((l) => l !== '').map(Number);
  } catch {
    return [];
  }
}

/** The console section of report.md. */
export function consoleMarkdown(c: ConsoleBenchResult | undefined): string {
  if (c === undefined) return '';
  const cell = (x: ConsoleQueryResult['stores'][StoreName]): string => `${x.p50_ms} / ${x.max_ms} (${x.cold_ms})`;
  const met = (x: ConsoleQueryResult['stores'][StoreName]): string => (x.within_goal ? 'yes' : '**no**');
  return [
    '',
    `## Audit console at ${(c.events / 1e6).toLocaleString('en')} million events (issue 22)`,
    '',
    `Goal: the first page of a search (and the console's other reads) answered in ≤ ${c.goal_ms} ms, judged on the max of ${c.rounds} timed rounds after a warm-up round. ` +
      `Trail: ${c.events.toLocaleString('en')} events over ${c.days} days ending at the run, ${c.decisions.toLocaleString('en')} decisions (${Math.round((c.decisions / c.events) * 100)}%) of ${c.agents} agents, ` +
      `outcomes ${Object.entries(c.outcomes).map(([k, v]) => `${k} ${v.toLocaleString('en')}`).join(', ')}; SQLite file ${c.sqlite_mb} MB, the same rows copied to PostgreSQL (${c.postgres_load_s} s). ` +
      `Our PDP serves each store (${c.placement}); the client signs in with an auditor key (POST /console/session) and sends only the cookie, keep-alive, one request at a time. ` +
      `Load average (1 min) ${c.load1_start} at the section's start, ${c.load1_rounds_start} when the timed rounds began, ${c.loadavg_end.join(' / ')} (1/5/15 min) at the end; ` +
      `other processes (not the client, the PDPs or PostgreSQL) used ${c.other_cores} cores during the rounds.`,
    '',
    '| query | timed | SQLite p50 / max (warm-up) ms | met | PostgreSQL p50 / max (warm-up) ms | met | returned (SQLite / PG) |',
    '| --- | --- | ---: | --- | ---: | --- | ---: |',
    ...c.queries.map((q) => `| ${q.query} | ${q.timed} | ${cell(q.stores.sqlite)} | ${met(q.stores.sqlite)} | ${cell(q.stores.postgres)} | ${met(q.stores.postgres)} | ${q.stores.sqlite.returned ?? ''} / ${q.stores.postgres.returned ?? ''} |`),
    '',
    'Returned: decisions on the page (a rare filter answers a short page once it has read 20,000 decision events: `next_cursor` continues it), decisions counted by the overview.',
    '',
  ].join('\n');
}

const log = (line: string): void => void process.stderr.write(`[console-bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { events: { type: 'string', default: '1000000' }, rounds: { type: 'string', default: '9' }, 'server-cpu': { type: 'string' }, json: { type: 'boolean' } } });
  const result = await runConsoleBench({ events: Number(values.events), rounds: Number(values.rounds), serverCpu: values['server-cpu'] });
  process.stdout.write(`${JSON.stringify(result, null, values.json === true ? undefined : 2)}\n`);
}
