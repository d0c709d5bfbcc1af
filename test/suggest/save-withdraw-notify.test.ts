/**
 * saveSuggestions' withdrawal and notification (migration 7), on a real SQLite store: what counts as new (and is
 * announced), what a withdrawal may touch (only an open suggestion with the hash the caller saw), that a withdrawn
 * suggestion made again is open and new, that nothing is notified when nothing is new, and the Slack form of the
 * notification (mrkdwn escaped, counted past 20).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { policySuggestionDismissedEvent } from '../../src/audit/index.js';
import { renderSuggestionDelivery } from '../../src/notify/index.js';
import type { SuggestionRecord } from '../../src/store/index.js';
import { at, tempStore, type TempStore } from '../store/store-fixtures.js';

let temp: TempStore;
beforeEach(async () => {
  temp = await tempStore();
});
afterEach(async () => temp.cleanup());

function suggestion(id: string, hash = 'h1', more: Partial<SuggestionRecord> = {}): SuggestionRecord {
  return {
    id,
    agent_id: 'release-bot',
    integration: 'github',
    kind: 'remove_scope',
    target: id,
    proposal: { summary: `remove ${id}` },
    evidence: { confidence: 'medium', samples: 90, days_observed: 90, sources: ['proxy'] },
    evidence_hash: hash,
    file: 'agents/release-bot.yaml',
    file_sha256: 'a'.repeat(64),
    status: 'open',
    created_at: at(0),
    updated_at: at(0),
    decided_by: null,
    decided_at: null,
    ...more,
  };
}

const notify = (n: number) => ({ id: `nt-${n}`, at: at(n), deliveries: [{ id: `dl-${n}`, destination: 'security-hook', approver_group: 'security' }] });

describe('saveSuggestions: withdraw and notify', () => {
  it('announces what is new only; nothing when nothing is new', async () => {
    const s = temp.store;
    const first = await s.saveSuggestions([suggestion('sg-a'), suggestion('sg-b')], { notify: notify(1) });
    expect(first).toEqual({ new: ['sg-a', 'sg-b'], withdrawn: [], notification: { id: 'nt-1', kind: 'policy.suggestions', suggestion_ids: ['sg-a', 'sg-b'], created_at: at(1) } });
    expect(await s.getNotification('nt-1')).toEqual(first.notification);
    // Again, the same: open already, nothing new, no notification and no outbox row.
    const again = await s.saveSuggestions([suggestion('sg-a', 'h1', { updated_at: at(2) }), suggestion('sg-b')], { notify: notify(2) });
    expect(again).toEqual({ new: [], withdrawn: [], notification: null });
    expect(await s.getNotification('nt-2')).toBeUndefined();
    expect((await s.listDeliveries({ limit: 10 })).map((d) => [d.id, d.notification_id, d.access_request_id])).toEqual([['dl-1', 'nt-1', null]]);
    // Dismissed on the same evidence: not new; on other evidence: open again, and new.
    await s.decideSuggestion({ id: 'sg-a', status: 'dismissed', by: 'ops', at: at(3), event: policySuggestionDismissedEvent(at(3), { agent_id: 'release-bot', caller_id: 'ops' }, { suggestion_id: 'sg-a', integration: 'github', kind: 'remove_scope', target: 'sg-a', note: null }) });
    expect((await s.saveSuggestions([suggestion('sg-a')], { notify: notify(4) })).new).toEqual([]);
    expect((await s.saveSuggestions([suggestion('sg-a', 'h2')], { notify: notify(5) })).notification?.suggestion_ids).toEqual(['sg-a']);
  });

  it('withdraws only an open suggestion with the hash the caller saw; made again, it is open and new', async () => {
    const s = temp.store;
    await s.saveSuggestions([suggestion('sg-a'), suggestion('sg-b'), suggestion('sg-c')]);
    await s.decideSuggestion({ id: 'sg-c', status: 'dismissed', by: 'ops', at: at(3), event: policySuggestionDismissedEvent(at(3), { agent_id: 'release-bot', caller_id: 'ops' }, { suggestion_id: 'sg-c', integration: 'github', kind: 'remove_scope', target: 'sg-c', note: null }) });
    const result = await s.saveSuggestions([], {
      at: at(10),
      withdraw: [
        { id: 'sg-a', evidence_hash: 'h1' }, // open, as seen: withdrawn
        { id: 'sg-b', evidence_hash: 'h-other' }, // saved again meanwhile with another hash: left open
        { id: 'sg-c', evidence_hash: 'h1' }, // dismissed by an operator: left dismissed
      ],
    });
    expect(result.withdrawn).toEqual(['sg-a']);
    expect((await s.listSuggestions({})).map((r) => `${r.id} ${r.status}`)).toEqual(['sg-a withdrawn', 'sg-b open', 'sg-c dismissed']);
    expect(await s.getSuggestion('sg-a')).toMatchObject({ updated_at: at(10), decided_by: null, decided_at: null });
    expect((await s.listSuggestions({ status: 'withdrawn' })).map((r) => r.id)).toEqual(['sg-a']);
    const back = await s.saveSuggestions([suggestion('sg-a')], { notify: notify(11) });
    expect(back.new).toEqual(['sg-a']);
    expect((await s.getSuggestion('sg-a'))?.status).toBe('open');
    expect(await s.verifyStoredChain()).toMatchObject({ ok: true });
  });

  it('refuses a suggestion both saved and withdrawn, and a withdrawal without a time', async () => {
    await expect(temp.store.saveSuggestions([suggestion('sg-a')], { withdraw: [{ id: 'sg-a', evidence_hash: 'h1' }], at: at(1) })).rejects.toThrow(TypeError);
    await expect(temp.store.saveSuggestions([], { withdraw: [{ id: 'sg-a', evidence_hash: 'h1' }] })).rejects.toThrow(TypeError);
  });
});

describe('the Slack form of a suggestions notification', () => {
  it('escapes what the engine wrote, lists 20 and counts the rest', () => {
    const list = Array.from({ length: 23 }, (_, i) => suggestion(`sg-${i}`, 'h', { proposal: { summary: i === 0 ? 'remove <@channel> & more' : `remove ${i}` } }));
    const body = JSON.parse(
      renderSuggestionDelivery({
        format: 'slack',
        notification: { id: 'nt-1', kind: 'policy.suggestions', suggestion_ids: list.map((s) => s.id), created_at: at(0) },
        suggestions: list,
        delivery_id: 'dl-1',
        group: 'security',
        public_url: 'https://pdp.example.com',
      }),
    ) as { text: string; blocks: Array<{ type: string; text?: { text: string }; elements?: Array<{ text: string }> }> };
    expect(body.text).toBe('23 new policy suggestions (narrower policies, from observed use)');
    const sections = body.blocks.filter((b) => b.type === 'section');
    expect(sections).toHaveLength(20);
    expect(sections[0]?.text?.text).toContain('remove &lt;@channel&gt; &amp; more');
    expect(body.blocks.at(-1)?.elements?.[0]?.text).toMatch(/^3 more in the report · group security · report: https:\/\/pdp\.example\.com\/v1\/suggestions\?status=open&amp;format=html/);
    expect(() => renderSuggestionDelivery({ format: 'pagerduty', notification: { id: 'nt-1', kind: 'policy.suggestions', suggestion_ids: [], created_at: at(0) }, suggestions: [], delivery_id: 'dl-1', group: 'g', public_url: 'https://x' })).toThrow(TypeError);
  });
});
