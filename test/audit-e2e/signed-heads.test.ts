/**
 * Signed heads end to end: a PDP signs its chain's head with the audit key in its key folder (0600) and writes each
 * head to the trail and to the signed-heads file; `agent-pdp audit key` prints the public key; `audit verify`
 * checks every signed head, in the store and in an export on its own, and catches a chain re-hashed from an
 * early event on, a forged head, and a tail cut off with its heads, which the chain alone lets through. An export
 * is a range of the chain: it is checked against every head of the signed-heads file in its range, and the heads
 * after its end are out of its range, not missing. A signed-heads file that is there but cannot be checked is
 * never passed over in silence.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HeadSigner, appendSignedHead, canonicalJson, exportJsonl, hashEvent, sealEvent, signHead } from '../../src/audit/index.js';
import type { AuditEventV1, ChainHead, NewAuditEvent, SignedHeadV1 } from '../../src/audit/index.js';
import { EXIT_HEADS_UNCHECKED, EXIT_NOT_VERIFIED } from '../../src/cli/audit-commands.js';
import { sha256Hex } from '../../src/config/dev-keys.js';
import { AUDIT_KEY_FILE, loadAuditKey, signedHeadsPath } from '../../src/issuer/audit-key.js';
import { SqliteStore } from '../../src/store/index.js';
import { startTestPdp } from '../support/pdp-harness.js';
import { at, decision } from '../store/store-fixtures.js';
import { runAudit } from './cli.js';
import { eventFromRow, hashText } from '../../src/store/rows.js';
import type { EventRow } from '../../src/store/rows.js';

let dir: string;
let config: string;
let db: string;
let keys: string;

/**
 * 24 events: decisions d-1..d-8 (agents alternating), a signed head after seq 8 (event 9), d-10..d-20, a signed head
 * after seq 20 (event 21), d-22..d-24. Both heads are in the trail and in the signed-heads file.
 */
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'agent-pdp-heads-'));
  db = join(dir, 'data', 'pdp.db');
  keys = join(dir, 'keys');
  config = join(dir, 'agent-pdp.yaml');
  writeFileSync(config, ['store: { url: "sqlite:data/pdp.db" }', 'issuer: { keys: keys }', 'callers:', `  - { id: ops, role: admin, key_sha256: ${sha256Hex('heads-admin')} }`, ''].join('\n'));
  const store = SqliteStore.open(db);
  const key = await loadAuditKey(keys, { create: true });
  const heads = new HeadSigner({ store, key, now: () => new Date(at(1000)), publish: (head) => appendSignedHead(signedHeadsPath(keys), head) });
  const record = (i: number) => store.recordDecision(decision(`d-${i}`, { agent_id: i % 2 === 0 ? 'support-resolver' : 'code-review-agent', created_at: at(i) }));
  for (let i = 1; i <= 8; i++) await record(i);
  await heads.signNow();
  for (let i = 10; i <= 20; i++) await record(i);
  await heads.signNow();
  for (let i = 22; i <= 24; i++) await record(i);
  await store.close();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function raw(fn: (handle: Database.Database) => void): void {
  const handle = new Database(db);
  try {
    fn(handle);
  } finally {
    handle.close();
  }
}

/** An event as its row holds it, read as the store reads it (compact decision data, hashes stored as bytes). */
function eventOf(r: Record<string, unknown>): AuditEventV1 {
  return eventFromRow(r as unknown as EventRow);
}

/**
 * Edits event `from` and re-hashes it and every event after it, writing each event's canonical data (a stored form
 * the store reads as it is); `fixHeads` also makes each signed head name the new hash.
 */
