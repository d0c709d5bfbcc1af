/**
 * Wire format v1 of the agents views, read by the web console (issue 22): `GET /v1/agents` (every agent the policy
 * in force names, with its effective ceilings after roles) and `GET /v1/agents/{agent_id}/activity` (its decisions
 * per UTC day and its scopes granted vs used, from the usage aggregates). Read-only, for auditors and admins.
 */

/** Most agents in one page of `GET /v1/agents` (`limit`); without `limit`, the answer holds them all. */
export const AGENTS_PAGE_MAX = 1000;

/** `days` of the activity view: default, and the range accepted. */
export const ACTIVITY_DAYS_DEFAULT = 14;
export const ACTIVITY_DAYS_MIN = 1;
export const ACTIVITY_DAYS_MAX = 90;

/** One integration of an agent: its effective ceiling, as the compiled policy holds it (roles applied). Lists sorted. */
export interface AgentIntegrationV1 {
  integration: string;
  /** What a decision could at most grant here (docs/policy-semantics.md C2–C3: roles' ceiling narrowed by the agent, minus denied), before any task type. */
  max_scope: string[];
  /** Never granted: the agent's deny_scope united with every named role's. */
  deny_scope: string[];
  /** The agent's token lifetime cap, seconds (C6: its own token_ttl or a role's, the smaller); the same on every integration. */
  token_ttl_seconds: number;
  /** Scopes above max_scope an approver may grant (break-glass escalation). */
  requestable: string[];
}

export interface AgentV1 {
  agent_id: string;
  /** The roles the agent's policy names, as written; [] when none (or a compiled bundle that does not record them). */
  roles: string[];
  /** Whether task types narrow these ceilings further (per_task_downscope with task types declared). */
  task_restricted: boolean;
  /** Its task types (own and inherited from roles), sorted; [] when none. */
  task_types: string[];
  /** By integration name. */
  integrations: AgentIntegrationV1[];
}

export interface AgentListV1 {
  /** The revision of the policy these ceilings are read from (`policy_revision` of a decision made now). */
  policy_revision: string;
  /** By agent id. */
  agents: AgentV1[];
  /** With `limit`: the `after` of the next page; null when this page is the last (always without `limit`). */
  next_after: string | null;
}

/** One UTC day of an agent's decisions, counted per scope from the usage aggregates. */
export interface AgentActivityDayV1 {
  /** YYYY-MM-DD (UTC). */
  day: string;
  /** Scopes asked for in decisions that day (a decision asking for n scopes counts n), whatever the answer. */
  decisions: number;
  /**
   * Scopes decisions that day refused by name (`denied_scopes`). A decision refused as a whole before any scope is
   * judged (unknown agent or integration, a task denial, an extension rule, approval needed) names none: it counts in
   * `decisions` only. The usage aggregates count scopes, not decisions (src/store/usage-fold.ts).
   */
  denials: number;
}

/** One scope of one integration over the window. */
export interface AgentScopeUsageV1 {
  integration: string;
  scope: string;
  /** Tokens issued carrying the scope. */
  granted: number;
  /** Observed uses: calls the enforcement proxy forwarded plus requests resource servers reported. */
  used: number;
  /** Decisions that asked for the scope. */
  requested: number;
  /** Decisions that refused it by name (see `AgentActivityDayV1.denials`). */
  denied: number;
}

export interface AgentActivityV1 {
  agent_id: string;
  /** Whether the policy in force names the agent (an agent it no longer names still has its history). */
  in_policy: boolean;
  /** The window, [since, until): midnight UTC `days - 1` days before today, to now. */
  since: string;
  until: string;
  /** Every day of the window, oldest first (zeros on a day without any). */
  days: AgentActivityDayV1[];
  /** Scopes with anything granted, used, requested or denied in the window, by integration then scope. */
  scopes: AgentScopeUsageV1[];
}
