/**
 * The server's scheduled suggestion run (config `suggestions.schedule`, docs/suggestions.md "Schedule"): at the
 * next `at` (UTC) after the server starts, then every `every_days` days, the same run as `agent-pdp suggest` (the
 * config's window and thresholds, every agent), whose new suggestions (never seen, or open again after being decided
 * or withdrawn on other evidence) are announced by one `policy.suggestions` notification, written with them in one
 * transaction and delivered by the escalation outbox to the webhooks of the `notify` groups. A suggestion already
 * open, or dismissed on the same evidence, is not announced again.
 *
 * The clock is read, never slept on: a timer (unref'd, `checkMs`) calls `check()`, which runs when the time has come.
 * A run missed (the process was down, the clock jumped) is made once at the next check; the next is then the first
 * scheduled time after now. A failed run is logged and waits for its next time. Runs never overlap.
 */
import { randomUUID } from 'node:crypto';
import type { SuggestionScheduleConfig, WebhookConfig } from '../config/config-types.js';
import type { PolicyFolder } from './policy-folder.js';
import { runSuggestions, type SuggestionRunInput, type SuggestionRunResult } from './suggestion-run.js';
import type { SuggestionThresholds } from './suggestion-types.js';

const DAY_MS = 86_400_000;

export interface ScheduleLogger {
  info(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

export interface SuggestionScheduleOptions {
  store: SuggestionRunInput['store'];
  schedule: SuggestionScheduleConfig;
  /** The config's thresholds; `window_days` is the window each run reads. */
  thresholds: SuggestionThresholds;
  /** The policy folder as the server loads it, read at each run. */
  loadFolder: () => Promise<PolicyFolder>;
  /** The escalation webhooks: those serving a `notify` group (generic or slack) receive the notification. */
  webhooks: readonly WebhookConfig[];
  /** Called after a run wrote a notification (the outbox worker's `wake`). */
  notified?: () => void;
  logger?: ScheduleLogger;
  /** Default `new Date()`. */
  now?: () => Date;
  /** How often the timer looks at the clock. Default 60,000 ms. */
  checkMs?: number;
}

export class SuggestionSchedule {
  readonly #o: SuggestionScheduleOptions;
  readonly #now: () => Date;
  #next: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<SuggestionRunResult | null> | undefined;

  constructor(options: SuggestionScheduleOptions) {
    const { every_days: every, at } = options.schedule;
    if (!Number.isSafeInteger(every) || every < 1) throw new TypeError('"schedule.every_days" must be a positive integer');
    if (!/^([01][0-9]|2[0-3]):[0-5][0-9]$/.test(at)) throw new TypeError('"schedule.at" must be HH:MM');
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
    this.#next = firstRun(this.#now().getTime(), at);
  }

  /** When the next run is due. */
  get nextRunAt(): Date {
    return new Date(this.#next);
  }

  /** Looks at the clock every `checkMs` (the timer never keeps the process alive). */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => void this.check(), this.#o.checkMs ?? 60_000);
    this.#timer.unref();
  }

  /** Stops the timer and waits for a run in progress. */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /** Runs if the time has come (and no run is in progress); resolves with that run's result, or null. Never rejects. */
  async check(): Promise<SuggestionRunResult | null> {
    const now = this.#now().getTime();
    if (this.#running !== undefined || now < this.#next) return null;
    const every = this.#o.schedule.every_days * DAY_MS;
    while (this.#next <= now) this.#next += every;
    this.#running = this.#run(now).finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #run(nowMs: number): Promise<SuggestionRunResult | null> {
    const until = new Date(nowMs).toISOString();
    const since = new Date(nowMs - this.#o.thresholds.window_days * DAY_MS).toISOString();
    try {
      const folder = await this.#o.loadFolder();
      const deliveries = deliveriesFor(this.#o.schedule.notify, this.#o.webhooks);
      const result = await runSuggestions({
        store: this.#o.store,
        folder,
        thresholds: this.#o.thresholds,
        since,
        until,
        ...(deliveries.length === 0 ? {} : { notify: { id: `nt_${randomUUID()}`, at: until, deliveries } }),
      });
      if (result.saved.notification !== null) this.#o.notified?.();
      this.#o.logger?.info(
        {
          suggestions: result.suggestions.length,
          new: result.saved.new.length,
          withdrawn: result.saved.withdrawn.length,
          notification: result.saved.notification?.id ?? null,
          next_run_at: new Date(this.#next).toISOString(),
        },
        'scheduled suggestion run done',
      );
      return result;
    } catch (err) {
      this.#o.logger?.error({ error: err instanceof Error ? err.message : String(err), next_run_at: new Date(this.#next).toISOString() }, 'scheduled suggestion run failed');
      return null;
    }
  }
}

/** The first `HH:MM` (UTC) strictly after `nowMs`. */
function firstRun(nowMs: number, at: string): number {
  const [h, m] = at.split(':').map(Number) as [number, number];
  const day = new Date(nowMs);
  const today = Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate(), h, m);
  return today > nowMs ? today : today + DAY_MS;
}

/** One delivery per webhook that can carry it (generic, slack) and serves a notified group (named after the first). */
function deliveriesFor(groups: readonly string[], webhooks: readonly WebhookConfig[]): Array<{ id: string; destination: string; approver_group: string }> {
  const out: Array<{ id: string; destination: string; approver_group: string }> = [];
  for (const w of webhooks) {
    if (w.format === 'pagerduty') continue;
    const group = groups.find((g) => w.groups.includes(g));
    if (group !== undefined) out.push({ id: `dl_${randomUUID()}`, destination: w.id, approver_group: group });
  }
  return out;
}
