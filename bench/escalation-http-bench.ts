/**
 * The HTTP view of escalation-bench.ts (issue 16): what a PEP's `POST /v1/decide` costs OUR SERVER for the same
 * four decisions (code-review-agent on github, one pull request), and the ordinary mix ("any other decide": the shared
 * workload's requests in turn, its escalation case left out; `ordinaryMix`), the server being its own process started by
 * `startOurs` (lib/servers.ts: the bench config, API-key auth, durable SQLite audit, NODE_ENV=production, pinned to
 * the server core when the driver pins). This process is the PEP: a keep-alive `node:http` client (no vegeta),
 * run on the load core by the driver.
 *
 * Prepared over HTTP: two tasks registered by the orchestrator (`bench-review-plain` for the ordinary allow, the
 * ordinary deny and the requestable denial; `bench-review-elevated` for the elevated allow); for the latter a
 * `pr:write` denial (approval_required) submitted as an access request (`POST /v1/access-requests`, pep key) and
 * approved by the bench approver (`POST /v1/access-requests/{id}/approve`, role approver, group platform-oncall)
 * for the policy's longest window (3,600 s).
 *
 * Each case is asked once before timing (its outcome and reason codes must be the expected ones; that answer's
 * outcome, reason codes and hint/approval presence become the signature every later answer is checked against),
 * warmed up, then timed in rounds: `seconds` of closed-loop requests with `concurrency` in flight, the cases in
 * alternating order each round (ordinary allow, elevated allow, ordinary deny, requestable denial, then reversed), each round starting `settle` seconds after the previous one ended (the server's
 * tail: group commits, the WAL checkpointer's copy every 250 ms). Around each round this process reads the server's
 * CPU time (utime + stime of all its threads, /proc/<pid>/stat, as routes-bench does): **server CPU µs per
 * request**, the median over rounds per case, and the ratios requestable ÷ ordinary deny, elevated ÷ ordinary allow
 * (of the medians; and the median of the ratios within each round, where the machine's drift cancels).
 *
 *   node .build/bench/bench/escalation-http-bench.js --url http://127.0.0.1:PORT --pid PID [--seconds 2] [--rounds 8]
 *        [--concurrency 48] [--settle 1] [--warmup 1]
 *   node .build/bench/bench/escalation-http-bench.js [--server-cpu 0] [--log-level info] …
 *        without --url: starts our server itself (startOurs, in a temp folder) and stops it at the end
 * Prints one JSON line.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ESCALATION_CASES, ordinaryMix, type EscalationCase, type EscalationRatios } from './escalation-bench.js';
import { CpuWatch, cpuSeconds, load1, stopProcess } from './lib/processes.js';
import { startOurs } from './lib/servers.js';
import { isMain, median, medianOfRatios, round } from './lib/timing.js';
import { BENCH_APPROVER, BENCH_ORCHESTRATOR, BENCH_PEP } from './lib/workload.js';

export interface EscalationHttpRound {
  case: EscalationCase;
  round: number;
  /** Answers received in the round (every one checked). */
  requests: number;
  /** Answers that were not 200 with the case's signature. */
  unexpected: number;
  wall_seconds: number;
  per_s: number;
  /** Server CPU seconds (all threads) over the round. */
  cpu_seconds: number;
  cpu_us_per_request: number;
  /** Server CPU seconds per wall second (about 1.0: its core busy throughout). */
  server_cpu: number;
  /** This client's CPU seconds per wall second (near 1.0 would mean the client, not the server, set the pace). */
  client_cpu: number;
  other_cores: number;
  iowait_cores: number;
}

export interface EscalationHttpCaseRow {
  case: EscalationCase;
  /** What the server answered before timing: outcome, reason codes, hint/approval. Every timed answer must match. */
  answer: string;
  requests: number;
  unexpected: number;
  /** Medians over rounds. */
  per_s: number;
  cpu_us_per_request: number;
  server_cpu: number;
  client_cpu: number;
  /** Σ server CPU / Σ requests over the rounds (the median is what the ratios use). */
  pooled_cpu_us_per_request: number;
  rounds_cpu_us: number[];
  rounds_per_s: number[];
}

