/**
 * `agent-pdp audit verify`: editing, deleting, inserting or swapping any one event — in the store, or in an
 * export file (unfiltered or filtered) — fails with exit code 3 and names the event and what happened to it.
 */
import Database from 'better-sqlite3';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson, hashEvent, sealEvent } from '../../src/audit/index.js';
import type { AuditEventV1 } from '../../src/audit/index.js';
import { EXIT_NOT_VERIFIED } from '../../src/cli/audit-commands.js';
import { sha256Hex } from '../../src/config/dev-keys.js';
import { SqliteStore } from '../../src/store/index.js';
import { at, decision, grant, task } from '../store/store-fixtures.js';
import { runAudit } from './cli.js';
import { eventFromRow, hashText } from '../../src/store/rows.js';
import type { EventRow } from '../../src/store/rows.js';

let dir: string;
/** A pristine store (never tampered with); each test works on a copy. */
let pristine: string;
let n = 0;

/**
 * Twelve events: 1 task.registered t-1, 2 decision d-1, 3 decision d-2 (deny), 4 token.issued, 5 token.used,
 * 6 policy.loaded, 7 auth.failed, 8 decision d-3 (code-review-agent), 9 task.completed, 10 token.revoked,
 * 11 task.registered t-2, 12 decision d-4.
 */
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'agent-pdp-audit-cli-'));
  pristine = join(dir, 'pristine.db');
  const s = SqliteStore.open(pristine);
  await s.registerTask(task('t-1'));
  await s.recordDecision(decision('d-1', { task_id: 't-1' }));
  await s.recordDecision(decision('d-2', { outcome: 'deny', redeemable_until: null }));
  const { token } = await s.redeemDecision({ decision_id: 'd-1', caller_id: 'support-middleware', now: at(5), makeToken: () => grant() });
  await s.recordTokenUse({ jti: token.jti, caller_id: 'crm-api', at: at(6), data: { action: 'introspect', active: true } });
  await s.appendEvents([
    { type: 'policy.loaded', time: at(7), data: { revision: 'rev-2' } },
    { type: 'auth.failed', time: at(8), caller_id: 'mallory', data: { reason: 'unknown_key' } },
  ]);
  await s.recordDecision(decision('d-3', { agent_id: 'code-review-agent', created_at: at(9) }));
  await s.completeTask({ task_id: 't-1', by: 'orchestrator-1', at: at(10) });
  await s.registerTask(task('t-2', { registered_at: at(11) }));
  await s.recordDecision(decision('d-4', { task_id: 't-2', created_at: at(12) }));
  expect(await s.verifyStoredChain()).toMatchObject({ ok: true, count: 12 });
  await s.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A config file over a fresh copy of the pristine store. */
function freshConfig(): { config: string; db: string } {
  const base = join(dir, `case-${++n}`);
  const db = `${base}.db`;
  copyFileSync(pristine, db);
  const config = `${base}.yaml`;
  writeFileSync(config, [`store: { url: "sqlite:${db}" }`, 'callers:', `  - { id: ops, role: admin, key_sha256: ${sha256Hex('cli-audit-admin')} }`, ''].join('\n'));
  return { config, db };
}

function tamper(db: string, fn: (raw: Database.Database) => void): void {
  const raw = new Database(db);
  try {
    fn(raw);
  } finally {
    raw.close();
  }
}

function row(raw: Database.Database, seq: number): Record<string, unknown> {
  return raw.prepare('SELECT * FROM audit_events WHERE seq = ?').get(seq) as Record<string, unknown>;
}

/** An event as its row holds it, read as the store reads it (compact decision data, hashes stored as bytes). */
function eventOfRow(r: Record<string, unknown>): AuditEventV1 {
  return eventFromRow(r as unknown as EventRow);
}

/** Shifts seq of every row from `from` on by `by` (through negatives, to dodge the primary key). */
function renumber(raw: Database.Database, from: number, by: number): void {
  raw.prepare('UPDATE audit_events SET seq = -seq WHERE seq >= ?').run(from);
  raw.prepare('UPDATE audit_events SET seq = -seq + ? WHERE seq < 0').run(by);
}

