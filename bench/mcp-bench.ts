/**
 * MCP (issue 20): what the guard adds to one `tools/call`, on loopback. The SDK's `Client` calls `write_ticket`
 * (crm `tickets:write` on customer 1234, support-resolver's registered task `bench-task-sr`) of the SDK's
 * `McpServer` over Streamable HTTP on 127.0.0.1, three ways, each its own server on its own port:
 *
 * - **unguarded**: the server connected to its transport as is;
 * - **guarded**: the same server connected through `createMcpGuard(...).wrap(transport)`, the guard's defaults: every
 *   call decided (`POST /v1/decide`) and redeemed (`POST /v1/tokens`) at our PDP before the handler runs, which
 *   takes its grant (`guard.grantFor(extra)`);
 * - **guarded, tokens: true**: the same with token reuse, so after the first call the handler gets the cached token
 *   and the PDP is not asked (until the token nears expiry).
 *
 * The servers are stateless (a server and transport per request, JSON answers: `enableJsonResponse`), the identity
 * configured (`{ agentId, taskId }`: no resource server in front, so its token check is not in the figure), the
 * mappings declared once. The client and the three MCP servers run in this process (on the load core when the
 * driver pins); the PDP is its own process (`startOurs`: the bench config, API-key auth, durable SQLite audit,
 * NODE_ENV=production; on the server core). Calls are sequential, one in flight: latency, not throughput.
 *
 * After a warm-up of each, `calls` calls of each, in rounds of `perRound` calls per variant, the order of the
 * variants reversed every round so the machine's drift falls on all three alike. Every answer is checked (the
 * handler's text; a refusal is never a sample). Reported per variant: p50 and p99 of all its calls pooled, and the
 * guard's added latency: guarded − unguarded at p50 and p99 (pooled), and the median over rounds of the
 * within-round p50 differences. Around each variant's runs, the PDP's CPU time (/proc/<pid>/stat) per call.
 *
 *   node .build/bench/bench/mcp-bench.js --url http://127.0.0.1:PORT --pid PID [--calls 2000] [--per-round 100] [--warmup 200]
 *   node .build/bench/bench/mcp-bench.js [--server-cpu 0] [--log-level info] …
 *        without --url: starts our server itself (startOurs, in a temp folder) and stops it at the end
 * Prints one JSON line.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import { createMcpGuard, type McpGuard } from '../src/mcp/index.js';
import { PdpClient } from '../src/pep/index.js';
import { cpuSeconds, load1, stopProcess } from './lib/processes.js';
import { startOurs } from './lib/servers.js';
import { isMain, median, round } from './lib/timing.js';
import { BENCH_PEP } from './lib/workload.js';

export const MCP_VARIANTS = ['unguarded', 'guarded', 'guarded, tokens: true'] as const;
export type McpVariant = (typeof MCP_VARIANTS)[number];

/** The registered task of the bench config (lib/workload.ts): support-resolver, complaint_resolution, customer 1234. */
const TASK = 'bench-task-sr';
const ANSWER = 'ticket written for customer 1234';

export interface McpVariantFigures {
  calls: number;
  /** Answers that were not the handler's (a refusal, an error): never samples. */
  unexpected: number;
  /** Of every call of the variant, pooled over the rounds. */
  p50_us: number;
  p99_us: number;
  mean_us: number;
  max_us: number;
  /** Each round's p50, in order. */
  rounds_p50_us: number[];
  /** The PDP's CPU (all threads) over this variant's runs, per call. */
  pdp_cpu_us_per_call: number;
}

export interface McpBenchResult {
  plan: { calls: number; per_round: number; rounds: number; warmup: number };
  placement: string;
  variants: Record<McpVariant, McpVariantFigures>;
  /** What the guard adds over the unguarded call, µs. */
  added: Record<Exclude<McpVariant, 'unguarded'>, { p50_us: number; p99_us: number; p50_us_within_rounds: number }>;
  all_expected: boolean;
  load1_start: number;
  load1_end: number;
}

