/**
 * The signed-heads file: every signed head the PDP makes, one JSON object per line (JSON Lines, canonical JSON),
 * appended and synced, never rewritten. It is the copy of the heads that lives outside the database: kept next to
 * the audit key (or shipped to a log collector or WORM storage), it lets `audit verify` catch a chain whose tail
 * was cut or rewritten together with the audit.head_signed events in it.
 *
 *   {"hash":"<hex>","kid":"<kid>","seq":1200,"sig":"<base64url>","time":"2026-01-31T12:00:00.000Z"}
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { canonicalJson } from './canonical-json.js';
import { parseSignedHead, signedHeadProblem } from './signed-head.js';
import type { HeadKeys, SignedHeadV1 } from './signed-head.js';

/** What appendSignedHead did: `appended`, or not because the file's last head (`last`) is not before it. */
export type AppendSignedHeadResult = { appended: true } | { appended: false; last: SignedHeadV1 };

/**
 * Appends `head` as one line to the file at `path` (created 0600 if missing) and syncs it to disk. A last line a
 * crash cut short (no newline) is ended first, so the new head stays a line of its own.
 *
 * Seqs in the file only grow (`scanSignedHeads` reports a head after a higher one as a rolled-back or forked
 * chain), so a head whose seq is not after the file's last head is not written: it is returned as not appended,
 * for the caller to log. That happens when two processes signed close together (a replica that had lost the
 * leadership lease without knowing yet, docs/scaling.md): the later head covers the earlier one.
 */
export async function appendSignedHead(path: string, head: SignedHeadV1): Promise<AppendSignedHeadResult> {
  const file = await open(path, 'a+', 0o600);
  try {
    const { size } = await file.stat();
    const last = await lastHead(file, size);
    if (last !== undefined && head.seq <= last.seq) return { appended: false, last };
    const end = Buffer.alloc(1);
    if (size > 0) await file.read(end, 0, 1, size - 1);
    const separator = size > 0 && end[0] !== 0x0a ? '\n' : '';
    await file.appendFile(`${separator}${canonicalJson(head)}\n`, 'utf8');
    await file.datasync();
    return { appended: true };
  } finally {
    await file.close();
  }
}

/** A signed head's line is about 250 bytes: the tail is read back in chunks of this size. */
const TAIL_CHUNK = 4096;
/** A line longer than this holds no head: reading back stops there. */
const MAX_LINE = 65_536;

/**
 * The last line of the file that holds a signed head (its signature unchecked: verification is `audit verify`'s),
 * read back from the end; lines that hold none (a cut append, a blank line) are passed over. Undefined when the
 * file holds no head (or only behind a line too long to be one).
 */
async function lastHead(file: FileHandle, size: number): Promise<SignedHeadV1 | undefined> {
  let end = size;
  /** The start of a line whose beginning is not read yet. */
  let partial = Buffer.alloc(0);
  while (end > 0 && partial.length <= MAX_LINE) {
    const start = Math.max(0, end - TAIL_CHUNK);
    const chunk = Buffer.alloc(end - start);
    await file.read(chunk, 0, chunk.length, start);
    end = start;
    let text = Buffer.concat([chunk, partial]);
    // What follows a newline is a whole line; what precedes the first one is whole only at the file's start.
    for (let nl = text.lastIndexOf(0x0a); nl >= 0; nl = text.lastIndexOf(0x0a)) {
      const head = headOf(text.subarray(nl + 1));
      if (head !== undefined) return head;
      text = text.subarray(0, nl);
    }
    partial = Buffer.from(text);
  }
  return end === 0 ? headOf(partial) : undefined;
}

function headOf(line: Buffer): SignedHeadV1 | undefined {
  const text = line.toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    const head = parseSignedHead(JSON.parse(text));
    return typeof head === 'string' ? undefined : head;
  } catch {
    return undefined;
  }
}

const NOT_JSON = 'not JSON';

/** One line of a signed-heads file: the head it holds, or why it holds none. Blank lines are skipped. */
export interface SignedHeadLine {
  line: number;
  head: SignedHeadV1 | string;
}

/** The lines of the signed-heads file at `path`, streamed. */
export async function* readSignedHeads(path: string): AsyncGenerator<SignedHeadLine> {
  const input = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const text of lines) {
      line++;
      if (text.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        yield { line, head: NOT_JSON };
        continue;
      }
      yield { line, head: parseSignedHead(value) };
    }
  } finally {
    lines.close();
    input.destroy();
  }
}

/** What a signed-heads file holds, checked line by line with the audit public keys. */
export interface SignedHeadsScan {
  /** Lines holding a signed head that verifies. */
  count: number;
  /** The head with the highest seq (the last line), or null when the file holds none. */
  newest: SignedHeadV1 | null;
  /** The first line that is not a verifying signed head, or that goes back (a lower seq, or the same seq with another hash). */
  problem?: { line: number; message: string };
  /** A last line that is not JSON: an append cut short by a crash. It proves nothing, so it is left out, not failed. */
  incomplete?: number;
}

/**
 * Reads the signed-heads file at `path` and checks every line: a signed head, signed by one of `keys`, and never
 * going back (seqs only grow: a lower seq, or one signed again with another hash, means the chain it was signed on
 * was rolled back or forked). Stops at the first problem. A last line that is not even JSON is an append a crash
 * cut short: it is reported as `incomplete`, not as a problem. Constant memory.
 */
export async function scanSignedHeads(path: string, keys: HeadKeys): Promise<SignedHeadsScan> {
  let count = 0;
  let newest: SignedHeadV1 | null = null;
  /** A line that is not JSON: fatal unless it turns out to be the last one. */
  let cut: number | undefined;
  for await (const { line, head } of readSignedHeads(path)) {
    if (cut !== undefined) return { count, newest, problem: { line: cut, message: 'is not a signed head: not JSON' } };
    if (head === NOT_JSON) {
      cut = line;
      continue;
    }
    if (typeof head === 'string') return { count, newest, problem: { line, message: `is not a signed head: ${head}` } };
    const problem = signedHeadProblem(head, keys);
    if (problem !== undefined) return { count, newest, problem: { line, message: `holds a head that ${problem}: it was forged or altered` } };
    if (newest !== null && (head.seq < newest.seq || (head.seq === newest.seq && head.hash !== newest.hash))) {
      const message = `signs seq ${head.seq} after a head at seq ${newest.seq}${head.seq === newest.seq ? ' with another hash' : ''}: the chain was rolled back or forked`;
      return { count, newest, problem: { line, message } };
    }
    count++;
    newest = head;
  }
  return { count, newest, ...(cut === undefined ? {} : { incomplete: cut }) };
}