export interface EscalationHttpResult {
  concurrency: number;
  rounds: number;
  seconds_per_round: number;
  settle_seconds: number;
  /** The idle server's CPU (timers, the escalation sweep, the checkpointer) in µs per wall second, before the rounds. */
  idle_cpu_us_per_s: number;
  /** The approval the elevated case rides on. */
  access_request: { id: string; approved_until: string };
  cases: EscalationHttpCaseRow[];
  measurements: EscalationHttpRound[];
  /** Server CPU per request (medians over rounds), ratio to the ordinary cases (1.0 = the same cost). */
  ratio: EscalationRatios;
  /** The same ratios taken within each round (the cases ran next to each other), median over rounds. */
  ratio_within_rounds: { requestable_vs_deny: number; elevated_vs_allow: number; requestable_vs_mix: number; elevated_vs_mix: number };
  /** Every answer of every case (warm-up and rounds) was 200 with the expected outcome and reasons. */
  all_expected: boolean;
  unexpected_examples: string[];
  /** Most CPU other processes used during a round (cores). */
  other_cores_max: number;
  load1_end: number;
}

interface Answer {
  status: number;
  body: string;
}

/** Each round's order (reversed every other round): the cases a ratio compares side by side. */
const ROUND_ORDER: readonly EscalationCase[] = ['ordinary allow', 'elevated allow', 'ordinary mix', 'requestable denial', 'ordinary deny'];
const PLAIN_TASK = 'bench-review-plain';
const ELEVATED_TASK = 'bench-review-elevated';
const RESOURCE = { type: 'pull_request', id: 'acme/api/pulls/1042' };
const ask = (task: string, scopes: string[]): object => ({ agent_id: 'code-review-agent', task: { id: task }, integration: 'github', scopes, resource: RESOURCE });
const REQUESTS: Record<Exclude<EscalationCase, 'ordinary mix'>, object> = {
  'ordinary allow': ask(PLAIN_TASK, ['pr:read']),
  'ordinary deny': ask(PLAIN_TASK, ['delete_repo']),
  'requestable denial': ask(PLAIN_TASK, ['pr:write']),
  'elevated allow': ask(ELEVATED_TASK, ['pr:write']),
};
/** The outcome and the reason code each case must answer with (as escalation-bench.ts checks in-process). */
const EXPECTED: Record<Exclude<EscalationCase, 'ordinary mix'>, [string, string]> = {
  'ordinary allow': ['allow', 'allowed'],
  'ordinary deny': ['deny', 'deny_scope'],
  'requestable denial': ['deny', 'approval_required'],
  'elevated allow': ['allow', 'elevated'],
};

interface DecideBody {
  outcome?: string;
  reasons?: Array<{ code?: string }>;
  access_request?: unknown;
  approval?: unknown;
  decision_id?: string;
}

/** outcome: codes (+ hint / approval): the part of an answer that must be the same on every request of a case. */
function signature(body: DecideBody): string {
  const codes = (body.reasons ?? []).map((r) => r.code ?? '?');
  return `${body.outcome ?? '?'}: ${codes.join(', ')}${body.access_request ? ' + access_request hint' : ''}${body.approval ? ' + approval' : ''}`;
}

