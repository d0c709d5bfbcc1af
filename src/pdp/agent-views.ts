/**
 * The agents views of the web console (issue 22): `GET /v1/agents` and `GET /v1/agents/{agent_id}/activity`. Reads
 * only, in one place:
 *
 * - the ceilings come from the compiled policy in force (`engine.active.policySet`), where roles are already applied
 *   (docs/policy-semantics.md C2–C6), through `integrationBound`, the function `POST /v1/grantable-scopes` answers
 *   with: nothing is re-derived here;
 * - the activity comes from the store's usage aggregates (`rollupUsage`, then `usageSummary`), never from the trail:
 *   its cost depends on the agent's scopes × days, not on the size of the trail.
 */
import { PdpError } from '../errors/pdp-error.js';
import type { Store, UsageRow } from '../store/index.js';
import type { AgentActivityDayV1, AgentActivityV1, AgentListV1, AgentScopeUsageV1, AgentV1 } from '../wire/agents-v1.js';
import { integrationBound } from './grantable-scopes.js';
import type { PolicyEngine } from './policy-engine.js';

const DAY_MS = 86_400_000;
const byCode = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export interface AgentViewsOptions {
  engine: Pick<PolicyEngine, 'active'>;
  store: Pick<Store, 'rollupUsage' | 'usageSummary'>;
  now?: () => Date;
}

export class AgentViews {
  readonly #o: AgentViewsOptions;

  constructor(options: AgentViewsOptions) {
    this.#o = options;
  }

  /**
   * The agents the policy in force names, by id, with their roles and effective ceilings: all of them, or a page of
   * at most `page.limit` after the id `page.after` (keyset: a reload between pages neither repeats nor skips an id
   * that stays). No policy: 503 bundle_missing.
   */
  list(page: { limit?: number; after?: string } = {}): AgentListV1 {
    const active = this.#o.engine.active;
    if (!active) throw new PdpError('bundle_missing', 'no policy is loaded');
    const set = active.policySet;
    const compiled = set.data.policies.agents;
    const start = page.after === undefined ? 0 : firstAfter(set.agents, page.after);
    const end = page.limit === undefined ? set.agents.length : Math.min(set.agents.length, start + page.limit);
    const agents: AgentV1[] = [];
    for (const id of set.agents.slice(start, end)) {
      const agent = Object.hasOwn(compiled, id) ? compiled[id] : undefined;
      if (agent === undefined) continue;
      const taskTypes = Object.keys(agent.task_types).sort(byCode);
      const roles = set.agentRoles !== undefined && Object.hasOwn(set.agentRoles, id) ? [...(set.agentRoles[id] ?? [])] : [];
      agents.push({
        agent_id: id,
        roles,
        task_restricted: agent.per_task_downscope === true && taskTypes.length > 0,
        task_types: taskTypes,
        integrations: Object.keys(agent.integrations)
          .sort(byCode)
          .flatMap((name) => {
            const integration = agent.integrations[name];
            if (integration === undefined) return [];
            const { grantable, requestable } = integrationBound(integration);
            const deny = Object.keys(integration.denied).filter((s) => integration.denied[s] === true).sort(byCode);
            return [{ integration: name, max_scope: grantable, deny_scope: deny, token_ttl_seconds: agent.token_ttl, requestable }];
          }),
      });
    }
    return { policy_revision: active.revision, agents, next_after: end < set.agents.length ? (set.agents[end - 1] ?? null) : null };
  }

  /**
   * One agent's last `days` UTC days (today included, up to now): per day, the scopes its decisions asked for and
   * those refused; per integration and scope, tokens granted vs uses observed over the window. Folds the trail into
   * the aggregates first (what was decided a moment ago counts). An id nobody knows answers zeros, not 404: the
   * aggregates cannot tell "never active" from "not active in this window", and the view is the same.
   */
  async activity(agentId: string, days: number): Promise<AgentActivityV1> {
    if (!Number.isSafeInteger(days) || days < 1) throw new TypeError('days must be a positive integer');
    const store = this.#o.store;
    const now = (this.#o.now ?? (() => new Date()))();
    const untilMs = now.getTime();
    const firstDay = Math.floor(untilMs / DAY_MS) * DAY_MS - (days - 1) * DAY_MS;
    const since = new Date(firstDay).toISOString();
    const until = now.toISOString();
    await store.rollupUsage();
    const window = await store.usageSummary({ since, until, agent_id: agentId });
    const perDay: AgentActivityDayV1[] = [];
    for (let i = 0; i < days; i++) {
      const from = firstDay + i * DAY_MS;
      const day = new Date(from).toISOString().slice(0, 10);
      // One summary per day: the aggregates are daily, so a day's window sums exactly that day's cells. Today's
      // window ends now; at midnight sharp it is empty.
      const dayUntil = Math.min(from + DAY_MS, untilMs);
      if (dayUntil <= from) {
        perDay.push({ day, decisions: 0, denials: 0 });
        continue;
      }
      const summary = await store.usageSummary({ since: new Date(from).toISOString(), until: new Date(dayUntil).toISOString(), agent_id: agentId });
      perDay.push({ day, decisions: total(summary.rows, 'requested'), denials: total(summary.rows, 'denied') });
    }
    const policy = this.#o.engine.active?.policySet.data.policies.agents;
    return {
      agent_id: agentId,
      in_policy: policy !== undefined && Object.hasOwn(policy, agentId),
      since,
      until,
      days: perDay,
      scopes: scopeUsage(window.rows),
    };
  }
}

/** The index of the first id above `after` in `sorted` (ids sorted by code unit, as `PolicySet.agents` is). */
function firstAfter(sorted: readonly string[], after: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as string) <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function total(rows: readonly UsageRow[], source: UsageRow['source']): number {
  let n = 0;
  for (const row of rows) if (row.source === source) n += row.n;
  return n;
}

/** The window's rows (one per task type, record type and source) summed per integration and scope, sorted. */
function scopeUsage(rows: readonly UsageRow[]): AgentScopeUsageV1[] {
  const byScope = new Map<string, AgentScopeUsageV1>();
  for (const row of rows) {
    const key = `${row.integration}\u0000${row.scope}`;
    let entry = byScope.get(key);
    if (entry === undefined) {
      entry = { integration: row.integration, scope: row.scope, granted: 0, used: 0, requested: 0, denied: 0 };
      byScope.set(key, entry);
    }
    if (row.source === 'granted') entry.granted += row.n;
    else if (row.source === 'proxy' || row.source === 'resource_server') entry.used += row.n;
    else if (row.source === 'requested') entry.requested += row.n;
    else entry.denied += row.n;
  }
  return [...byScope.values()].sort((a, b) => byCode(a.integration, b.integration) || byCode(a.scope, b.scope));
}
