/**
 * What break-glass adds to a decide, with no HTTP: a whole PDP (createPdp: the shipped bundle and policies, the
 * SQLite store with group commit and the audit chain) and its Decider, as decider-bench.ts uses them. Four
 * decisions of one agent (code-review-agent on github, a registered task, one pull request), each durable:
 *
 * - ordinary allow: `pr:read` (within the ceiling);
 * - ordinary deny: `delete_repo` (deny list);
 * - requestable denial: `pr:write`, above the ceiling and listed under `escalation` → deny `approval_required`
 *   with the access-request hint (its facts written in the decision's token_grant column);
 * - elevated allow: `pr:write` on a task whose access request an approver approved → allow, reason `elevated`
 *   (the Decider looks the elevation up in the store by key and passes it to the policy as `input.elevation`).
 *
 * - ordinary mix: "any other decide", the requests of the shared workload's mix (`ordinaryMix`) in turn: what a
 *   typical decide costs, against which the "costs the same as any other decide" is also read.
 *
 * Every decide also pays the elevation lookup (`findElevations`), so the ordinary cases are the current code's,
 * not the code before escalation. The cases are timed in alternating order, `rounds` rounds of `seconds` each
 * with `concurrency` in flight; each case's figure is the median of its rounds, and the report gives
 * requestable / ordinary deny and elevated / ordinary allow as ratios of CPU per decision (this process's CPU time
 * over the round / decisions made: on a shared machine it moves far less than decisions per second do; goal:
 * within 10%).
 *
 *   node .build/bench/bench/escalation-bench.js [--seconds 0.3] [--rounds 10] [--concurrency 64] [--only 'elevated allow']
 *        prints one JSON line; --only times one case alone (to profile it with node --cpu-prof)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildConfig } from '../src/config/config-loader.js';
import { sha256Hex } from '../src/config/dev-keys.js';
import { createPdp } from '../src/main.js';
import { Decider } from '../src/pdp/decider.js';
import { createLogger } from '../src/server/logger.js';
import type { DecisionRequestV1 } from '../src/wire/decision-v1.js';
import { BUNDLE, POLICIES } from './lib/servers.js';
import { isMain, median, round, timeAsync } from './lib/timing.js';
import { BENCH_AGENTS, BENCH_APPROVER, BENCH_ORCHESTRATOR, BENCH_PEP, BENCH_TASKS, weightedMix, type MixCase } from './lib/workload.js';

export const ESCALATION_CASES = ['ordinary allow', 'ordinary deny', 'requestable denial', 'elevated allow', 'ordinary mix'] as const;
export type EscalationCase = (typeof ESCALATION_CASES)[number];

/**
 * "Any other decide": the weighted mix every other decide measurement asks (lib/workload.ts: four agents, registered
 * and inline tasks, allows, capped allows, record-bound allows and denies, deny-list and integration denials),
 * without its one escalation case, asked in turn.
 */
export function ordinaryMix(): MixCase[] {
  return weightedMix().filter((c) => c.kind !== 'deny, requestable');
}

export interface EscalationCaseRow {
  case: EscalationCase;
  /** What the decision answered (checked before timing): outcome and reason codes. */
  answer: string;
  /** Median over rounds. */
  per_s: number;
  /** This process's CPU (user + system, every thread) per decision, median over rounds: what the ratios use. */
  cpu_us_per_decision: number;
  rounds_per_s: number[];
  rounds_cpu_us: number[];
}

export interface EscalationBenchResult {
  concurrency: number;
  rounds: number;
  seconds_per_round: number;
  cases: EscalationCaseRow[];
  /** The timed rounds on the monotonic clock (µs, as `--cpu-prof` timestamps): `cpuprofile-summary.js --from --to`. */
  window_us: { from: number; to: number };
  /** Decisions made in the timed rounds, per case. */
  ops: Record<EscalationCase, number>;
  /** CPU per decision, ratio to the ordinary cases (1.0 = the same cost). */
  ratio: EscalationRatios;
}

/** The break-glass cases against the ordinary ones: like for like (same outcome), across, and against the mix. */
export interface EscalationRatios {
  requestable_vs_deny: number;
  elevated_vs_allow: number;
  requestable_vs_allow: number;
  elevated_vs_deny: number;
  /** Against the ordinary mix: what a typical decide costs (the goal's "any other decide"). */
  requestable_vs_mix: number;
  elevated_vs_mix: number;
}

