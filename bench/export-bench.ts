/**
 * Audit exports at scale (issue 19, "compliance at scale"): a trail of N events bulk-loaded into a store file
 * (`suggest-bench.ts`'s generator: realistic payloads, placeholder hashes), then `audit export`'s pipeline
 * (`planExport` → `exportLines` → `inChunks`, as the CLI and `GET /v1/audit/export` run it) into a counting sink,
 * JSON Lines, unfiltered and filtered by one agent, in this process: events per second, and the process's peak RSS
 * against its RSS before (memory must stay flat: the export streams). Goal: ≥ 50,000 events/s both ways at 10 M.
 *
 * The hashes are placeholders, so a filtered export finds every event's own hash wrong and writes it whatever the
 * filter (the file shows the break): it does all the checking work of a real filtered export and writes more.
 *
 *   node .build/bench/bench/export-bench.js [--events 1000000] [--keep DIR] [--json]
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { exportLines, inChunks, planExport } from '../src/audit/export-plan.js';
import { SqliteStore } from '../src/store/sqlite-store.js';
import { isMain, round } from './lib/timing.js';
import { generateTrail } from './suggest-bench.js';

export interface ExportBenchRun {
  filter: string;
  events_in_range: number;
  lines: number;
  bytes: number;
  seconds: number;
  events_per_s: number;
  rss_before_mb: number;
  rss_peak_mb: number;
}

export interface ExportBenchResult {
  events: number;
  runs: ExportBenchRun[];
  within_goal: boolean;
}

const MB = 1024 * 1024;

export async function runExportBench(events: number, keep?: string): Promise<ExportBenchResult> {
  const work = mkdtempSync(join(tmpdir(), 'agent-pdp-export-bench-'));
  try {
    const path = join(work, 'trail.db');
    const kept = keep === undefined ? undefined : join(keep, `trail-${events}.db`);
    if (kept !== undefined && existsSync(kept)) copyFileSync(kept, path);
    else {
      generateTrail(path, events);
      if (kept !== undefined) {
        mkdirSync(keep as string, { recursive: true });
        copyFileSync(path, kept);
      }
    }
    const store = SqliteStore.open(path);
    try {
      const runs: ExportBenchRun[] = [];
      for (const [name, request] of [['none', {}], ['agent_id=agent-00', { agent_id: 'agent-00' }]] as const) {
        const plan = await planExport(store, request);
        const rssBefore = process.memoryUsage().rss;
        let peak = rssBefore;
        let lines = 0;
        let bytes = 0;
        const started = process.hrtime.bigint();
        for await (const chunk of inChunks(exportLines(store, plan, 'jsonl', { exported_at: new Date().toISOString() }))) {
          bytes += Buffer.byteLength(chunk);
          for (let i = chunk.indexOf('\n'); i !== -1; i = chunk.indexOf('\n', i + 1)) lines++;
          if ((lines & 0x3fff) === 0) peak = Math.max(peak, process.memoryUsage().rss);
        }
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        peak = Math.max(peak, process.memoryUsage().rss);
        const inRange = plan.to_seq - plan.from_seq + 1;
        runs.push({
          filter: name,
          events_in_range: inRange,
          lines,
          bytes,
          seconds: round(seconds, 2),
          events_per_s: Math.round(inRange / seconds),
          rss_before_mb: round(rssBefore / MB, 0),
          rss_peak_mb: round(peak / MB, 0),
        });
      }
      return { events, runs, within_goal: runs.every((r) => r.events_per_s >= 50_000) };
    } finally {
      await store.close();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { events: { type: 'string', default: '1000000' }, keep: { type: 'string' }, json: { type: 'boolean' } } });
  const result = await runExportBench(Number(values.events), values.keep);
  process.stdout.write(`${JSON.stringify(result, null, values.json === true ? undefined : 2)}\n`);
}
