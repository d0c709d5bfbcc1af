import type { CallerConfig } from '../config/config-types.js';

/**
 * Whether a PEP caller may ask decisions for an agent: its `agents` list names the agent, or a pattern matches it.
 * A pattern is an agent id with `*` standing for any run of characters (`support-*`, `*`), so a new agent whose id
 * follows the naming convention needs no config edit. Compiled once per caller entry.
 */
export function maySpeakFor(caller: CallerConfig, agentId: string): boolean {
  return matcherOf(caller.agents)(agentId);
}

const compiled = new WeakMap<readonly string[], (agentId: string) => boolean>();

function matcherOf(entries: readonly string[]): (agentId: string) => boolean {
  let matcher = compiled.get(entries);
  if (matcher === undefined) {
    const exact = new Set(entries.filter((e) => !e.includes('*')));
    const patterns = entries.filter((e) => e.includes('*')).map((e) => new RegExp(`^${e.split('*').map(escape).join('.*')}$`, 's'));
    matcher = (agentId) => exact.has(agentId) || patterns.some((p) => p.test(agentId));
    compiled.set(entries, matcher);
  }
  return matcher;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