export async function runEscalationHttpBench(o: {
  url: string;
  pid: number;
  seconds: number;
  rounds: number;
  concurrency: number;
  settle: number;
  warmup: number;
}): Promise<EscalationHttpResult> {
  const { hostname, port } = new URL(o.url);
  const agent = new Agent({ keepAlive: true, maxSockets: o.concurrency, maxFreeSockets: o.concurrency });
  const send = (method: string, path: string, key: string, body: Buffer | null): Promise<Answer> =>
    new Promise((ok, fail) => {
      const req = httpRequest(
        {
          agent,
          host: hostname,
          port: Number(port),
          method,
          path,
          headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json', 'content-length': body.length } : { 'content-length': 0 }) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => ok({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', fail);
        },
      );
      req.on('error', fail);
      req.end(body ?? undefined);
    });
  const json = (x: unknown): Buffer => Buffer.from(JSON.stringify(x));
  const expectStatus = async (what: string, status: number, p: Promise<Answer>): Promise<Record<string, unknown>> => {
    const a = await p;
    if (a.status !== status) throw new Error(`${what}: expected ${status}, got ${a.status} ${a.body.slice(0, 400)}`);
    return JSON.parse(a.body) as Record<string, unknown>;
  };

  try {
    // Tasks, then the elevation: a requestable denial, a request for it, an approval for the policy's max window.
    for (const id of [PLAIN_TASK, ELEVATED_TASK]) {
      const task = { id, agent_id: 'code-review-agent', type: 'review', context: { repo: 'acme/api' }, expires_in_seconds: 86400 };
      await expectStatus(`registering ${id}`, 201, send('POST', '/v1/tasks', BENCH_ORCHESTRATOR.key, json(task)));
    }
    const denial = (await expectStatus('the denial to request', 200, send('POST', '/v1/decide', BENCH_PEP.key, json(REQUESTS['elevated allow'])))) as DecideBody;
    if (!denial.access_request || !denial.decision_id) throw new Error(`the elevated task's pr:write should be requestable before approval: ${signature(denial)}`);
    const submitted = await expectStatus('submitting the access request', 202, send('POST', '/v1/access-requests', BENCH_PEP.key, json({ decision_id: denial.decision_id, reason: 'bench: elevated decide over HTTP' })));
    const requestId = String(submitted['id']);
    const approved = await expectStatus('approving it', 200, send('POST', `/v1/access-requests/${encodeURIComponent(requestId)}/approve`, BENCH_APPROVER.key, json({ duration_seconds: 3600, note: 'bench' })));
    if (approved['status'] !== 'approved') throw new Error(`approval: status ${String(approved['status'])}`);

    // Each case's requests (one, or the mix's in turn) and the signature each answer must have.
    const bodies = {} as Record<EscalationCase, Buffer[]>;
    const signatures = {} as Record<EscalationCase, string[]>;
    const answers = {} as Record<EscalationCase, string>;
    for (const c of ESCALATION_CASES) {
      if (c === 'ordinary mix') continue;
      bodies[c] = [json(REQUESTS[c])];
      const b = (await expectStatus(c, 200, send('POST', '/v1/decide', BENCH_PEP.key, bodies[c][0] as Buffer))) as DecideBody;
      const [outcome, code] = EXPECTED[c];
      answers[c] = signature(b);
      signatures[c] = [answers[c]];
      if (b.outcome !== outcome || !(b.reasons ?? []).some((r) => r.code === code)) throw new Error(`${c}: expected ${outcome} with ${code}, got ${answers[c]}`);
    }
    const mix = ordinaryMix();
    bodies['ordinary mix'] = mix.map((m) => json(m.request));
    signatures['ordinary mix'] = [];
    for (const [i, m] of mix.entries()) {
      const b = (await expectStatus(`ordinary mix, ${m.name}`, 200, send('POST', '/v1/decide', BENCH_PEP.key, bodies['ordinary mix'][i] as Buffer))) as DecideBody & { granted_scopes?: string[] };
      if (b.outcome !== m.expect.outcome || (b.granted_scopes ?? []).join(',') !== [...m.expect.granted].sort().join(',') || b.access_request || b.approval) {
        throw new Error(`ordinary mix, ${m.name}: expected ${m.expect.outcome} [${m.expect.granted.join(', ')}], got ${signature(b)}`);
      }
      signatures['ordinary mix'].push(signature(b));
    }
    answers['ordinary mix'] = `${mix.length} requests in turn, each its expected outcome, none escalated`;

    const examples: string[] = [];
    let unexpectedTotal = 0;
    /** Closed loop: `concurrency` workers, each sending the case's decide again as soon as its answer is checked. */
    const drive = async (c: EscalationCase, seconds: number): Promise<{ requests: number; unexpected: number }> => {
      const until = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
      let requests = 0;
      let unexpected = 0;
      const list = bodies[c];
      const want = signatures[c];
      let next = 0;
      await Promise.all(
        Array.from({ length: o.concurrency }, async () => {
          while (process.hrtime.bigint() < until) {
            const i = next++ % list.length;
            const a = await send('POST', '/v1/decide', BENCH_PEP.key, list[i] as Buffer);
            requests++;
            let sig = `HTTP ${a.status}`;
            if (a.status === 200) {
              try {
                sig = signature(JSON.parse(a.body) as DecideBody);
              } catch {
                sig = 'unparsable body';
              }
            }
            if (a.status !== 200 || sig !== want[i]) {
              unexpected++;
              if (examples.length < 5) examples.push(`${c}: ${sig} ${a.status === 200 ? '' : a.body.slice(0, 200)}`.trim());
            }
          }
        }),
      );
      unexpectedTotal += unexpected;
      return { requests, unexpected };
    };
    const sleep = (s: number): Promise<void> => new Promise((ok) => setTimeout(ok, s * 1000));

    for (const c of ESCALATION_CASES) await drive(c, o.warmup);
    await sleep(o.settle);
    const idle0 = cpuSeconds(o.pid);
    const idleT0 = process.hrtime.bigint();
    await sleep(Math.max(1, o.settle));
    const idleCpuUsPerS = round(((cpuSeconds(o.pid) - idle0) / (Number(process.hrtime.bigint() - idleT0) / 1e9)) * 1e6, 0);

    const measurements: EscalationHttpRound[] = [];
    for (let r = 0; r < o.rounds; r++) {
      // Alternate the order each round, so the machine's drift falls on every case alike; the two cases each ratio
      // compares run next to each other.
      const order = r % 2 === 0 ? ROUND_ORDER : [...ROUND_ORDER].reverse();
      for (const c of order) {
        await sleep(o.settle);
        const watch = new CpuWatch([o.pid]);
        const client0 = process.cpuUsage();
        const cpu0 = cpuSeconds(o.pid);
        const t0 = process.hrtime.bigint();
        const d = await drive(c, o.seconds);
        const cpu = cpuSeconds(o.pid) - cpu0;
        const wall = Number(process.hrtime.bigint() - t0) / 1e9;
        const client = process.cpuUsage(client0);
        const machine = watch.stop();
        measurements.push({
          case: c,
          round: r,
          requests: d.requests,
          unexpected: d.unexpected,
          wall_seconds: round(wall, 3),
          per_s: Math.round(d.requests / wall),
          cpu_seconds: round(cpu, 2),
          cpu_us_per_request: d.requests === 0 ? Number.NaN : round((cpu / d.requests) * 1e6, 1),
          server_cpu: round(cpu / wall, 2),
          client_cpu: round((client.user + client.system) / 1e6 / wall, 2),
          other_cores: machine.other_cores,
          iowait_cores: machine.iowait_cores,
        });
        const m = measurements.at(-1) as EscalationHttpRound;
        process.stderr.write(
          `[escalation http] round ${r + 1} ${c.padEnd(18)} ${String(m.per_s).padStart(6)} req/s  server ${m.cpu_us_per_request} µs cpu/request  cpu ${m.server_cpu}  client ${m.client_cpu}  other ${m.other_cores}${m.unexpected ? `  UNEXPECTED ${m.unexpected}` : ''}\n`,
        );
      }
    }

    const cases: EscalationHttpCaseRow[] = ESCALATION_CASES.map((c) => {
      const ms = measurements.filter((m) => m.case === c);
      const requests = ms.reduce((a, m) => a + m.requests, 0);
      const cpu = ms.reduce((a, m) => a + m.cpu_seconds, 0);
      return {
        case: c,
        answer: answers[c],
        requests,
        unexpected: ms.reduce((a, m) => a + m.unexpected, 0),
        per_s: Math.round(median(ms.map((m) => m.per_s))),
        cpu_us_per_request: round(median(ms.map((m) => m.cpu_us_per_request)), 1),
        server_cpu: round(median(ms.map((m) => m.server_cpu)), 2),
        client_cpu: round(median(ms.map((m) => m.client_cpu)), 2),
        pooled_cpu_us_per_request: requests === 0 ? Number.NaN : round((cpu / requests) * 1e6, 1),
        rounds_cpu_us: ms.map((m) => m.cpu_us_per_request),
        rounds_per_s: ms.map((m) => m.per_s),
      };
    });
    const us = (c: EscalationCase): number => cases.find((x) => x.case === c)?.cpu_us_per_request ?? Number.NaN;
    const rounds = (c: EscalationCase): number[] => cases.find((x) => x.case === c)?.rounds_cpu_us ?? [];
    return {
      concurrency: o.concurrency,
      rounds: o.rounds,
      seconds_per_round: o.seconds,
      settle_seconds: o.settle,
      idle_cpu_us_per_s: idleCpuUsPerS,
      access_request: { id: requestId, approved_until: String(approved['approved_until']) },
      cases,
      measurements,
      ratio: {
        requestable_vs_deny: round(us('requestable denial') / us('ordinary deny'), 3),
        elevated_vs_allow: round(us('elevated allow') / us('ordinary allow'), 3),
        requestable_vs_allow: round(us('requestable denial') / us('ordinary allow'), 3),
        elevated_vs_deny: round(us('elevated allow') / us('ordinary deny'), 3),
        requestable_vs_mix: round(us('requestable denial') / us('ordinary mix'), 3),
        elevated_vs_mix: round(us('elevated allow') / us('ordinary mix'), 3),
      },
      ratio_within_rounds: {
        requestable_vs_deny: round(medianOfRatios(rounds('requestable denial'), rounds('ordinary deny')), 3),
        elevated_vs_allow: round(medianOfRatios(rounds('elevated allow'), rounds('ordinary allow')), 3),
        requestable_vs_mix: round(medianOfRatios(rounds('requestable denial'), rounds('ordinary mix')), 3),
        elevated_vs_mix: round(medianOfRatios(rounds('elevated allow'), rounds('ordinary mix')), 3),
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
      seconds: { type: 'string', default: '2' },
      rounds: { type: 'string', default: '8' },
      concurrency: { type: 'string', default: '48' },
      settle: { type: 'string', default: '1' },
      warmup: { type: 'string', default: '1' },
      'server-cpu': { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
    },
  });
  const plan = { seconds: Number(values.seconds), rounds: Number(values.rounds), concurrency: Number(values.concurrency), settle: Number(values.settle), warmup: Number(values.warmup) };
  let result: EscalationHttpResult;
  if (values.url !== undefined) {
    if (values.pid === undefined) throw new Error('--url needs --pid (the server process whose CPU time is read)');
    result = await runEscalationHttpBench({ url: values.url, pid: Number(values.pid), ...plan });
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-escalation-http-'));
    const server = await startOurs({ dir, cpu: values['server-cpu'], logLevel: values['log-level'] ?? 'info' });
    try {
      result = await runEscalationHttpBench({ url: server.url, pid: server.pid, ...plan });
    } finally {
      await stopProcess(server.child);
      rmSync(dir, { recursive: true, force: true });
    }
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
