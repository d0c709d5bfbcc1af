/**
 * `agent-pdp audit export` (formats, filters, progress bar only on a terminal) and `agent-pdp audit prune`
 * (retention behind a checkpoint: the chain, and an export of it, still verify; a broken chain is not pruned).
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CSV_COLUMNS, verifyExportFile, verifyExportLines } from '../../src/audit/index.js';
import { EXIT_NOT_VERIFIED } from '../../src/cli/audit-commands.js';
import { ProgressBar } from '../../src/cli/progress-bar.js';
import { sha256Hex } from '../../src/config/dev-keys.js';
import { SqliteStore } from '../../src/store/index.js';
import { parseCsv } from '../audit/csv-reader.js';
import { eventV1Problems } from '../audit/opa-event-v1.js';
import { at, decision } from '../store/store-fixtures.js';
import { runAudit } from './cli.js';

let dir: string;
let config: string;
let db: string;

/** 40 events, one every 10 s from at(10): decisions, every fifth a deny, agents alternating. */
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'agent-pdp-audit-cli-'));
  db = join(dir, 'data', 'pdp.db');
  const store = SqliteStore.open(db);
  for (let i = 1; i <= 40; i++) {
    const deny = i % 5 === 0;
    await store.recordDecision(
      decision(`d-${i}`, { agent_id: i % 2 === 0 ? 'support-resolver' : 'code-review-agent', created_at: at(10 * i), outcome: deny ? 'deny' : 'allow', redeemable_until: deny ? null : at(10 * i + 60) }),
    );
  }
  await store.close();
  config = writeConfig(['audit: { retention_days: 30 }']);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function writeConfig(extra: string[]): string {
  const path = join(dir, `agent-pdp-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(path, ['store: { url: "sqlite:data/pdp.db" }', ...extra, 'callers:', `  - { id: ops, role: admin, key_sha256: ${sha256Hex('cli-admin')} }`, ''].join('\n'));
  return path;
}

describe('audit export', () => {
  it('writes JSON Lines to --out, says what it wrote on stderr, and the file verifies on its own', async () => {
    const out = join(dir, 'trail.jsonl');
    const { code, stdout, stderr } = await runAudit(['export', '--config', config, '--out', out]);
    expect(code).toBe(0);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^exported 40 events of seq 1\.\.40 as jsonl to .+trail\.jsonl\n {2}last event 40:[0-9a-f]{64}\n {2}digest [0-9a-f]{64}/);
    expect(await verifyExportFile(out)).toMatchObject({ ok: true, count: 40, last_seq: 40 });
  });

  it('counts the events it wrote, not the range, for a filter and in every format', async () => {
    const jsonl = await runAudit(['export', '--config', config, '--agent', 'support-resolver', '--outcome', 'deny']);
    expect(jsonl.stderr).toMatch(/^exported 4 events of seq 1\.\.40 as jsonl\n {2}last event 40:[0-9a-f]{64}\n {2}digest /);
    const csv = await runAudit(['export', '--config', config, '--format', 'csv', '--agent', 'support-resolver', '--outcome', 'deny']);
    expect(csv.stdout.trim().split('\n')).toHaveLength(5); // a header row and four events
    expect(csv.stderr).toMatch(/^exported 4 events of seq 1\.\.40 as csv\n {2}no last event or digest/);
    const opa = await runAudit(['export', '--config', config, '--format', 'opa', '--outcome', 'allow', '--from-seq', '1', '--to-seq', '10']);
    expect(opa.stdout.trim().split('\n')).toHaveLength(8); // d-1..d-10 without the denials d-5 and d-10
    expect(opa.stderr).toMatch(/^exported 8 events of seq 1\.\.10 as opa\n/);
  });

  it('writes to stdout without --out', async () => {
    const { code, stdout } = await runAudit(['export', '--config', config, '--from-seq', '5', '--to-seq', '9']);
    expect(code).toBe(0);
    expect(await verifyExportLines(stdout.split('\n'))).toMatchObject({ ok: true, count: 5, last_seq: 9 });
  });

  it.each([
    { note: 'agent and outcome', args: ['--agent', 'support-resolver', '--outcome', 'deny'], ids: ['d-10', 'd-20', 'd-30', 'd-40'] },
    { note: 'a time range', args: ['--since', at(95), '--until', at(130)], ids: ['d-10', 'd-11', 'd-12'] },
    { note: 'a date range that holds nothing', args: ['--since', '2030-01-01'], ids: [] },
  ])('filters by $note, with the same names as the HTTP query', async ({ args, ids }) => {
    const { code, stdout } = await runAudit(['export', '--config', config, ...args]);
    expect(code).toBe(0);
    const events = stdout.split('\n').filter((l) => l.includes('"seq"')).map((l) => JSON.parse(l) as { decision_id: string });
    expect(events.map((e) => e.decision_id)).toEqual(ids);
    expect(await verifyExportLines(stdout.split('\n'))).toMatchObject({ ok: true, count: ids.length });
  });

  it('writes CSV and OPA decision logs', async () => {
    const csv = await runAudit(['export', '--config', config, '--format', 'csv', '--to-seq', '3']);
    const rows = parseCsv(csv.stdout);
    expect(rows[0]).toEqual([...CSV_COLUMNS]);
    expect(rows.slice(1).map((r) => r[CSV_COLUMNS.indexOf('decision_id')])).toEqual(['d-1', 'd-2', 'd-3']);

    const opa = await runAudit(['export', '--config', config, '--format', 'opa', '--outcome', 'deny']);
    const events = opa.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.map((e) => e['decision_id'])).toEqual(['d-5', 'd-10', 'd-15', 'd-20', 'd-25', 'd-30', 'd-35', 'd-40']);
    for (const event of events) expect(eventV1Problems(event)).toEqual([]);
  });

  it('draws a progress bar on stderr when it is a terminal, and erases it before the summary', async () => {
    const tty = await runAudit(['export', '--config', config, '--out', join(dir, 'a.jsonl')], { stderrIsTTY: true });
    expect(tty.stderr).toMatch(/^\rexporting jsonl \[[#.]+\] \d+%/);
    expect(tty.stderr).toContain('\r\x1b[2Kexported 40 events');
    const pipe = await runAudit(['export', '--config', config, '--out', join(dir, 'b.jsonl')]);
    expect(pipe.stderr).not.toContain('\r');
    expect(pipe.stderr).toMatch(/^exported 40 events/);
  });

  it.each([
    { note: 'an unknown format', args: ['--format', 'xml'], message: 'query.format' },
    { note: 'a bad time', args: ['--since', 'last week'], message: 'query.since' },
    { note: 'an unknown event type', args: ['--type', 'decision,token.minted'], message: 'query.type' },
  ])('refuses $note with invalid_request, exit 1', async ({ args, message }) => {
    const { code, stderr } = await runAudit(['export', '--config', config, ...args]);
    expect(code).toBe(1);
    expect(stderr).toContain('agent-pdp: invalid_request: invalid export query');
    expect(stderr).toContain(message);
  });
});

describe('audit prune', () => {
  it('prunes the events before --before behind a checkpoint; the chain and a new export still verify', async () => {
    const { code, stdout } = await runAudit(['prune', '--config', config, '--before', at(105)]);
    expect(code).toBe(0);
    expect(stdout).toMatch(
      /^pruned 10 events \(seq 1\.\.10\) older than 2026-01-01T00:01:45\.000Z\nthe chain now starts at seq 11, from checkpoint hash [0-9a-f]{64}\nrecorded in the chain by the audit\.pruned event at seq 41\n$/,
    );

    const verified = await runAudit(['verify', '--config', config]);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toContain('(from the pruning checkpoint at seq 10, recorded by the audit.pruned event at seq 41) verifies: 31 events up to seq 41');
    const exported = await runAudit(['export', '--config', config]);
    expect(JSON.parse(exported.stdout.split('\n')[0] as string)).toMatchObject({ start_seq: 11 });
    expect(await verifyExportLines(exported.stdout.split('\n'))).toMatchObject({ ok: true, count: 31 });

    expect((await runAudit(['prune', '--config', config, '--before', at(105)])).stdout).toMatch(/^nothing to prune/);
  });

  it('uses audit.retention_days when there is no --before', async () => {
    // Every event is from 2026-01-01, far more than 30 days ago.
    const { code, stdout } = await runAudit(['prune', '--config', config]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^pruned 40 events \(seq 1\.\.40\)/);
    expect((await runAudit(['verify', '--config', config])).stdout).toContain('verifies: 1 event up to seq 41');
  });

  it('refuses a head recorded before the chain start that the chain cannot check, and checks the checkpoint', async () => {
    const before = await runAudit(['verify', '--config', config]);
    const head = /head (\d+:[0-9a-f]{64})/.exec(before.stdout)?.[1] as string;
    const fifth = (await runAudit(['export', '--config', config, '--from-seq', '5', '--to-seq', '5'])).stdout.split('\n')[1] as string;
    const { hash } = JSON.parse(fifth) as { hash: string };
    expect((await runAudit(['prune', '--config', config, '--before', at(105)])).code).toBe(0);

    const pruned = await runAudit(['verify', '--config', config, '--expect-head', `5:${hash}`]);
    expect(pruned.code).toBe(EXIT_NOT_VERIFIED);
    expect(pruned.stdout).toContain('removed at seq 5: the anchored event 5 is before the start of this chain (seq 11)');
    expect(pruned.stdout).toContain('check it against the export archived before the prune');
    const forged = await runAudit(['verify', '--config', config, '--expect-head', `5:${'0'.repeat(64)}`]);
    expect(forged.code).toBe(EXIT_NOT_VERIFIED);
    expect((await runAudit(['verify', '--config', config, '--expect-head', head])).code).toBe(0);
  });

  it('refuses a chain whose start was deleted by hand behind a forged checkpoint row', async () => {
    const tenth = JSON.parse((await runAudit(['export', '--config', config, '--from-seq', '10', '--to-seq', '10'])).stdout.split('\n')[1] as string) as { hash: string };
    const raw = new Database(db);
    raw.prepare('DELETE FROM audit_events WHERE seq <= 10').run();
    raw.prepare('INSERT INTO audit_checkpoints (last_pruned_seq, last_pruned_hash, pruned_at, pruned_count) VALUES (10, ?, ?, 10)').run(tenth.hash, at(500));
    raw.close();
    const { code, stdout } = await runAudit(['verify', '--config', config]);
    expect(code).toBe(EXIT_NOT_VERIFIED);
    expect(stdout).toContain('removed at seq 10: the chain starts after a checkpoint at seq 10 that no audit.pruned event records');
  });

  it('needs --before or audit.retention_days', async () => {
    const { code, stderr } = await runAudit(['prune', '--config', writeConfig([])]);
    expect(code).toBe(1);
    expect(stderr).toContain('invalid_request: pass --before TIME, or set audit.retention_days in the config');
  });

  it('refuses to prune a chain that does not verify: pruning would delete the evidence', async () => {
    const raw = new Database(db);
    raw.prepare(`UPDATE audit_events SET data = replace(data, '"allow"', '"deny"') WHERE seq = 3`).run();
    raw.close();
    const { code, stdout } = await runAudit(['prune', '--config', config, '--before', at(105)]);
    expect(code).toBe(EXIT_NOT_VERIFIED);
    expect(stdout).toContain('changed at seq 3');
    expect(stdout).toContain('refusing to prune');
    const count = new Database(db, { readonly: true });
    expect((count.prepare('SELECT COUNT(*) AS n FROM audit_events').get() as { n: number }).n).toBe(40);
    count.close();
  });
});

describe('the progress bar', () => {
  it('draws nothing unless the stream is a terminal', () => {
    expect(ProgressBar.onTty({ isTTY: false, write: () => true }, 10, 'x')).toBeUndefined();
    expect(ProgressBar.onTty({ write: () => true }, 10, 'x')).toBeUndefined();
  });

  it('redraws at most every 100 ms, and renders the fraction done', () => {
    let out = '';
    let now = 0;
    const bar = ProgressBar.onTty({ isTTY: true, columns: 60, write: (t) => ((out += t), true) }, 200, 'exporting', () => now)!;
    bar.update(1);
    bar.update(50);
    now = 150;
    bar.update(100);
    expect(out.split('\r').filter(Boolean)).toEqual([bar.render(1), bar.render(100)]);
    expect(bar.render(100)).toMatch(/^exporting \[#+\.+\] 50% {2}100 \/ 200$/);
    bar.finish();
    expect(out.endsWith('\r\x1b[2K')).toBe(true);
  });
});