const storeTampers: Array<{ note: string; fn: (raw: Database.Database) => void; kind: string; seq: number }> = [
  {
    note: 'an event edited',
    fn: (raw) => void raw.prepare(`UPDATE audit_events SET data = replace(data, '"tickets:write"', '"tickets:admin"') WHERE seq = 4`).run(),
    kind: 'changed',
    seq: 4,
  },
  {
    note: 'an event edited and re-hashed',
    fn: (raw) => {
      const { hash: _h, ...unsealed } = { ...eventOfRow(row(raw, 6)), data: { revision: 'rev-evil' } };
      raw.prepare('UPDATE audit_events SET data = ?, hash = ? WHERE seq = 6').run(canonicalJson(unsealed.data), hashEvent(unsealed));
    },
    kind: 'changed',
    seq: 6,
  },
  { note: 'an event deleted', fn: (raw) => void raw.prepare('DELETE FROM audit_events WHERE seq = 5').run(), kind: 'removed', seq: 5 },
  {
    note: 'an event deleted and the rest renumbered',
    fn: (raw) => {
      raw.prepare('DELETE FROM audit_events WHERE seq = 7').run();
      renumber(raw, 8, -1);
    },
    kind: 'removed',
    seq: 7,
  },
  {
    note: 'a forged event inserted (valid hash, the rest renumbered)',
    fn: (raw) => {
      const forged = sealEvent(eventOfRow(row(raw, 4)), { type: 'token.issued', time: at(5), jti: 'forged', data: { scopes: ['admin'] } });
      renumber(raw, 5, 1);
      raw.prepare('INSERT INTO audit_events (seq, v, time, type, jti, data, prev_hash, hash) VALUES (?, 1, ?, ?, ?, ?, ?, ?)').run(
        forged.seq, forged.time, forged.type, forged.jti, canonicalJson(forged.data), forged.prev_hash, forged.hash,
      );
    },
    kind: 'inserted',
    seq: 5,
  },
  {
    note: 'two events swapped',
    fn: (raw) => {
      const a = row(raw, 8);
      const b = row(raw, 9);
      const columns = Object.keys(a).filter((c) => c !== 'seq');
      const update = raw.prepare(`UPDATE audit_events SET ${columns.map((c) => `${c} = ?`).join(', ')} WHERE seq = ?`);
      update.run(...columns.map((c) => b[c]), 8);
      update.run(...columns.map((c) => a[c]), 9);
    },
    kind: 'reordered',
    seq: 8,
  },
];

describe('audit verify --config: the store', () => {
  it('passes an intact chain with exit 0 and prints the head to record', async () => {
    const { config } = freshConfig();
    const { code, stdout } = await runAudit(['verify', '--config', config]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^ok: the audit chain in .+ \(from genesis\) verifies: 12 events up to seq 12\n/);
    expect(stdout).toMatch(/head 12:[0-9a-f]{64}/);
  });

  it.each(storeTampers)('fails on $note, naming it: $kind at seq $seq', async ({ fn, kind, seq }) => {
    const { config, db } = freshConfig();
    tamper(db, fn);
    const { code, stdout } = await runAudit(['verify', '--config', config]);
    expect(code).toBe(EXIT_NOT_VERIFIED);
    expect(stdout).toContain('FAILED: the audit chain in');
    expect(stdout).toContain(`  ${kind} at seq ${seq}: `);
  });

  it('reports the break as JSON with --json', async () => {
    const { config, db } = freshConfig();
    tamper(db, storeTampers[2]!.fn);
    const { code, stdout } = await runAudit(['verify', '--config', config, '--json']);
    expect(code).toBe(EXIT_NOT_VERIFIED);
    expect(JSON.parse(stdout)).toMatchObject({ ok: false, kind: 'removed', seq: 5, verified: 4 });
  });

  it('detects a deleted tail only against a head recorded earlier (--expect-head)', async () => {
    const { config, db } = freshConfig();
    const head = /head (\d+:[0-9a-f]{64})/.exec((await runAudit(['verify', '--config', config])).stdout)?.[1] as string;
    tamper(db, (raw) => void raw.prepare('DELETE FROM audit_events WHERE seq >= 11').run());
    expect((await runAudit(['verify', '--config', config])).code).toBe(0);
    const { code, stdout } = await runAudit(['verify', '--config', config, '--expect-head', head]);
    expect(code).toBe(EXIT_NOT_VERIFIED);
    expect(stdout).toContain('removed at seq 11');
  });

  it.each([
    { note: 'no --config and no --file', args: ['verify'], message: 'no config' },
    { note: 'both --config and --file', args: ['verify', '--config', 'x.yaml', '--file', 'y.jsonl'], message: 'not both' },
    { note: 'a malformed --expect-head', args: ['verify', '--file', 'y.jsonl', '--expect-head', '12'], message: 'SEQ:HASH' },
    { note: 'a missing export file', args: ['verify', '--file', '/nonexistent/export.jsonl'], message: 'no export file' },
    { note: 'an unknown option', args: ['verify', '--fix'], message: 'Unknown option' },
  ])('cannot run with $note: exit 1', async ({ args, message }) => {
    const env = process.env['AGENT_PDP_CONFIG'];
    delete process.env['AGENT_PDP_CONFIG'];
    try {
      const { code, stderr } = await runAudit(args);
      expect(code).toBe(1);
      expect(stderr).toContain(message);
    } finally {
      if (env !== undefined) process.env['AGENT_PDP_CONFIG'] = env;
    }
  });

  it('refuses a config whose store does not exist rather than create an empty one', async () => {
    const config = join(dir, 'nostore.yaml');
    writeFileSync(config, [`store: { url: "sqlite:${join(dir, 'missing.db')}" }`, 'callers:', `  - { id: ops, role: admin, key_sha256: ${sha256Hex('x')} }`, ''].join('\n'));
    const { code, stderr } = await runAudit(['verify', '--config', config]);
    expect(code).toBe(1);
    expect(stderr).toContain('store_unavailable: there is no store at');
  });
});

