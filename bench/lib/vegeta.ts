/**
 * vegeta as the one load generator for both servers: open-loop constant rate (`-rate=R/s`), or saturation
 * (`-rate=0 -max-workers=N`: N requests always in flight). Targets are JSON lines with bodies and headers;
 * vegeta sends them round-robin. Results go to a binary file, then `vegeta report -type=json` summarises them.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { pinned } from './processes.js';

export interface VegetaTarget {
  method: 'POST' | 'GET';
  url: string;
  body?: string;
  header: Record<string, string[]>;
}

export interface AttackOptions {
  vegeta: string;
  targetsFile: string;
  /** Requests per second; 0 means as fast as `maxWorkers` in-flight requests allow (saturation). */
  rate: number;
  durationSeconds: number;
  /** Upper bound of in-flight requests (vegeta workers). */
  maxWorkers: number;
  /** Core vegeta is pinned to, or undefined. */
  cpu: string | undefined;
  resultsFile: string;
  timeoutSeconds?: number;
  /**
   * Read the targets file as the attack goes and stop at its end (`-lazy`), instead of loading it and sending its
   * targets round-robin: each target is sent at most once (a decision id can be redeemed once). The attack then
   * ends at the duration or the last target, whichever comes first; running out adds one "no targets to attack"
   * result per worker, with status code 0.
   */
  lazy?: boolean;
}

/** vegeta's JSON report (latencies in ns). */
export interface VegetaReport {
  latencies: { total: number; mean: number; '50th': number; '90th': number; '95th': number; '99th': number; max: number; min: number };
  requests: number;
  rate: number;
  throughput: number;
  success: number;
  status_codes: Record<string, number>;
  errors: string[] | null;
  duration: number;
  wait: number;
}

export function writeTargets(file: string, targets: readonly VegetaTarget[]): void {
  const lines = targets.map((t) =>
    JSON.stringify({
      method: t.method,
      url: t.url,
      header: t.header,
      ...(t.body === undefined ? {} : { body: Buffer.from(t.body).toString('base64') }),
    }),
  );
  writeFileSync(file, `${lines.join('\n')}\n`);
}

export async function attack(o: AttackOptions): Promise<VegetaReport> {
  const args = [
    'attack',
    '-format=json',
    `-targets=${o.targetsFile}`,
    `-duration=${o.durationSeconds}s`,
    `-timeout=${o.timeoutSeconds ?? 10}s`,
    `-max-workers=${o.maxWorkers}`,
    `-output=${o.resultsFile}`,
    ...(o.lazy === true ? ['-lazy'] : []),
    ...(o.rate === 0 ? ['-rate=0', `-workers=${o.maxWorkers}`] : [`-rate=${o.rate}/1s`, `-workers=${Math.min(o.maxWorkers, 16)}`]),
  ];
  await run(o.cpu, o.vegeta, args);
  const reportFile = `${o.resultsFile}.json`;
  await run(o.cpu, o.vegeta, ['report', '-type=json', `-output=${reportFile}`, o.resultsFile]);
  return JSON.parse(readFileSync(reportFile, 'utf8')) as VegetaReport;
}

/** One report over the requests of several attacks (vegeta reads every file): percentiles of the pooled latencies. */
export async function pooledReport(vegeta: string, cpu: string | undefined, resultsFiles: readonly string[], reportFile: string): Promise<VegetaReport> {
  await run(cpu, vegeta, ['report', '-type=json', `-output=${reportFile}`, ...resultsFiles]);
  return JSON.parse(readFileSync(reportFile, 'utf8')) as VegetaReport;
}

/** Each result of an attack with its status code and response body (`vegeta encode -to=json`). */
export async function resultBodies(vegeta: string, cpu: string | undefined, resultsFile: string): Promise<Array<{ code: number; body: string; error: string }>> {
  const out = `${resultsFile}.results.jsonl`;
  await run(cpu, vegeta, ['encode', '-to=json', `-output=${out}`, resultsFile]);
  return readFileSync(out, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const r = JSON.parse(l) as { code: number; body?: string | null; error?: string };
      return { code: r.code, body: r.body ? Buffer.from(r.body, 'base64').toString('utf8') : '', error: r.error ?? '' };
    });
}

function run(cpu: string | undefined, cmd: string, args: string[]): Promise<void> {
  const [c, a] = pinned(cpu, cmd, args);
  return new Promise((ok, fail) => {
    const child = spawn(c, a, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', fail);
    child.once('exit', (code) => (code === 0 ? ok() : fail(new Error(`vegeta ${args[0]} exited ${code}: ${stderr.slice(-1000)}`))));
  });
}

/** Latency in milliseconds, 3 significant decimals. */
export const ms = (ns: number): number => Math.round(ns / 1e3) / 1e3;
