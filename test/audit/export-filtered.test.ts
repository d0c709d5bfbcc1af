/**
 * Filtered JSON Lines exports: events left out are declared by skip lines that carry the hashes on both sides, so
 * the file verifies on its own and every tampering with it is named, as in an unfiltered export.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { GENESIS_HASH, canonicalJson, exportJsonl, sealEvent, verifyExportLines } from '../../src/audit/index.js';
import type { AuditEventV1, ChainBreakKind, ExportFilterV1 } from '../../src/audit/index.js';
import { buildChain, rehash } from './chain-fixtures.js';

const chain = buildChain(20);
const ev = (seq: number): AuditEventV1 => chain[seq - 1] as AuditEventV1;
/** The events a filter kept: runs 3-5, 9, 12-13, 18. */
const KEPT = [3, 4, 5, 9, 12, 13, 18];
const FILTER: ExportFilterV1 = { agent_id: 'support-resolver' };

async function collect(lines: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const line of lines) out.push(line);
  return out;
}

async function filteredExport(events = KEPT.map(ev)): Promise<string[]> {
  return collect(exportJsonl({ start_seq: 1, start_prev_hash: GENESIS_HASH, filter: FILTER }, events));
}

const parse = (line: string): Record<string, unknown> => JSON.parse(line) as Record<string, unknown>;
const indexOfSeq = (lines: string[], seq: number): number => lines.findIndex((l) => parse(l)['seq'] === seq);
const indexOfSkip = (lines: string[], from: number): number =>
  lines.findIndex((l) => (parse(l)['skip'] as { from_seq?: number } | undefined)?.from_seq === from);
const line = (value: unknown): string => canonicalJson(value) + '\n';

describe('a filtered export', () => {
  it('declares every run of events left out with a skip line carrying the hashes on both sides', async () => {
    const lines = (await filteredExport()).map(parse);
    const skip = (from: number, to: number) => ({ skip: { from_seq: from, to_seq: to, prev_hash: from === 1 ? GENESIS_HASH : ev(from - 1).hash, last_hash: ev(to).hash } });
    expect(lines.slice(1, -1)).toEqual([
      skip(1, 2),
      ev(3), ev(4), ev(5),
      skip(6, 8),
      ev(9),
      skip(10, 11),
      ev(12), ev(13),
      skip(14, 17),
      ev(18),
    ].map((v) => JSON.parse(JSON.stringify(v))));
    expect(lines[0]).toMatchObject({ format: 'agent-pdp-audit-export', start_seq: 1, filter: FILTER });
    expect(lines.at(-1)).toMatchObject({ end: { count: 7, last_seq: 18, last_hash: ev(18).hash } });
  });

  it('verifies with nothing but the file, and reports the filter', async () => {
    expect(await verifyExportLines(await filteredExport())).toMatchObject({
      ok: true,
      count: 7,
      last_seq: 18,
      last_hash: ev(18).hash,
      header: { filter: FILTER },
    });
  });

  it('verifies when nothing matched: a header, no events, the trailer', async () => {
    const lines = await filteredExport([]);
    expect(lines).toHaveLength(2);
    expect(await verifyExportLines(lines)).toMatchObject({ ok: true, count: 0, last_seq: 0, last_hash: GENESIS_HASH });
  });
});

type Tamper = (lines: string[]) => string[];
const replaceAt = (lines: string[], i: number, value: string): string[] => lines.map((l, j) => (j === i ? value : l));
const editEvent = (seq: number, reseal = false): Tamper => (lines) => {
  const i = indexOfSeq(lines, seq);
  const edited = { ...(parse(lines[i] as string) as unknown as AuditEventV1), data: { edited: true } };
  return replaceAt(lines, i, line(reseal ? rehash(edited) : edited));
};
const removeLine = (find: (lines: string[]) => number): Tamper => (lines) => lines.filter((_, j) => j !== find(lines));
const swapEvents = (seq: number): Tamper => (lines) => {
  const i = indexOfSeq(lines, seq);
  const out = [...lines];
  [out[i], out[i + 1]] = [out[i + 1] as string, out[i] as string];
  return out;
};
/** A forged, validly hashed event linked after `seq`, inserted before the original `seq + 1`. */
const insertForgedAfter = (seq: number): Tamper => (lines) => {
  const i = indexOfSeq(lines, seq);
  const forged = sealEvent(ev(seq), { type: 'decision', time: '2026-06-01T00:00:00.000Z', decision_id: 'forged', agent_id: 'support-resolver', data: {} });
  return [...lines.slice(0, i + 1), line(forged), ...lines.slice(i + 1)];
};

