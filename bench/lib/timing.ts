/** Tight-loop timing for in-process measurements: warm up, then time batches for a fixed wall-clock budget. */

export interface LoopTiming {
  /** Mean over every timed call. */
  ns_per_op: number;
  /** Median of the per-batch means (robust to a GC pause or a preempted batch). */
  ns_per_op_median_batch: number;
  ops: number;
}

export function timeLoop(fn: (i: number) => unknown, seconds: number, batch = 1000): LoopTiming {
  const warmUntil = process.hrtime.bigint() + BigInt(Math.round(Math.min(0.5, seconds / 3) * 1e9));
  let i = 0;
  while (process.hrtime.bigint() < warmUntil) for (let j = 0; j < batch; j++) fn(i++);
  const batches: number[] = [];
  const until = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  let total = 0n;
  let ops = 0;
  for (;;) {
    const t0 = process.hrtime.bigint();
    for (let j = 0; j < batch; j++) fn(i++);
    const t1 = process.hrtime.bigint();
    total += t1 - t0;
    ops += batch;
    batches.push(Number(t1 - t0) / batch);
    if (t1 >= until) break;
  }
  return { ns_per_op: Math.round((Number(total) / ops) * 10) / 10, ns_per_op_median_batch: Math.round(median(batches) * 10) / 10, ops };
}

/** Awaited calls with `concurrency` in flight for `seconds`; returns completed calls per second. */
export async function timeAsync(fn: (i: number) => Promise<unknown>, seconds: number, concurrency: number): Promise<{ per_second: number; ops: number; seconds: number }> {
  const started = process.hrtime.bigint();
  const until = started + BigInt(Math.round(seconds * 1e9));
  let next = 0;
  let done = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (process.hrtime.bigint() < until) {
        await fn(next++);
        done++;
      }
    }),
  );
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  return { per_second: Math.round(done / elapsed), ops: done, seconds: Math.round(elapsed * 100) / 100 };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/**
 * The median over rounds of a[i] / b[i] (round i of two cases): a drift of the machine between rounds (seen: every
 * case 1.6× slower for three rounds) cancels within a round, where the ratio of the two medians can pick it up.
 */
export function medianOfRatios(a: readonly number[], b: readonly number[]): number {
  return median(a.slice(0, b.length).map((x, i) => x / (b[i] as number)).filter((x) => Number.isFinite(x)));
}

export function geomean(values: readonly number[]): number {
  const v = values.filter((x) => x > 0 && Number.isFinite(x));
  if (v.length === 0) return Number.NaN;
  return Math.exp(v.reduce((a, x) => a + Math.log(x), 0) / v.length);
}

export const round = (x: number, digits = 2): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/** True when this module is the process entry point (`node file.js`). */
export function isMain(metaUrl: string): boolean {
  const entry = process.argv[1];
  return entry !== undefined && new URL(metaUrl).pathname === entry;
}
