/**
 * The outbox's retry schedule, observed where it lives: the `next_attempt_at` the worker stores for a delivery after
 * each failed try (real SQLite store, a real receiver on 127.0.0.1 answering 500). The worker's clock stands still
 * between tries and moves to the stored due time before the next, so each delay is exact:
 * min(max_backoff_ms, initial_backoff_ms · 2^n) · (0.5 + 0.5 · random()), rounded, for the n-th retry (0-based).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { OutboxWorker } from '../../src/notify/index.js';
import { submit, tempStore, webhook, worker } from './outbox-fixtures.js';
import type { TempStore } from './outbox-fixtures.js';
import { WebhookReceiver } from './webhook-receiver.js';

const WAIT = { timeout: 15_000, interval: 10 };
const OUTBOX = { max_attempts: 20, initial_backoff_ms: 1000, max_backoff_ms: 8000, timeout_ms: 2000, concurrency: 4 };
/** Uncapped, the 7th try would wait 64 s: the cap holds it at 8 s. */
const TRIES = 7;
const ALMOST_ONE = 0.999_999;

let temp: TempStore;
let receiver: WebhookReceiver;
let running: OutboxWorker | undefined;

beforeEach(async () => {
  temp = await tempStore();
  receiver = await WebhookReceiver.start();
  receiver.answer = () => 500;
});

afterEach(async () => {
  await running?.stop();
  running = undefined;
  await receiver.close();
  await temp.cleanup();
});

/**
 * Fails one delivery `TRIES` times with `random` as the jitter source and returns the delay the worker stored after
 * each try: its `next_attempt_at` minus the (frozen) time of the try.
 */
async function storedDelays(random: () => number): Promise<number[]> {
  let now = Date.now() + 1000; // the submitted row is due
  const made = worker(temp.store, [webhook('hook-1', receiver.url())], { outbox: OUTBOX, now: () => new Date(now), random });
  running = made.worker;
  running.start();
  const request = await submit(temp.store, ['hook-1']);
  const delays: number[] = [];
  for (let attempt = 1; attempt <= TRIES; attempt += 1) {
    const triedAt = now;
    running.wake();
    const row = await vi.waitFor(async () => {
      const [found] = await temp.store.listDeliveries({ access_request_id: request.id, limit: 1 });
      expect(found).toMatchObject({ status: 'pending', attempts: attempt, last_status: 500 });
      return found!;
    }, WAIT);
    const due = Date.parse(row.next_attempt_at);
    delays.push(due - triedAt);
    now = due; // the retry falls due: the next wake() claims it
  }
  expect(receiver.received).toHaveLength(TRIES);
  return delays;
}

/** The un-jittered delay before retry n (0-based): doubling from initial, capped at max. */
const base = (n: number): number => Math.min(OUTBOX.max_backoff_ms, OUTBOX.initial_backoff_ms * 2 ** n);

describe('the outbox retry schedule (exponential backoff with jitter)', () => {
  it.each([
    { note: 'random() = 0: half of each base delay', randoms: [0], want: [500, 1000, 2000, 4000, 4000, 4000, 4000] },
    { note: 'random() = 0.5: three quarters', randoms: [0.5], want: [750, 1500, 3000, 6000, 6000, 6000, 6000] },
    { note: 'random() = 0.999999: the whole base delay', randoms: [ALMOST_ONE], want: [1000, 2000, 4000, 8000, 8000, 8000, 8000] },
    {
      note: 'a fresh draw for every retry',
      randoms: [ALMOST_ONE, 0, 0.5, ALMOST_ONE, 0, 0.5, 0.25],
      want: [1000, 1000, 3000, 8000, 4000, 6000, 5000],
    },
  ])('$note', async ({ randoms, want }) => {
    let draws = 0;
    const delays = await storedDelays(() => randoms[draws++ % randoms.length] as number);
    expect(delays).toEqual(want);
    expect(draws).toBe(TRIES); // one draw per retry, none for anything else

    // What the table states: within the jitter range of a base that doubles per retry and stops at the maximum.
    delays.forEach((delay, n) => {
      expect(delay).toBeGreaterThanOrEqual(base(n) / 2);
      expect(delay).toBeLessThanOrEqual(base(n));
    });
    expect([0, 1, 2, 3, 4, 5, 6].map(base)).toEqual([1000, 2000, 4000, 8000, 8000, 8000, 8000]);
  });

  it('with a constant draw, each delay doubles the last until the maximum, then stays there', async () => {
    const delays = await storedDelays(() => 0.5);
    const ratios = delays.slice(1).map((d, i) => d / (delays[i] as number));
    expect(ratios).toEqual([2, 2, 2, 1, 1, 1]);
    expect(Math.max(...delays)).toBe(0.75 * OUTBOX.max_backoff_ms);
  });
});
