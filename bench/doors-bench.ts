/**
 * The doors (issue 21, docs/doors.md): the same decision asked through each door a PEP can use, and what each costs
 * our server per decision. support-resolver writing the ticket of customer 1234 for its registered task
 * (`bench-task-sr`, crm `tickets:write`: an allow, record-bound), asked as
 *
 * - **decide**: `POST /v1/decide` (DecisionRequestV1);
 * - **evaluation**: AuthZEN `POST /access/v1/evaluation`, `{ subject: { type: agent, id }, action: { name: scope },
 *   resource: { type: customer, id: 1234 }, context: { integration: crm, task_id } }`: the Decider decides it exactly
 *   as /v1/decide would (a decision record each);
 * - **evaluations**: AuthZEN `POST /access/v1/evaluations`, ten items of that decision in one request (`execute_all`,
 *   the default: decided concurrently, recorded by the store's group commit), written as a PEP would: subject and
 *   context once at the top as defaults, each item its action and resource;
 * - **OPA**: `opa run --server` answering `POST /v1/data/agentpdp/decision` with the exact EvaluationInputV1 our
 *   Decider builds for it (lib/workload.ts), the same Rego and data (the reference: no audit, no task lookup).
 *
 * Our server and OPA are their own processes (lib/servers.ts), pinned to the server core by the driver; this process
 * is the PEP, a keep-alive `node:http` client (no vegeta: every answer is parsed and checked) on the load core.
 * Each door is asked once before timing and must answer allow (decide: outcome allow with the scope granted;
 * AuthZEN: `decision: true`, ten of them for the batch; OPA: outcome allow with the scope granted); every later
 * answer is checked the same way. Then warm-up, the idle server's CPU, and rounds: `seconds` of closed-loop
 * requests with `concurrency` in flight per door, in the order decide, evaluation, evaluations, OPA (reversed every
 * other round, so the doors each ratio compares run next to each other), each `settle` seconds after the previous.
 * Around each run this process reads the answering server's CPU time (utime + stime of all its threads,
 * /proc/<pid>/stat): **server CPU µs per decision** and **decisions per second** (a batch answers ten), medians over
 * rounds, and the ratios within each round (median over rounds), where a drift of the machine cancels:
 *
 * - evaluation ÷ decide: CPU per decision, and decide's throughput ÷ evaluation's (goal ≤ 1.10× each);
 * - evaluations ÷ ten single `evaluation` calls: decisions per second of the batch over the single door's (a PEP with
 *   ten decisions to make sends ten evaluation calls, whose decisions per second at saturation are the evaluation
 *   door's requests per second) (goal ≥ 5×);
 * - and the same question for one PEP with one request in flight (`one_pep`): ten `evaluation` calls one after the
 *   other against one `evaluations` call of ten, alternating (`--one-pep-rounds`, default 50): the wall time of
 *   each way, and the batch's decisions per second over the ten calls'.
 *
 *   node .build/bench/bench/doors-bench.js --url URL --pid PID --opa-url URL --opa-pid PID [--seconds 2] [--rounds 8]
 *        [--concurrency 48] [--settle 1] [--warmup 1]
 *   node .build/bench/bench/doors-bench.js [--server-cpu 0] [--opa .tools/bin/opa] [--log-level info] …
 *        without --url: starts our server and OPA itself (in a temp folder) and stops them at the end
 * Prints one JSON line.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { DecisionRequestV1 } from '../src/wire/decision-v1.js';
import { CpuWatch, cpuSeconds, load1, stopProcess } from './lib/processes.js';
import { REPO, startOpa, startOurs } from './lib/servers.js';
import { isMain, median, medianOfRatios, round } from './lib/timing.js';
import { BENCH_PEP, evaluationInputFor } from './lib/workload.js';

export const DOORS = ['decide', 'evaluation', 'evaluations', 'opa'] as const;
export type Door = (typeof DOORS)[number];

/** Items in the batch door's request. */
export const BATCH_ITEMS = 10;
const AGENT = 'support-resolver';
const TASK = 'bench-task-sr';
const SCOPE = 'tickets:write';
const RESOURCE = { type: 'customer', id: '1234' } as const;

