/**
 * Steady state (issue 19): our server (SQLite store, durable audit) under a fixed 1,500 decides/s for 10 minutes,
 * one registered task (bench-task-sr), its allow and deny cases in the mix's weights (3 allows to 1 deny).
 *
 * What it reports, and where each figure comes from:
 * A warm-up comes first (`--warmup`, default 30 s): a third of it at a third of the rate, a third at two thirds, a
 * third at the full rate, as a load balancer's slow start brings a new replica in. The server starts cold, and its
 * first seconds under load (the JIT compiling the request path on the one core the server is pinned to, the heap and
 * the files growing to their steady size) are not the steady state the soak is about; thrown the full rate cold, this
 * VM's server queued seconds of requests in some runs (p99 2.2 s) and, with them, a heap whose next collection limit
 * V8 then set high, so RSS climbed for minutes after. The warm-up's own figures are reported apart (`warmup`: answers,
 * p99, its longest request and longest stall), so nothing is hidden; the figures below are the timed run's, and the
 * store's bytes per decision count the warm-up's decisions with the run's.
 *
 * - latency and the achieved rate: vegeta's report over the whole run (its `max` is the longest request);
 * - the longest event-loop stall: prom-client's `nodejs_eventloop_lag_max_seconds` from the server's /metrics,
 *   scraped every 10 s (each scrape resets the histogram, so the maximum over the scrapes is the run's). It measures
 *   with a 10 ms timer and records the whole interval between ticks, so an idle loop reads ~10 ms: the stall is the
 *   reading minus that resolution;
 * - RSS of the server every 10 s (/proc): flat or growing;
 * - the store on disk: the SQLite file, its WAL and shared-memory file before the load and after the server stopped,
 *   divided by the decisions the server made (`agentpdp_decisions_total`);
 * - the WAL over time, sampled every second from the file itself: its size, and how many frames are live (frames
 *   whose salts match the WAL header: what has been written since the last rewind). The store's checkpointer stats
 *   are not on /metrics, so the backstop (the writer checkpointing inline past 10,000 pages, wal-checkpointer.ts) is
 *   seen from outside: the live frames climbing to it. A sample can miss the instant it fires; a climb to ≥ 90% of
 *   it is reported as reached.
 *
 *   node .build/bench/bench/soak-bench.js [--seconds 600] [--warmup 30] [--rate 1500] [--server-cpu 0] [--load-cpu 1] [--workers 1] [--json]
 *   (with --workers N each worker answers its own /metrics: a scrape reads and resets the lag of the one it reaches)
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { targetsFor } from './http-bench.js';
import { CpuWatch, cpuSeconds, load1, rssBytes, stopProcess } from './lib/processes.js';
import { REPO, startOurs, type RunningServer } from './lib/servers.js';
import { isMain, round } from './lib/timing.js';
import { attack, ms, writeTargets } from './lib/vegeta.js';
import { BENCH_PEP, MIX } from './lib/workload.js';

/** The task of the soak: support-resolver's registered task, whose cases allow (one customer) and deny (another). */
const SOAK_TASK = 'bench-task-sr';
/** wal-checkpointer.ts BACKSTOP_PAGES: past this many WAL pages the writer checkpoints inline. */
const BACKSTOP_PAGES = 10_000;
/** prom-client's default `eventLoopMonitoringPrecision`: the timer interval every lag reading includes. */
const LAG_RESOLUTION_MS = 10;
const SAMPLE_EVERY_MS = 10_000;
const WAL_EVERY_MS = 1_000;
/** RSS counts as flat when the late half of the run stays within this factor of the early half's peak. */
const RSS_FLAT = 1.1;

