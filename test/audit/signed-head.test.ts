/**
 * Signed heads (src/audit/signed-head.ts) and the timer that makes them (src/audit/head-signer.ts): a head verifies
 * with the audit public key and with nothing else, and the signer signs when due, never twice for the same head,
 * driven here by hand (tick / signNow) and an injected clock.
 */
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { appendFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  HeadSigner,
  SIGNED_HEAD_CONTEXT,
  appendSignedHead,
  parseSignedHead,
  readSignedHeads,
  scanSignedHeads,
  signHead,
  signedHeadPayload,
  signedHeadProblem,
} from '../../src/audit/index.js';
import type { AuditEventV1, AuditSigningKey, ChainHead, SignedHeadV1 } from '../../src/audit/index.js';

const T = '2026-01-31T12:00:00.000Z';
const HEAD: ChainHead = { seq: 42, hash: 'c'.repeat(64) };

function auditKey(kid = 'k'.repeat(43)): AuditSigningKey & { keys: Map<string, ReturnType<typeof createPublicKey>> } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { kid, privateKey, keys: new Map([[kid, publicKey]]) };
}

describe('a signed head', () => {
  const key = auditKey();
  const head = signHead(HEAD, T, key);

  it('signs the canonical JSON of its context, version, seq, hash, time and kid', () => {
    expect(head).toEqual({ seq: 42, hash: HEAD.hash, time: T, kid: key.kid, sig: expect.stringMatching(/^[A-Za-z0-9_-]{86}$/) });
    expect(signedHeadPayload(head).toString('utf8')).toBe(
      `{"context":"${SIGNED_HEAD_CONTEXT}","hash":"${HEAD.hash}","kid":"${key.kid}","seq":42,"time":"${T}","v":1}`,
    );
    expect(signedHeadProblem(head, key.keys)).toBeUndefined();
    expect(parseSignedHead(JSON.parse(JSON.stringify(head)))).toEqual(head);
  });

  it.each([
    { note: 'another seq', edit: { seq: 43 } },
    { note: 'another hash', edit: { hash: 'd'.repeat(64) } },
    { note: 'another time', edit: { time: '2026-01-31T12:00:00.001Z' } },
    { note: 'a signature of another head', edit: { sig: signHead({ seq: 41, hash: HEAD.hash }, T, key).sig } },
  ])('does not verify with $note', ({ edit }) => {
    expect(signedHeadProblem({ ...head, ...edit }, key.keys)).toBe('does not verify with the audit key');
  });

  it('does not verify with another key, even one given under its kid', () => {
    const other = auditKey(key.kid);
    expect(signedHeadProblem(head, other.keys)).toBe('does not verify with the audit key');
    expect(signedHeadProblem({ ...head, kid: 'z'.repeat(43) }, key.keys)).toMatch(/is signed by key z+, which is not an audit key/);
  });

  it.each([
    { note: 'an extra member', value: { ...head, note: 'x' }, problem: 'exactly' },
    { note: 'seq 0', value: { ...head, seq: 0 }, problem: 'seq' },
    { note: 'an uppercase hash', value: { ...head, hash: 'C'.repeat(64) }, problem: 'hash' },
    { note: 'a time without milliseconds', value: { ...head, time: '2026-01-31T12:00:00Z' }, problem: 'time' },
    { note: 'a short signature', value: { ...head, sig: 'AAAA' }, problem: 'sig' },
  ])('is refused when it has $note', ({ value, problem }) => {
    expect(parseSignedHead(value)).toEqual(expect.stringContaining(problem));
  });

  it('is made with an Ed25519 private key only', () => {
    const { privateKey: ec } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    expect(() => signHead(HEAD, T, { kid: key.kid, privateKey: ec })).toThrow(TypeError);
    expect(() => signHead(HEAD, 'yesterday', key)).toThrow(TypeError);
  });
});

/** A store stand-in: a head that moves when `append` is called, and signHead as the SQLite store does it. */
function fakeStore() {
  const state = { seq: 0, lastType: '' as string, signed: [] as SignedHeadV1[] };
  const hash = (seq: number) => seq.toString(16).padStart(64, '0');
  return {
    state,
    append(n: number) {
      state.seq += n;
      state.lastType = 'decision';
    },
    async chainHead(): Promise<ChainHead> {
      return { seq: state.seq, hash: hash(state.seq) };
    },
    async signHead(sign: (head: ChainHead) => SignedHeadV1): Promise<AuditEventV1 | null> {
      if (state.seq === 0 || state.lastType === 'audit.head_signed') return null;
      const head = sign({ seq: state.seq, hash: hash(state.seq) });
      state.signed.push(head);
      state.seq++;
      state.lastType = 'audit.head_signed';
      return { v: 1, seq: state.seq, time: head.time, type: 'audit.head_signed', data: head, prev_hash: head.hash, hash: hash(state.seq) };
    },
  };
}