export async function runEscalationBench(seconds: number, rounds: number, concurrency: number, only?: EscalationCase): Promise<EscalationBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-escalation-bench-'));
  try {
    const { config } = buildConfig(
      {
        server: { listen: '127.0.0.1:0' },
        policy: { bundle: BUNDLE, agents: POLICIES, watch: false },
        store: { url: 'sqlite:data/pdp.db' },
        issuer: { issuer: 'https://agent-pdp.bench.invalid', keys: 'data/keys' },
        log: { level: 'silent' },
        callers: [
          // As the HTTP benches configure it (lib/servers.ts): the mix asks for four agents, some with inline tasks.
          { id: BENCH_PEP.id, role: 'pep', key_sha256: sha256Hex(BENCH_PEP.key), agents: [...BENCH_AGENTS], may_assert_context: true },
          { id: BENCH_ORCHESTRATOR.id, role: 'orchestrator', key_sha256: sha256Hex(BENCH_ORCHESTRATOR.key) },
          { id: BENCH_APPROVER.id, role: 'approver', approver_groups: ['platform-oncall'], key_sha256: sha256Hex(BENCH_APPROVER.key) },
        ],
      },
      join(dir, 'bench.yaml'),
      dir,
    );
    const pdp = await createPdp(config, { logger: createLogger('silent'), defaultMetrics: false });
    try {
      const caller = config.callers.find((c) => c.id === BENCH_PEP.id);
      const orchestrator = config.callers.find((c) => c.id === BENCH_ORCHESTRATOR.id);
      const approver = config.callers.find((c) => c.id === BENCH_APPROVER.id);
      if (!caller || !orchestrator || !approver) throw new Error('bench callers missing');
      const resource = { type: 'pull_request', id: 'acme/api/pulls/1042' };
      for (const id of ['bench-review-plain', 'bench-review-elevated']) {
        await pdp.tasks.register(orchestrator, { id, agent_id: 'code-review-agent', type: 'review', context: { repo: 'acme/api' }, expires_in_seconds: 86400 }, null);
      }
      for (const task of BENCH_TASKS) await pdp.tasks.register(orchestrator, task, null);
      const ask = (task: string, scopes: string[]): DecisionRequestV1 => ({ agent_id: 'code-review-agent', task: { id: task }, integration: 'github', scopes, resource });
      const decider = new Decider({
        engine: pdp.engine,
        store: pdp.store,
        redeemWindowSeconds: 60,
        accessRequests: { endpoint: 'https://agent-pdp.bench.invalid/v1/access-requests', windowSeconds: 600 },
      });
      // The elevation: a requestable denial, a request for it, an approval for a day.
      const denial = await decider.decide(caller, ask('bench-review-elevated', ['pr:write']), null);
      const { request } = await pdp.accessRequests.submit(caller, { decision_id: denial.decision_id, reason: 'bench' }, null, null);
      await pdp.accessRequests.approve(approver, request.id, { duration_seconds: 3600 }, null);

      const mix = ordinaryMix();
      const requests: Record<Exclude<EscalationCase, 'ordinary mix'>, DecisionRequestV1> = {
        'ordinary allow': ask('bench-review-plain', ['pr:read']),
        'ordinary deny': ask('bench-review-plain', ['delete_repo']),
        'requestable denial': ask('bench-review-plain', ['pr:write']),
        'elevated allow': ask('bench-review-elevated', ['pr:write']),
      };
      const expected: Record<Exclude<EscalationCase, 'ordinary mix'>, [string, string]> = {
        'ordinary allow': ['allow', 'allowed'],
        'ordinary deny': ['deny', 'deny_scope'],
        'requestable denial': ['deny', 'approval_required'],
        'elevated allow': ['allow', 'elevated'],
      };
      const answers = {} as Record<EscalationCase, string>;
      for (const c of ESCALATION_CASES) {
        if (c === 'ordinary mix') continue;
        const r = await decider.decide(caller, requests[c], null);
        const codes = r.reasons.map((x) => x.code);
        answers[c] = `${r.outcome}: ${codes.join(', ')}${r.access_request ? ' + access_request hint' : ''}${r.approval ? ' + approval' : ''}`;
        const [outcome, code] = expected[c];
        if (r.outcome !== outcome || !codes.includes(code)) throw new Error(`${c}: expected ${outcome} with ${code}, got ${answers[c]}`);
      }
      for (const m of mix) {
        const r = await decider.decide(caller, m.request, null);
        if (r.outcome !== m.expect.outcome || r.granted_scopes.join(',') !== [...m.expect.granted].sort().join(',') || r.access_request || r.approval) {
          throw new Error(`ordinary mix, ${m.name}: expected ${m.expect.outcome} [${m.expect.granted.join(', ')}], got ${r.outcome} [${r.granted_scopes.join(', ')}]`);
        }
      }
      answers['ordinary mix'] = `${mix.length} requests in turn, each its expected outcome, none escalated`;

      let next = 0;
      const run = (c: EscalationCase) =>
        c === 'ordinary mix' ? () => decider.decide(caller, (mix[next++ % mix.length] as MixCase).request, null) : () => decider.decide(caller, requests[c], null);
      for (const c of ESCALATION_CASES) await timeAsync(run(c), Math.min(0.5, seconds), concurrency); // warm-up
      const perRound = Object.fromEntries(ESCALATION_CASES.map((c) => [c, [] as number[]])) as Record<EscalationCase, number[]>;
      const cpuRound = Object.fromEntries(ESCALATION_CASES.map((c) => [c, [] as number[]])) as Record<EscalationCase, number[]>;
      const ops = Object.fromEntries(ESCALATION_CASES.map((c) => [c, 0])) as Record<EscalationCase, number>;
      const from = Number(process.hrtime.bigint() / 1000n);
      for (let round = 0; round < rounds; round++) {
        // Alternate the order each round, so the machine's drift falls on every case alike.
        const order = only !== undefined ? [only] : round % 2 === 0 ? ESCALATION_CASES : [...ESCALATION_CASES].reverse();
        for (const c of order) {
          const cpu0 = process.cpuUsage();
          const t = await timeAsync(run(c), seconds, concurrency);
          const cpu = process.cpuUsage(cpu0);
          perRound[c].push(t.per_second);
          ops[c] += t.ops;
          cpuRound[c].push(Math.round(((cpu.user + cpu.system) / t.ops) * 10) / 10);
        }
      }
      const window_us = { from, to: Number(process.hrtime.bigint() / 1000n) };
      const cases = ESCALATION_CASES.map((c) => ({
        case: c,
        answer: answers[c],
        per_s: Math.round(median(perRound[c])),
        cpu_us_per_decision: round(median(cpuRound[c]), 1),
        rounds_per_s: perRound[c],
        rounds_cpu_us: cpuRound[c],
      }));
      const us = (c: EscalationCase): number => median(cpuRound[c]);
      return {
        concurrency,
        rounds,
        seconds_per_round: seconds,
        cases,
        window_us,
        ops,
        ratio: {
          requestable_vs_deny: round(us('requestable denial') / us('ordinary deny'), 3),
          elevated_vs_allow: round(us('elevated allow') / us('ordinary allow'), 3),
          requestable_vs_allow: round(us('requestable denial') / us('ordinary allow'), 3),
          elevated_vs_deny: round(us('elevated allow') / us('ordinary deny'), 3),
          requestable_vs_mix: round(us('requestable denial') / us('ordinary mix'), 3),
          elevated_vs_mix: round(us('elevated allow') / us('ordinary mix'), 3),
        },
      };
    } finally {
      await pdp.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '0.3' }, rounds: { type: 'string', default: '10' }, concurrency: { type: 'string', default: '64' }, only: { type: 'string' } } });
  const only = values.only as EscalationCase | undefined;
  if (only !== undefined && !(ESCALATION_CASES as readonly string[]).includes(only)) throw new Error(`--only: one of ${ESCALATION_CASES.join(', ')}`);
  // --only CASE times that case alone (for --cpu-prof); its ratios are then meaningless.
  process.stdout.write(`${JSON.stringify(await runEscalationBench(Number(values.seconds), Number(values.rounds), Number(values.concurrency), only))}\n`);
}
