/**
 * Decision ids are UUIDv7 (RFC 9562 §5.7): 48 bits of Unix time in milliseconds, then 74 random bits.
 *
 * Why not v4: the id is indexed on the audit events (and is the primary key of a decision's state row), and random keys
 * land on random B-tree pages, so every group-commit batch dirtied (and wrote to the WAL) a page per decision
 * per index. Time-ordered keys append: recording a decision took 80 µs instead of 125 µs on the project's VM
 * (bench/README.md), and the gap widens as the tables outgrow the page cache.
 *
 * What it reveals: the time the decision was made, to the millisecond, which its record and response carry anyway.
 * A decision id is not a bearer secret (redeeming one needs the caller's key, and only its own decisions), and the
 * 74 random bits still make one unguessable. Ids made in the same millisecond are unordered among themselves.
 */
import { randomFillSync } from 'node:crypto';

const RANDOM_BYTES = 10;
/** Random bytes drawn from the CSPRNG 256 ids at a time; each byte is used once. */
const pool = new Uint8Array(RANDOM_BYTES * 256);
let used = pool.length;

export function newDecisionId(now: number = Date.now()): string {
  if (!Number.isSafeInteger(now) || now < 0 || now >= 2 ** 48) throw new TypeError(`not a 48-bit Unix time in ms: ${now}`);
  if (used + RANDOM_BYTES > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const bytes = Buffer.alloc(16);
  bytes.writeUIntBE(now, 0, 6);
  bytes.set(pool.subarray(used, used + RANDOM_BYTES), 6);
  pool.fill(0, used, used + RANDOM_BYTES);
  used += RANDOM_BYTES;
  bytes[6] = 0x70 | ((bytes[6] as number) & 0x0f); // version 7
  bytes[8] = 0x80 | ((bytes[8] as number) & 0x3f); // variant 10
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
