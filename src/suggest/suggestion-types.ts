/*
 * What the suggestion engine produces (docs/suggestions.md): suggestions, each with its evidence and the edit it
 * would make to one agent's policy file, and per agent the analysis a report shows (scope by scope, with notes for
 * what it saw but does not suggest). The stored form is the store's `SuggestionRecord`, whose `proposal` and
 * `evidence` are the {@link SuggestionProposal} and {@link SuggestionEvidence} below.
 */
import type { SuggestionsConfig } from '../config/config-types.js';
import type { SuggestionKind, SuggestionRecord, UsageSource } from '../store/index.js';
import type { YamlEdit } from './yaml-edit.js';

export type { SuggestionKind };

/** The thresholds of one run: the config's `suggestions` section (but its schedule), or the CLI's flags over it. */
export type SuggestionThresholds = Omit<SuggestionsConfig, 'schedule'>;

/** The thresholds of a `suggestions` section: exactly the four (never its schedule, which is no threshold). */
export function thresholdsOf(config: SuggestionThresholds): SuggestionThresholds {
  return { min_days: config.min_days, min_tokens: config.min_tokens, window_days: config.window_days, ttl_factor: config.ttl_factor };
}

/** The defaults of the config's `suggestions` section (src/config/config-loader.ts applies the same). */
export const DEFAULT_THRESHOLDS: Readonly<SuggestionThresholds> = Object.freeze({ min_days: 30, min_tokens: 20, window_days: 90, ttl_factor: 4 });

/** Sources that show a scope was used: a call the enforcement proxy forwarded, a resource server's report. */
export type UseSource = Extract<UsageSource, 'proxy' | 'resource_server'>;
export const USE_SOURCES: readonly UseSource[] = ['proxy', 'resource_server'];

/**
 * How much a suggestion rests on: `high` from twice `min_days` and five times `min_tokens` up, `medium` from one and a
 * half times and twice, `low` at the thresholds. One step lower when the only use evidence of the integration is
 * resource servers' reports (best effort: a report dropped looks like no use).
 */
export type Confidence = 'high' | 'medium' | 'low';

/** Per task type (`''`: tokens of tasks without one): tokens that carried the scope, and uses of it. */
export interface TaskTypeCounts {
  granted: number;
  used: number;
}

/** What the window shows about one scope of one agent and integration. */
export interface ScopeEvidence {
  scope: string;
  /** Tokens that carried it. */
  granted: number;
  granted_first_at: string | null;
  granted_last_at: string | null;
  /** Uses of it, per source (an introspection is never one). */
  used: Record<UseSource, number>;
  used_first_at: string | null;
  used_last_at: string | null;
  /** Decisions that asked for it, and that refused it. */
  requested: number;
  denied: number;
  /** UTC days from the first token that carried it to the last, both counted; 0 when never granted. */
  days_observed: number;
  /** Keyed by task type, sorted. */
  task_types: Record<string, TaskTypeCounts>;
}

/** The evidence a suggestion rests on, as stored (`SuggestionRecord.evidence`). */
export interface SuggestionEvidence {
  /** The window of the usage summary, [since, until). */
  since: string;
  until: string;
  confidence: Confidence;
  /** The use evidence sources the agent's integration had in the window (`shorten_ttl`: every integration's). */
  sources: UseSource[];
  /** Days and samples the confidence counted (and the thresholds held against). */
  days_observed: number;
  samples: number;
  /** Tokens issued to the agent for the integration (`shorten_ttl`: for all of them) in the window. */
  tokens_issued: number;
  /** `remove_scope`, `move_to_task_type`: the scope's evidence. */
  scope: ScopeEvidence | null;
  /** `shorten_ttl`: the longest observed use of a token (seconds from issue to last use) and tokens it rests on. */
  longest_use_seconds: number | null;
  tokens_with_use: number | null;
  /** Why, in sentences for the report. */
  reasons: string[];
  /** The thresholds it was made with (apply checks the suggestion again with these). */
  thresholds: SuggestionThresholds;
}

/** What a suggestion would change, as stored (`SuggestionRecord.proposal`). */
export interface SuggestionProposal {
  /** One sentence. */
  summary: string;
  /** The edits of the agent's file, in order (`applySuggestion` makes exactly these). */
  edits: YamlEdit[];
  /** Unified diff of the file, before → after. */
  diff: string;
  /** `remove_scope`, `move_to_task_type`: the scope. */
  scope?: string;
  /** `move_to_task_type`: the one task type that used it, the types that would no longer get it. */
  task_type?: string;
  from_task_types?: string[];
  /** `move_to_task_type`: per_task_downscope is turned on (it was off). */
  sets_per_task_downscope?: boolean;
  /** `shorten_ttl`: the agent's effective token_ttl and the proposed one, seconds. */
  from_ttl?: number;
  to_ttl?: number;
}

/** One suggestion as the engine makes it: a stored record less its status. */
export type Suggestion = Omit<SuggestionRecord, 'status' | 'created_at' | 'updated_at' | 'decided_by' | 'decided_at' | 'proposal' | 'evidence'> & {
  proposal: SuggestionProposal;
  evidence: SuggestionEvidence;
};

/** What a report says about a scope it does not suggest changing (or a suggestion it could not make). */
export type NoteKind =
  | 'role_grant'
  | 'no_use_evidence'
  | 'too_little_data'
  | 'binding_held'
  | 'above_ceiling'
  | 'implied_use'
  | 'task_types_inactive'
  | 'untyped_tasks'
  | 'ttl_unobserved'
  | 'not_editable'
  | 'not_in_policy';

export interface ReportNote {
  kind: NoteKind;
  integration: string | null;
  scope: string | null;
  message: string;
}

/** How the engine reads a scope of an agent and integration. */
export type ScopeVerdict = 'used' | 'unused' | 'implied' | 'not_granted' | 'denied' | 'outside_policy';

export interface ScopeAnalysis {
  scope: string;
  /** Where the ceiling comes from: the agent's own max_scope, a role's, a deny list, or none (asked for only). */
  origin: 'own' | 'role' | 'denied' | 'none';
  verdict: ScopeVerdict;
  evidence: ScopeEvidence;
}

export interface IntegrationAnalysis {
  integration: string;
  sources: UseSource[];
  tokens_issued: number;
  /** The longest observed use of one of its tokens, seconds; null without use evidence. */
  longest_use_seconds: number | null;
  /** Sorted by scope. */
  scopes: ScopeAnalysis[];
}

export interface AgentAnalysis {
  agent_id: string;
  /** The agent's policy file, relative to the policy folder; null for an agent no file defines (any more). */
  file: string | null;
  /** Effective, seconds. */
  token_ttl: number | null;
  per_task_downscope: boolean;
  /** Sorted by integration. */
  integrations: IntegrationAnalysis[];
  notes: ReportNote[];
}

/** One run of the engine. */
export interface SuggestionRun {
  generated_at: string;
  since: string;
  until: string;
  first_day: string;
  last_day: string;
  thresholds: SuggestionThresholds;
  policy_revision: string;
  /** In (agent, integration, kind, target) order. */
  suggestions: Suggestion[];
  /** Agents with usage in the window, sorted. */
  agents: AgentAnalysis[];
}
