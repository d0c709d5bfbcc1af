import { describe, expect, it } from 'vitest';
import { parseTaskElevations } from '../../src/store/rows.js';

const elevation = {
  id: 'ar_1',
  agent_id: 'code-review-agent',
  requested_by: 'pep-1',
  integration: 'github',
  resource: { type: 'pull_request', id: 'acme/api/pulls/1' },
  scopes: ['pr:write'],
  approved_until: '2026-12-01T12:00:00.000Z',
};

describe('parseTaskElevations (a task row elevations column, read on every decide)', () => {
  it('reads a list, and the same text again as the same list, frozen to its leaves', () => {
    const text = JSON.stringify([elevation]);
    const first = parseTaskElevations(text);
    expect(first).toEqual([elevation]);
    // A copy of the text (not the same string object) still finds the parsed list.
    const again = parseTaskElevations(JSON.stringify([JSON.parse(JSON.stringify(elevation))]));
    expect(again).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    const [e] = first;
    expect(Object.isFrozen(e)).toBe(true);
    expect(Object.isFrozen(e?.scopes)).toBe(true);
    expect(Object.isFrozen(e?.resource)).toBe(true);
    expect(() => (e?.scopes as string[]).push('repo:admin')).toThrow(TypeError);
    expect(parseTaskElevations(text)[0]?.scopes).toEqual(['pr:write']);
  });

  it('reads a changed column as its new value (the text is the key)', () => {
    const one = parseTaskElevations(JSON.stringify([elevation]));
    const later = { ...elevation, id: 'ar_2', scopes: ['pr:write', 'issues:write'] };
    const two = parseTaskElevations(JSON.stringify([elevation, later]));
    expect(two).not.toBe(one);
    expect(two.map((x) => x.id)).toEqual(['ar_1', 'ar_2']);
  });

  it('reads null, malformed text and a value that is not a list as none', () => {
    for (const text of [null, '', '{', '{"id":"ar_1"}', '"x"', 'null']) expect(parseTaskElevations(text)).toEqual([]);
  });

  it('keeps a bounded number of texts: many distinct columns still read correctly', () => {
    for (let i = 0; i < 1000; i++) {
      const list = parseTaskElevations(JSON.stringify([{ ...elevation, id: `ar_${i}` }]));
      expect(list[0]?.id).toBe(`ar_${i}`);
    }
    expect(parseTaskElevations(JSON.stringify([{ ...elevation, id: 'ar_0' }]))[0]?.id).toBe('ar_0');
  });
});
