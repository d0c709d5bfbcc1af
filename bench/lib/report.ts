/**
 * The bench's outputs for people: a markdown report (the tables, goals first) and a hand-written SVG chart of
 * latency against offered load (p50 and p99, ours and OPA's). No chart dependency.
 */
import { PROXY_TARGETS, type ProxyBenchResult, type ProxyTarget } from '../proxy-bench.js';
import { ROUTES, type Route } from '../routes-bench.js';
import type { BenchResults } from './results.js';
import { medianOfRatios } from './timing.js';

const fmt = (x: number | null | undefined, digits = 2): string =>
  x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toLocaleString('en', { maximumFractionDigits: digits });
const us = (ns: number): string => fmt(ns / 1000, 1);

function table(head: string[], rows: Array<Array<string | number>>, align?: string[]): string {
  const a = align ?? head.map((_, i) => (i === 0 ? '---' : '---:'));
  return [`| ${head.join(' | ')} |`, `| ${a.join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export function reportMarkdown(r: BenchResults): string {
  const m = r.meta;
  const out: string[] = [];
  out.push(`# agent-pdp bench: ours against OPA ${m.opa_version}`, '');
  if (m.warning) out.push(`> **${m.warning}**`, '');
  out.push(
    `${m.date} · node ${m.node} · ${m.cpus} × ${m.cpu_model} · git ${m.git} · mode ${m.mode}`,
    `Pinning: ${m.pinning}. Load average (1 min, counts the bench itself) ${m.load1_start} at start, ${m.load1_end} at end. ` +
      `CPU used by other processes while measuring: at most ${fmt(Math.max(0, ...Object.values(m.other_cores)))} cores (per step and section in results.json, \`meta.other_cores\`).`,
    `Logging: both servers at log level \`${m.log_level}\` (ours: one pino access line per request; OPA: its request/response lines), to a file. OPA decision logs off.`,
    '',
    '## Goals',
    '',
    table(
      ['goal', 'target', 'measured', 'met'],
      r.goals.map((g) => [g.goal, g.target, g.measured, g.met === null ? 'n/a' : g.met ? 'yes' : '**no**']),
      ['---', '---', '---', '---'],
    ),
    '',
  );
  if (r.http) {
    out.push(
      '## HTTP: `POST /v1/decide` (auth + durable audit) vs `opa run --server` `POST /v1/data/agentpdp/decision`',
      '',
      `Mix (% of requests): ${Object.entries(r.http.mix).map(([k, v]) => `${k} ${v}%`).join(', ')}. ${r.http.plan.rounds} round(s): throughput and cpu are medians of the rounds, p50 and p99 percentiles of every round's requests pooled; ` +
        `saturation = vegeta \`-rate=0 -max-workers=${r.http.plan.saturationWorkers}\` for ${r.http.plan.saturationSeconds} s; fixed loads ${r.http.plan.rateSeconds} s each, ` +
        `${Array.isArray(r.http.plan.rates) ? 'as given' : `${r.http.plan.rates.auto.map((f) => `${f * 100}%`).join(', ')} of the lower saturation throughput of round 1`}. ` +
        '"cpu" = server CPU seconds per wall second (1.0 = its core busy throughout); "other procs" = CPU other processes on the machine used meanwhile (worst round). Ratios are ours/OPA.',
      '',
      table(
        ['offered load', 'ours req/s', 'OPA req/s', 'throughput ratio', 'ours p50 ms', 'OPA p50 ms', 'p50 ratio', 'ours p99 ms', 'OPA p99 ms', 'p99 ratio', 'ours ok / cpu', 'OPA ok / cpu', 'other procs, cores'],
        r.http.steps.map((s) => [
          s.step,
          `${fmt(s.ours.throughput_rps, 0)}${s.sustained.ours === false ? ' †' : ''}`,
          `${fmt(s.opa.throughput_rps, 0)}${s.sustained.opa === false ? ' †' : ''}`,
          fmt(s.ratio.throughput),
          fmt(s.ours.p50_ms, 3),
          fmt(s.opa.p50_ms, 3),
          fmt(s.ratio.p50),
          fmt(s.ours.p99_ms, 3),
          fmt(s.opa.p99_ms, 3),
          fmt(s.ratio.p99),
          `${fmt(s.ours.success * 100, 1)}% / ${fmt(s.ours.server_cpu)}`,
          `${fmt(s.opa.success * 100, 1)}% / ${fmt(s.opa.server_cpu)}`,
          fmt(Math.max(s.ours.other_cores, s.opa.other_cores)),
        ]),
      ),
      '',
      '† answered less than 95% of the offered rate: overloaded, its latency is queueing.',
      '',
      `Server RSS after the HTTP runs: ours ${fmt(r.http.rss_mb_after.ours, 1)} MB, OPA ${fmt(r.http.rss_mb_after.opa, 1)} MB.`,
      '',
    );
  }
  if (r.routes) out.push(...routesMarkdown(r.routes, r.http), '');
  if (r.inprocess) {
    out.push(
      '## In-process: time per decision',
      '',
      'Ours: `WasmEvaluator.evaluate` in a tight loop (what the Decider calls). OPA: `opa bench` (Go evaluator) on the same query, Rego, data and input. ' +
        'Breakdown columns (ours): the SDK call alone, the SDK given pre-encoded input bytes, encoding the input (JSON.stringify + TextEncoder), decoding the result (TextDecoder + JSON.parse).',
      '',
      table(
        ['case', 'outcome', 'ours µs', 'OPA µs', 'OPA/ours', 'SDK µs', 'SDK, bytes in µs', 'encode µs', 'decode µs'],
        r.inprocess.cases.map((c) => [
          c.name,
          c.outcome,
          us(c.ours_ns),
          us(c.opa_ns),
          `${fmt(c.speedup, 1)}×`,
          us(c.sdk_ns),
          us(c.sdk_preencoded_ns),
          us(c.encode_ns),
          us(c.decode_ns),
        ]),
        ['---', '---', '---:', '---:', '---:', '---:', '---:', '---:', '---:'],
      ),
      '',
      `Geometric mean: ours ${us(r.inprocess.geomean_ours_ns)} µs, OPA ${us(r.inprocess.geomean_opa_ns)} µs per decision: ours is **${fmt(r.inprocess.geomean_speedup, 1)}×** faster.`,
      '',
    );
  }
  if (r.scale) {
    out.push(
      '## Scale: agents in the policy set',
      '',
      'YAML files written to a temp folder (four shipped agents as templates), loaded with `loadPolicyDir` (read, parse, validate, compile) then `WasmEvaluator.create` (instantiate, set data). One fresh process per size. ' +
        'Evaluation: the mix, each request aimed at a random agent of the set.',
      '',
      table(
        ['agents', 'YAML MB', 'compiled data MB', 'load policies s', 'load WASM s', 'RSS delta MB', 'JS heap delta MB', 'evaluate µs (mean)', 'median of batches µs', 'mean vs 10 agents'],
        r.scale.map((s) => [
          fmt(s.agents, 0),
          fmt(s.policy_bytes / 2 ** 20, 2),
          fmt(s.compiled_data_bytes / 2 ** 20, 2),
          fmt(s.load_policies_ms / 1000, 2),
          fmt(s.load_wasm_ms / 1000, 2),
          fmt(s.rss_delta_mb, 1),
          fmt(s.heap_delta_mb, 1),
          us(s.evaluate.ns_per_op),
          us(s.evaluate.ns_per_op_median_batch),
          `${fmt(s.evaluate.ns_per_op / (r.scale?.[0]?.evaluate.ns_per_op ?? Number.NaN), 2)}×`,
        ]),
      ),
      '',
    );
    if (r.scale_latency) {
      const l = r.scale_latency;
      out.push(
        `Evaluation latency against size, every size in one process (${l.rounds} rounds of ${l.batch} calls per size, in alternating order; median of the batch means). The goal is judged on this run: the per-size processes above run minutes apart and carry the machine's drift.`,
        '',
        table(
          ['agents', 'evaluate µs (median of batches)', `vs ${fmt(l.sizes[0]?.agents ?? 0, 0)} agents`],
          l.sizes.map((s) => [fmt(s.agents, 0), fmt(s.median_batch_us, 1), `${fmt(s.vs_smallest, 2)}×`]),
        ),
        '',
      );
    }
  }
  if (r.issuer) {
    out.push(
      '## Issuer: tokens per second (library)',
      '',
      'Over HTTP, `POST /v1/tokens` is in the routes section above (redeems per second at saturation).',
      '',
      table(
        ['library', 'issueAccessToken / s', 'jose SignJWT / s (floor)'],
        r.issuer.map((i) => [i.alg, fmt(i.issue_access_token_per_s, 0), fmt(i.jose_sign_jwt_per_s, 0)]),
      ),
      '',
    );
  }
  if (r.store) {
    out.push(
      '## Audit: events committed per second (bench/store-bench.ts)',
      '',
      table(
        ['scenario', 'events/s', 'ops per transaction', 'chain verify events/s'],
        r.store.map((s) => [s.name, fmt(s.events_per_s, 0), fmt(s.ops_per_tx, 1), fmt(s.verify_events_per_s, 0)]),
      ),
      '',
    );
  }
  if (r.escalation || r.escalation_http) {
    const e = r.escalation;
    const h = r.escalation_http;
    out.push('## Break-glass: what escalation adds to a decide (bench/escalation-bench.ts, bench/escalation-http-bench.ts)', '');
    if (e) {
      out.push(
        '### In-process: the Decider and the real store, no HTTP',
        '',
        `The Decider of a whole PDP (shipped bundle and policies, SQLite store with group commit and the audit chain), no HTTP; code-review-agent on github, a registered task, one pull request. ` +
          `${e.rounds} rounds of ${e.seconds_per_round} s per case in alternating order, ${e.concurrency} in flight; medians over rounds. ` +
          'CPU per decision = this process\'s CPU time over the round / decisions (every decide also pays the elevation lookup, so the ordinary cases are today\'s code). ' +
          '"ordinary mix" = any other decide: the requests of the shared workload\'s mix (lib/workload.ts) in turn, its one escalation case left out.',
        '',
        table(
          ['case', 'answer', 'decisions/s', 'CPU µs / decision', 'vs ordinary deny', 'vs ordinary allow', 'vs ordinary mix'],
          e.cases.map((c) => {
            const base = (name: string): number => e.cases.find((x) => x.case === name)?.cpu_us_per_decision ?? Number.NaN;
            return [c.case, c.answer, fmt(c.per_s, 0), `**${fmt(c.cpu_us_per_decision, 1)}**`, `${fmt(c.cpu_us_per_decision / base('ordinary deny'))}×`, `${fmt(c.cpu_us_per_decision / base('ordinary allow'))}×`, `${fmt(c.cpu_us_per_decision / base('ordinary mix'))}×`];
          }),
          ['---', '---', '---:', '---:', '---:', '---:', '---:'],
        ),
        '',
      );
    }
    if (h) {
      out.push(
        '### Over HTTP: what a PEP\'s `POST /v1/decide` costs our server',
        '',
        'Our server as its own process (the bench config, API-key auth, durable SQLite audit, NODE_ENV=production, on the server core), the same four decisions and the ordinary mix asked by a keep-alive `node:http` client on the load core; ' +
          'tasks registered, and the elevated task\'s `pr:write` denial submitted (`POST /v1/access-requests`) and approved by the bench approver (`POST /v1/access-requests/{id}/approve`, 3,600 s) over HTTP first. ' +
          `${h.rounds} rounds of ${h.seconds_per_round} s per case in alternating order (ordinary allow, elevated allow, ordinary mix, requestable denial, ordinary deny, then reversed), ${h.concurrency} requests in flight (closed loop), each round ${h.settle_seconds} s after the previous one; medians over rounds. ` +
          'Server CPU per request = the server process\'s CPU time over the round (utime + stime of all its threads, /proc/<pid>/stat) / the answers in it; every answer checked (200, and the outcome, reason codes and hint/approval of the case\'s first answer). ' +
          '"server cpu" and "client cpu" = CPU seconds per wall second of each (server ≈ 1.0: the server, not the client, set the pace).',
        '',
        table(
          ['case', 'answer', 'req/s', 'server CPU µs / request', 'vs ordinary deny', 'vs ordinary allow', 'vs ordinary mix', 'rounds µs (min–max)', 'server cpu', 'client cpu', 'requests', 'unexpected'],
          h.cases.map((c) => {
            const base = (name: string): number => h.cases.find((x) => x.case === name)?.cpu_us_per_request ?? Number.NaN;
            return [
              c.case,
              c.answer,
              fmt(c.per_s, 0),
              `**${fmt(c.cpu_us_per_request, 1)}**`,
              `${fmt(c.cpu_us_per_request / base('ordinary deny'))}×`,
              `${fmt(c.cpu_us_per_request / base('ordinary allow'))}×`,
              `${fmt(c.cpu_us_per_request / base('ordinary mix'))}×`,
              `${fmt(Math.min(...c.rounds_cpu_us), 0)}–${fmt(Math.max(...c.rounds_cpu_us), 0)}`,
              fmt(c.server_cpu),
              fmt(c.client_cpu),
              fmt(c.requests, 0),
              c.unexpected === 0 ? '0' : `**${fmt(c.unexpected, 0)}**`,
            ];
          }),
          ['---', '---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:'],
        ),
        '',
        `Idle server: ${fmt(h.idle_cpu_us_per_s, 0)} µs CPU per second. Other processes used up to ${fmt(h.other_cores_max)} cores during a round.` +
          (h.unexpected_examples.length ? ` Unexpected answers, e.g.: ${h.unexpected_examples.join(' | ')}` : ''),
        '',
      );
    }
    type Ratios = { requestable_vs_deny: number; elevated_vs_allow: number; requestable_vs_mix: number; elevated_vs_mix: number };
    const ratioRow = (view: string, x: Ratios | undefined, within: Ratios | undefined): Array<string | number> =>
      x && within
        ? [
            view,
            `**${fmt(x.requestable_vs_mix)}×**`,
            `**${fmt(x.elevated_vs_mix)}×**`,
            x.requestable_vs_mix <= 1.1 && x.elevated_vs_mix <= 1.1 ? 'yes' : '**no**',
            `${fmt(within.requestable_vs_mix)}× / ${fmt(within.elevated_vs_mix)}×`,
            `${fmt(x.requestable_vs_deny)}× / ${fmt(x.elevated_vs_allow)}×`,
            `${fmt(within.requestable_vs_deny)}× / ${fmt(within.elevated_vs_allow)}×`,
          ]
        : [view, 'not run', 'not run', 'n/a', '', '', ''];
    const rounds = (rows: ReadonlyArray<{ case: string; rounds_cpu_us: number[] }>, c: string): number[] => rows.find((x) => x.case === c)?.rounds_cpu_us ?? [];
    const inProcessWithin = e
      ? {
          requestable_vs_deny: medianOfRatios(rounds(e.cases, 'requestable denial'), rounds(e.cases, 'ordinary deny')),
          elevated_vs_allow: medianOfRatios(rounds(e.cases, 'elevated allow'), rounds(e.cases, 'ordinary allow')),
          requestable_vs_mix: medianOfRatios(rounds(e.cases, 'requestable denial'), rounds(e.cases, 'ordinary mix')),
          elevated_vs_mix: medianOfRatios(rounds(e.cases, 'elevated allow'), rounds(e.cases, 'ordinary mix')),
        }
      : undefined;
    out.push(
      'Both views side by side. Goal: ≤ 1.1× "any other decide", read as the ordinary mix (judged on the ratio of the medians; ' +
        'the median of the ratios within each round is shown for the drift of the machine between rounds, which cancels within one). ' +
        'Like for like (against the cheapest ordinary decide of the same outcome: one scope, one reason) is shown beside it:',
      '',
      table(
        ['view', 'requestable denial ÷ mix', 'elevated allow ÷ mix', 'within 1.1×', 'same, within rounds', 'like for like: requestable ÷ deny / elevated ÷ allow', 'like for like, within rounds'],
        [ratioRow('in-process (CPU per decision)', e?.ratio, inProcessWithin), ratioRow('HTTP (server CPU per request)', h?.ratio, h?.ratio_within_rounds)],
      ),
      '',
    );
  }
  if (r.outbox) {
    const o = r.outbox;
    out.push(
      '## Break-glass: notifications delivered per second (bench/outbox-bench.ts)',
      '',
      `${fmt(o.requests, 0)} access requests with one delivery each, committed through the store's \`createAccessRequest\` (${fmt(o.enqueue_per_s, 0)} requests/s, 64 in flight); ` +
        `then the real OutboxWorker (${o.concurrency} in flight, keep-alive) delivers generic signed webhooks to a receiver on loopback (another process, on the load core) that checks every signature and answers 200.`,
      '',
      table(
        ['delivered', 'dead', 'retried', 'seconds', 'notifications/s', 'worker CPU µs / delivery', 'worker cpu', 'receiver: received / signature valid'],
        [[fmt(o.delivered, 0), fmt(o.dead, 0), fmt(o.retried, 0), fmt(o.seconds), `**${fmt(o.deliveries_per_s, 0)}**`, fmt(o.cpu_us_per_delivery, 1), fmt(o.cpu), `${fmt(o.sink.received, 0)} / ${fmt(o.sink.signature_valid, 0)}`]],
      ),
      '',
    );
  }
  if (r.proxy) out.push(...proxyMarkdown(r.proxy), '');
  if (r.http) {
    out.push('## Preflight: both servers return the expected decision for every case', '', table(['case', 'kind', 'expected = ours = OPA'], r.http.preflight.map((p) => [p.case, p.kind, p.expected]), ['---', '---', '---']), '');
  }
  out.push('Chart: `latency.svg` (p50 and p99 latency against offered load). Raw figures: `results.json`.', '');
  return out.join('\n');
}

const ROUTE_LABEL: Record<Route, string> = {
  decide: '`POST /v1/decide` (the mix)',
  redeem: '`POST /v1/tokens` (redeem)',
  introspect: '`POST /v1/introspect`',
};

function routesMarkdown(rt: NonNullable<BenchResults['routes']>, http: BenchResults['http']): string[] {
  const p = rt.plan;
  const rows: Array<Array<string | number>> = [];
  for (const s of rt.steps) {
    for (const route of ROUTES) {
      const f = s.routes[route];
      const ratio = route === 'redeem' ? s.ratio.redeem_decide : route === 'introspect' ? s.ratio.introspect_decide : 1;
      rows.push([
        s.step,
        ROUTE_LABEL[route],
        `${fmt(f.throughput_rps, 0)}${f.sustained === false ? ' †' : ''}`,
        fmt(f.p50_ms, 3),
        fmt(f.p99_ms, 3),
        `${fmt(f.success * 100, 1)}%`,
        fmt(f.server_cpu),
        `**${fmt(f.cpu_us_per_request, 1)}**`,
        route === 'decide' ? '1' : `**${fmt(ratio)}×**`,
        fmt(f.answered, 0),
        fmt(f.other_cores),
      ]);
    }
  }
  const ranOut = rt.measurements.filter((m) => m.ran_out);
  const sat = rt.steps.find((s) => s.offered_rps === null);
  const httpSat = http?.steps.find((s) => s.offered_rps === null);
  const decideLine =
    sat && httpSat
      ? ` \`POST /v1/decide\` at saturation here: ${fmt(sat.routes.decide.throughput_rps, 0)} req/s; in the comparison with OPA above, ours ${fmt(httpSat.ours.throughput_rps, 0)} and OPA ${fmt(httpSat.opa.throughput_rps, 0)} req/s.`
      : '';
  return [
    '## Routes: server CPU per request of decide, redeem and introspect (ours, same vegeta load)',
    '',
    `One server, the three routes measured alike: vegeta on the load core, saturation \`-rate=0 -max-workers=${p.saturationWorkers}\` for ${p.saturationSeconds} s, ` +
      `then a fixed offered load (${p.fixedShare * 100}% of the lowest saturation throughput of round 1, the same for every route) for ${p.rateSeconds} s; ${p.rounds} round(s), the order of the routes flipped each round. ` +
      'CPU per request = the server process\'s CPU time over the run (utime + stime of all its threads, /proc/<pid>/stat) / the requests it answered, over every round pooled; "cpu" = server CPU seconds per wall second. ' +
      'decide: the HTTP mix above. redeem: one fresh allowed decision per request (made over HTTP just before the run, read by vegeta with `-lazy`, so each id is sent once). ' +
      'introspect: a few live tokens over and over, form-encoded `token=`, as a resource_server caller; checked active before and after each run.',
    '',
    table(['load', 'route', 'req/s', 'p50 ms', 'p99 ms', 'ok', 'cpu', 'CPU µs / request', 'vs decide', 'requests', 'other procs, cores'], rows, ['---', '---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:']),
    '',
    '† answered less than 95% of the offered rate: overloaded (on a busy machine, usually other processes on its core).',
    '',
    `Idle server: ${fmt(rt.idle_cpu_us_per_s, 0)} µs CPU per second. Decisions prepared for redeeming: ${fmt(rt.decisions_prepared, 0)}; tokens introspected: ${fmt(rt.tokens_introspected, 0)}.` +
      (ranOut.length ? ` Runs that used every prepared decision before their duration (still measured, over the requests they made): ${ranOut.map((m) => `${m.step} r${m.round + 1}`).join(', ')}.` : '') +
      decideLine,
  ];
}

/** Latency (log scale) against offered load (log2 scale): ours blue, OPA orange; p50 solid, p99 dashed. */
export function latencySvg(r: BenchResults): string {
  const steps = (r.http?.steps ?? []).filter((s) => s.offered_rps !== null);
  const W = 760;
  const H = 440;
  const pad = { l: 70, r: 170, t: r.meta.warning ? 84 : 66, b: 60 };
  const pw = W - pad.l - pad.r;
  const ph = H - pad.t - pad.b;
  const xs = steps.map((s) => s.offered_rps as number);
  const ys = steps.flatMap((s) => [s.ours.p50_ms, s.ours.p99_ms, s.opa.p50_ms, s.opa.p99_ms]).filter((v) => v > 0 && Number.isFinite(v));
  if (xs.length === 0 || ys.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="80"><text x="10" y="40">no fixed-load measurements</text></svg>\n`;
  const x0 = Math.log2(Math.min(...xs));
  const x1 = Math.log2(Math.max(...xs));
  const y0 = Math.floor(Math.log10(Math.min(...ys)));
  const y1 = Math.ceil(Math.log10(Math.max(...ys)));
  const X = (v: number): number => pad.l + (x1 === x0 ? pw / 2 : ((Math.log2(v) - x0) / (x1 - x0)) * pw);
  const Y = (v: number): number => pad.t + ph - ((Math.log10(v) - y0) / Math.max(1, y1 - y0)) * ph;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${pad.l}" y="22" font-size="15" font-weight="bold">Decision latency against offered load</text>`);
  parts.push(`<text x="${pad.l}" y="40" fill="#555">ours: POST /v1/decide (auth + audit on) · OPA ${esc(r.meta.opa_version)}: opa run --server · same Rego, data, inputs</text>`);
  const other = Math.max(0, ...Object.values(r.meta.other_cores));
  parts.push(`<text x="${pad.l}" y="56" fill="#555" font-size="11">${r.meta.pinning.startsWith('NOT') ? 'not pinned' : 'server on core 0, vegeta on core 1 (taskset)'} · other processes ≤ ${fmt(other)} cores · ${esc(r.meta.date.slice(0, 16))}</text>`);
  if (r.meta.warning) parts.push(`<text x="${pad.l}" y="72" fill="#b00" font-size="11">${esc(r.meta.warning.split(';')[0] ?? '')}</text>`);
  for (let e = y0; e <= y1; e++) {
    for (const mult of [1, 2, 5]) {
      const v = mult * 10 ** e;
      if (Math.log10(v) > y1 + 1e-9) continue;
      const y = Y(v);
      parts.push(`<line x1="${pad.l}" x2="${pad.l + pw}" y1="${y}" y2="${y}" stroke="${mult === 1 ? '#ccc' : '#eee'}"/>`);
      parts.push(`<text x="${pad.l - 6}" y="${y + 4}" text-anchor="end" fill="#333">${fmtMs(v)}</text>`);
    }
  }
  for (const v of xs) {
    const x = X(v);
    parts.push(`<line x1="${x}" x2="${x}" y1="${pad.t}" y2="${pad.t + ph}" stroke="#eee"/>`);
    parts.push(`<text x="${x}" y="${pad.t + ph + 18}" text-anchor="middle" fill="#333">${v.toLocaleString('en')}</text>`);
  }
  parts.push(`<rect x="${pad.l}" y="${pad.t}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  parts.push(`<text x="${pad.l + pw / 2}" y="${H - 18}" text-anchor="middle">offered load (requests/s, log scale)</text>`);
  parts.push(`<text transform="translate(18 ${pad.t + ph / 2}) rotate(-90)" text-anchor="middle">latency (ms, log scale)</text>`);
  const series: Array<{ label: string; color: string; dash: string; values: number[] }> = [
    { label: 'ours p50', color: '#1f77b4', dash: '', values: steps.map((s) => s.ours.p50_ms) },
    { label: 'ours p99', color: '#1f77b4', dash: '6 4', values: steps.map((s) => s.ours.p99_ms) },
    { label: 'OPA p50', color: '#ff7f0e', dash: '', values: steps.map((s) => s.opa.p50_ms) },
    { label: 'OPA p99', color: '#ff7f0e', dash: '6 4', values: steps.map((s) => s.opa.p99_ms) },
  ];
  series.forEach((s, i) => {
    const pts = s.values.map((v, j) => [X(xs[j] as number), Y(Math.max(v, 10 ** y0))] as const);
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" ${s.dash ? `stroke-dasharray="${s.dash}"` : ''} points="${pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of pts) parts.push(`<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="3" fill="${s.color}"/>`);
    const ly = pad.t + 10 + i * 22;
    const lx = pad.l + pw + 20;
    parts.push(`<line x1="${lx}" x2="${lx + 30}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2" ${s.dash ? `stroke-dasharray="${s.dash}"` : ''}/>`);
    parts.push(`<text x="${lx + 38}" y="${ly + 4}">${s.label}</text>`);
  });
  const sat = r.http?.steps.find((s) => s.offered_rps === null);
  if (sat) {
    const lx = pad.l + pw + 20;
    parts.push(`<text x="${lx}" y="${pad.t + 120}" fill="#333">saturation throughput:</text>`);
    parts.push(`<text x="${lx}" y="${pad.t + 138}" fill="#1f77b4">ours ${fmt(sat.ours.throughput_rps, 0)} req/s</text>`);
    parts.push(`<text x="${lx}" y="${pad.t + 156}" fill="#ff7f0e">OPA ${fmt(sat.opa.throughput_rps, 0)} req/s</text>`);
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

function fmtMs(v: number): string {
  return v >= 1 ? v.toLocaleString('en', { maximumFractionDigits: 0 }) : String(Number(v.toPrecision(1)));
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const PROXY_LABEL: Record<ProxyTarget, string> = {
  direct: 'direct (the provider credential in hand)',
  ours: '`agent-pdp proxy` (token, endpoint map, `token.used` durable)',
  'http-proxy': '`http-proxy` 1.18 (credential set, nothing checked)',
};

function proxyMarkdown(p: ProxyBenchResult): string[] {
  const pl = p.plan;
  const rows: Array<Array<string | number>> = [];
  for (const s of p.steps) {
    for (const t of PROXY_TARGETS) {
      const f = s.targets[t];
      const vs = t === 'direct' ? undefined : s.vs_direct[t];
      rows.push([
        s.step,
        PROXY_LABEL[t],
        `${fmt(f.throughput_rps, 0)}${f.sustained === false ? ' †' : ''}`,
        vs ? `**${fmt(vs.throughput_ratio)}×**` : '1',
        fmt(f.p50_ms, 3),
        vs ? `**+${fmt(vs.added_p50_ms, 3)}**` : '0',
        fmt(f.p99_ms, 3),
        f.proxy_cpu_us_per_request === null ? '–' : fmt(f.proxy_cpu_us_per_request, 1),
        f.proxy_cpu === null ? '–' : fmt(f.proxy_cpu),
        fmt(f.upstream_cpu_us_per_request, 1),
        `${fmt(f.ok, 0)}${f.unexpected ? ` (**${fmt(f.unexpected, 0)} unexpected**)` : ''}`,
        fmt(f.other_cores),
      ]);
    }
  }
  const ref = p.steps.find((s) => s.reference !== undefined)?.reference;
  if (ref) {
    const f = ref.figures;
    rows.push([
      'saturation',
      'reference: direct, a second upstream alone on the server core',
      fmt(f.throughput_rps, 0),
      `ours ${fmt(ref.throughput_ratio.ours)}×, http-proxy ${fmt(ref.throughput_ratio['http-proxy'])}× of it`,
      fmt(f.p50_ms, 3),
      '',
      fmt(f.p99_ms, 3),
      '–',
      '–',
      fmt(f.upstream_cpu_us_per_request, 1),
      `${fmt(f.ok, 0)}${f.unexpected ? ` (**${fmt(f.unexpected, 0)} unexpected**)` : ''}`,
      fmt(f.other_cores),
    ]);
  }
  const used = Object.entries(p.audit.token_used).map(([k, v]) => `${k} ${fmt(v, 0)}`).join(', ') || 'none';
  return [
    '## Enforcement proxy: ours and http-proxy against calling the upstream directly (bench/proxy-bench.ts)',
    '',
    `\`GET /repos/acme/api/pulls/1042\` of a fake GitHub (\`node:http\`, a small fixed JSON body, 401 without the provider credential): directly with the credential, through \`agent-pdp proxy\` ` +
      `with ${p.token.agent}'s token [${p.token.scope}] on ${p.token.record.type} ${p.token.record.id} (shipped endpoint map, SQLite store with group commit, \`NODE_ENV=production\`), and through http-proxy. ` +
      `Placement: ${p.placement}. vegeta: saturation \`-rate=0 -max-workers=${pl.saturationWorkers}\` for ${pl.saturationSeconds} s, then ${pl.fixedShare * 100}% of the lowest saturation throughput of round 1 for ${pl.rateSeconds} s; ` +
      `${pl.rounds} round(s), order ours, direct, http-proxy, reversed every other round (each saturation round then ends with the reference run). Every answer checked (200 and the upstream's body). ` +
      'Throughput: median over rounds; p50/p99: pooled over rounds; "÷ direct" and "+p50" are taken within each round against that round\'s direct run, median over rounds. ' +
      'CPU µs per request = the process\'s CPU time (all threads, /proc/<pid>/stat) over the run / the answers; "proxy cpu" = its CPU seconds per wall second (1.0: its core busy).',
    '',
    table(
      ['load', 'path', 'req/s', '÷ direct', 'p50 ms', '+p50 ms vs direct', 'p99 ms', 'proxy CPU µs / req', 'proxy cpu', 'upstream CPU µs / req', 'answers ok', 'other procs, cores'],
      rows,
      ['---', '---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:'],
    ),
    '',
    '† answered less than 95% of the offered rate.',
    '',
    `Audit: our store holds ${used} \`token.used\` event(s) for the token, for ${fmt(p.audit.ours_ok_answers, 0)} answers our proxy gave (preflight and warm-up included): ` +
      `${p.audit.every_answer_audited ? 'every answer has its event' : '**answers without an event**'}. The upstream served ${fmt(p.upstream.served, 0)} and refused ${fmt(p.upstream.refused, 0)} (no or wrong credential). ` +
      `Idle CPU: ours ${fmt(p.idle_cpu_us_per_s.ours, 0)} µs/s (its timers), http-proxy ${fmt(p.idle_cpu_us_per_s['http-proxy'], 0)} µs/s.` +
      (p.unexpected_examples.length ? ` Unexpected answers, e.g.: ${p.unexpected_examples.join(' | ')}` : ''),
  ];
}
