import type { CallerConfig, CallerRole } from '../config/config-types.js';

/** Whether the caller holds a role (its `role`, or any of `roles`). */
export function hasRole(caller: CallerConfig, role: CallerRole): boolean {
  return caller.role === role || (caller.roles?.includes(role) ?? false);
}

/**
 * Whether a PEP caller may ask decisions for an agent: its `agents` list names the agent, or a pattern matches it.
 * A pattern is an agent id with `*` standing for any run of characters (`support-*`, `*`), so a new agent whose id
 * follows the naming convention needs no config edit. Matching is linear in the id's length (no regular
 * expression: the agent id is the PEP's to choose, and a backtracking pattern could hold the event loop).
 */
export function maySpeakFor(caller: CallerConfig, agentId: string): boolean {
  return matcherOf(caller.agents)(agentId);
}

const compiled = new WeakMap<readonly string[], (agentId: string) => boolean>();

function matcherOf(entries: readonly string[]): (agentId: string) => boolean {
  let matcher = compiled.get(entries);
  if (matcher === undefined) {
    const exact = new Set(entries.filter((e) => !e.includes('*')));
    const patterns = entries.filter((e) => e.includes('*'));
    matcher = (agentId) => exact.has(agentId) || patterns.some((p) => globMatch(p, agentId));
    compiled.set(entries, matcher);
  }
  return matcher;
}

/**
 * `*` matches any run of characters, everything else itself. The classic two-pointer match: on a mismatch it
 * returns to the last `*` and lets it take one more character, so each character of `text` is visited a bounded
 * number of times per star position: O(|pattern| × |text|) at worst, never exponential.
 */
export function globMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let resume = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] !== '*' && pattern[p] === text[t]) {
      p++;
      t++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      resume = t;
    } else if (star >= 0) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}