export interface SoakBenchResult {
  seconds: number;
  /**
   * The warm-up before the timed run, in three steps up to the rate (not in the figures below, but for bytes per
   * decision); its p99 and longest request are the worst of its steps.
   */
  warmup: { seconds: number; requests: number; success: number; p99_ms: number; max_ms: number; longest_stall_ms: number | null };
  offered_rps: number;
  /** Share of allows in the targets (the rest are denies). */
  allow_share: number;
  requests: number;
  /** Requests/s vegeta sent, and answers/s it got back. */
  sent_rps: number;
  throughput_rps: number;
  success: number;
  status_codes: Record<string, number>;
  errors: string[];
  p50_ms: number;
  p99_ms: number;
  /** The longest request of the run. */
  max_ms: number;
  /** Longest event-loop stall inside the server (lag max − the monitor's 10 ms resolution); null if /metrics has no lag. */
  longest_stall_ms: number | null;
  /** `nodejs_eventloop_lag_max_seconds` of each 10 s interval, in ms (resolution included). */
  lag_max_ms: number[];
  rss_mb: { first: number; last: number; min: number; max: number; early_peak: number; late_peak: number; flat: boolean; samples: number[] };
  decisions: number;
  store: {
    /** Bytes of the SQLite file, its WAL and its -shm, before the load and after the server stopped. */
    before: { db: number; wal: number; shm: number };
    /** While the server still ran, right after the load. */
    end_of_load: { db: number; wal: number; shm: number };
    after_stop: { db: number; wal: number; shm: number };
    bytes_per_decision: number;
  };
  wal: {
    page_size: number;
    backstop_pages: number;
    /** One sample every 10 s: seconds into the run, WAL file MB, live frames. */
    samples: Array<{ t: number; file_mb: number; live_frames: number }>;
    max_file_mb: number;
    max_live_frames: number;
    /** Times the WAL was rewound (its checkpoint sequence number moved), seen at 1 s samples. */
    rewinds: number;
    /** 1 s samples with live frames at ≥ 90% of the backstop. */
    near_backstop_samples: number;
    backstop_reached: boolean;
    /** The writer's pauses for the checkpoint worker to catch up, and their time (the store's /metrics, at the end). */
    catch_ups: number;
    catch_up_ms: number;
  };
  server_cpu_cores: number;
  other_cores: number;
  iowait_cores: number;
  load1_start: number;
  load1_end: number;
}

interface WalState {
  bytes: number;
  pageSize: number;
  sequence: number;
  liveFrames: number;
}

/**
 * The WAL header (32 bytes: magic, version, page size, checkpoint sequence, salt-1, salt-2, checksums) and the
 * number of frames from the start whose headers carry the same salts: frames left from before a rewind carry old
 * ones. Reads 24 bytes per frame, so a 40 MB WAL costs ~10,000 small reads.
 */
function readWal(file: string): WalState | undefined {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const bytes = statSync(file).size;
    const header = Buffer.alloc(32);
    if (bytes < 32 || readSync(fd, header, 0, 32, 0) < 32) return { bytes, pageSize: 0, sequence: -1, liveFrames: 0 };
    const pageSize = header.readUInt32BE(8);
    const sequence = header.readUInt32BE(12);
    const salt1 = header.readUInt32BE(16);
    const salt2 = header.readUInt32BE(20);
    const frame = Buffer.alloc(24);
    let liveFrames = 0;
    for (let at = 32; at + 24 + pageSize <= bytes; at += 24 + pageSize) {
      if (readSync(fd, frame, 0, 24, at) < 24) break;
      if (frame.readUInt32BE(8) !== salt1 || frame.readUInt32BE(12) !== salt2) break;
      liveFrames++;
    }
    return { bytes, pageSize, sequence, liveFrames };
  } finally {
    closeSync(fd);
  }
}

function fileBytes(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function storeFiles(db: string): { db: number; wal: number; shm: number } {
  return { db: fileBytes(db), wal: fileBytes(`${db}-wal`), shm: fileBytes(`${db}-shm`) };
}

const total = (f: { db: number; wal: number; shm: number }): number => f.db + f.wal + f.shm;
const mb = (bytes: number): number => round(bytes / 2 ** 20, 1);

/** The server's process and, with `--workers`, its workers (they do the work): CPU and RSS are summed over them. */
function tree(pid: number): number[] {
  try {
    return [pid, ...execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).split('\n').filter((l) => l !== '').map(Number)];
  } catch {
    return [pid];
  }
}

const treeCpu = (pid: number): number => tree(pid).reduce((n, p) => n + cpuSeconds(p), 0);

/** The server's Prometheus text: the lag maximum since the last scrape and the decisions counted so far. */
async function scrape(server: RunningServer): Promise<{ lagMaxMs: number | undefined; decisions: number; catchUps: number; catchUpMs: number } | undefined> {
  const text = await fetch(`${server.url}/metrics`, { signal: AbortSignal.timeout(5000) })
    .then((r) => (r.ok ? r.text() : undefined))
    .catch(() => undefined);
  if (text === undefined) return undefined;
  let lagMaxMs: number | undefined;
  let decisions = 0;
  let catchUps = 0;
  let catchUpMs = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('nodejs_eventloop_lag_max_seconds')) lagMaxMs = Number(line.split(' ').at(-1)) * 1000;
    else if (line.startsWith('agentpdp_decisions_total{')) decisions += Number(line.split(' ').at(-1));
    else if (line.startsWith('agentpdp_store{count="wal_catch_ups"}')) catchUps += Number(line.split(' ').at(-1));
    else if (line.startsWith('agentpdp_store{count="wal_catch_up_ms"}')) catchUpMs += Number(line.split(' ').at(-1));
  }
  return { lagMaxMs, decisions, catchUps, catchUpMs };
}

