/*
 * A suggestion is applied only while the evidence still supports it. One saved last month may not hold any more: the
 * scope was used since, a second task type started using it, a token lived longer. Before `apply` the trail is
 * rolled up again and the engine run again for the suggestion's agent, on a window of the same length ending now,
 * with the thresholds the suggestion was made with: it must propose exactly the same edits, or the suggestion is
 * stale (run `agent-pdp suggest` again).
 */
import { canonicalJson } from '../audit/index.js';
import { PdpError } from '../errors/pdp-error.js';
import type { Store, SuggestionRecord } from '../store/index.js';
import { suggestPolicies } from './engine.js';
import type { PolicyFolder } from './policy-folder.js';
import type { SuggestionThresholds } from './suggestion-types.js';

const DAY_MS = 86_400_000;

export interface RecheckInput {
  store: Pick<Store, 'rollupUsage' | 'usageSummary'>;
  /** The policy folder as it is now. */
  folder: Pick<PolicyFolder, 'set' | 'agents' | 'roles'>;
  now: Date;
  /** For a suggestion that does not record its own (the config's `suggestions`). */
  thresholds: SuggestionThresholds;
}

/** Resolves when the evidence of now suggests the same edits; `suggestion_stale` otherwise. */
export async function recheckSuggestion(record: SuggestionRecord, input: RecheckInput): Promise<void> {
  const evidence = (typeof record.evidence === 'object' && record.evidence !== null ? record.evidence : {}) as { since?: unknown; until?: unknown; thresholds?: unknown };
  const thresholds = isThresholds(evidence.thresholds) ? evidence.thresholds : input.thresholds;
  const span = typeof evidence.since === 'string' && typeof evidence.until === 'string' ? Date.parse(evidence.until) - Date.parse(evidence.since) : Number.NaN;
  const length = Number.isFinite(span) && span > 0 ? span : thresholds.window_days * DAY_MS;
  await input.store.rollupUsage();
  const until = input.now.toISOString();
  const summary = await input.store.usageSummary({ since: new Date(input.now.getTime() - length).toISOString(), until, agent_id: record.agent_id });
  const run = suggestPolicies({ summary, policy: input.folder.set, files: input.folder, thresholds, now: until, agent: record.agent_id });
  const now = run.suggestions.find((s) => s.id === record.id);
  const edits = (record.proposal as { edits?: unknown } | null)?.edits;
  if (now === undefined) {
    const notes = run.agents.flatMap((a) => a.notes).filter((n) => n.scope === record.target || (n.scope === null && n.integration === record.integration));
    const why = notes.length === 0 ? '' : ` (${notes.map((n) => n.message).join('; ')})`;
    throw new PdpError('suggestion_stale', `suggestion ${record.id} no longer holds on the evidence up to now${why}: nothing written; run agent-pdp suggest again`);
  }
  if (canonicalJson(now.proposal.edits) !== canonicalJson(edits ?? null)) {
    throw new PdpError('suggestion_stale', `the evidence up to now suggests another change than suggestion ${record.id} (${now.proposal.summary}): nothing written; run agent-pdp suggest again`);
  }
}

function isThresholds(value: unknown): value is SuggestionThresholds {
  if (typeof value !== 'object' || value === null) return false;
  const t = value as Record<string, unknown>;
  return ['min_days', 'min_tokens', 'window_days', 'ttl_factor'].every((k) => typeof t[k] === 'number' && Number.isFinite(t[k]) && (t[k] as number) > 0);
}
