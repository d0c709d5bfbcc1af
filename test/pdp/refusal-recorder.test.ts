import { afterEach, describe, expect, it } from 'vitest';
import { RefusalRecorder, type Aggregate, type Refusal } from '../../src/pdp/refusal-recorder.js';

/** Refusals are written at a bounded rate, and every one of them is counted. */

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const clock = { now: T0 };
const written: Array<{ key: string; count: number; overflow: boolean }> = [];
const recorders: RefusalRecorder[] = [];

function recorder(options: { burst?: number; perSecond?: number; maxKeys?: number } = {}): RefusalRecorder {
  const r = new RefusalRecorder({
    append: (events) => {
      written.push(...(events as Array<{ key: string; count: number; overflow: boolean }>));
    },
    now: () => new Date(clock.now),
    windowMs: 3_600_000, // flushed by hand
    ...options,
  });
  recorders.push(r);
  return r;
}

const refusal = (key: string, kind = 'auth.failed/unknown_key'): Refusal => ({
  key,
  overflowKey: kind,
  event: (aggregate: Aggregate | undefined) => ({ key, count: aggregate?.count ?? 1, overflow: false }),
  overflowEvent: (aggregate: Aggregate) => ({ key: kind, count: aggregate.count, overflow: true }),
});

const total = (): number => written.reduce((sum, e) => sum + e.count, 0);

afterEach(async () => {
  for (const r of recorders.splice(0)) await r.close();
  written.length = 0;
  clock.now = T0;
});

describe('RefusalRecorder', () => {
  it('writes the first refusals one by one, up to the burst', () => {
    const r = recorder({ burst: 3, perSecond: 0 });
    for (let i = 0; i < 3; i++) r.record(refusal(`k${i}`));
    expect(written).toEqual([0, 1, 2].map((i) => ({ key: `k${i}`, count: 1, overflow: false })));
  });

  it('past the burst, 10,000 identical refusals become one counted event per window', () => {
    const r = recorder({ burst: 2, perSecond: 0 });
    for (let i = 0; i < 10_000; i++) r.record(refusal('same'));
    expect(written).toHaveLength(2);
    void r.flush();
    expect(written).toHaveLength(3);
    expect(written[2]).toEqual({ key: 'same', count: 9_998, overflow: false });
    expect(total()).toBe(10_000);
  });

  it('a sender varying the key (random paths, agents, ips) is bounded by maxKeys, the rest counted by kind', () => {
    const r = recorder({ burst: 5, perSecond: 0, maxKeys: 10 });
    for (let i = 0; i < 50_000; i++) r.record(refusal(`random-${i}`, i % 2 ? 'auth.failed/unknown_key' : 'auth.failed/malformed'));
    void r.flush();
    expect(written.length).toBe(5 + 10 + 2);
    expect(written.filter((e) => e.overflow).map((e) => e.key).sort()).toEqual(['auth.failed/malformed', 'auth.failed/unknown_key']);
    expect(total()).toBe(50_000);
  });

  it('refills at perSecond: a slow trickle is written one by one', () => {
    const r = recorder({ burst: 1, perSecond: 1 });
    for (let i = 0; i < 5; i++) {
      r.record(refusal(`k${i}`));
      clock.now += 1_000;
    }
    expect(written.map((e) => e.count)).toEqual([1, 1, 1, 1, 1]);
  });

  it('once a key is being aggregated it stays aggregated in its window, so its count is exact', () => {
    const r = recorder({ burst: 1, perSecond: 1 });
    r.record(refusal('a')); // written
    r.record(refusal('a')); // aggregated: no allowance left
    clock.now += 5_000; // allowance back
    r.record(refusal('a')); // still aggregated with the one before
    r.record(refusal('b')); // another key: written at once
    void r.flush();
    expect(written).toEqual([
      { key: 'a', count: 1, overflow: false },
      { key: 'b', count: 1, overflow: false },
      { key: 'a', count: 2, overflow: false },
    ]);
  });

  it('close() writes what is pending; nothing is lost at shutdown', async () => {
    const r = recorder({ burst: 0 });
    r.record(refusal('x'));
    expect(written).toEqual([]);
    await r.close();
    expect(written).toEqual([{ key: 'x', count: 1, overflow: false }]);
  });

  it('refuses nonsense options', () => {
    expect(() => new RefusalRecorder({ append: () => undefined, burst: -1 })).toThrow(TypeError);
  });
});