const DECIDE: DecisionRequestV1 = { agent_id: AGENT, task: { id: TASK }, integration: 'crm', scopes: [SCOPE], resource: { ...RESOURCE } };
const EVALUATION = { subject: { type: 'agent', id: AGENT }, action: { name: SCOPE }, resource: { ...RESOURCE }, context: { integration: 'crm', task_id: TASK } };
const EVALUATIONS = {
  subject: EVALUATION.subject,
  context: EVALUATION.context,
  evaluations: Array.from({ length: BATCH_ITEMS }, () => ({ action: EVALUATION.action, resource: EVALUATION.resource })),
};

export interface DoorsRound {
  door: Door;
  round: number;
  /** Answers received in the run (every one checked). */
  requests: number;
  /** Decisions in those answers: requests × 1, or × 10 for the batch. */
  decisions: number;
  /** Answers that were not 200 with every decision allowed. */
  unexpected: number;
  wall_seconds: number;
  requests_per_s: number;
  decisions_per_s: number;
  /** The answering server's CPU seconds (all threads) over the run. */
  cpu_seconds: number;
  cpu_us_per_decision: number;
  cpu_us_per_request: number;
  /** The answering server's CPU seconds per wall second (about 1.0: its core busy throughout). */
  server_cpu: number;
  /** This client's CPU seconds per wall second (near 1.0 would mean the client, not the server, set the pace). */
  client_cpu: number;
  other_cores: number;
  iowait_cores: number;
}

export interface DoorsRow {
  door: Door;
  what: string;
  decisions_per_request: number;
  requests: number;
  decisions: number;
  unexpected: number;
  /** Medians over rounds. */
  decisions_per_s: number;
  requests_per_s: number;
  cpu_us_per_decision: number;
  cpu_us_per_request: number;
  server_cpu: number;
  client_cpu: number;
  /** Σ server CPU / Σ decisions over the rounds. */
  pooled_cpu_us_per_decision: number;
  rounds_cpu_us_per_decision: number[];
  rounds_decisions_per_s: number[];
}

export interface DoorsBenchResult {
  concurrency: number;
  rounds: number;
  seconds_per_round: number;
  settle_seconds: number;
  batch_items: number;
  /** The idle servers' CPU in µs per wall second, before the rounds. */
  idle_cpu_us_per_s: { ours: number; opa: number };
  doors: DoorsRow[];
  measurements: DoorsRound[];
  /** AuthZEN evaluation against /v1/decide: both ratios of medians and the median of the within-round ratios. */
  evaluation_vs_decide: { cpu_per_decision: number; cpu_per_decision_within_rounds: number; throughput: number; throughput_within_rounds: number };
  /** The batch against ten single evaluation calls: decisions/s ratio (≥ 5 is the goal) and CPU per decision ratio. */
  batch_vs_single: { decisions_per_s: number; decisions_per_s_within_rounds: number; cpu_per_decision: number; cpu_per_decision_within_rounds: number };
  /**
   * One PEP with ten decisions to make, one request in flight: ten `evaluation` calls one after the other against one
   * `evaluations` call of ten, alternating, `one_pep_rounds` times. Wall milliseconds for the ten decisions each way
   * (medians) and the batch's decisions/s over the ten calls' (within rounds: the ratio of the two times).
   */
  one_pep: { rounds: number; ten_calls_ms: number; batch_ms: number; decisions_per_s_within_rounds: number; decisions_per_s: number };
  /** OPA's server for the same decision, the reference: our decide and evaluation against it (decisions/s and CPU). */
  vs_opa: { decide_throughput: number; evaluation_throughput: number; decide_cpu: number; evaluation_cpu: number };
  /** Every answer of every door (preflight, warm-up and rounds) was 200 and allowed. */
  all_expected: boolean;
  unexpected_examples: string[];
  other_cores_max: number;
  load1_end: number;
}

