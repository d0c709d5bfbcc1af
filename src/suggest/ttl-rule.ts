/*
 * shorten_ttl (docs/suggestions.md): an agent's token_ttl far above the longest any of its tokens was seen in use
 * (from issue to its last forwarded call or reported request) is suggested down to twice that use, in whole
 * minutes, at least 60 s. token_ttl is the agent's (every integration's tokens live that long), so every integration
 * it had tokens for must show use: a token of an integration nobody watches could be used for its whole life.
 */
import { count, day, enough, propose, sourceNames, type AgentContext } from './suggestion-builder.js';
import { USE_SOURCES, type UseSource } from './suggestion-types.js';
import { daysBetween, earliest, latest } from './usage-evidence.js';

/** What shorten_ttl proposes for a longest observed use: `max(60, ceil(longest × 2 / 60) × 60)` seconds. */
export function proposedTtl(longestSeconds: number): number {
  return Math.max(60, Math.ceil((longestSeconds * 2) / 60) * 60);
}

export function shortenTtl(ctx: AgentContext): void {
  const current = ctx.compiled.token_ttl;
  const issued = [...ctx.usage.values()].filter((u) => u.tokens_issued > 0);
  if (issued.length === 0) return;
  const unobserved = issued.filter((u) => u.longest_use_seconds === null).map((u) => u.integration);
  const longest = Math.max(0, ...issued.map((u) => u.longest_use_seconds ?? 0));
  if (current <= ctx.thresholds.ttl_factor * longest) return;
  const proposed = proposedTtl(longest);
  if (proposed >= current) return;
  if (unobserved.length > 0) {
    ctx.notes.push({
      kind: 'ttl_unobserved',
      integration: null,
      scope: null,
      message: `token_ttl ${current} s is far above the longest use seen (${longest} s), but ${count(unobserved.length, 'integration')} (${unobserved.join(', ')}) had tokens and no use evidence: not suggested`,
    });
    return;
  }
  const tokens = issued.reduce((n, u) => n + u.tokens_issued, 0);
  const withUse = issued.reduce((n, u) => n + u.tokens_with_use, 0);
  const first = issued.reduce<string | null>((d, u) => earliest(d, u.issued_first_at), null);
  const last = issued.reduce<string | null>((d, u) => latest(d, u.issued_last_at), null);
  const days = daysBetween(first, last);
  if (!enough(ctx, days, Math.min(tokens, withUse))) {
    ctx.notes.push({
      kind: 'too_little_data',
      integration: null,
      scope: null,
      message: `token_ttl ${current} s is far above the longest use seen (${longest} s), on ${count(withUse, 'token')} with use over ${count(days, 'day')}; below the thresholds (${ctx.thresholds.min_tokens} tokens, ${ctx.thresholds.min_days} days): not suggested yet`,
    });
    return;
  }
  const sources: UseSource[] = USE_SOURCES.filter((s) => issued.some((u) => u.sources.includes(s)));
  propose(ctx, {
    integration: '*',
    kind: 'shorten_ttl',
    target: 'token_ttl',
    edits: [{ op: 'set', path: ['agent_policy', 'token_ttl'], value: proposed, durationComment: spokenDuration(proposed) }],
    proposal: { summary: `shorten ${ctx.agent}'s token_ttl from ${current} s to ${proposed} s: no token was seen in use after ${longest} s`, from_ttl: current, to_ttl: proposed },
    scope: null,
    sources,
    days,
    samples: withUse,
    tokens_issued: tokens,
    longest_use_seconds: longest,
    tokens_with_use: withUse,
    reasons: [
      `the longest use of a token seen: ${longest} s after it was issued (${count(withUse, 'token')} with use, of ${count(tokens, 'token')} issued from ${day(first)} to ${day(last)})`,
      `token_ttl ${current} s is more than ${ctx.thresholds.ttl_factor} × that; proposed: twice it, in whole minutes, at least 60 s`,
      `integrations: ${issued.map((u) => u.integration).join(', ')}; use evidence: ${sourceNames(sources)}`,
    ],
  });
}

/** Seconds as a policy author writes them in a comment: `1 hour`, `5 min`, `90 s`. */
function spokenDuration(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600} hour${seconds === 3600 ? '' : 's'}`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}
