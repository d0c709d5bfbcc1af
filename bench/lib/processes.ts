/**
 * Child processes of the bench: servers under test and measuring children, each pinned to a core with
 * `taskset`, plus the facts a reader needs to judge a figure (load average, CPU time a process used).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { openSync, readFileSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg } from 'node:os';

/** `taskset -c <cpu> cmd args…`, or the bare command when cpu is undefined. */
export function pinned(cpu: string | undefined, cmd: string, args: readonly string[]): [string, string[]] {
  return cpu === undefined ? [cmd, [...args]] : ['taskset', ['-c', cpu, cmd, ...args]];
}

export interface Started {
  child: ChildProcess;
  pid: number;
  logFile: string;
}

/** Starts a long-running server; its stdout and stderr go to `logFile` (never to a pipe the bench must drain). */
export function startProcess(cpu: string | undefined, cmd: string, args: readonly string[], logFile: string, env: NodeJS.ProcessEnv = process.env): Started {
  const fd = openSync(logFile, 'a');
  const [c, a] = pinned(cpu, cmd, args);
  const child = spawn(c, a, { stdio: ['ignore', fd, fd], env });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
  return { child, pid: child.pid, logFile };
}

/** Runs a measuring child to completion and parses the JSON its last stdout line holds. */
export function runJsonChild<T>(cpu: string | undefined, cmd: string, args: readonly string[], timeoutMs = 300_000): T {
  const [c, a] = pinned(cpu, cmd, args);
  const out = spawnSync(c, a, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs, stdio: ['ignore', 'pipe', 'inherit'] });
  if (out.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${out.status ?? out.signal}: ${out.stdout.slice(-2000)}`);
  const last = out.stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(last) as T;
}

/** Stops a child with SIGTERM (then SIGKILL after `graceMs`) and waits for it to exit. */
export async function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      srv.close(() => ok(port));
    });
  });
}

/** Polls `url` until it answers 200, the child dies, or `timeoutMs` passes. */
export async function waitReady(url: string, started: Started, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (started.child.exitCode !== null) {
      throw new Error(`${url}: the server exited (${started.child.exitCode}); see ${started.logFile}:\n${tail(started.logFile)}`);
    }
    const ok = await fetch(url, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
    if (ok) return;
    if (Date.now() > until) throw new Error(`${url} not ready after ${timeoutMs} ms; see ${started.logFile}:\n${tail(started.logFile)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '';
  }
}

/** User+system CPU seconds a process (all its threads) has used so far, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the comm field: state(0) … utime(11) stime(12), in clock ticks (USER_HZ, 100 on Linux).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** Resident set size of a process in bytes, from /proc/<pid>/status. */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Whole-machine CPU seconds since boot, from the first line of /proc/stat (all cores together). */
export function systemCpu(): { busy: number; iowait: number } {
  try {
    const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, , iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
    return { busy: (user + nice + system + irq + softirq + steal) / 100, iowait: iowait / 100 };
  } catch {
    return { busy: Number.NaN, iowait: Number.NaN };
  }
}

/** CPU seconds of this process plus its waited-for children (vegeta, measuring children): /proc/self/stat. */
export function selfAndChildrenCpu(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime(11) stime(12) cutime(13) cstime(14), in clock ticks.
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
  } catch {
    return Number.NaN;
  }
}

/**
 * What else the machine did while we measured: CPU used by processes that are neither this driver, its
 * children, nor the servers under test, in cores (0.5 = half a core busy on average), and CPU time spent
 * waiting for disk. The load average cannot tell that: it counts the bench itself.
 */
export class CpuWatch {
  readonly #t0 = process.hrtime.bigint();
  readonly #sys = systemCpu();
  readonly #self = selfAndChildrenCpu();
  readonly #servers: Map<number, number>;

  constructor(serverPids: readonly number[] = []) {
    this.#servers = new Map(serverPids.map((pid) => [pid, cpuSeconds(pid)]));
  }

  stop(): { other_cores: number; iowait_cores: number; seconds: number } {
    const wall = Number(process.hrtime.bigint() - this.#t0) / 1e9;
    const sys = systemCpu();
    let ours = selfAndChildrenCpu() - this.#self;
    for (const [pid, before] of this.#servers) ours += cpuSeconds(pid) - before;
    const other = (sys.busy - this.#sys.busy - ours) / wall;
    return {
      other_cores: Math.max(0, Math.round(other * 100) / 100),
      iowait_cores: Math.round(((sys.iowait - this.#sys.iowait) / wall) * 100) / 100,
      seconds: Math.round(wall * 10) / 10,
    };
  }
}

export function load1(): number {
  return Math.round((loadavg()[0] ?? 0) * 100) / 100;
}

/** The cores this process may run on, e.g. `0-1` or `1`. */
export function allowedCpus(): string {
  try {
    return /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function hasTaskset(): boolean {
  return spawnSync('taskset', ['-c', '0', 'true']).status === 0;
}
