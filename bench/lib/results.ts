/** The shape of bench/results/results.json: everything one `make bench` run measured, with its conditions. */
import type { DeciderBenchResult } from '../decider-bench.js';
import type { EscalationBenchResult } from '../escalation-bench.js';
import type { EscalationHttpResult } from '../escalation-http-bench.js';
import type { HttpPlan, HttpResult, Measurement } from '../http-bench.js';
import type { ProfileSummary } from '../cpuprofile-summary.js';
import type { IssuerLibraryRow } from '../issuer-bench.js';
import type { OutboxBenchResult } from '../outbox-bench.js';
import type { ProxyBenchResult } from '../proxy-bench.js';
import type { Route, RoutesPlan, RoutesResult } from '../routes-bench.js';
import type { ScaleLatency, ScaleResult } from '../scale-bench.js';
import type { StorageBenchResult } from '../storage-bench.js';
import type { StoreBenchRow } from '../store-bench.js';
import type { OpaBenchResult } from './opa-bench.js';

export interface BenchMeta {
  date: string;
  node: string;
  opa_version: string;
  vegeta_version: string;
  cpus: number;
  cpu_model: string;
  git: string;
  mode: 'full' | 'quick' | 'profile';
  pinning: string;
  load1_start: number;
  load1_end: number;
  /** CPU used by other processes (cores, average) during each HTTP step and section. */
  other_cores: Record<string, number>;
  /** Time the machine waited for disk (cores' worth) during each HTTP step and section. */
  iowait_cores: Record<string, number>;
  log_level: string;
  /** Set when the figures were taken on a busy machine (or without pinning): read them as a smoke run. */
  warning?: string;
}

export interface Goal {
  goal: string;
  target: string;
  measured: string;
  met: boolean | null;
}

export interface InProcessRow {
  name: string;
  kind: string;
  outcome: string;
  ours_ns: number;
  opa_ns: number;
  /** opa_ns / ours_ns */
  speedup: number;
  sdk_ns: number;
  sdk_preencoded_ns: number;
  encode_ns: number;
  decode_ns: number;
  opa: OpaBenchResult;
}

export interface DiagnosticRow {
  what: string;
  throughput_rps: number;
  p50_ms: number;
  p99_ms: number;
  server_cpu: number;
  /** Server CPU seconds over the run / requests answered, in µs. */
  cpu_us_per_request?: number;
  success: number;
}

export interface BenchResults {
  meta: BenchMeta;
  goals: Goal[];
  http?: HttpResult & { plan: Omit<HttpPlan, 'vegeta' | 'dir'>; mix: Record<string, number> };
  /** decide, redeem and introspect on our server under the same vegeta load: server CPU per request of each. */
  routes?: RoutesResult & { plan: Omit<RoutesPlan, 'vegeta' | 'dir'> };
  inprocess?: { cases: InProcessRow[]; geomean_ours_ns: number; geomean_opa_ns: number; geomean_speedup: number };
  scale?: ScaleResult[];
  /** Evaluation latency per size, every size in one process, timed in alternating batches. */
  scale_latency?: ScaleLatency;
  issuer?: IssuerLibraryRow[];
  store?: StoreBenchRow[];
  /** Issue 19: bytes on disk per decision at 1 million decisions, SQLite and PostgreSQL, with and without tokens. */
  storage?: StorageBenchResult;
  /** Break-glass: ordinary decides against a requestable denial and an elevated allow (in-process, CPU per decision). */
  escalation?: EscalationBenchResult;
  /** The same four decides over HTTP: our server (its own process) answering POST /v1/decide, server CPU per request. */
  escalation_http?: EscalationHttpResult;
  /** Break-glass notifications: the OutboxWorker delivering to a loopback receiver. */
  outbox?: OutboxBenchResult;
  /** The enforcement proxy against calling its upstream directly and against http-proxy (vegeta, alternating rounds). */
  proxy?: ProxyBenchResult;
  /** `--profile [--route …]`: the profiled route; the Decider without HTTP is measured for decide only. */
  profile?: { route: Route; summary: ProfileSummary; saturation: Measurement; diagnostics: DiagnosticRow[]; decider?: DeciderBenchResult; file: string };
}
