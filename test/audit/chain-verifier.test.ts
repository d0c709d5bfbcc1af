import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChainVerifier, GENESIS_HASH, verifyChain, verifyChainAsync } from '../../src/audit/index.js';
import type { AuditEventV1, ChainBreakKind } from '../../src/audit/index.js';
import { buildChain, fileTamper, rehash, tableTamper } from './chain-fixtures.js';

const chain = buildChain(10);

describe('verifyChain on an intact chain', () => {
  it('accepts it and reports the head', () => {
    const last = chain[9] as AuditEventV1;
    expect(verifyChain(chain)).toEqual({ ok: true, count: 10, last_seq: 10, last_hash: last.hash, first_time: (chain[0] as AuditEventV1).time, last_time: last.time });
  });

  it('accepts an empty chain: its head is the start', () => {
    expect(verifyChain([])).toEqual({ ok: true, count: 0, last_seq: 0, last_hash: GENESIS_HASH });
  });

  it('verifies a chain that continues from a checkpoint', () => {
    const rest = chain.slice(4);
    const checkpoint = chain[3] as AuditEventV1;
    expect(verifyChain(rest, { startSeq: 5, startPrevHash: checkpoint.hash })).toMatchObject({ ok: true, count: 6 });
    expect(verifyChain(rest)).toMatchObject({ ok: false, kind: 'removed', seq: 1 });
  });

  it('works the same over an async source', async () => {
    async function* source() {
      yield* chain;
    }
    expect(await verifyChainAsync(source())).toMatchObject({ ok: true, count: 10 });
  });
});

