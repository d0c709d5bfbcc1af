/**
 * Usage summaries built the way the store's rollup builds them (docs: src/store/README.md, "Usage aggregates"), from
 * a description of what happened day by day: tokens granted, calls forwarded, reports, decisions. For the pure
 * engine's tests; the store's own tests check the rollup against real events.
 */
import { buildPolicySet } from '../../src/policy/policy-loader.js';
import type { PolicySource } from '../../src/policy/policy-types.js';
import type { UsageRow, UsageSource, UsageSummary } from '../../src/store/index.js';
import { policyFilesOf, type PolicyFiles } from '../../src/suggest/policy-folder.js';
import type { PolicySet } from '../../src/policy/policy-types.js';

const DAY_MS = 86_400_000;

export interface Activity {
  agent: string;
  integration: string;
  /** The day of the window the activity starts (0-based) and how many consecutive days it lasts. */
  from?: number;
  days: number;
  /** Events per day. */
  perDay?: number;
  task_type?: string;
  record_type?: string;
}

export class UsageBuilder {
  readonly #rows = new Map<string, UsageRow & { dayset: Set<string> }>();
  readonly #issued = new Map<string, { agent_id: string; integration: string; tokens: number; first_at: string; last_at: string; dayset: Set<string> }>();
  readonly #spans = new Map<string, { agent_id: string; integration: string; max_seconds: number; tokens: number }>();

  /** The window: `days` whole UTC days from `start` (YYYY-MM-DD). */
  constructor(
    readonly start = '2026-01-01',
    readonly windowDays = 90,
  ) {}

  /** Tokens carrying `scopes` (each a token.issued event): granted rows and the tokens-issued count. */
  grant(a: Activity & { scopes: string[] }): this {
    this.#each(a, (time) => {
      for (const scope of a.scopes) this.#count(a, scope, 'granted', time);
      const key = `${a.agent}\u0000${a.integration}`;
      const cell = this.#issued.get(key) ?? { agent_id: a.agent, integration: a.integration, tokens: 0, first_at: time, last_at: time, dayset: new Set<string>() };
      cell.tokens++;
      if (time < cell.first_at) cell.first_at = time;
      if (time > cell.last_at) cell.last_at = time;
      cell.dayset.add(time.slice(0, 10));
      this.#issued.set(key, cell);
    });
    return this;
  }

  /** Uses of `scope` with evidence (forwarded proxy calls, or resource server reports). */
  use(a: Activity & { scope: string; source?: 'proxy' | 'resource_server' }): this {
    this.#each(a, (time) => this.#count(a, a.scope, a.source ?? 'proxy', time));
    return this;
  }

  /** Decisions asking for `scope` (requested) and refusing it (denied). */
  ask(a: Activity & { scope: string; denied?: boolean }): this {
    this.#each(a, (time) => {
      this.#count(a, a.scope, 'requested', time);
      if (a.denied === true) this.#count(a, a.scope, 'denied', time);
    });
    return this;
  }

  /** The longest observed use of a token of the agent's integration. */
  span(agent: string, integration: string, maxSeconds: number, tokens: number): this {
    const key = `${agent}\u0000${integration}`;
    const cell = this.#spans.get(key) ?? { agent_id: agent, integration, max_seconds: 0, tokens: 0 };
    cell.max_seconds = Math.max(cell.max_seconds, maxSeconds);
    cell.tokens += tokens;
    this.#spans.set(key, cell);
    return this;
  }

  build(): UsageSummary {
    const since = `${this.start}T00:00:00.000Z`;
    const until = new Date(Date.parse(since) + this.windowDays * DAY_MS).toISOString();
    const order = (a: UsageRow, b: UsageRow): number => {
      const ka = [a.agent_id, a.integration, a.scope, a.task_type, a.record_type, a.source].join('\u0000');
      const kb = [b.agent_id, b.integration, b.scope, b.task_type, b.record_type, b.source].join('\u0000');
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    };
    const byPair = <T extends { agent_id: string; integration: string }>(a: T, b: T): number =>
      a.agent_id === b.agent_id ? (a.integration < b.integration ? -1 : 1) : a.agent_id < b.agent_id ? -1 : 1;
    return {
      since,
      until,
      first_day: this.start,
      last_day: new Date(Date.parse(until) - 1).toISOString().slice(0, 10),
      seq: 1,
      rows: [...this.#rows.values()].map(({ dayset, ...row }) => ({ ...row, days: dayset.size })).sort(order),
      spans: [...this.#spans.values()].sort(byPair),
      issued: [...this.#issued.values()].map(({ dayset, ...cell }) => ({ ...cell, days: dayset.size })).sort(byPair),
    };
  }

  #each(a: Activity, fn: (time: string) => void): void {
    const from = a.from ?? 0;
    for (let d = from; d < from + a.days; d++) {
      for (let i = 0; i < (a.perDay ?? 1); i++) {
        fn(new Date(Date.parse(`${this.start}T09:00:00.000Z`) + d * DAY_MS + i * 60_000).toISOString());
      }
    }
  }

  #count(a: Activity, scope: string, source: UsageSource, time: string): void {
    const task_type = a.task_type ?? '';
    const record_type = a.record_type ?? '';
    const key = [a.agent, a.integration, scope, task_type, record_type, source].join('\u0000');
    const row = this.#rows.get(key) ?? {
      agent_id: a.agent,
      integration: a.integration,
      scope,
      task_type,
      record_type,
      source,
      n: 0,
      first_at: time,
      last_at: time,
      days: 0,
      dayset: new Set<string>(),
    };
    row.n++;
    if (time < row.first_at) row.first_at = time;
    if (time > row.last_at) row.last_at = time;
    row.dayset.add(time.slice(0, 10));
    this.#rows.set(key, row);
  }
}

/** An in-memory policy folder: the compiled set and its source documents. */
export function policyOf(files: Record<string, string>): { policy: PolicySet; files: PolicyFiles; sources: PolicySource[] } {
  const sources = Object.entries(files).map(([file, text]) => ({ file, text }));
  return { policy: buildPolicySet(sources), files: policyFilesOf(sources), sources };
}
