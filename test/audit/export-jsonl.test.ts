import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GENESIS_HASH, canonicalJson, exportJsonl, verifyExportFile, verifyExportLines } from '../../src/audit/index.js';
import type { AuditEventV1 } from '../../src/audit/index.js';
import { buildChain, fileTamper } from './chain-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-export-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function lines(events: AuditEventV1[], start = { start_seq: 1, start_prev_hash: GENESIS_HASH }): Promise<string[]> {
  const out: string[] = [];
  for await (const line of exportJsonl(start, events)) out.push(line);
  return out;
}

describe('export files', () => {
  const chain = buildChain(12);

  it('writes a header, then one canonical event per line, then a trailer with the digest of the lines before it', async () => {
    const out = await lines(chain);
    expect(out).toHaveLength(14);
    expect(JSON.parse(out[0] as string)).toEqual({ format: 'agent-pdp-audit-export', v: 1, start_seq: 1, start_prev_hash: GENESIS_HASH });
    expect(out[1]).toBe(canonicalJson(chain[0]) + '\n');
    const digest = createHash('sha256').update(out.slice(0, 13).join('')).digest('hex');
    expect(JSON.parse(out[13] as string)).toEqual({ end: { count: 12, last_seq: 12, last_hash: (chain[11] as AuditEventV1).hash, digest } });
  });

  it('verifies a file on disk with nothing but the file', async () => {
    const path = join(dir, 'ok.jsonl');
    writeFileSync(path, (await lines(chain)).join(''));
    const result = await verifyExportFile(path);
    expect(result).toMatchObject({ ok: true, count: 12, last_seq: 12, header: { start_seq: 1 } });
  });

  it('verifies an export that starts after a pruning checkpoint', async () => {
    const rest = chain.slice(5);
    const start = { start_seq: 6, start_prev_hash: (chain[4] as AuditEventV1).hash };
    expect(await verifyExportLines(await lines(rest, start))).toMatchObject({ ok: true, count: 7 });
  });

  it('names the first changed event in a tampered file', async () => {
    const path = join(dir, 'edited.jsonl');
    writeFileSync(path, (await lines(fileTamper.edit(chain, 7))).join(''));
    expect(await verifyExportFile(path)).toMatchObject({ ok: false, kind: 'changed', seq: 7 });
  });

  it('reports a line removed from the file', async () => {
    const out = await lines(chain);
    out.splice(4, 1); // the event with seq 4
    expect(await verifyExportLines(out)).toMatchObject({ ok: false, kind: 'removed', seq: 4 });
  });

  it('reports a line that is not JSON as malformed', async () => {
    const out = await lines(chain);
    out[3] = '{"seq": 3, truncated\n';
    expect(await verifyExportLines(out)).toMatchObject({ ok: false, kind: 'malformed', seq: 3 });
  });

  it('refuses a file without a header', async () => {
    const out = await lines(chain);
    expect(await verifyExportLines(out.slice(1))).toMatchObject({ ok: false, kind: 'malformed', seq: 0 });
    expect(await verifyExportLines([])).toMatchObject({ ok: false, kind: 'malformed' });
  });
});
