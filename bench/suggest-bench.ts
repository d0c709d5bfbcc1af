/**
 * Policy suggestions at scale (issue 18): the usage rollup and summary over a trail of 1 and 10 million events.
 *
 *   npx tsc -p bench/tsconfig.json && node .build/bench/bench/suggest-bench.js [--events 1000000,10000000] [--batch N] [--workers N]
 *     [--keep DIR] [--json]
 *
 * `--keep DIR` generates each size's trail once into DIR (or reuses the one there) and measures a copy of it.
 *
 * For each size: a trail is generated in bulk into a fresh SQLite file (`src/store/bulk-load.ts`: batched INSERTs
 * of well-formed rows in large transactions, bypassing the writer queue and the chain, so that file does NOT
 * verify: placeholder hashes), a realistic mix over 90 days: 50 agents on 4 integrations, registered tasks of two
 * types per agent, decisions (some scopes asked above the ceiling, some denials), tokens issued (most bound to a
 * record), calls through the enforcement proxy (github, slack: forwarded, a few refused or failed) and resource
 * servers' usage reports (crm, jira), introspections, revocations at task completion. Then a separate process (its
 * own peak memory) opens it with the real store and times `rollupUsage` from zero (every event read), a second
 * `rollupUsage` with nothing new, `usageSummary` over the 90 days (all agents, then one agent), and reports its
 * peak resident memory (VmHWM). `make bench` runs it through run-bench.ts `--only suggest`.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BulkLoader } from '../src/store/bulk-load.js';
import type { BulkEvent } from '../src/store/bulk-load.js';
import { SqliteStore } from '../src/store/index.js';
import { ROLLUP_BATCH } from '../src/store/usage-rollup-ops.js';
import { isMain, round } from './lib/timing.js';

export interface SuggestBenchSize {
  events: number;
  generate_s: number;
  db_mb: number;
  tokens: number;
  tasks: number;
  /** rollupUsage from zero: every event read, folded, committed. */
  rollup_s: number;
  /** Its CPU time (the process's, all threads): less sensitive than wall time to other processes on the machine. */
  rollup_cpu_s: number;
  rollup_events: number;
  rollup_events_per_s: number;
  /** A second rollupUsage with nothing new. */
  rollup_again_ms: number;
  /** usageSummary over the 90 days, all agents. */
  summary_ms: number;
  summary_rows: number;
  /** usageSummary of one agent. */
  summary_agent_ms: number;
  usage_daily_rows: number;
  /** Peak resident memory of the measuring process (VmHWM): open, rollup, summaries. */
  peak_rss_mb: number;
  /** Time (rollup from zero + summary) within the goal (≤ 30 s) and memory within ≤ 500 MB. */
  within_goal: boolean;
}

export interface SuggestBenchResult {
  /** Events per write transaction: the store's default unless `--batch` was given. */
  batch: number;
  /** Worker threads asked for; null: the store's default (up to 2, on a backlog of 200,000 events or more). */
  workers: number | null;
  days: number;
  agents: number;
  integrations: number;
  note: string;
  sizes: SuggestBenchSize[];
}

const DAYS = 90;
const AGENTS = 50;
const DAY_MS = 86_400_000;
const START = Date.parse('2026-01-01T00:00:00.000Z');
const GOAL_S = 30;
const GOAL_MB = 500;

// ---- the workload -----------------------------------------------------------------------------------------

interface IntegrationSpec {
  id: string;
  scopes: readonly string[];
  record: string;
  /** How its use is observed: the enforcement proxy, or the resource server's reports. */
  via: 'proxy' | 'resource_server';
  paths: readonly string[];
}

const INTEGRATIONS: readonly IntegrationSpec[] = [
  { id: 'github', scopes: ['repo:read', 'pr:read', 'pr:write', 'issues:read', 'issues:write', 'repo:write'], record: 'repo', via: 'proxy', paths: ['/repos/{owner}/{repo}/pulls/{pull_number}', '/repos/{owner}/{repo}/issues', '/repos/{owner}/{repo}/contents/{path}'] },
  { id: 'slack', scopes: ['chat:write', 'channels:read', 'files:read', 'users:read'], record: 'channel', via: 'proxy', paths: ['/chat.postMessage', '/conversations.history', '/files.info'] },
  { id: 'crm', scopes: ['tickets:read', 'tickets:write', 'customers:read', 'customers:write'], record: 'customer', via: 'resource_server', paths: ['/customers/:id', '/tickets/:id'] },
  { id: 'jira', scopes: ['issues:read', 'issues:write', 'projects:read', 'comments:write'], record: 'project', via: 'resource_server', paths: ['/rest/api/3/issue/:key', '/rest/api/3/project/:key'] },
];
const TASK_TYPES = ['triage', 'review', 'resolution', 'report', 'migration'];