function rewriteFrom(handle: Database.Database, from: number, fixHeads: boolean): void {
  const rows = handle.prepare('SELECT * FROM audit_events WHERE seq >= ? ORDER BY seq').all(from) as Array<Record<string, unknown>>;
  let prev = hashText((handle.prepare('SELECT hash FROM audit_events WHERE seq = ?').get(from - 1) as { hash: string | Uint8Array }).hash);
  for (const row of rows) {
    const event = eventOf(row);
    let data = event.data;
    if (event.seq === from) data = { ...(data as object), policy_revision: 'rev-evil' };
    if (event.type === 'audit.head_signed' && fixHeads) data = { ...(data as SignedHeadV1), hash: prev };
    const { hash: _old, ...unsealed } = { ...event, data, prev_hash: prev };
    const hash = hashEvent(unsealed);
    handle.prepare('UPDATE audit_events SET data = ?, prev_hash = ?, hash = ? WHERE seq = ?').run(canonicalJson(data), prev, hash, event.seq);
    prev = hash;
  }
}

async function publicKeyFile(): Promise<string> {
  const { stdout } = await runAudit(['key', '--config', config]);
  const path = join(dir, 'audit-key.jwk');
  writeFileSync(path, stdout);
  return path;
}

describe('the audit key', () => {
  it('lives in the key folder, 0600, and `audit key` prints its public half as a JWK or PEM', async () => {
    expect(statSync(join(keys, AUDIT_KEY_FILE)).mode & 0o777).toBe(0o600);
    const key = await loadAuditKey(keys);
    const jwk = await runAudit(['key', '--config', config]);
    expect(jwk.code).toBe(0);
    expect(JSON.parse(jwk.stdout)).toEqual({ kty: 'OKP', crv: 'Ed25519', x: expect.any(String), kid: key.kid, alg: 'EdDSA', use: 'sig' });
    expect(jwk.stdout).not.toContain('"d"');
    const pem = await runAudit(['key', '--config', config, '--pem']);
    expect(pem.stdout).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+-----END PUBLIC KEY-----\n$/);
  });

  it('is never made up by the CLI, and a key file others may read is refused', async () => {
    const file = join(keys, AUDIT_KEY_FILE);
    const pem = readFileSync(file);
    unlinkSync(file);
    const missing = await runAudit(['key', '--config', config]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`has no ${AUDIT_KEY_FILE}: the server creates it on first start`);
    writeFileSync(file, pem, { mode: 0o644 });
    const open = await runAudit(['key', '--config', config]);
    expect(open.code).toBe(1);
    expect(open.stderr).toContain('is readable or writable by group or others');
  });
});

