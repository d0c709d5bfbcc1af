/*
 * What every rule of the engine shares: the facts about one agent (its compiled policy, its file, its roles, its
 * usage) and the one way a rule turns edits into a suggestion (the edited text, its diff, id, hash and confidence),
 * or into a note when the file cannot be edited faithfully.
 */
import type { CompiledAgent } from '../policy/policy-types.js';
import type { AgentFile, RoleFile } from './policy-folder.js';
import { confidenceOf, evidenceHash, suggestionId } from './suggestion-identity.js';
import type {
  ReportNote,
  ScopeEvidence,
  Suggestion,
  SuggestionKind,
  SuggestionProposal,
  SuggestionThresholds,
  UseSource,
} from './suggestion-types.js';
import { unifiedDiff } from './unified-diff.js';
import type { IntegrationUsage } from './usage-evidence.js';
import { EditError, editYaml, type YamlEdit } from './yaml-edit.js';

export interface AgentContext {
  agent: string;
  compiled: CompiledAgent;
  file: AgentFile;
  /** The roles the agent names that exist. */
  roles: readonly RoleFile[];
  /** By integration. */
  usage: ReadonlyMap<string, IntegrationUsage>;
  /** The integration's `implies` (transitive), `{}` when it has none. */
  implies(integration: string): Readonly<Record<string, readonly string[]>>;
  /** Task types of the tasks the agent's tokens were issued for in the window (`''`: none), any integration. */
  observedTypes: ReadonlySet<string>;
  thresholds: SuggestionThresholds;
  since: string;
  until: string;
  suggestions: Suggestion[];
  notes: ReportNote[];
}

export interface SuggestionDraft {
  integration: string;
  kind: SuggestionKind;
  target: string;
  edits: YamlEdit[];
  proposal: Omit<SuggestionProposal, 'edits' | 'diff'>;
  scope: ScopeEvidence | null;
  sources: UseSource[];
  days: number;
  samples: number;
  tokens_issued: number;
  longest_use_seconds?: number;
  tokens_with_use?: number;
  reasons: string[];
}

/** Adds the draft as a suggestion to `ctx`, or a `not_editable` note when its edit cannot be made to the file. */
export function propose(ctx: AgentContext, draft: SuggestionDraft): void {
  let after: string;
  try {
    after = editYaml(ctx.file.text, draft.edits);
  } catch (error) {
    if (!(error instanceof EditError)) throw error;
    ctx.notes.push({
      kind: 'not_editable',
      integration: draft.integration,
      scope: draft.scope?.scope ?? null,
      message: `${draft.proposal.summary}: not suggested, ${ctx.file.file} cannot be edited without changing more than this (${error.message})`,
    });
    return;
  }
  const confidence = confidenceOf(draft.days, draft.samples, draft.sources, ctx.thresholds);
  const { integration, kind, target, edits, sources } = draft;
  ctx.suggestions.push({
    id: suggestionId(ctx.agent, integration, kind, target),
    agent_id: ctx.agent,
    integration,
    kind,
    target,
    proposal: { ...draft.proposal, edits, diff: unifiedDiff(ctx.file.file, ctx.file.text, after) },
    evidence: {
      since: ctx.since,
      until: ctx.until,
      confidence,
      sources,
      days_observed: draft.days,
      samples: draft.samples,
      tokens_issued: draft.tokens_issued,
      scope: draft.scope,
      longest_use_seconds: draft.longest_use_seconds ?? null,
      tokens_with_use: draft.tokens_with_use ?? null,
      reasons: draft.reasons,
      thresholds: { ...ctx.thresholds },
    },
    evidence_hash: evidenceHash({ kind, target, integration, edits, confidence, sources }),
    file: ctx.file.file,
    file_sha256: ctx.file.sha256,
  });
}

/** Whether the window holds enough to suggest anything: `min_days` and `min_tokens`. */
export function enough(ctx: AgentContext, days: number, samples: number): boolean {
  return days >= ctx.thresholds.min_days && samples >= ctx.thresholds.min_tokens;
}

/** `1 token` / `2 tokens`, with thousands separated. */
export function count(n: number, noun: string): string {
  return `${n.toLocaleString('en-US')} ${noun}${n === 1 ? '' : 's'}`;
}

export const day = (iso: string | null): string => (iso === null ? '-' : iso.slice(0, 10));

export const sourceNames = (sources: readonly UseSource[]): string =>
  sources.length === 0 ? 'none' : sources.map((s) => (s === 'proxy' ? 'calls forwarded by the enforcement proxy' : "resource servers' reports")).join(' and ');