interface AgentSpec {
  id: string;
  integrations: Array<{ spec: IntegrationSpec; ceiling: string[]; used: string[]; onlyFor: { scope: string; task: string } }>;
  taskTypes: string[];
  ttl: number;
}

/** Deterministic: the same trail for the same size. */
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

function agents(rand: () => number): AgentSpec[] {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)] as T;
  return Array.from({ length: AGENTS }, (_, i) => {
    const first = INTEGRATIONS[i % INTEGRATIONS.length] as IntegrationSpec;
    const specs = rand() < 0.5 ? [first] : [first, INTEGRATIONS[(i + 1) % INTEGRATIONS.length] as IntegrationSpec];
    const taskTypes = [TASK_TYPES[i % TASK_TYPES.length] as string, TASK_TYPES[(i + 2) % TASK_TYPES.length] as string];
    return {
      id: `agent-${String(i).padStart(2, '0')}`,
      taskTypes,
      ttl: pick([900, 1800, 3600]),
      integrations: specs.map((spec) => {
        const ceiling = spec.scopes.slice(0, 3 + Math.floor(rand() * (spec.scopes.length - 2)));
        // Some of the ceiling is used, one scope only by one task type; the rest is carried and never used.
        const used = ceiling.slice(0, Math.max(1, ceiling.length - 2));
        return { spec, ceiling, used, onlyFor: { scope: used[used.length - 1] as string, task: taskTypes[1] as string } };
      }),
    };
  });
}

const iso = (ms: number): string => new Date(ms).toISOString();

interface Timed extends BulkEvent {
  ms: number;
}