describe('audit verify with signed heads', () => {
  it('checks every signed head in the store and the signed-heads file, and reports the newest', async () => {
    const { code, stdout } = await runAudit(['verify', '--config', config]);
    expect(code).toBe(0);
    const kid = (await loadAuditKey(keys)).kid;
    expect(stdout).toContain(`signed heads: 2 in the chain, each signing the event before it; every signature verified with the audit key ${kid} (from the key folder ${keys})`);
    expect(stdout).toContain(`newest signed head: seq 20 at ${at(1000)} (key ${kid}); 4 events after it rest on the chain alone`);
    expect(stdout).toContain(`signed-heads file ${signedHeadsPath(keys)}: 2 heads verified; the chain holds its newest, seq 20`);
  });

  it('fails on a chain re-hashed from seq 9 on, which verifies without signed heads', async () => {
    raw((handle) => rewriteFrom(handle, 10, false));
    const withFile = await runAudit(['verify', '--config', config]);
    expect(withFile.code).toBe(EXIT_NOT_VERIFIED);
    expect(withFile.stdout).toContain('changed at seq 20: event 20 does not match the anchored hash');
    // The trail's own signed heads catch it without the file.
    unlinkSync(signedHeadsPath(keys));
    const trailOnly = await runAudit(['verify', '--config', config]);
    expect(trailOnly.code).toBe(EXIT_NOT_VERIFIED);
    expect(trailOnly.stdout).toContain('changed at seq 20: event 20 does not have the hash the signed head in event 21 records');
  });

  it('fails on a chain re-hashed with its signed heads rewritten to match: their signatures no longer hold', async () => {
    raw((handle) => rewriteFrom(handle, 10, true));
    unlinkSync(signedHeadsPath(keys));
    const { code, stdout } = await runAudit(['verify', '--config', config]);
    expect(code).toBe(EXIT_NOT_VERIFIED);
    expect(stdout).toContain('changed at seq 21: the signed head in event 21 does not verify with the audit key');
  });

  it('fails on a tail cut off together with its signed heads, against the signed-heads file', async () => {
    raw((handle) => void handle.prepare('DELETE FROM audit_events WHERE seq >= 15').run());
    const { code, stdout } = await runAudit(['verify', '--config', config]);
    expect(code).toBe(EXIT_NOT_VERIFIED);
    expect(stdout).toContain('removed at seq 15: the chain ends at seq 14, before the anchored head at seq 20');
  });

  it('fails on a signed-heads file with a forged line, or one that goes back', async () => {
    const file = signedHeadsPath(keys);
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    const forged = { ...(JSON.parse(lines[1] as string) as SignedHeadV1), hash: 'f'.repeat(64) };
    writeFileSync(file, `${lines[0]}\n${canonicalJson(forged)}\n`);
    const bad = await runAudit(['verify', '--config', config]);
    expect(bad.code).toBe(EXIT_NOT_VERIFIED);
    expect(bad.stdout).toContain(`line 2 of ${file} holds a head that does not verify with the audit key: it was forged or altered`);

    const key = await loadAuditKey(keys);
    writeFileSync(file, `${lines[1]}\n${canonicalJson(signHead({ seq: 8, hash: 'e'.repeat(64) }, at(2000), key))}\n`);
    const back = await runAudit(['verify', '--config', config]);
    expect(back.code).toBe(EXIT_NOT_VERIFIED);
    expect(back.stdout).toContain('signs seq 8 after a head at seq 20: the chain was rolled back or forked');
  });

  it('leaves out a last line cut short by a crash, but not a broken line followed by more', async () => {
    const file = signedHeadsPath(keys);
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    writeFileSync(file, `${lines[0]}\n${lines[1]}\n${(lines[1] as string).slice(0, 40)}`);
    const cut = await runAudit(['verify', '--config', config]);
    expect(cut.code).toBe(0);
    expect(cut.stdout).toContain('its last line (3) is not JSON, an append cut short (a crash?): left out');
    writeFileSync(file, `${lines[0]}\n${(lines[1] as string).slice(0, 40)}\n${lines[1]}\n`);
    const broken = await runAudit(['verify', '--config', config]);
    expect(broken.code).toBe(EXIT_NOT_VERIFIED);
    expect(broken.stdout).toContain(`line 2 of ${file} is not a signed head: not JSON`);
  });

  it('says when it could not check signatures, and never passes over a signed-heads file it could not check', async () => {
    const published = await publicKeyFile();
    const file = signedHeadsPath(keys);
    unlinkSync(join(keys, AUDIT_KEY_FILE));
    const unchecked = await runAudit(['verify', '--config', config]);
    expect(unchecked.code).toBe(EXIT_HEADS_UNCHECKED);
    expect(unchecked.stdout).toContain('ok: the audit chain');
    expect(unchecked.stdout).toContain('signatures NOT checked: no audit public key');
    expect(unchecked.stdout).toContain(`NOT CHECKED: the signed-heads file ${file} was NOT checked: no audit public key`);
    expect(unchecked.stdout).toContain(`exit code ${EXIT_HEADS_UNCHECKED}: the chain verifies, but not against the signed-heads file; pass --public-key FILE`);
    const json = await runAudit(['verify', '--config', config, '--json']);
    expect(json.code).toBe(EXIT_HEADS_UNCHECKED);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, signed_heads_file_unchecked: expect.stringContaining(file) });

    // With the published key, the file is checked.
    const withKey = await runAudit(['verify', '--config', config, '--public-key', published]);
    expect(withKey.code).toBe(0);
    expect(withKey.stdout).toContain(`signed-heads file ${file}: 2 heads verified; the chain holds its newest, seq 20`);

    // A chain that does not verify still says so first (exit 3), and that the file was not checked.
    raw((handle) => rewriteFrom(handle, 10, false));
    const broken = await runAudit(['verify', '--config', config]);
    expect(broken.code).toBe(EXIT_NOT_VERIFIED);
    expect(broken.stdout).toContain(`NOT CHECKED: the signed-heads file ${file} was NOT checked`);

    // No signed-heads file at all (nothing signed yet): nothing was left unchecked but the signatures, as it says.
    unlinkSync(file);
    raw((handle) => void handle.prepare('DELETE FROM audit_events').run());
    const none = await runAudit(['verify', '--config', config]);
    expect(none.code).toBe(0);
    expect(none.stdout).not.toContain('signed-heads file');
  });

  it('a signed-heads file deleted from the key folder while the chain holds signed heads is not passed over (exit 4)', async () => {
    const file = signedHeadsPath(keys);
    unlinkSync(file);
    const { code, stdout } = await runAudit(['verify', '--config', config]);
    expect(code).toBe(EXIT_HEADS_UNCHECKED);
    expect(stdout).toContain('ok: the audit chain');
    expect(stdout).toContain(`NOT CHECKED: the signed-heads file ${file} is missing, though the chain holds 2 signed heads`);
    const json = await runAudit(['verify', '--config', config, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, signed_heads_file_unchecked: expect.stringContaining('is missing') });
  });

  it('warns when a chain spanning more than 5 minutes holds no signed head at all (all of them deleted with a rewrite)', async () => {
    unlinkSync(signedHeadsPath(keys));
    const store = SqliteStore.open(db);
    await store.recordDecision(decision('d-late', { created_at: at(1000 + 600) }));
    await store.close();
    // Drop the two signed heads and re-chain what follows, as an insider rewriting the trail would.
    raw((handle) => {
      handle.prepare("DELETE FROM audit_events WHERE type = 'audit.head_signed'").run();
      const rows = handle.prepare('SELECT * FROM audit_events ORDER BY seq').all() as Array<Record<string, unknown>>;
      handle.prepare('DELETE FROM audit_events').run();
      let prev = '0'.repeat(64);
      rows.forEach((row, i) => {
        const event = eventOf(row);
        const { hash: _old, ...unsealed } = { ...event, seq: i + 1, prev_hash: prev };
        const hash = hashEvent(unsealed);
        handle.prepare('INSERT INTO audit_events (seq, v, time, type, decision_id, jti, task_id, agent_id, caller_id, trace_id, data, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)')
          .run(i + 1, event.v, event.time, event.type, event.decision_id ?? null, event.jti ?? null, event.task_id ?? null, event.agent_id ?? null, event.caller_id ?? null, event.trace_id ?? null, canonicalJson(event.data), prev, hash);
        prev = hash;
      });
    });
    const { code, stdout } = await runAudit(['verify', '--config', config]);
    expect(code).toBe(0);
    expect(stdout).toContain('no signed heads in this chain');
    expect(stdout).toMatch(/WARNING: no signed head in a chain whose 23 events span \d+ min/);
  });

  it('warns when the newest signed head is much older than the last event', async () => {
    const fresh = await runAudit(['verify', '--config', config]);
    expect(fresh.stdout).not.toContain('WARNING');
    const store = SqliteStore.open(db);
    await store.recordDecision(decision('d-late', { created_at: at(1000 + 30) }));
    await store.close();
    const soon = await runAudit(['verify', '--config', config]);
    expect(soon.stdout).not.toContain('WARNING');
    const later = SqliteStore.open(db);
    await later.recordDecision(decision('d-later', { created_at: at(1000 + 600) }));
    await later.close();
    const { code, stdout } = await runAudit(['verify', '--config', config]);
    expect(code).toBe(0);
    expect(stdout).toContain(`WARNING: the newest signed head (seq 20, ${at(1000)}) is 10 min older than the last event (${at(1600)}), with 5 events after it`);
    const json = await runAudit(['verify', '--config', config, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ stale_signed_head: { seq: 20, time: at(1000), last_time: at(1600), events_after: 5 } });
  });
});