describe('verifyChain names the first tampered event', () => {
  it.each<{ note: string; events: AuditEventV1[]; kind: ChainBreakKind; seq: number }>([
    { note: 'data edited', events: fileTamper.edit(chain, 4), kind: 'changed', seq: 4 },
    { note: 'first event edited', events: fileTamper.edit(chain, 1), kind: 'changed', seq: 1 },
    { note: 'last event edited', events: fileTamper.edit(chain, 10), kind: 'changed', seq: 10 },
    { note: 'hash field edited', events: fileTamper.editHashField(chain, 6), kind: 'changed', seq: 6 },
    { note: 'edited and re-hashed', events: fileTamper.editAndRehash(chain, 4), kind: 'changed', seq: 4 },
    { note: 'event removed', events: fileTamper.remove(chain, 5), kind: 'removed', seq: 5 },
    { note: 'first event removed', events: fileTamper.remove(chain, 1), kind: 'removed', seq: 1 },
    { note: 'two events removed', events: fileTamper.remove(fileTamper.remove(chain, 5), 6), kind: 'removed', seq: 5 },
    { note: 'neighbours swapped', events: fileTamper.swapWithNext(chain, 3), kind: 'reordered', seq: 3 },
    { note: 'last two swapped', events: fileTamper.swapWithNext(chain, 9), kind: 'reordered', seq: 9 },
    { note: 'forged event inserted', events: fileTamper.insertForgedAfter(chain, 4), kind: 'inserted', seq: 5 },
    { note: 'garbage event inserted', events: fileTamper.insertGarbageAfter(chain, 4), kind: 'inserted', seq: 5 },
    { note: 'event replayed at the end', events: fileTamper.duplicate(chain, 2), kind: 'inserted', seq: 11 },
    { note: 'row removed, rest renumbered', events: tableTamper.removeAndRenumber(chain, 5), kind: 'removed', seq: 5 },
    { note: 'row inserted, rest renumbered', events: tableTamper.insertForgedAndRenumber(chain, 4), kind: 'inserted', seq: 5 },
    { note: 'two rows swapped (contents)', events: tableTamper.swapContents(chain, 3), kind: 'reordered', seq: 3 },
  ])('$note → $kind at seq $seq', ({ events, kind, seq }) => {
    const result = verifyChain(events);
    expect(result).toMatchObject({ ok: false, kind, seq });
    if (!result.ok) expect(result.verified).toBeLessThan(seq);
  });

  it('detects a truncated tail only against an anchored head', () => {
    const truncated = chain.slice(0, 8);
    const anchor = { seq: 10, hash: (chain[9] as AuditEventV1).hash };
    expect(verifyChain(truncated)).toMatchObject({ ok: true, count: 8 });
    expect(verifyChain(truncated, { expectedLast: anchor })).toMatchObject({ ok: false, kind: 'removed', seq: 9 });
    expect(verifyChain(chain, { expectedLast: anchor })).toMatchObject({ ok: true });
  });

  it('detects a rewritten tail against an anchored head', () => {
    const anchor = { seq: 10, hash: (chain[9] as AuditEventV1).hash };
    const rewritten = buildChain(10).map((e, i) => (i === 9 ? fileTamper.editAndRehash([e], e.seq)[0] as AuditEventV1 : e));
    expect(verifyChain(rewritten, { expectedLast: anchor })).toMatchObject({ ok: false, kind: 'changed', seq: 10 });
  });

  it('checks range anchors (the signed-heads file against an export) as far as the range reaches, and counts the rest', () => {
    const hashOf = (seq: number) => (chain[seq - 1] as AuditEventV1).hash;
    const heads = [3, 7, 10].map((seq) => ({ seq, hash: hashOf(seq) }));
    const archive = chain.slice(0, 8);
    // Strict anchors beyond the end are a cut tail; range anchors there are only out of the range.
    expect(verifyChain(archive, { anchors: heads })).toMatchObject({ ok: false, kind: 'removed', seq: 9 });
    expect(verifyChain(archive, { rangeAnchors: heads })).toMatchObject({
      ok: true,
      count: 8,
      range_anchors: { checked: 2, newest_checked: 7, before: 0, after: 1 },
    });
    expect(verifyChain(chain, { rangeAnchors: heads })).toMatchObject({ ok: true, range_anchors: { checked: 3, newest_checked: 10, after: 0 } });
    // Every anchor in the range is checked, not only the newest: a file whose first part was rewritten fails there.
    const early = { seq: 3, hash: 'e'.repeat(64) };
    expect(verifyChain(archive, { rangeAnchors: [early, ...heads.slice(1)] })).toMatchObject({ ok: false, kind: 'changed', seq: 3 });
    // Events 5..8 rewritten and re-hashed: the chain alone verifies; the anchor at 7 does not.
    const edited = archive.slice(0, 4);
    for (const e of archive.slice(4)) edited.push(rehash({ ...e, data: { edited: true }, prev_hash: (edited.at(-1) as AuditEventV1).hash }));
    expect(verifyChain(edited)).toMatchObject({ ok: true, count: 8 });
    expect(verifyChain(edited, { rangeAnchors: heads })).toMatchObject({ ok: false, kind: 'changed', seq: 7 });
    expect(verifyChain(archive, { rangeAnchors: [] })).toMatchObject({ ok: true, range_anchors: { checked: 0, newest_checked: null, before: 0, after: 0 } });
  });

  it('checks a range anchor at the seq before a range against its start, and leaves earlier ones out', () => {
    const hashOf = (seq: number) => (chain[seq - 1] as AuditEventV1).hash;
    const range = chain.slice(4);
    const options = { startSeq: 5, startPrevHash: hashOf(4) };
    const heads = [2, 4, 9].map((seq) => ({ seq, hash: hashOf(seq) }));
    expect(verifyChain(range, { ...options, rangeAnchors: heads })).toMatchObject({ ok: true, range_anchors: { checked: 2, newest_checked: 9, before: 1, after: 0 } });
    expect(verifyChain(range, { ...options, rangeAnchors: [{ seq: 4, hash: 'e'.repeat(64) }] })).toMatchObject({ ok: false, kind: 'changed', seq: 4 });
  });

  it('checks a range anchor at the end of a skipped run against its last hash, and refuses one inside it', () => {
    const hashOf = (seq: number) => (chain[seq - 1] as AuditEventV1).hash;
    const run = (rangeAnchors: { seq: number; hash: string }[]) => {
      const verifier = new ChainVerifier({ rangeAnchors });
      for (const e of chain.slice(0, 3)) verifier.push(e);
      verifier.skip(4, 6, hashOf(3), hashOf(6));
      for (const e of chain.slice(6)) verifier.push(e);
      return verifier.end();
    };
    expect(run([{ seq: 6, hash: hashOf(6) }])).toMatchObject({ ok: true, range_anchors: { checked: 1, newest_checked: 6 } });
    expect(run([{ seq: 6, hash: 'e'.repeat(64) }])).toMatchObject({ ok: false, kind: 'changed', seq: 6 });
    expect(run([{ seq: 5, hash: hashOf(5) }])).toMatchObject({ ok: false, kind: 'removed', seq: 5 });
  });

  it.each([
    { note: 'an extra field', mutate: (e: AuditEventV1) => ({ ...e, extra: 1 }) },
    { note: 'another version', mutate: (e: AuditEventV1) => ({ ...e, v: 2 }) },
    { note: 'a null id', mutate: (e: AuditEventV1) => ({ ...e, jti: null }) },
    { note: 'a bad time', mutate: (e: AuditEventV1) => ({ ...e, time: '2026-01-01' }) },
    { note: 'not an object', mutate: () => 'line' },
  ])('reports $note as malformed', ({ mutate }) => {
    const events: unknown[] = chain.map((e) => (e.seq === 3 ? mutate(e) : e));
    expect(verifyChain(events)).toMatchObject({ ok: false, kind: 'malformed', seq: 3 });
  });

  it('stops reading once settled', () => {
    const verifier = new ChainVerifier();
    for (const event of fileTamper.edit(chain, 2)) {
      verifier.push(event);
      if (verifier.settled) break;
    }
    expect(verifier.settled).toBe(true);
    expect(verifier.end()).toMatchObject({ ok: false, seq: 2 });
  });

  it('names the right event for any single tampering of any chain (property)', () => {
    const tampering = fc.constantFrom(
      { kind: 'changed', apply: fileTamper.edit, offset: 0 },
      { kind: 'changed', apply: fileTamper.editAndRehash, offset: 0 },
      { kind: 'removed', apply: fileTamper.remove, offset: 0 },
      { kind: 'removed', apply: tableTamper.removeAndRenumber, offset: 0 },
      { kind: 'reordered', apply: fileTamper.swapWithNext, offset: 0 },
      { kind: 'reordered', apply: tableTamper.swapContents, offset: 0 },
      { kind: 'inserted', apply: fileTamper.insertForgedAfter, offset: 1 },
      { kind: 'inserted', apply: fileTamper.insertGarbageAfter, offset: 1 },
      { kind: 'inserted', apply: tableTamper.insertForgedAndRenumber, offset: 1 },
    );
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 30 }), fc.nat(), tampering, (n, pick, t) => {
        const events = buildChain(n);
        // Every tampering here leaves at least one original event after the touched one, so it is detectable.
        const seq = 1 + (pick % (n - 1));
        const result = verifyChain(t.apply(events, seq));
        expect(result).toMatchObject({ ok: false, kind: t.kind, seq: seq + t.offset });
      }),
    );
  });
});
