import { describe, expect, it } from 'vitest';
import type { CallerConfig } from '../../src/config/config-types.js';
import { globMatch, maySpeakFor } from '../../src/pdp/caller-agents.js';

const caller = (agents: string[]): CallerConfig => ({ id: 'pep', role: 'pep', key_sha256: '0'.repeat(64), agents, may_assert_context: false });

describe('maySpeakFor', () => {
  it.each([
    { note: 'an exact id', agents: ['support-resolver'], agent: 'support-resolver', want: true },
    { note: 'another id', agents: ['support-resolver'], agent: 'support-resolverx', want: false },
    { note: 'a prefix pattern', agents: ['support-*'], agent: 'support-billing', want: true },
    { note: 'a prefix pattern, other prefix', agents: ['support-*'], agent: 'supportx-billing', want: false },
    { note: 'every agent', agents: ['*'], agent: 'anything.at-all', want: true },
    { note: 'a star in the middle', agents: ['team-*-reader'], agent: 'team-crm-reader', want: true },
    { note: 'a star in the middle, wrong end', agents: ['team-*-reader'], agent: 'team-crm-writer', want: false },
    { note: 'dots are literal', agents: ['a.b'], agent: 'axb', want: false },
    { note: 'no agents', agents: [], agent: 'support-resolver', want: false },
  ])('$note', ({ agents, agent, want }) => {
    expect(maySpeakFor(caller(agents), agent)).toBe(want);
  });
});

describe('globMatch', () => {
  it('matches like a regular expression of .* would, on random cases', () => {
    const alphabet = ['a', 'b', '*'];
    for (let i = 0; i < 5000; i++) {
      const pattern = Array.from({ length: 1 + (i % 7) }, (_, k) => alphabet[(i * 7 + k * 13 + (i >> 3)) % 3]).join('');
      const text = Array.from({ length: i % 9 }, (_, k) => alphabet[(i + k * 5) % 2]).join('');
      const regex = new RegExp(`^${pattern.split('*').join('.*')}$`);
      expect(globMatch(pattern, text), `${pattern} ~ ${text}`).toBe(regex.test(text));
    }
  });

  it('a pathological pattern against a long id answers at once (a backtracking regex took ~50 s)', () => {
    expect(globMatch('a*a*a*a*a*a*a*a*b', 'a'.repeat(128))).toBe(false);
  });
});
