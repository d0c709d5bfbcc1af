/**
 * Planning and streaming an export against a real store: ranges are contiguous runs of the chain (so they verify
 * as chains), filters leave events out behind skip lines, and a slow writer holds up the reading, not memory.
 */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { GENESIS_HASH, GENESIS_HEAD, exportLines, inChunks, planExport, sealEvent, verifyExportLines, writeChunks } from '../../src/audit/index.js';
import type { AuditEventV1, ExportFormat, ExportRequest, ExportSource, NewAuditEvent } from '../../src/audit/index.js';
import { at, decision, tempStore } from '../store/store-fixtures.js';
import type { TempStore } from '../store/store-fixtures.js';

let temp: TempStore;
afterEach(async () => temp.cleanup());

const policyLoaded = (i: number): NewAuditEvent => ({ type: 'policy.loaded', time: at(i), data: { revision: `rev-${i}` } });

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

async function exportOf(request: ExportRequest = {}, format: ExportFormat = 'jsonl'): Promise<string[]> {
  const plan = await planExport(temp.store, request);
  return collect(exportLines(temp.store, plan, format));
}

const seqsOf = (lines: string[]): number[] =>
  lines.map((l) => JSON.parse(l) as { seq?: number }).flatMap((v) => (v.seq === undefined ? [] : [v.seq]));
const header = (lines: string[]): Record<string, unknown> => JSON.parse(lines[0] as string) as Record<string, unknown>;

/** 10 events, one per 10 s: seq n at time at(10 n); decisions for two agents at seq 3, 5, 8 (deny at 5). */
async function seeded(): Promise<AuditEventV1[]> {
  temp = await tempStore();
  const s = temp.store;
  await s.appendEvents([policyLoaded(10), policyLoaded(20)]);
  await s.recordDecision(decision('d-3', { created_at: at(30) }));
  await s.appendEvents([policyLoaded(40)]);
  await s.recordDecision(decision('d-5', { outcome: 'deny', created_at: at(50), redeemable_until: null }));
  await s.appendEvents([policyLoaded(60), policyLoaded(70)]);
  await s.recordDecision(decision('d-8', { agent_id: 'code-review-agent', created_at: at(80) }));
  await s.appendEvents([policyLoaded(90), policyLoaded(100)]);
  return collect(s.iterateEvents());
}