describe('tampering with a filtered export is named', () => {
  it.each<{ note: string; tamper: Tamper; kind: ChainBreakKind; seq: number }>([
    { note: 'an event edited', tamper: editEvent(9), kind: 'changed', seq: 9 },
    { note: 'an event edited and re-hashed, a skip line after it', tamper: editEvent(9, true), kind: 'changed', seq: 9 },
    { note: 'an event edited and re-hashed, an event after it', tamper: editEvent(4, true), kind: 'changed', seq: 4 },
    { note: 'the last event edited and re-hashed (the trailer records its hash)', tamper: editEvent(18, true), kind: 'changed', seq: 18 },
    { note: 'an event removed inside a run', tamper: removeLine((l) => indexOfSeq(l, 4)), kind: 'removed', seq: 4 },
    { note: 'an event removed between two skips', tamper: removeLine((l) => indexOfSeq(l, 9)), kind: 'removed', seq: 9 },
    { note: 'a skip line removed', tamper: removeLine((l) => indexOfSkip(l, 6)), kind: 'removed', seq: 6 },
    { note: 'a forged event inserted', tamper: insertForgedAfter(4), kind: 'inserted', seq: 5 },
    { note: 'two events swapped', tamper: swapEvents(12), kind: 'reordered', seq: 12 },
    { note: 'the trailer removed (a file cut short)', tamper: (l) => l.slice(0, -1), kind: 'removed', seq: 19 },
    { note: 'the last event and the trailer removed', tamper: (l) => l.slice(0, -2), kind: 'removed', seq: 18 },
    {
      note: 'the filter in the header changed',
      tamper: (l) => replaceAt(l, 0, l[0]!.replace('support-resolver', 'someone-else')),
      kind: 'changed',
      seq: 0,
    },
    {
      note: 'a skip line that widens the filter to hide an event (its hashes forged)',
      tamper: (l) => {
        const i = indexOfSkip(l, 6);
        const wider = line({ skip: { from_seq: 6, to_seq: 9, prev_hash: ev(5).hash, last_hash: ev(9).hash } });
        return [...l.slice(0, i), wider, ...l.slice(i + 2)];
      },
      kind: 'removed',
      seq: 18,
    },
    { note: 'a line after the trailer', tamper: (l) => [...l, line(ev(19))], kind: 'malformed', seq: 19 },
  ])('$note → $kind at $seq', async ({ tamper, kind, seq }) => {
    const result = await verifyExportLines(tamper(await filteredExport()));
    expect(result).toMatchObject({ ok: false, kind, seq });
  });

  it('refuses a skip line in an export whose header has no filter: an unfiltered export cannot hide a gap', async () => {
    const lines = await collect(exportJsonl({ start_seq: 1, start_prev_hash: GENESIS_HASH }, chain.slice(0, 5)));
    const hidden = [...lines.slice(0, 3), line({ skip: { from_seq: 3, to_seq: 3, prev_hash: ev(2).hash, last_hash: ev(3).hash } }), ...lines.slice(4)];
    expect(await verifyExportLines(hidden)).toMatchObject({ ok: false, kind: 'malformed' });
  });
});

describe('anchors recorded outside the file', () => {
  it('a digest recorded at export time catches a file rewritten as a whole', async () => {
    const lines = await filteredExport();
    const digest = (parse(lines.at(-1) as string)['end'] as { digest: string }).digest;
    expect(digest).toBe(createHash('sha256').update(lines.slice(0, -1).join('')).digest('hex'));
    expect(await verifyExportLines(lines, { expectedDigest: digest })).toMatchObject({ ok: true });

    // Someone who knows the format drops event 9 and recomputes every hash and the trailer: only the anchor tells.
    const forged = await collect(exportJsonl({ start_seq: 1, start_prev_hash: GENESIS_HASH, filter: FILTER }, KEPT.filter((s) => s !== 9).map(ev)));
    expect(await verifyExportLines(forged)).toMatchObject({ ok: true, count: 6 });
    expect(await verifyExportLines(forged, { expectedDigest: digest })).toMatchObject({ ok: false, kind: 'changed', seq: 0 });
  });

  it('a head recorded earlier must be in the file, also when it falls at the end of a skip', async () => {
    const lines = await filteredExport();
    expect(await verifyExportLines(lines, { expectedLast: { seq: 13, hash: ev(13).hash } })).toMatchObject({ ok: true });
    expect(await verifyExportLines(lines, { expectedLast: { seq: 17, hash: ev(17).hash } })).toMatchObject({ ok: true });
    expect(await verifyExportLines(lines, { expectedLast: { seq: 17, hash: ev(16).hash } })).toMatchObject({ ok: false, kind: 'changed', seq: 17 });
    expect(await verifyExportLines(lines, { expectedLast: { seq: 15, hash: ev(15).hash } })).toMatchObject({ ok: false, kind: 'removed', seq: 15 });
  });
});