describe('an export carries its signed heads and verifies against them on its own', () => {
  async function exported(args: string[] = []): Promise<string> {
    const out = join(dir, `export-${Math.random().toString(36).slice(2)}.jsonl`);
    expect((await runAudit(['export', '--config', config, '--out', out, ...args])).code).toBe(0);
    return out;
  }

  it.each([
    { note: 'an unfiltered export', args: [] as string[], count: 24 },
    { note: 'an export filtered by agent (the signed heads kept)', args: ['--agent', 'support-resolver'], count: 14 },
  ])('$note, given the public key', async ({ args, count }) => {
    const file = await exported(args);
    const events = readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('"seq"')).map((l) => JSON.parse(l) as AuditEventV1);
    expect(events.filter((e) => e.type === 'audit.head_signed').map((e) => e.seq)).toEqual([9, 21]);
    const { code, stdout } = await runAudit(['verify', '--file', file, '--public-key', await publicKeyFile()]);
    expect(code).toBe(0);
    expect(stdout).toContain(`verifies: ${count} events up to seq 24`);
    expect(stdout).toContain('signed heads: 2 in the chain, each signing the event before it; every signature verified with the audit key');
    const keyless = await runAudit(['verify', '--file', file]);
    expect(keyless.stdout).toContain('signatures NOT checked: no audit public key: pass --public-key FILE');
  });

  it('fails an export whose events and signed heads were rewritten and re-hashed together', async () => {
    raw((handle) => rewriteFrom(handle, 10, true));
    const file = await exported();
    expect((await runAudit(['verify', '--file', file])).code).toBe(0);
    const { code, stdout } = await runAudit(['verify', '--file', file, '--public-key', await publicKeyFile()]);
    expect(code).toBe(EXIT_NOT_VERIFIED);
    expect(stdout).toContain('changed at seq 21');
  });

  async function headsCopy(): Promise<string> {
    const heads = join(dir, 'heads-copy.jsonl');
    writeFileSync(heads, readFileSync(signedHeadsPath(keys)));
    return heads;
  }

  /**
   * Rewrites an export file as someone who can regenerate it would: drops its audit.head_signed events, edits
   * event `edit`, and re-seals and renumbers every event, with a new trailer and digest.
   */
  async function forgeExport(file: string, edit: number): Promise<void> {
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    const header = JSON.parse(lines[0] as string) as { start_seq: number; start_prev_hash: string; exported_at: string };
    let head: ChainHead = { seq: header.start_seq - 1, hash: header.start_prev_hash };
    const forged: AuditEventV1[] = [];
    for (const line of lines.slice(1, -1)) {
      const { v: _v, seq, prev_hash: _prev, hash: _hash, ...event } = JSON.parse(line) as AuditEventV1;
      if (event.type === 'audit.head_signed') continue;
      const data = seq === edit ? { ...(event.data as object), policy_revision: 'rev-evil' } : event.data;
      head = sealEvent(head, { ...event, data } as NewAuditEvent);
      forged.push(head as AuditEventV1);
    }
    let text = '';
    for await (const line of exportJsonl(header, forged)) text += line;
    writeFileSync(file, text);
  }

  it('checks an archive export (a range that ends before the newest head) against every head of the file in its range', async () => {
    const heads = await headsCopy();
    const key = await publicKeyFile();
    const archive = await exported(['--to-seq', '14']);
    const { code, stdout } = await runAudit(['verify', '--file', archive, '--public-key', key, '--signed-heads', heads]);
    expect(code).toBe(0);
    expect(stdout).toContain('verifies: 14 events up to seq 14');
    expect(stdout).toContain(`signed-heads file ${heads}: 2 heads verified; the one in this file's range (seq 1..14), seq 8, matches it; 1 after its last event, seq 14: out of its range (an export cut before them), not checked`);
    const json = await runAudit(['verify', '--file', archive, '--public-key', key, '--signed-heads', heads, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, signed_heads_file: { range: { from_seq: 1, to_seq: 14, checked: 1, newest_checked: 8, before: 0, after: 1 } } });

    const whole = await runAudit(['verify', '--file', await exported(), '--public-key', key, '--signed-heads', heads]);
    expect(whole.code).toBe(0);
    expect(whole.stdout).toContain("the 2 in this file's range (seq 1..24), up to seq 20, match it");
    const later = await runAudit(['verify', '--file', await exported(['--from-seq', '10']), '--public-key', key, '--signed-heads', heads]);
    expect(later.code).toBe(0);
    expect(later.stdout).toContain("the one in this file's range (seq 10..24), seq 20, matches it; 1 before it");
    const between = await runAudit(['verify', '--file', await exported(['--from-seq', '10', '--to-seq', '14']), '--public-key', key, '--signed-heads', heads]);
    expect(between.code).toBe(0);
    expect(between.stdout).toContain("none is in this file's range (seq 10..14): the file is not checked against them; 1 before it, 1 after its last event");
  });

  it('checks a filtered export whose range ends on events its filter left out', async () => {
    // d-20 (seq 20, signed by the head at seq 20) is support-resolver's: left out, so the file ends at seq 19.
    const file = await exported(['--agent', 'code-review-agent', '--to-seq', '20']);
    const heads = await headsCopy();
    const { code, stdout } = await runAudit(['verify', '--file', file, '--public-key', await publicKeyFile(), '--signed-heads', heads]);
    expect(code).toBe(0);
    expect(stdout).toContain('verifies: 10 events up to seq 19');
    expect(stdout).toContain("the one in this file's range (seq 1..19), seq 8, matches it; 1 after its last event, seq 19: out of its range");
  });

  it('fails a regenerated archive against the signed-heads file, which its own chain (with its signed heads dropped) lets through', async () => {
    const archive = await exported(['--to-seq', '14']);
    await forgeExport(archive, 3);
    const key = await publicKeyFile();
    const alone = await runAudit(['verify', '--file', archive, '--public-key', key]);
    expect(alone.code).toBe(0);
    expect(alone.stdout).toContain('verifies: 13 events up to seq 13');
    expect(alone.stdout).toContain('no signed heads in this chain');
    const { code, stdout } = await runAudit(['verify', '--file', archive, '--public-key', key, '--signed-heads', await headsCopy()]);
    expect(code).toBe(EXIT_NOT_VERIFIED);
    expect(stdout).toContain('changed at seq 8: event 8 does not match the anchored hash: the chain was rewritten here or earlier');
  });
});