interface Answer {
  status: number;
  body: string;
}

interface DoorSpec {
  what: string;
  server: 'ours' | 'opa';
  path: string;
  body: Buffer;
  decisions: number;
  /** Why the answer is not the expected allow, or null when it is. */
  check: (body: unknown) => string | null;
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** Ours and OPA's decision document: outcome allow with the scope granted. */
function checkDecision(d: unknown): string | null {
  if (!isObject(d)) return 'no decision document';
  const granted = Array.isArray(d['granted_scopes']) ? (d['granted_scopes'] as unknown[]) : [];
  return d['outcome'] === 'allow' && granted.includes(SCOPE) ? null : `outcome ${String(d['outcome'])} granted [${granted.join(' ')}]`;
}

/** An AuthZEN decision: `decision: true` (our mapping says it is true only when the exact scope was granted). */
function checkAuthzen(d: unknown): string | null {
  if (!isObject(d)) return 'no AuthZEN decision';
  if (d['decision'] === true) return null;
  const ctx = isObject(d['context']) ? d['context'] : {};
  return `decision ${String(d['decision'])} ${JSON.stringify(ctx['reasons'] ?? ctx['error'] ?? ctx['reason_code'] ?? '')}`.slice(0, 200);
}

const json = (x: unknown): Buffer => Buffer.from(JSON.stringify(x));

export const DOOR_SPECS: Record<Door, DoorSpec> = {
  decide: { what: '`POST /v1/decide`', server: 'ours', path: '/v1/decide', body: json(DECIDE), decisions: 1, check: checkDecision },
  evaluation: { what: 'AuthZEN `POST /access/v1/evaluation`', server: 'ours', path: '/access/v1/evaluation', body: json(EVALUATION), decisions: 1, check: checkAuthzen },
  evaluations: {
    what: `AuthZEN \`POST /access/v1/evaluations\`, ${BATCH_ITEMS} items (execute_all)`,
    server: 'ours',
    path: '/access/v1/evaluations',
    body: json(EVALUATIONS),
    decisions: BATCH_ITEMS,
    check: (b) => {
      const list = isObject(b) && Array.isArray(b['evaluations']) ? (b['evaluations'] as unknown[]) : null;
      if (list === null || list.length !== BATCH_ITEMS) return `expected ${BATCH_ITEMS} evaluations, got ${list === null ? 'none' : list.length}`;
      for (const [i, d] of list.entries()) {
        const why = checkAuthzen(d);
        if (why !== null) return `item ${i}: ${why}`;
      }
      return null;
    },
  },
  opa: {
    what: 'OPA `POST /v1/data/agentpdp/decision` (reference)',
    server: 'opa',
    path: '/v1/data/agentpdp/decision',
    body: json({ input: evaluationInputFor(DECIDE) }),
    decisions: 1,
    check: (b) => checkDecision(isObject(b) ? b['result'] : undefined),
  },
};

/** Each round's order (reversed every other round): decide next to evaluation, evaluation next to the batch. */
const ROUND_ORDER: readonly Door[] = DOORS;

export async function runDoorsBench(o: {
  url: string;
  pid: number;
  opaUrl: string;
  opaPid: number;
  seconds: number;
  rounds: number;
  concurrency: number;
  settle: number;
  warmup: number;
  /** Rounds of the one-PEP comparison (ten sequential calls vs one batch). Default 50. */
  onePepRounds?: number;
}): Promise<DoorsBenchResult> {
  const target = { ours: { url: new URL(o.url), pid: o.pid }, opa: { url: new URL(o.opaUrl), pid: o.opaPid } };
  const agent = new Agent({ keepAlive: true, maxSockets: o.concurrency, maxFreeSockets: o.concurrency });
  const send = (door: Door): Promise<Answer> =>
    new Promise((ok, fail) => {
      const spec = DOOR_SPECS[door];
      const { hostname, port } = target[spec.server].url;
      const req = httpRequest(
        {
          agent,
          host: hostname,
          port: Number(port),
          method: 'POST',
          path: spec.path,
          headers: { 'content-type': 'application/json', 'content-length': spec.body.length, ...(spec.server === 'ours' ? { authorization: `Bearer ${BENCH_PEP.key}` } : {}) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => ok({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', fail);
        },
      );
      req.on('error', fail);
      req.end(spec.body);
    });
  /** Null when the answer is the expected allow (every decision of it), else why not. */
  const verdict = (door: Door, a: Answer): string | null => {
    if (a.status !== 200) return `HTTP ${a.status} ${a.body.slice(0, 200)}`;
    try {
      return DOOR_SPECS[door].check(JSON.parse(a.body));
    } catch {
      return 'unparsable body';
    }
  };

  try {
    for (const door of DOORS) {
      const why = verdict(door, await send(door));
      if (why !== null) throw new Error(`${door}: expected allow, got ${why}`);
    }

    const examples: string[] = [];
    let unexpectedTotal = 0;
    /** Closed loop: `concurrency` workers, each asking again as soon as its answer is checked. */
    const drive = async (door: Door, seconds: number): Promise<{ requests: number; unexpected: number }> => {
      const until = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
      let requests = 0;
      let unexpected = 0;
      await Promise.all(
        Array.from({ length: o.concurrency }, async () => {
          while (process.hrtime.bigint() < until) {
            const why = verdict(door, await send(door));
            requests++;
            if (why !== null) {
              unexpected++;
              if (examples.length < 5) examples.push(`${door}: ${why}`);
            }
          }
        }),
      );
      unexpectedTotal += unexpected;
      return { requests, unexpected };
    };
    const sleep = (s: number): Promise<void> => new Promise((ok) => setTimeout(ok, s * 1000));

    for (const door of DOORS) await drive(door, o.warmup);
    await sleep(o.settle);
    const idle0 = { ours: cpuSeconds(o.pid), opa: cpuSeconds(o.opaPid) };
    const idleT0 = process.hrtime.bigint();
    await sleep(Math.max(1, o.settle));
    const idleWall = Number(process.hrtime.bigint() - idleT0) / 1e9;
    const idle = { ours: round(((cpuSeconds(o.pid) - idle0.ours) / idleWall) * 1e6, 0), opa: round(((cpuSeconds(o.opaPid) - idle0.opa) / idleWall) * 1e6, 0) };

    const measurements: DoorsRound[] = [];
    for (let r = 0; r < o.rounds; r++) {
      const order = r % 2 === 0 ? ROUND_ORDER : [...ROUND_ORDER].reverse();
      for (const door of order) {
        await sleep(o.settle);
        const spec = DOOR_SPECS[door];
        const pid = target[spec.server].pid;
        const watch = new CpuWatch([o.pid, o.opaPid]);
        const client0 = process.cpuUsage();
        const cpu0 = cpuSeconds(pid);
        const t0 = process.hrtime.bigint();
        const d = await drive(door, o.seconds);
        const cpu = cpuSeconds(pid) - cpu0;
        const wall = Number(process.hrtime.bigint() - t0) / 1e9;
        const client = process.cpuUsage(client0);
        const machine = watch.stop();
        const decisions = d.requests * spec.decisions;
        const m: DoorsRound = {
          door,
          round: r,
          requests: d.requests,
          decisions,
          unexpected: d.unexpected,
          wall_seconds: round(wall, 3),
          requests_per_s: Math.round(d.requests / wall),
          decisions_per_s: Math.round(decisions / wall),
          cpu_seconds: round(cpu, 2),
          cpu_us_per_decision: decisions === 0 ? Number.NaN : round((cpu / decisions) * 1e6, 1),
          cpu_us_per_request: d.requests === 0 ? Number.NaN : round((cpu / d.requests) * 1e6, 1),
          server_cpu: round(cpu / wall, 2),
          client_cpu: round((client.user + client.system) / 1e6 / wall, 2),
          other_cores: machine.other_cores,
          iowait_cores: machine.iowait_cores,
        };
        measurements.push(m);
        process.stderr.write(
          `[doors] round ${r + 1} ${door.padEnd(11)} ${String(m.decisions_per_s).padStart(6)} decisions/s (${m.requests_per_s} req/s)  ${m.cpu_us_per_decision} µs cpu/decision  cpu ${m.server_cpu}  client ${m.client_cpu}  other ${m.other_cores}${m.unexpected ? `  UNEXPECTED ${m.unexpected}` : ''}\n`,
        );
      }
    }

    // One PEP, one request in flight: what batching saves a PEP that has ten decisions to make.
    const onePepRounds = o.onePepRounds ?? 50;
    const tenCalls: number[] = [];
    const batches: number[] = [];
    const timed = async (fn: () => Promise<void>): Promise<number> => {
      const t0 = process.hrtime.bigint();
      await fn();
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };
    const checked = async (door: Door): Promise<void> => {
      const why = verdict(door, await send(door));
      if (why !== null) {
        unexpectedTotal++;
        if (examples.length < 5) examples.push(`${door} (one PEP): ${why}`);
      }
    };
    await sleep(o.settle);
    for (let r = 0; r < onePepRounds; r++) {
      const ten = (): Promise<number> => timed(async () => {
        for (let i = 0; i < BATCH_ITEMS; i++) await checked('evaluation');
      });
      const one = (): Promise<number> => timed(() => checked('evaluations'));
      if (r % 2 === 0) {
        tenCalls.push(await ten());
        batches.push(await one());
      } else {
        batches.push(await one());
        tenCalls.push(await ten());
      }
    }
    process.stderr.write(`[doors] one PEP: ten evaluation calls ${round(median(tenCalls), 2)} ms, one evaluations of ten ${round(median(batches), 2)} ms (medians of ${onePepRounds})\n`);

    const doors: DoorsRow[] = DOORS.map((door) => {
      const ms = measurements.filter((m) => m.door === door);
      const decisions = ms.reduce((a, m) => a + m.decisions, 0);
      const cpu = ms.reduce((a, m) => a + m.cpu_seconds, 0);
      return {
        door,
        what: DOOR_SPECS[door].what,
        decisions_per_request: DOOR_SPECS[door].decisions,
        requests: ms.reduce((a, m) => a + m.requests, 0),
        decisions,
        unexpected: ms.reduce((a, m) => a + m.unexpected, 0),
        decisions_per_s: Math.round(median(ms.map((m) => m.decisions_per_s))),
        requests_per_s: Math.round(median(ms.map((m) => m.requests_per_s))),
        cpu_us_per_decision: round(median(ms.map((m) => m.cpu_us_per_decision)), 1),
        cpu_us_per_request: round(median(ms.map((m) => m.cpu_us_per_request)), 1),
        server_cpu: round(median(ms.map((m) => m.server_cpu)), 2),
        client_cpu: round(median(ms.map((m) => m.client_cpu)), 2),
        pooled_cpu_us_per_decision: decisions === 0 ? Number.NaN : round((cpu / decisions) * 1e6, 1),
        rounds_cpu_us_per_decision: ms.map((m) => m.cpu_us_per_decision),
        rounds_decisions_per_s: ms.map((m) => m.decisions_per_s),
      };
    });
    const row = (d: Door): DoorsRow => doors.find((x) => x.door === d) as DoorsRow;
    const ratio = (a: number, b: number): number => round(a / b, 3);
    const [decide, evaluation, evaluations, opa] = [row('decide'), row('evaluation'), row('evaluations'), row('opa')];
    return {
      concurrency: o.concurrency,
      rounds: o.rounds,
      seconds_per_round: o.seconds,
      settle_seconds: o.settle,
      batch_items: BATCH_ITEMS,
      idle_cpu_us_per_s: idle,
      doors,
      measurements,
      one_pep: {
        rounds: onePepRounds,
        ten_calls_ms: round(median(tenCalls), 2),
        batch_ms: round(median(batches), 2),
        decisions_per_s_within_rounds: round(medianOfRatios(tenCalls, batches), 3),
        decisions_per_s: round(median(tenCalls) / median(batches), 3),
      },
      evaluation_vs_decide: {
        cpu_per_decision: ratio(evaluation.cpu_us_per_decision, decide.cpu_us_per_decision),
        cpu_per_decision_within_rounds: round(medianOfRatios(evaluation.rounds_cpu_us_per_decision, decide.rounds_cpu_us_per_decision), 3),
        // Decide's throughput over evaluation's: above 1 means the AuthZEN door answers fewer decisions per second.
        throughput: ratio(decide.decisions_per_s, evaluation.decisions_per_s),
        throughput_within_rounds: round(medianOfRatios(decide.rounds_decisions_per_s, evaluation.rounds_decisions_per_s), 3),
      },
      batch_vs_single: {
        decisions_per_s: ratio(evaluations.decisions_per_s, evaluation.decisions_per_s),
        decisions_per_s_within_rounds: round(medianOfRatios(evaluations.rounds_decisions_per_s, evaluation.rounds_decisions_per_s), 3),
        cpu_per_decision: ratio(evaluations.cpu_us_per_decision, evaluation.cpu_us_per_decision),
        cpu_per_decision_within_rounds: round(medianOfRatios(evaluations.rounds_cpu_us_per_decision, evaluation.rounds_cpu_us_per_decision), 3),
      },
      vs_opa: {
        decide_throughput: ratio(decide.decisions_per_s, opa.decisions_per_s),
        evaluation_throughput: ratio(evaluation.decisions_per_s, opa.decisions_per_s),
        decide_cpu: ratio(decide.cpu_us_per_decision, opa.cpu_us_per_decision),
        evaluation_cpu: ratio(evaluation.cpu_us_per_decision, opa.cpu_us_per_decision),
      },
      all_expected: unexpectedTotal === 0,
      unexpected_examples: examples,
      other_cores_max: Math.max(0, ...measurements.map((m) => m.other_cores)),
      load1_end: load1(),
    };
  } finally {
    agent.destroy();
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      pid: { type: 'string' },
      'opa-url': { type: 'string' },
      'opa-pid': { type: 'string' },
      seconds: { type: 'string', default: '2' },
      rounds: { type: 'string', default: '8' },
      'one-pep-rounds': { type: 'string', default: '50' },
      concurrency: { type: 'string', default: '48' },
      settle: { type: 'string', default: '1' },
      warmup: { type: 'string', default: '1' },
      'server-cpu': { type: 'string' },
      opa: { type: 'string', default: process.env['OPA'] ?? join(REPO, '.tools/bin/opa') },
      'log-level': { type: 'string', default: 'info' },
    },
  });
  const plan = { seconds: Number(values.seconds), rounds: Number(values.rounds), concurrency: Number(values.concurrency), settle: Number(values.settle), warmup: Number(values.warmup), onePepRounds: Number(values['one-pep-rounds']) };
  let result: DoorsBenchResult;
  if (values.url !== undefined) {
    if (values.pid === undefined || values['opa-url'] === undefined || values['opa-pid'] === undefined) throw new Error('--url needs --pid, --opa-url and --opa-pid (the servers whose CPU time is read)');
    result = await runDoorsBench({ url: values.url, pid: Number(values.pid), opaUrl: values['opa-url'], opaPid: Number(values['opa-pid']), ...plan });
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-doors-'));
    const level = values['log-level'] ?? 'info';
    const ours = await startOurs({ dir: join(dir, 'ours'), cpu: values['server-cpu'], logLevel: level });
    try {
      const opa = await startOpa({ dir: join(dir, 'opa'), cpu: values['server-cpu'], opa: values.opa as string, logLevel: level });
      try {
        result = await runDoorsBench({ url: ours.url, pid: ours.pid, opaUrl: opa.url, opaPid: opa.pid, ...plan });
      } finally {
        await stopProcess(opa.child);
      }
    } finally {
      await stopProcess(ours.child);
      rmSync(dir, { recursive: true, force: true });
    }
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