/** One task's life, its events appended to `out` (times within its day), its rows written at once. */
function taskEvents(rand: () => number, loader: BulkLoader, agent: AgentSpec, n: number, dayStart: number, out: Timed[]): { tokens: number } {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)] as T;
  const t0 = dayStart + Math.floor(rand() * 20 * 3600_000);
  const taskId = `task-${n}`;
  const taskType = pick(agent.taskTypes);
  const ticket = `T-${Math.floor(rand() * 100_000)}`;
  const expires = t0 + 4 * 3600_000;
  const context = JSON.stringify({ customer_id: ticket.slice(2), ticket });
  loader.task({ id: taskId, agent_id: agent.id, type: taskType, context, registered_by: 'orchestrator-1', registered_at: iso(t0), expires_at: iso(expires), status: 'completed' });
  const add = (ms: number, e: BulkEvent): void => {
    out.push({ ...e, ms, time: iso(ms) });
  };
  add(t0, { time: '', type: 'task.registered', task_id: taskId, agent_id: agent.id, caller_id: 'orchestrator-1', data: `{"context":${context},"expires_at":"${iso(expires)}","type":"${taskType}"}` });
  const integration = pick(agent.integrations);
  const spec = integration.spec;
  const decisions = 1 + Math.floor(rand() * 4);
  const jtis: string[] = [];
  let t = t0;
  for (let d = 0; d < decisions; d++) {
    t += 1000 + Math.floor(rand() * 120_000);
    const decisionId = `d-${n}-${d}`;
    // Ask for one to three scopes this task type uses, now and then one above the ceiling.
    const usable = integration.used.filter((s) => s !== integration.onlyFor.scope || taskType === integration.onlyFor.task);
    const carried = integration.ceiling.filter((s) => !integration.used.includes(s));
    const asked = new Set<string>([pick(usable.length > 0 ? usable : integration.ceiling)]);
    if (rand() < 0.5) asked.add(pick(integration.ceiling));
    if (carried.length > 0 && rand() < 0.6) asked.add(pick(carried));
    const above = rand() < 0.08 ? spec.scopes.find((s) => !integration.ceiling.includes(s)) : undefined;
    if (above !== undefined) asked.add(above);
    const deny = rand() < 0.05;
    const requested = [...asked];
    const granted = deny ? [] : requested.filter((s) => s !== above);
    const denied = deny ? requested.map((s) => ({ reason: 'task_type', scope: s })) : above === undefined ? [] : [{ reason: 'above_ceiling', scope: above }];
    const record = rand() < 0.6 ? { id: `${spec.record}-${Math.floor(rand() * 500)}`, type: spec.record } : null;
    const outcome = deny ? 'deny' : 'allow';
    const resource = record === null ? '' : `"resource":${JSON.stringify(record)},`;
    const date = new Date(t);
    const input =
      `{"agent_id":"${agent.id}","caller_id":"pep-${spec.id}","integration":"${spec.id}",${resource}"scopes":${JSON.stringify(requested)},` +
      `"task":{"context":${context},"id":"${taskId}","registered":true,"type":"${taskType}"},` +
      `"time":{"clock":[${date.getUTCHours()},${date.getUTCMinutes()},${date.getUTCSeconds()}],"date":[${date.getUTCFullYear()},${date.getUTCMonth() + 1},${date.getUTCDate()}],"now_ns":${t}000000,"rfc3339":"${iso(t)}","weekday":"Monday"}}`;
    const reasons = deny ? '[{"code":"task_type_not_allowed","message":"the task type does not allow these scopes"}]' : above === undefined ? '[{"code":"allowed","message":"granted within the agent ceiling"}]' : '[{"code":"scopes_capped","message":"some scopes were above the ceiling"}]';
    const result =
      `{"agent_id":"${agent.id}","allow":${!deny},"decision_id":"${decisionId}","denied_scopes":${JSON.stringify(denied)},"granted_scopes":${JSON.stringify(granted)},` +
      `"integration":"${spec.id}","outcome":"${outcome}","policy_revision":"b1.p1","reasons":${reasons},"redeemable_until":${deny ? 'null' : `"${iso(t + 60_000)}"`},` +
      `"resource":${record === null ? 'null' : JSON.stringify(record)},"task_id":"${taskId}","token_ttl_seconds":${agent.ttl}}`;
    add(t, { time: '', type: 'decision', decision_id: decisionId, task_id: taskId, agent_id: agent.id, caller_id: `pep-${spec.id}`, data: `{"input":${input},"policy_revision":"b1.p1","result":${result}}` });
    if (deny) continue;
    const issued = t + 200;
    const jti = `jti-${n}-${d}`;
    jtis.push(jti);
    const exp = issued + agent.ttl * 1000;
    loader.token({ jti, decision_id: decisionId, caller_id: `pep-${spec.id}`, agent_id: agent.id, task_id: taskId, scopes: granted, audience: spec.id, issued_at: iso(issued), expires_at: iso(exp) });
    const ids = { decision_id: decisionId, jti, task_id: taskId, agent_id: agent.id };
    add(issued, {
      time: '', type: 'token.issued', ...ids, caller_id: `pep-${spec.id}`,
      data: `{"audience":"${spec.id}","expires_at":"${iso(exp)}","integration":"${spec.id}","issued_at":"${iso(issued)}","kid":"key-1","resource":${record === null ? 'null' : JSON.stringify(record)},"scopes":${JSON.stringify(granted)}}`,
    });
    // Uses: only scopes the agent uses (carried ones never), spread over the first part of the token's life.
    const usedHere = granted.filter((s) => integration.used.includes(s));
    const calls = usedHere.length === 0 ? 0 : 1 + Math.floor(rand() * 10);
    for (let c = 0; c < calls; c++) {
      const at = issued + 1000 + Math.floor(rand() * Math.min(agent.ttl * 1000 - 2000, 1_200_000));
      const scope = pick(usedHere);
      const touched = record ?? { id: `${spec.record}-${Math.floor(rand() * 500)}`, type: spec.record };
      if (spec.via === 'proxy') {
        const r = rand();
        const outcome = r < 0.94 ? 'forwarded' : r < 0.97 ? 'refused' : 'failed';
        const code = outcome === 'forwarded' ? 'null' : outcome === 'refused' ? '"token_scope_insufficient"' : '"upstream_timeout"';
        const status = outcome === 'forwarded' ? '200' : 'null';
        add(at, {
          time: '', type: 'token.used', ...ids, caller_id: 'proxy',
          data: `{"action":"proxy","bytes_in":0,"bytes_out":${outcome === 'forwarded' ? 2000 + Math.floor(rand() * 8000) : 0},"code":${code},"integration":"${spec.id}","latency_ms":${5 + Math.floor(rand() * 80)},"method":"GET","outcome":"${outcome}","path_template":"${pick(spec.paths)}","record":${JSON.stringify(touched)},"scope":"${scope}","upstream_status":${status}}`,
        });
      } else {
        const usedAt = at - Math.floor(rand() * 900);
        add(at, {
          time: '', type: 'token.used', ...ids, caller_id: `${spec.id}-api`,
          data: `{"action":"resource_server","integration":"${spec.id}","record":${JSON.stringify(touched)},"route":"${pick(spec.paths)}","scope":"${scope}","used_at":"${iso(usedAt)}"}`,
        });
      }
    }
    if (rand() < 0.2) add(issued + 5000, { time: '', type: 'token.used', ...ids, caller_id: `${spec.id}-api`, data: '{"action":"introspect","active":true}' });
  }
  const done = t + 1_300_000;
  add(done, { time: '', type: 'task.completed', task_id: taskId, agent_id: agent.id, caller_id: 'orchestrator-1', data: `{"expires_at":"${iso(expires)}","revoked_jtis":${JSON.stringify(jtis)},"status":"completed"}` });
  for (const jti of jtis) {
    const d = jti.slice(4).split('-');
    add(done, { time: '', type: 'token.revoked', decision_id: `d-${d[0]}-${d[1]}`, jti, task_id: taskId, agent_id: agent.id, caller_id: 'orchestrator-1', data: '{"issued_to":"pep","reason":"task_completed"}' });
  }
  return { tokens: jtis.length };
}