/** Every case once: the soak's targets answer as the mix says, or the run would measure something else. */
async function preflight(server: RunningServer): Promise<void> {
  for (const c of MIX.filter((m) => m.request.task.id === SOAK_TASK)) {
    const res = await fetch(server.decideUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${BENCH_PEP.key}`, 'content-type': 'application/json' },
      body: JSON.stringify(c.request),
    });
    const body = (await res.json()) as { outcome?: string };
    if (res.status !== 200 || body.outcome !== c.expect.outcome) throw new Error(`soak preflight: "${c.name}" answered ${res.status} ${body.outcome}, expected ${c.expect.outcome}`);
  }
}

export async function runSoakBench(o: { seconds: number; warmupSeconds: number; rate: number; serverCpu: string | undefined; loadCpu: string | undefined; workers?: number; vegeta: string; log: (line: string) => void }): Promise<SoakBenchResult> {
  const work = mkdtempSync(join(tmpdir(), 'agent-pdp-soak-bench-'));
  const load1Start = load1();
  let server: RunningServer | undefined;
  const timers: NodeJS.Timeout[] = [];
  try {
    server = await startOurs({ dir: join(work, 'ours'), cpu: o.serverCpu, logLevel: 'warn', workers: o.workers ?? 1 });
    const s = server;
    const db = join(work, 'ours/data/pdp.db');
    await preflight(s);
    // The allow and deny cases of the one task, in the mix's interleaved order (vegeta sends them round-robin).
    const targets = targetsFor(s).filter((t) => (JSON.parse(t.body ?? '{}') as { task?: { id?: string } }).task?.id === SOAK_TASK);
    const allows = targets.filter((t) => MIX.find((m) => JSON.stringify(m.request) === t.body)?.expect.outcome === 'allow').length;
    const targetsFile = join(work, 'soak.targets.jsonl');
    writeTargets(targetsFile, targets);
    await scrape(s); // resets the lag histogram: start-up and registration are not the soak's
    const before = storeFiles(db);
    let warmup: SoakBenchResult['warmup'] = { seconds: 0, requests: 0, success: 1, p99_ms: 0, max_ms: 0, longest_stall_ms: null };
    if (o.warmupSeconds > 0) {
      const steps = [1, 2, 3].map((k) => Math.round((o.rate * k) / 3));
      o.log(`soak: warm-up, ${steps.join(', ')} decides/s for ${o.warmupSeconds / 3} s each`);
      const reports = [];
      for (const [k, rate] of steps.entries()) {
        reports.push(await attack({ vegeta: o.vegeta, targetsFile, rate, durationSeconds: o.warmupSeconds / 3, maxWorkers: 1024, cpu: o.loadCpu, resultsFile: join(work, `warmup-${k}.bin`) }));
      }
      const lag = (await scrape(s))?.lagMaxMs; // and resets it again: the timed run starts from here
      const requests = reports.reduce((n, r) => n + r.requests, 0);
      warmup = {
        seconds: o.warmupSeconds,
        requests,
        success: round(reports.reduce((n, r) => n + r.success * r.requests, 0) / Math.max(1, requests), 4),
        p99_ms: Math.max(...reports.map((r) => ms(r.latencies['99th']))),
        max_ms: Math.max(...reports.map((r) => ms(r.latencies.max))),
        longest_stall_ms: lag === undefined ? null : round(Math.max(0, lag - LAG_RESOLUTION_MS), 1),
      };
      o.log(`soak: warm-up done: ${warmup.requests} requests, success ${warmup.success}, p99 ${warmup.p99_ms} ms, longest stall ${warmup.longest_stall_ms} ms`);
    }

    const rss: number[] = [];
    const lags: number[] = [];
    const walSamples: SoakBenchResult['wal']['samples'] = [];
    let lastDecisions = 0;
    let pageSize = 0;
    let lastSequence = -1;
    let rewinds = 0;
    let catchUps = 0;
    let catchUpMs = 0;
    let nearBackstop = 0;
    let maxLive = 0;
    let maxWal = 0;
    const t0 = Date.now();
    const walTick = (): void => {
      const w = readWal(`${db}-wal`);
      if (w === undefined) return;
      if (w.pageSize > 0) pageSize = w.pageSize;
      if (lastSequence >= 0 && w.sequence !== lastSequence) rewinds++;
      if (w.sequence >= 0) lastSequence = w.sequence;
      maxLive = Math.max(maxLive, w.liveFrames);
      maxWal = Math.max(maxWal, w.bytes);
      if (w.liveFrames >= 0.9 * BACKSTOP_PAGES) nearBackstop++;
    };
    const tick = async (): Promise<void> => {
      rss.push(mb(tree(s.pid).reduce((n, pid) => n + rssBytes(pid), 0)));
      const w = readWal(`${db}-wal`);
      walSamples.push({ t: Math.round((Date.now() - t0) / 1000), file_mb: mb(w?.bytes ?? 0), live_frames: w?.liveFrames ?? 0 });
      const m = await scrape(s);
      if (m?.lagMaxMs !== undefined) lags.push(round(m.lagMaxMs, 1));
      if (m !== undefined) {
        lastDecisions = m.decisions;
        catchUps = m.catchUps;
        catchUpMs = m.catchUpMs;
      }
      o.log(`soak ${String(walSamples.at(-1)?.t).padStart(4)} s: RSS ${rss.at(-1)} MB, WAL ${walSamples.at(-1)?.file_mb} MB (${walSamples.at(-1)?.live_frames} live frames), lag max ${lags.at(-1) ?? '?'} ms, ${lastDecisions} decisions`);
    };
    timers.push(setInterval(walTick, WAL_EVERY_MS));
    timers.push(setInterval(() => void tick(), SAMPLE_EVERY_MS));
    const watch = new CpuWatch([s.pid]);
    const serverCpu0 = treeCpu(s.pid);
    o.log(`soak: ${o.rate} decides/s for ${o.seconds} s on ${SOAK_TASK} (${allows} allows to ${targets.length - allows} deny per round of targets)`);
    const report = await attack({ vegeta: o.vegeta, targetsFile, rate: o.rate, durationSeconds: o.seconds, maxWorkers: 1024, cpu: o.loadCpu, resultsFile: join(work, 'soak.bin') });
    const wall = (Date.now() - t0) / 1000;
    const serverCores = round((treeCpu(s.pid) - serverCpu0) / wall, 2);
    const machine = watch.stop();
    for (const t of timers) clearInterval(t);
    timers.length = 0;
    walTick();
    await tick();
    const endOfLoad = storeFiles(db);
    await stopProcess(s.child, 30_000);
    server = undefined;
    const afterStop = storeFiles(db);

    const half = Math.floor(rss.length / 2);
    const earlyPeak = Math.max(...rss.slice(0, Math.max(1, half)));
    const latePeak = Math.max(...rss.slice(half));
    const longestLag = lags.length ? Math.max(...lags) : undefined;
    return {
      seconds: o.seconds,
      warmup,
      offered_rps: o.rate,
      allow_share: round(allows / targets.length, 2),
      requests: report.requests,
      sent_rps: Math.round(report.rate),
      throughput_rps: Math.round(report.throughput),
      success: round(report.success, 4),
      status_codes: report.status_codes,
      errors: (report.errors ?? []).slice(0, 3),
      p50_ms: ms(report.latencies['50th']),
      p99_ms: ms(report.latencies['99th']),
      max_ms: ms(report.latencies.max),
      longest_stall_ms: longestLag === undefined ? null : round(Math.max(0, longestLag - LAG_RESOLUTION_MS), 1),
      lag_max_ms: lags,
      rss_mb: { first: rss[0] ?? 0, last: rss.at(-1) ?? 0, min: Math.min(...rss), max: Math.max(...rss), early_peak: earlyPeak, late_peak: latePeak, flat: latePeak <= RSS_FLAT * earlyPeak, samples: rss },
      decisions: lastDecisions,
      store: {
        before,
        end_of_load: endOfLoad,
        after_stop: afterStop,
        bytes_per_decision: lastDecisions === 0 ? Number.NaN : Math.round((total(afterStop) - total(before)) / lastDecisions),
      },
      wal: {
        page_size: pageSize,
        backstop_pages: BACKSTOP_PAGES,
        samples: walSamples,
        max_file_mb: mb(maxWal),
        max_live_frames: maxLive,
        rewinds,
        near_backstop_samples: nearBackstop,
        backstop_reached: nearBackstop > 0,
        catch_ups: catchUps,
        catch_up_ms: catchUpMs,
      },
      server_cpu_cores: serverCores,
      other_cores: machine.other_cores,
      iowait_cores: machine.iowait_cores,
      load1_start: load1Start,
      load1_end: load1(),
    };
  } finally {
    for (const t of timers) clearInterval(t);
    if (server !== undefined) await stopProcess(server.child, 30_000);
    rmSync(work, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '600' },
      warmup: { type: 'string', default: '30' },
      rate: { type: 'string', default: '1500' },
      'server-cpu': { type: 'string' },
      'load-cpu': { type: 'string' },
      workers: { type: 'string', default: '1' },
      json: { type: 'boolean' },
    },
  });
  const vegeta = process.env['VEGETA'] ?? join(REPO, '.tools/bin/vegeta');
  const result = await runSoakBench({
    seconds: Number(values.seconds),
    warmupSeconds: Number(values.warmup),
    rate: Number(values.rate),
    serverCpu: values['server-cpu'],
    loadCpu: values['load-cpu'],
    workers: Number(values.workers),
    vegeta,
    log: (line) => void process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${line}\n`),
  });
  process.stdout.write(`${JSON.stringify(result, null, values.json === true ? undefined : 2)}\n`);
}
