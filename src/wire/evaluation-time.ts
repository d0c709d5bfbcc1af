/**
 * `input.time` of the evaluation input (v1): the decision's instant in the forms a rule needs. In `wire` because both
 * the PDP, which builds it (pdp/evaluation-input.ts), and the store, which leaves it out of a stored decision event
 * and rebuilds it from the event's time (store/decision-codec.ts), must compute exactly the same value.
 */

/**
 * The decision's instant, read once from the PDP's clock, in the forms a rule needs: the WASM bundle has no
 * `time.now_ns` and no `time.date` / `time.clock` / `time.weekday`, so the calendar fields come precomputed (UTC).
 */
export interface EvaluationTimeV1 {
  /** Nanoseconds since the Unix epoch, what `time.now_ns()` would return (millisecond precision). */
  now_ns: number;
  /** The same instant, RFC 3339 in UTC with milliseconds: `2026-01-05T14:03:07.123Z`. */
  rfc3339: string;
  /** `Sunday` … `Saturday` in UTC, as `time.weekday` names them. */
  weekday: string;
  /** `[year, month 1-12, day 1-31]` in UTC, as `time.date`. */
  date: [number, number, number];
  /** `[hour 0-23, minute, second]` in UTC, as `time.clock`. */
  clock: [number, number, number];
}

const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'] as const;

/**
 * `input.time` for the instant `now`, every field in UTC. `now_ns` is above 2^53 but exact as JSON: the product
 * is the double nearest the true integer and `JSON.stringify` writes it as the millisecond count followed by six
 * zeros, so OPA (which reads JSON numbers exactly), the WASM module and the audit trail all see the same value.
 */
export function evaluationTime(now: Date): EvaluationTimeV1 {
  const ms = now.getTime();
  if (!Number.isFinite(ms)) throw new TypeError('evaluationTime needs a valid Date');
  return {
    now_ns: ms * 1_000_000,
    rfc3339: now.toISOString(),
    weekday: WEEKDAYS[now.getUTCDay()] as string,
    date: [now.getUTCFullYear(), now.getUTCMonth() + 1, now.getUTCDate()],
    clock: [now.getUTCHours(), now.getUTCMinutes(), now.getUTCSeconds()],
  };
}

/**
 * `evaluationTime(now)` deeply frozen, and the same object again for the same millisecond (the last one is kept):
 * the decisions of one millisecond share it, so the decision's input carries it without building it again, the
 * store's codec recognises it by identity, and its canonical text is made once (canonical-json.ts keeps the text of a
 * frozen value). For the decide path; `evaluationTime` gives a value of one's own.
 */
export function sharedEvaluationTime(now: Date): EvaluationTimeV1 {
  const ms = now.getTime();
  if (ms === lastShared.ms) return lastShared.time;
  const time = evaluationTime(now);
  Object.freeze(time.date);
  Object.freeze(time.clock);
  lastShared = { ms, time: Object.freeze(time) };
  return time;
}

let lastShared: { ms: number; time: EvaluationTimeV1 } = { ms: Number.NaN, time: Object.freeze(evaluationTime(new Date(0))) };