/** Generates about `events` events over 90 days into a fresh store file; returns what it wrote. */
export function generateTrail(path: string, events: number): { events: number; tokens: number; tasks: number; seconds: number } {
  const started = process.hrtime.bigint();
  const rand = prng(18);
  const specs = agents(rand);
  const loader = BulkLoader.open(path);
  let tasks = 0;
  let tokens = 0;
  for (let day = 0; day < DAYS; day++) {
    const quota = Math.round((events * (day + 1)) / DAYS) - loader.lastSeq;
    const out: Timed[] = [];
    while (out.length < quota) {
      tokens += taskEvents(rand, loader, specs[Math.floor(rand() * specs.length)] as AgentSpec, tasks, START + day * DAY_MS, out).tokens;
      tasks++;
    }
    // In time order, as the PDP would have sealed them (ties kept in their order of creation).
    out.sort((a, b) => a.ms - b.ms);
    for (const e of out) loader.event(e);
  }
  const written = loader.lastSeq;
  loader.close();
  return { events: written, tokens, tasks, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

// ---- the measurement (a process of its own) ----------------------------------------------------------------

interface Measured {
  rollup_s: number;
  rollup_cpu_s: number;
  rollup_events: number;
  rollup_again_ms: number;
  summary_ms: number;
  summary_rows: number;
  summary_agent_ms: number;
  usage_daily_rows: number;
  peak_rss_mb: number;
}

function vmHwmMb(): number {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
  return kb === undefined ? Math.round(process.memoryUsage().rss / 1048576) : Math.round(Number(kb) / 1024);
}

async function measure(path: string, batch: number | undefined, workers: number | undefined): Promise<Measured> {
  const store = SqliteStore.open(path);
  try {
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const options = { ...(batch === undefined ? {} : { batch }), ...(workers === undefined ? {} : { workers }) };
    const rolled = await store.rollupUsage(options);
    const t1 = process.hrtime.bigint();
    const cpu = process.cpuUsage(cpu0);
    const again = await store.rollupUsage(options);
    const t2 = process.hrtime.bigint();
    if (again.events !== 0) throw new Error(`a second rollup read ${again.events} events`);
    const window = { since: new Date(START).toISOString(), until: new Date(START + DAYS * DAY_MS).toISOString() };
    const t3 = process.hrtime.bigint();
    const summary = await store.usageSummary(window);
    const t4 = process.hrtime.bigint();
    await store.usageSummary({ ...window, agent_id: 'agent-07' });
    const t5 = process.hrtime.bigint();
    const cells = summary.rows.reduce((sum, r) => sum + r.days, 0);
    return {
      rollup_s: round(Number(t1 - t0) / 1e9, 2),
      rollup_cpu_s: round((cpu.user + cpu.system) / 1e6, 2),
      rollup_events: rolled.events,
      rollup_again_ms: round(Number(t2 - t1) / 1e6, 2),
      summary_ms: round(Number(t4 - t3) / 1e6, 1),
      summary_rows: summary.rows.length,
      summary_agent_ms: round(Number(t5 - t4) / 1e6, 1),
      usage_daily_rows: cells,
      peak_rss_mb: vmHwmMb(),
    };
  } finally {
    await store.close();
  }
}

/** What generateTrail wrote, kept next to a trail saved with `--keep` so that a later run can report it. */
interface Generated {
  events: number;
  tokens: number;
  tasks: number;
  seconds: number;
}

/**
 * `keep`: the folder where each size's trail is generated and left (`<keep>/trail-<events>.db` and its `.json`), or
 * found if it is already there (a copy of it is measured, so the kept trail stays unrolled): generating 10 million
 * events takes minutes, a copy seconds.
 */
export function runSuggestBench(sizes: readonly number[], batch?: number, workers?: number, keep?: string): SuggestBenchResult {
  const out: SuggestBenchSize[] = [];
  for (const events of sizes) {
    const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-suggest-bench-'));
    try {
      const path = join(dir, 'pdp.db');
      let generated: Generated;
      if (keep === undefined) generated = generateTrail(path, events);
      else {
        const kept = join(keep, `trail-${events}.db`);
        if (!existsSync(`${kept}.json`)) {
          mkdirSync(keep, { recursive: true });
          rmSync(kept, { force: true });
          const made = generateTrail(kept, events);
          writeFileSync(`${kept}.json`, JSON.stringify(made));
        }
        generated = JSON.parse(readFileSync(`${kept}.json`, 'utf8')) as Generated;
        copyFileSync(kept, path);
      }
      const dbMb = Math.round((statSync(path).size / 1048576) * 10) / 10;
      const options = [...(batch === undefined ? [] : ['--batch', String(batch)]), ...(workers === undefined ? [] : ['--workers', String(workers)])];
      const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--measure', path, ...options], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        maxBuffer: 16 * 1048576,
      });
      if (child.status !== 0) throw new Error(`the measuring process exited ${child.status ?? child.signal}`);
      const m = JSON.parse(child.stdout.trim().split('\n').at(-1) ?? '') as Measured;
      out.push({
        events: generated.events,
        generate_s: round(generated.seconds, 1),
        db_mb: dbMb,
        tokens: generated.tokens,
        tasks: generated.tasks,
        ...m,
        rollup_events_per_s: Math.round(m.rollup_events / m.rollup_s),
        within_goal: m.rollup_s + m.summary_ms / 1000 <= GOAL_S && m.peak_rss_mb <= GOAL_MB,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return {
    batch: batch ?? ROLLUP_BATCH,
    workers: workers ?? null,
    days: DAYS,
    agents: AGENTS,
    integrations: INTEGRATIONS.length,
    note: 'trail bulk-loaded with placeholder hashes (it does not verify) and no decisions rows; rollup and summaries through the real SqliteStore in a separate process',
    sizes: out,
  };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      events: { type: 'string', default: '1000000,10000000' },
      batch: { type: 'string' },
      measure: { type: 'string' },
      workers: { type: 'string' },
      keep: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const batch = values.batch === undefined ? undefined : Number(values.batch);
  const workers = values.workers === undefined ? undefined : Number(values.workers);
  if (values.measure !== undefined) {
    process.stdout.write(`${JSON.stringify(await measure(values.measure, batch, workers))}\n`);
  } else {
    const sizes = (values.events ?? '').split(',').map((s) => Number(s.trim()));
    const result = runSuggestBench(sizes, batch, workers, values.keep);
    if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      for (const s of result.sizes) {
        process.stdout.write(
          `${s.events.toLocaleString('en')} events (${s.tokens.toLocaleString('en')} tokens, ${s.db_mb} MB, generated in ${s.generate_s} s): ` +
            `rollup ${s.rollup_s} s (${s.rollup_cpu_s} s CPU, ${s.rollup_events_per_s.toLocaleString('en')} events/s), again ${s.rollup_again_ms} ms; ` +
            `summary ${s.summary_ms} ms (${s.summary_rows} rows from ${s.usage_daily_rows} day cells), one agent ${s.summary_agent_ms} ms; ` +
            `peak RSS ${s.peak_rss_mb} MB — ${s.within_goal ? 'within' : 'OUTSIDE'} ≤ ${GOAL_S} s, ≤ ${GOAL_MB} MB\n`,
        );
      }
    }
  }
}
