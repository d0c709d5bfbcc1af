/** Approval links: valid only for their request, unaltered, until they expire; the link key file's permissions. */
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PdpError } from '../../src/errors/pdp-error.js';
import { ApprovalLinks, loadLinkKey } from '../../src/notify/index.js';

const KEY = Buffer.alloc(32, 7);
const NOW = new Date('2026-01-01T00:00:00.000Z');
const later = (seconds: number) => new Date(NOW.getTime() + seconds * 1000);

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof PdpError) return err.code;
    throw err;
  }
  return 'no error';
}

/** Changes one character of `token` at `index` to another base64url character. */
function flip(token: string, index: number): string {
  const c = token[index] === 'A' ? 'B' : 'A';
  return token.slice(0, index) + c + token.slice(index + 1);
}

describe('ApprovalLinks', () => {
  const links = new ApprovalLinks(KEY, 900);
  const token = links.issue('ar-1', 'platform-oncall', NOW);

  it('verifies a token it issued, for its request, before it expires', () => {
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(links.verify(token, 'ar-1', later(899))).toEqual({ group: 'platform-oncall', exp: NOW.getTime() / 1000 + 900 });
    expect(links.issue('ar-1', 'platform-oncall', NOW)).not.toBe(token); // a nonce: two links never look alike
  });

  it.each([
    { note: 'another request id', value: () => token, id: 'ar-2', at: later(1), code: 'approval_link_invalid' },
    { note: 'the last MAC character changed', value: () => flip(token, token.length - 1), id: 'ar-1', at: later(1), code: 'approval_link_invalid' },
    { note: 'a payload character changed', value: () => flip(token, 3), id: 'ar-1', at: later(1), code: 'approval_link_invalid' },
    { note: 'another request id swapped into the payload', value: () => swapId(token, 'ar-2'), id: 'ar-2', at: later(1), code: 'approval_link_invalid' },
    { note: 'a token of another key', value: () => new ApprovalLinks(Buffer.alloc(32, 8), 900).issue('ar-1', 'g', NOW), id: 'ar-1', at: later(1), code: 'approval_link_invalid' },
    { note: 'no MAC', value: () => token.split('.')[0] as string, id: 'ar-1', at: later(1), code: 'approval_link_invalid' },
    { note: 'an empty token', value: () => '', id: 'ar-1', at: later(1), code: 'approval_link_invalid' },
    { note: 'a huge token', value: () => `${'a'.repeat(5000)}.b`, id: 'ar-1', at: later(1), code: 'approval_link_invalid' },
    { note: 'expiry reached', value: () => token, id: 'ar-1', at: later(900), code: 'approval_link_expired' },
    { note: 'expired and for another request (invalid first)', value: () => token, id: 'ar-2', at: later(10_000), code: 'approval_link_invalid' },
  ])('refuses $note: $code', ({ value, id, at, code }) => {
    expect(codeOf(() => links.verify(value(), id, at))).toBe(code);
  });

  it('caps a link at the request expiry it is given', () => {
    const capped = links.issue('ar-1', 'g', NOW, later(60));
    expect(links.verify(capped, 'ar-1', later(59)).exp).toBe(NOW.getTime() / 1000 + 60);
    expect(codeOf(() => links.verify(capped, 'ar-1', later(60)))).toBe('approval_link_expired');
  });

  it('refuses a short key or a bad lifetime at construction', () => {
    expect(() => new ApprovalLinks(Buffer.alloc(16), 900)).toThrow(TypeError);
    expect(() => new ApprovalLinks(KEY, 0)).toThrow(TypeError);
  });
});

/** The same token with its payload's id replaced and the old MAC kept: a forgery attempt. */
function swapId(token: string, id: string): string {
  const [payload, mac] = token.split('.') as [string, string];
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  return `${Buffer.from(JSON.stringify({ ...claims, id })).toString('base64url')}.${mac}`;
}

describe('loadLinkKey', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const fresh = () => {
    dir = mkdtempSync(join(tmpdir(), 'agent-pdp-link-key-'));
    return join(dir, 'keys', 'approval-link.key');
  };

  it('creates a 0600 key in a 0700 folder on first start and loads the same key after', () => {
    const file = fresh();
    const key = loadLinkKey(file, { create: true });
    expect(key.length).toBe(32);
    if (process.platform !== 'win32') {
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(statSync(join(dir, 'keys')).mode & 0o777).toBe(0o700);
    }
    expect(loadLinkKey(file).equals(key)).toBe(true);
    expect(loadLinkKey(file, { create: true }).equals(key)).toBe(true);
    expect(readFileSync(file, 'utf8').trim()).toBe(key.toString('base64url'));
  });

  it.runIf(process.platform !== 'win32').each([
    { note: 'group-readable', mode: 0o640 },
    { note: 'world-readable', mode: 0o604 },
    { note: 'group-writable', mode: 0o620 },
  ])('refuses a $note key file', ({ mode }) => {
    const file = fresh();
    loadLinkKey(file, { create: true });
    chmodSync(file, mode);
    expect(codeOf(() => loadLinkKey(file))).toBe('config_invalid');
    expect(() => loadLinkKey(file)).toThrow(/chmod 600/);
  });

  it.runIf(process.platform !== 'win32')('refuses to create a key in a folder others may write', () => {
    const file = fresh();
    loadLinkKey(file, { create: true });
    rmSync(file);
    chmodSync(join(dir, 'keys'), 0o777);
    expect(() => loadLinkKey(file, { create: true })).toThrow(/chmod 700/);
  });

  it('refuses a missing file without create, and a short or garbled key', () => {
    const file = fresh();
    expect(() => loadLinkKey(file)).toThrow(/creates it on first start/);
    loadLinkKey(file, { create: true });
    writeFileSync(file, `${Buffer.alloc(16, 1).toString('base64url')}\n`, { mode: 0o600 });
    expect(() => loadLinkKey(file)).toThrow(/shorter than 32 bytes/);
    writeFileSync(file, 'not a key!\n', { mode: 0o600 });
    expect(() => loadLinkKey(file)).toThrow(/base64url/);
  });
});