/** One MCP server on loopback: stateless Streamable HTTP, one tool, guarded through `guard` or not. */
async function startMcpServer(guard: McpGuard | null): Promise<{ url: string; close(): Promise<void> }> {
  const build = (): McpServer => {
    const server = new McpServer({ name: 'crm-bench', version: '1.0.0' });
    server.registerTool('write_ticket', { description: 'Open a ticket on a customer', inputSchema: { customer_id: z.string(), text: z.string() } }, async (args, extra) => {
      // A guarded handler takes its grant, as a real one would to call the CRM with its token.
      if (guard !== null && guard.grantFor(extra).accessToken === '') throw new Error('empty token');
      return { content: [{ type: 'text', text: `ticket written for customer ${args.customer_id}` }] };
    });
    return server;
  };
  const http: Server = createServer((req, res) => {
    const server = build();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    server
      .connect(guard === null ? transport : guard.wrap(transport))
      .then(() => transport.handleRequest(req, res))
      .catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((ok) => http.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`,
    close: () =>
      new Promise<void>((ok) => {
        http.closeAllConnections();
        http.close(() => ok());
      }),
  };
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

export async function runMcpBench(o: { url: string; pid: number; calls: number; perRound: number; warmup: number; placement: string }): Promise<McpBenchResult> {
  const load1Start = load1();
  const pdp = new PdpClient({ url: o.url, apiKey: BENCH_PEP.key });
  const mapping = { write_ticket: { integration: 'crm', scopes: ['tickets:write'], record: { type: 'customer', id: 'customer_id' } } };
  const identity = { agentId: 'support-resolver', taskId: TASK };
  const guards: Record<McpVariant, McpGuard | null> = {
    unguarded: null,
    guarded: createMcpGuard({ pdp, identity, tools: mapping }),
    'guarded, tokens: true': createMcpGuard({ pdp, identity, tools: mapping, tokens: true }),
  };
  const servers: Array<{ close(): Promise<void> }> = [];
  const clients: Client[] = [];
  try {
    const client = {} as Record<McpVariant, Client>;
    for (const v of MCP_VARIANTS) {
      const server = await startMcpServer(guards[v]);
      servers.push(server);
      const c = new Client({ name: 'bench-agent', version: '1.0.0' });
      await c.connect(new StreamableHTTPClientTransport(new URL(server.url)));
      clients.push(c);
      client[v] = c;
    }
    const samples = Object.fromEntries(MCP_VARIANTS.map((v) => [v, [] as number[]])) as Record<McpVariant, number[]>;
    const roundsP50 = Object.fromEntries(MCP_VARIANTS.map((v) => [v, [] as number[]])) as Record<McpVariant, number[]>;
    const unexpected = Object.fromEntries(MCP_VARIANTS.map((v) => [v, 0])) as Record<McpVariant, number>;
    const cpu = Object.fromEntries(MCP_VARIANTS.map((v) => [v, 0])) as Record<McpVariant, number>;
    let n = 0;
    /** `count` sequential calls; the latency (µs) of each one whose answer is the handler's. */
    const calls = async (v: McpVariant, count: number): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < count; i++) {
        const t0 = process.hrtime.bigint();
        const r = (await client[v].callTool({ name: 'write_ticket', arguments: { customer_id: '1234', text: `note ${n++}` } })) as { isError?: boolean; content?: Array<{ text?: string }> };
        const us = Number(process.hrtime.bigint() - t0) / 1000;
        if (r.isError === true || r.content?.[0]?.text !== ANSWER) unexpected[v]++;
        else out.push(us);
      }
      return out;
    };
    // The warm-up doubles as the preflight: every variant must answer as its handler does, or nothing is measured.
    for (const v of MCP_VARIANTS) await calls(v, o.warmup);
    const refused = MCP_VARIANTS.filter((v) => unexpected[v] > 0);
    if (refused.length > 0) throw new Error(`mcp bench: unexpected answers in the warm-up of ${refused.join(', ')}`);

    const rounds = Math.max(1, Math.ceil(o.calls / o.perRound));
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? [...MCP_VARIANTS] : [...MCP_VARIANTS].reverse();
      for (const v of order) {
        const c0 = cpuSeconds(o.pid);
        const got = await calls(v, o.perRound);
        cpu[v] += cpuSeconds(o.pid) - c0;
        samples[v].push(...got);
        roundsP50[v].push(round(percentile([...got].sort((a, b) => a - b), 50), 1));
      }
    }

    const figures = {} as Record<McpVariant, McpVariantFigures>;
    for (const v of MCP_VARIANTS) {
      const s = [...samples[v]].sort((a, b) => a - b);
      const made = rounds * o.perRound;
      figures[v] = {
        calls: made,
        unexpected: unexpected[v],
        p50_us: round(percentile(s, 50), 1),
        p99_us: round(percentile(s, 99), 1),
        mean_us: round(s.reduce((a, x) => a + x, 0) / Math.max(1, s.length), 1),
        max_us: round(s.at(-1) ?? Number.NaN, 1),
        rounds_p50_us: roundsP50[v],
        pdp_cpu_us_per_call: round((cpu[v] / made) * 1e6, 1),
      };
    }
    const base = figures.unguarded;
    const added = (v: Exclude<McpVariant, 'unguarded'>) => ({
      p50_us: round(figures[v].p50_us - base.p50_us, 1),
      p99_us: round(figures[v].p99_us - base.p99_us, 1),
      p50_us_within_rounds: round(median(figures[v].rounds_p50_us.map((x, i) => x - (base.rounds_p50_us[i] as number))), 1),
    });
    return {
      plan: { calls: rounds * o.perRound, per_round: o.perRound, rounds, warmup: o.warmup },
      placement: o.placement,
      variants: figures,
      added: { guarded: added('guarded'), 'guarded, tokens: true': added('guarded, tokens: true') },
      all_expected: MCP_VARIANTS.every((v) => unexpected[v] === 0),
      load1_start: load1Start,
      load1_end: load1(),
    };
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()));
    await Promise.allSettled(servers.map((s) => s.close()));
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      pid: { type: 'string' },
      calls: { type: 'string', default: '2000' },
      'per-round': { type: 'string', default: '100' },
      warmup: { type: 'string', default: '200' },
      'server-cpu': { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      placement: { type: 'string', default: 'not pinned by this process' },
    },
  });
  const plan = { calls: Number(values.calls), perRound: Number(values['per-round']), warmup: Number(values.warmup), placement: values.placement };
  let result: McpBenchResult;
  if (values.url !== undefined) {
    result = await runMcpBench({ url: values.url, pid: Number(values.pid), ...plan });
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-mcp-bench-'));
    const ours = await startOurs({ dir, cpu: values['server-cpu'], logLevel: values['log-level'] });
    try {
      result = await runMcpBench({ url: ours.url, pid: ours.pid, ...plan });
    } finally {
      await stopProcess(ours.child);
      rmSync(dir, { recursive: true, force: true });
    }
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
