import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HeadSigner, appendSignedHead, canonicalJson, scanSignedHeads, signHead } from '../../src/audit/index.js';
import type { AuditEventV1, AuditSigningKey, ChainHead, SignedHeadV1 } from '../../src/audit/index.js';

/**
 * Two signers on one store (replicas that both believed they led, for a moment) must not leave the signed-heads file
 * going back: appendSignedHead writes a head only after the file's last one, and a signer that does not lead signs
 * nothing.
 */

const T = '2026-01-31T12:00:00.000Z';

function auditKey(): AuditSigningKey & { keys: Map<string, KeyObject> } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const kid = 'k'.repeat(43);
  return { kid, privateKey, keys: new Map([[kid, publicKey]]) };
}

const key = auditKey();
const head = (seq: number, hash = seq.toString(16).padStart(64, '0')): SignedHeadV1 => signHead({ seq, hash }, T, key);

describe('appendSignedHead', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'agent-pdp-heads-order-'));
    file = join(dir, 'heads.jsonl');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const lines = () => readFileSync(file, 'utf8').split('\n').filter(Boolean);

  it('appends heads in seq order and refuses one that is not after the last, writing nothing', async () => {
    expect(await appendSignedHead(file, head(10))).toEqual({ appended: true });
    expect(await appendSignedHead(file, head(20))).toEqual({ appended: true });
    const before = readFileSync(file, 'utf8');
    // Signed by a replica that signed a little earlier but published later.
    expect(await appendSignedHead(file, head(15))).toEqual({ appended: false, last: head(20) });
    // The same seq again (with its hash or another).
    expect(await appendSignedHead(file, head(20))).toMatchObject({ appended: false });
    expect(await appendSignedHead(file, head(20, 'f'.repeat(64)))).toMatchObject({ appended: false });
    expect(readFileSync(file, 'utf8')).toBe(before);
    expect(await appendSignedHead(file, head(21))).toEqual({ appended: true });
    expect(lines().map((l) => (JSON.parse(l) as SignedHeadV1).seq)).toEqual([10, 20, 21]);
    expect(await scanSignedHeads(file, key.keys)).toMatchObject({ count: 3, newest: head(21) });
    expect(await scanSignedHeads(file, key.keys)).not.toHaveProperty('problem');
  });

  it('finds the last head behind a line a crash cut short, and behind many chunks of the file', async () => {
    // Far more than one chunk read back (4 KiB): the last head is found wherever the chunks split the lines.
    writeFileSync(file, Array.from({ length: 200 }, (_, i) => canonicalJson(head(i + 1))).join('\n') + '\n', { mode: 0o600 });
    appendFileSync(file, '{"hash":"cut sh');
    expect(await appendSignedHead(file, head(150))).toEqual({ appended: false, last: head(200) });
    expect(await appendSignedHead(file, head(201))).toEqual({ appended: true });
    expect(lines().slice(-2)).toEqual(['{"hash":"cut sh', canonicalJson(head(201))]);
  });

  it('writes the first head of an empty or missing file', async () => {
    expect(await appendSignedHead(file, head(1))).toEqual({ appended: true });
    writeFileSync(file, '\n\n', { mode: 0o600 });
    expect(await appendSignedHead(file, head(1))).toEqual({ appended: true });
  });
});

/** A store with a chain of `seq` events whose head the signer signs (appending its audit.head_signed event). */
function fakeStore(): { chainHead(): Promise<ChainHead>; signHead(sign: (head: ChainHead) => SignedHeadV1): Promise<AuditEventV1 | null>; append(n: number): void } {
  let seq = 0;
  let signedAt = 0;
  const hashOf = (s: number) => s.toString(16).padStart(64, '0');
  return {
    chainHead: () => Promise.resolve({ seq, hash: hashOf(seq) }),
    signHead(sign) {
      if (seq === 0 || seq === signedAt) return Promise.resolve(null);
      sign({ seq, hash: hashOf(seq) });
      seq++;
      signedAt = seq;
      return Promise.resolve({ seq } as AuditEventV1);
    },
    append(n) {
      seq += n;
    },
  };
}

describe('a HeadSigner that does not lead', () => {
  it('signs nothing, on its timer or asked, and signs once it leads', async () => {
    let leading = false;
    const store = fakeStore();
    const published: SignedHeadV1[] = [];
    const heads = new HeadSigner({ store, key, now: () => new Date(T), everyEvents: 1, leading: () => leading, publish: async (h) => void published.push(h) });
    store.append(5);
    expect(await heads.tick()).toBeNull();
    expect(await heads.signNow()).toBeNull();
    expect(published).toEqual([]);
    leading = true;
    // Its first look counts from the head it finds; one event later it is due (everyEvents: 1).
    expect(await heads.tick()).toBeNull();
    store.append(1);
    expect(await heads.tick()).toMatchObject({ seq: 6 });
    expect(published.map((h) => h.seq)).toEqual([6]);
  });
});