/** An export of the pristine store, as lines (the trailing newline dropped). */
async function exported(args: string[]): Promise<{ file: string; lines: string[]; digest: string }> {
  const { config } = freshConfig();
  const file = join(dir, `export-${++n}.jsonl`);
  const { code, stderr } = await runAudit(['export', '--config', config, '--out', file, ...args]);
  expect(code).toBe(0);
  const digest = /digest ([0-9a-f]{64})/.exec(stderr)?.[1] as string;
  return { file, lines: readFileSync(file, 'utf8').split('\n').slice(0, -1), digest };
}

type LineTamper = (lines: string[]) => string[];
const parsed = (line: string): Record<string, unknown> => JSON.parse(line) as Record<string, unknown>;
const at_ = (lines: string[], seq: number): number => lines.findIndex((l) => parsed(l)['seq'] === seq);
const editLine = (seq: number, reseal = false): LineTamper => (lines) =>
  lines.map((l, i) => {
    if (i !== at_(lines, seq)) return l;
    const { hash, ...unsealed } = { ...(parsed(l) as unknown as AuditEventV1), data: { edited: true } };
    return canonicalJson({ ...unsealed, hash: reseal ? hashEvent(unsealed) : hash });
  });
const deleteLine = (seq: number): LineTamper => (lines) => lines.filter((_, i) => i !== at_(lines, seq));
const swapLines = (seq: number): LineTamper => (lines) => {
  const i = at_(lines, seq);
  const out = [...lines];
  [out[i], out[i + 1]] = [out[i + 1] as string, out[i] as string];
  return out;
};
const insertForged = (after: number): LineTamper => (lines) => {
  const i = at_(lines, after);
  const forged = sealEvent(parsed(lines[i] as string) as unknown as AuditEventV1, { type: 'token.issued', time: at(5), jti: 'forged', agent_id: 'support-resolver', data: {} });
  return [...lines.slice(0, i + 1), canonicalJson(forged), ...lines.slice(i + 1)];
};

describe.each([
  {
    name: 'an unfiltered export',
    args: [] as string[],
    tampers: [
      { note: 'an event edited', tamper: editLine(4), kind: 'changed', seq: 4 },
      { note: 'an event edited and re-hashed', tamper: editLine(6, true), kind: 'changed', seq: 6 },
      { note: 'an event deleted', tamper: deleteLine(5), kind: 'removed', seq: 5 },
      { note: 'a forged event inserted', tamper: insertForged(4), kind: 'inserted', seq: 5 },
      { note: 'two events swapped', tamper: swapLines(8), kind: 'reordered', seq: 8 },
      { note: 'the file cut short', tamper: (l: string[]) => l.slice(0, 7), kind: 'removed', seq: 7 },
    ],
  },
  {
    name: 'an export filtered by agent (events 6-8 left out)',
    args: ['--agent', 'support-resolver'],
    tampers: [
      { note: 'an event edited', tamper: editLine(4), kind: 'changed', seq: 4 },
      { note: 'an event edited and re-hashed before a skip', tamper: editLine(5, true), kind: 'changed', seq: 5 },
      { note: 'an event deleted', tamper: deleteLine(9), kind: 'removed', seq: 9 },
      { note: 'a forged event inserted', tamper: insertForged(4), kind: 'inserted', seq: 5 },
      { note: 'two events swapped', tamper: swapLines(11), kind: 'reordered', seq: 11 },
      { note: 'the file cut short', tamper: (l: string[]) => l.slice(0, 5), kind: 'removed', seq: 5 },
    ],
  },
])('audit verify --file: $name', ({ args, tampers }) => {
  it('passes the file as exported, with exit 0, and with the digest printed at export', async () => {
    const { file, digest } = await exported(args);
    const { code, stdout } = await runAudit(['verify', '--file', file, '--expect-digest', digest]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^ok: export file .+ verifies: \d+ events up to seq 12\n/);
    expect(stdout).toContain(`digest ${digest}`);
  });

  it.each(tampers)('fails on $note, naming it: $kind at seq $seq', async ({ tamper: fn, kind, seq }) => {
    const { file, lines } = await exported(args);
    writeFileSync(file, fn(lines).join('\n') + '\n');
    const { code, stdout } = await runAudit(['verify', '--file', file]);
    expect(code).toBe(EXIT_NOT_VERIFIED);
    expect(stdout).toContain(`FAILED: export file ${file} does not verify`);
    expect(stdout).toContain(`  ${kind} at seq ${seq}: `);
  });

  it('fails a file rewritten as a whole against the digest recorded at export', async () => {
    const { file, digest } = await exported(args);
    const other = await exported([...args, '--to-seq', '11']);
    copyFileSync(other.file, file);
    expect((await runAudit(['verify', '--file', file])).code).toBe(0);
    const { code, stdout } = await runAudit(['verify', '--file', file, '--expect-digest', digest]);
    expect(code).toBe(EXIT_NOT_VERIFIED);
    expect(stdout).toContain('the file was replaced');
  });
});
