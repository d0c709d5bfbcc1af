import { gunzipSync } from 'node:zlib';

/**
 * Reads the regular files of a (gzipped) ustar archive into memory. OPA bundles are small and written by
 * `opa build`, so a complete in-memory read is fine; anything that is not a well-formed archive is refused.
 */
export interface TarEntry {
  /** Path with any leading `/` removed (`opa build` writes `/policy.wasm`). */
  path: string;
  content: Buffer;
}

const BLOCK = 512;
/** A bundle is code plus a little data; refuse archives that would take the process's memory. */
export const MAX_BUNDLE_BYTES = 64 * 1024 * 1024;

/** `maxBytes`: the largest archive accepted, unpacked (default {@link MAX_BUNDLE_BYTES}). */
export function readTarGz(gz: Buffer, maxBytes = MAX_BUNDLE_BYTES): TarEntry[] {
  let tar: Buffer;
  try {
    tar = gunzipSync(gz, { maxOutputLength: maxBytes });
  } catch (cause) {
    throw new TarFormatError('not a gzip stream, or larger than the bundle limit', { cause });
  }
  return readTar(tar);
}

/** The regular files of an (unpacked) ustar archive. */
export function readTar(tar: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  let offset = 0;
  let paxPath: string | undefined;
  while (offset + BLOCK <= tar.length) {
    const header = tar.subarray(offset, offset + BLOCK);
    if (header.every((b) => b === 0)) break; // end-of-archive marker
    if (!checksumOk(header)) throw new TarFormatError(`bad header checksum at offset ${offset}`);
    const size = octal(header.subarray(124, 136));
    const type = String.fromCharCode(header[156] ?? 0);
    const body = tar.subarray(offset + BLOCK, offset + BLOCK + size);
    if (body.length !== size) throw new TarFormatError(`truncated entry at offset ${offset}`);
    if (type === 'x') {
      paxPath = paxValue(body, 'path');
    } else if (type === '0' || type === '\0') {
      const prefix = cstring(header.subarray(345, 500));
      const name = cstring(header.subarray(0, 100));
      const path = (paxPath ?? (prefix ? `${prefix}/${name}` : name)).replace(/^\/+/, '');
      entries.push({ path, content: Buffer.from(body) });
      paxPath = undefined;
    } else {
      paxPath = undefined; // directories, links and global headers carry nothing a bundle needs
    }
    offset += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
  return entries;
}

export class TarFormatError extends Error {
  override readonly name = 'TarFormatError';
}

/** The header fields, as the streamed reader (tar-stream.ts) reads them too. */
export function cstring(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.subarray(0, end === -1 ? buf.length : end).toString('utf8');
}

export function octal(buf: Buffer): number {
  const text = cstring(buf).trim();
  if (!/^[0-7]*$/.test(text)) throw new TarFormatError('non-octal size field');
  return text === '' ? 0 : parseInt(text, 8);
}

export function checksumOk(header: Buffer): boolean {
  const stored = octal(header.subarray(148, 156));
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (header[i] ?? 0);
  return sum === stored;
}

export function paxValue(body: Buffer, key: string): string | undefined {
  for (const record of body.toString('utf8').split('\n')) {
    const match = /^\d+ ([^=]+)=(.*)$/.exec(record);
    if (match?.[1] === key) return match[2];
  }
  return undefined;
}