describe('a running PDP', () => {
  it('creates the audit key, signs its head on demand and when it stops, and writes each head to the file', async () => {
    const t = await startTestPdp();
    try {
      const keyDir = join(t.dir, 'data', 'keys');
      expect(statSync(join(keyDir, AUDIT_KEY_FILE)).mode & 0o777).toBe(0o600);
      await t.pdp.store.appendEvents([{ type: 'auth.failed', time: at(1), data: { reason: 'missing', route: '/v1/decide', ip: null } }]);
      const head = await t.pdp.heads.signNow();
      expect(head).toMatchObject({ seq: (await t.pdp.store.chainHead()).seq - 1 });
      await t.pdp.store.appendEvents([{ type: 'auth.failed', time: at(2), data: { reason: 'missing', route: '/v1/tasks', ip: null } }]);
      await t.pdp.close();

      const lines = readFileSync(signedHeadsPath(keyDir), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as SignedHeadV1);
      expect(lines).toHaveLength(2);
      expect(lines[0]).toEqual(head);
      const handle = new Database(join(t.dir, 'data', 'pdp.db'), { readonly: true });
      const last = handle.prepare('SELECT seq, type, data FROM audit_events ORDER BY seq DESC LIMIT 1').get() as { seq: number; type: string; data: string };
      handle.close();
      expect(last.type).toBe('audit.head_signed');
      expect(JSON.parse(last.data)).toEqual(lines[1]);
      expect(lines[1]?.seq).toBe(last.seq - 1);

      const store = SqliteStore.open(join(t.dir, 'data', 'pdp.db'));
      const key = await loadAuditKey(keyDir);
      expect(await store.verifyStoredChain({ headKeys: new Map([[key.kid, key.publicKey]]) })).toMatchObject({ ok: true, signed_heads: { count: 2, verified: true } });
      await store.close();
    } finally {
      await t.close();
    }
  });
});
