import { describe, expect, it } from 'vitest';
import { parseTaskElevations, taskFromRow, type TaskRow } from '../../src/store/rows.js';

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

describe('a task row read again (taskFromRow: its context and elevations parsed once while the columns stay the same)', () => {
  const row = (over: Partial<TaskRow> = {}): TaskRow => ({
    id: 'task-rows-1',
    agent_id: 'code-review-agent',
    type: 'review',
    context: JSON.stringify({ repo: 'acme/api', pr: 1 }),
    registered_by: 'orch',
    registered_at: '2026-12-01T10:00:00.000Z',
    expires_at: '2026-12-02T10:00:00.000Z',
    status: 'active',
    completed_at: null,
    completed_by: null,
    elevations: null,
    ...over,
  });

  it('shares the frozen context of an unchanged row, and reads a changed column anew', () => {
    const first = taskFromRow(row());
    const again = taskFromRow(row());
    expect(again.context).toBe(first.context);
    expect(Object.isFrozen(first.context)).toBe(true);
    expect(() => {
      (first.context as Record<string, unknown>)['repo'] = 'other/repo';
    }).toThrow(TypeError);
    // An approval writes the elevations column: the next read has them.
    const approved = taskFromRow(row({ elevations: JSON.stringify([elevation]) }));
    expect(approved.elevations.map((e) => e.id)).toEqual(['ar_1']);
    expect(approved.context).toEqual({ repo: 'acme/api', pr: 1 });
    // Another row with the same id (the store re-created, say) and another context: its own.
    const other = taskFromRow(row({ context: JSON.stringify({ repo: 'acme/web' }), elevations: JSON.stringify([elevation]) }));
    expect(other.context).toEqual({ repo: 'acme/web' });
    // Row fields that are not JSON columns are always the row's own.
    expect(taskFromRow(row({ status: 'completed', completed_at: '2026-12-01T11:00:00.000Z' })).status).toBe('completed');
  });

  it('keeps a bounded number of tasks: many distinct tasks still read correctly', () => {
    for (let i = 0; i < 3000; i++) {
      const t = taskFromRow(row({ id: `task-many-${i}`, context: JSON.stringify({ i }) }));
      expect(t.context).toEqual({ i });
    }
    expect(taskFromRow(row({ id: 'task-many-0', context: JSON.stringify({ i: 0 }) })).context).toEqual({ i: 0 });
  });
});