function signer(options: { intervalMs?: number; everyEvents?: number } = {}) {
  const store = fakeStore();
  const clock = { ms: 0 };
  const published: SignedHeadV1[] = [];
  const errors: unknown[] = [];
  const heads = new HeadSigner({
    store,
    key: auditKey(),
    now: () => new Date(Date.parse(T) + clock.ms),
    publish: async (head) => void published.push(head),
    elapsedMs: () => clock.ms,
    onError: (error) => errors.push(error),
    intervalMs: options.intervalMs ?? 60_000,
    everyEvents: options.everyEvents ?? 100,
  });
  return { store, clock, published, errors, heads };
}

describe('HeadSigner', () => {
  it('signs once the interval passed with new events, and publishes each head after its event', async () => {
    const { store, clock, published, heads } = signer();
    store.append(5);
    expect(await heads.tick()).toBeNull();
    clock.ms = 59_999;
    expect(await heads.tick()).toBeNull();
    clock.ms = 60_000;
    expect(await heads.tick()).toMatchObject({ seq: 5, time: '2026-01-31T12:01:00.000Z' });
    expect(published.map((h) => h.seq)).toEqual([5]);
    expect(heads.last?.seq).toBe(5);
  });

  it('signs sooner once enough events were appended', async () => {
    const { store, heads } = signer({ everyEvents: 100 });
    expect(await heads.tick()).toBeNull();
    store.append(99);
    expect(await heads.tick()).toBeNull();
    store.append(1);
    expect(await heads.tick()).toMatchObject({ seq: 100 });
    store.append(99);
    expect(await heads.tick()).toBeNull();
    store.append(1);
    expect(await heads.tick()).toMatchObject({ seq: 201 });
  });

  it('signs nothing while nothing new is written: its own event is not news', async () => {
    const { store, clock, heads } = signer();
    store.append(3);
    clock.ms = 60_000;
    expect(await heads.tick()).toMatchObject({ seq: 3 });
    clock.ms = 600_000;
    expect(await heads.tick()).toBeNull();
    expect(await heads.signNow()).toBeNull();
    expect(store.state.signed).toHaveLength(1);
  });

  it('signs now on demand (before the store closes), one head at a time', async () => {
    const { store, heads } = signer();
    expect(await heads.signNow()).toBeNull();
    store.append(2);
    const [a, b] = await Promise.all([heads.signNow(), heads.signNow()]);
    expect(a).toMatchObject({ seq: 2 });
    expect(b).toBeNull();
  });

  it('reports a failed publication and keeps the head', async () => {
    const store = fakeStore();
    const errors: unknown[] = [];
    const heads = new HeadSigner({ store, key: auditKey(), now: () => new Date(T), publish: () => Promise.reject(new Error('disk full')), onError: (e) => errors.push(e) });
    store.append(1);
    expect(await heads.signNow()).toMatchObject({ seq: 1 });
    expect(errors).toEqual([new Error('disk full')]);
  });

  it('appends each head as a line of the signed-heads file, 0600, after a line a crash cut short', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-heads-file-'));
    try {
      const file = join(dir, 'heads.jsonl');
      const key = auditKey();
      const a = signHead({ seq: 1, hash: 'a'.repeat(64) }, T, key);
      const b = signHead({ seq: 2, hash: 'b'.repeat(64) }, T, key);
      await appendSignedHead(file, a);
      appendFileSync(file, '{"hash":"cut sh');
      await appendSignedHead(file, b);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const lines: Array<SignedHeadV1 | string> = [];
      for await (const { head } of readSignedHeads(file)) lines.push(head);
      expect(lines).toEqual([a, 'not JSON', b]);
      expect(await scanSignedHeads(file, key.keys)).toMatchObject({ count: 1, problem: { line: 2, message: 'is not a signed head: not JSON' } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([{ intervalMs: 0 }, { everyEvents: -1 }, { checkMs: 1.5 }])('refuses %o', (options) => {
    expect(() => new HeadSigner({ store: fakeStore(), key: auditKey(), now: () => new Date(T), ...options })).toThrow(TypeError);
  });
});