describe('planExport and exportLines on a store', () => {
  it('exports the whole chain by default, and it verifies from genesis', async () => {
    await seeded();
    const lines = await exportOf();
    expect(seqsOf(lines)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(header(lines)).toEqual({ format: 'agent-pdp-audit-export', v: 1, start_seq: 1, start_prev_hash: GENESIS_HASH });
    expect(await verifyExportLines(lines)).toMatchObject({ ok: true, count: 10, last_seq: 10 });
  });

  it.each([
    { note: 'a seq range', request: { from_seq: 4, to_seq: 7 }, seqs: [4, 5, 6, 7] },
    { note: 'a time range: from the first event at since, up to the last before until', request: { since: at(35), until: at(80) }, seqs: [4, 5, 6, 7] },
    { note: 'since only', request: { since: at(90) }, seqs: [9, 10] },
    { note: 'until only', request: { until: at(21) }, seqs: [1, 2] },
    { note: 'a range past the head', request: { from_seq: 9, to_seq: 50 }, seqs: [9, 10] },
    { note: 'nothing after since', request: { since: at(500) }, seqs: [] },
  ])('exports $note as one unbroken chain that verifies', async ({ request, seqs }) => {
    const events = await seeded();
    const lines = await exportOf(request);
    expect(seqsOf(lines)).toEqual(seqs);
    const first = seqs[0] ?? 11;
    expect(header(lines)).toMatchObject({ start_seq: first, start_prev_hash: first === 1 ? GENESIS_HASH : events[first - 2]?.hash ?? events[9]!.hash });
    expect(header(lines)).not.toHaveProperty('filter');
    expect(await verifyExportLines(lines)).toMatchObject({ ok: true, count: seqs.length });
  });

  it.each([
    { note: 'agent', request: { agent_id: 'code-review-agent' }, seqs: [8] },
    { note: 'outcome', request: { outcome: 'deny' as const }, seqs: [5] },
    { note: 'event types', request: { types: ['decision' as const] }, seqs: [3, 5, 8] },
    { note: 'agent within a time range', request: { agent_id: 'support-resolver', since: at(40) }, seqs: [5] },
  ])('filters by $note behind skip lines, and the file still verifies', async ({ request, seqs }) => {
    await seeded();
    const lines = await exportOf(request);
    expect(seqsOf(lines)).toEqual(seqs);
    expect(header(lines)).toHaveProperty('filter');
    expect(lines.some((l) => l.startsWith('{"skip":'))).toBe(true);
    expect(await verifyExportLines(lines)).toMatchObject({ ok: true, count: seqs.length });
  });

  it('stops at the head it planned with: events committed during the export are left for the next one', async () => {
    await seeded();
    const plan = await planExport(temp.store, {});
    await temp.store.appendEvents([policyLoaded(110)]);
    const lines = await collect(exportLines(temp.store, plan, 'jsonl'));
    expect(seqsOf(lines)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('starts at the pruning checkpoint of a pruned chain', async () => {
    const events = await seeded();
    await temp.store.pruneEvents({ before: at(45), at: at(200) });
    const lines = await exportOf();
    expect(header(lines)).toMatchObject({ start_seq: 5, start_prev_hash: events[3]!.hash });
    expect(seqsOf(lines)).toEqual([5, 6, 7, 8, 9, 10, 11]);
    expect(JSON.parse(lines.at(-2) as string)).toMatchObject({ seq: 11, type: 'audit.pruned', data: { from_seq: 1, to_seq: 4 } });
    expect(await verifyExportLines(lines)).toMatchObject({ ok: true, count: 7 });
  });

  it('writes decision events only in format opa, and nothing when a type filter excludes them', async () => {
    await seeded();
    expect((await exportOf({}, 'opa')).map((l) => (JSON.parse(l) as { decision_id: string }).decision_id)).toEqual(['d-3', 'd-5', 'd-8']);
    expect(await exportOf({ types: ['policy.loaded'] }, 'opa')).toEqual([]);
  });

  it('writes a CSV header and one row per event of the range', async () => {
    await seeded();
    const lines = await exportOf({ from_seq: 2, to_seq: 4 }, 'csv');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^v,seq,time,type,/);
  });
});

describe('streaming', () => {
  it('groups lines into chunks without changing a byte', async () => {
    const lines = Array.from({ length: 1000 }, (_, i) => `line ${i} ${'x'.repeat(i % 50)}\n`);
    async function* source() {
      yield* lines;
    }
    const chunks = await collect(inChunks(source(), 1024));
    expect(chunks.length).toBeGreaterThan(10);
    expect(chunks.length).toBeLessThan(lines.length);
    expect(chunks.join('')).toBe(lines.join(''));
  });

  it('reads no further than the writer can take: a stalled writer stops the source, a closed one ends it', async () => {
    // A chain far larger than any buffer, generated lazily; count how much of it was read.
    let read = 0;
    let closed = false;
    const total = 100_000;
    const source: ExportSource = {
      chainStart: async () => ({ start_seq: 1, start_prev_hash: GENESIS_HASH }),
      chainHead: async () => ({ seq: total, hash: GENESIS_HASH }),
      async *iterateEvents() {
        let head = GENESIS_HEAD;
        try {
          for (let i = 1; i <= total; i++) {
            const event = sealEvent(head, { type: 'policy.loaded', time: at(i), data: { revision: `rev-${i}` } });
            head = event;
            read++;
            yield event;
          }
        } finally {
          closed = true;
        }
      },
    };
    const pending: Array<() => void> = [];
    const stalled = new Writable({ highWaterMark: 16 * 1024, write: (_chunk, _enc, done) => void pending.push(done) });
    const writing = writeChunks(inChunks(exportLines(source, await planExport(source), 'jsonl')), stalled);
    for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(read).toBeGreaterThan(0);
    expect(read).toBeLessThan(2_000); // a chunk or two of ~200-byte events, not the chain
    const readWhileStalled = read;
    for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(read).toBe(readWhileStalled);
    stalled.destroy();
    expect(await writing).toBe(false);
    expect(closed).toBe(true);
    expect(read).toBeLessThan(total);
  });
});
