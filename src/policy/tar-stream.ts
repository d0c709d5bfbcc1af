import { setImmediate as nextTurn } from 'node:timers/promises';
import { createGunzip } from 'node:zlib';
import { TarFormatError, checksumOk, cstring, octal, paxValue, type TarEntry } from './tar-reader.js';

/**
 * The regular files of a gzipped ustar archive, as `readTarGz` (tar-reader.ts) reads them, but unpacked as a stream:
 * the inflating runs on libuv's thread pool, and each file's bytes are copied once, chunk by chunk, into a buffer of
 * its own size. One gunzip and `readTar` of a 55 MB compiled bundle held the event loop for 0.8 s, mostly the first
 * touch of two fresh 55 MB buffers (the inflated archive, then the copy of data.json out of it); here every step
 * touches at most one chunk. The header checks and the refusals are the same as `readTar`'s.
 *
 * Throws a {@link TarFormatError} for a malformed archive, and `GunzipFailed` for a stream zlib refuses or one larger
 * than `maxBytes` unpacked.
 */
export async function readTarGzStreaming(gz: Buffer, maxBytes: number): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  const header = Buffer.alloc(BLOCK);
  let headerFilled = 0;
  let offset = 0; // of the next header in the archive
  let lastHeaderAt = 0;
  let body: Buffer | undefined;
  let bodyFilled = 0;
  let skip = 0; // padding (or an ignored entry's body) still to pass over
  let padding = 0; // of the current entry: the part of `skip` an archive may end without
  let pending: { type: string; path: string } | undefined;
  let paxPath: string | undefined;
  let ended = false;
  let total = 0;

  const onHeader = (): void => {
    if (header.every((b) => b === 0)) {
      ended = true; // end-of-archive marker
      return;
    }
    lastHeaderAt = offset;
    if (!checksumOk(header)) throw new TarFormatError(`bad header checksum at offset ${offset}`);
    const size = octal(header.subarray(124, 136));
    const type = String.fromCharCode(header[156] ?? 0);
    padding = Math.ceil(size / BLOCK) * BLOCK - size;
    if (size > maxBytes) {
      // Never allocated: the archive is truncated or over the limit, and either is found while passing over it.
      skip = size + padding;
    } else if (type === 'x' || type === '0' || type === '\0') {
      const prefix = cstring(header.subarray(345, 500));
      const name = cstring(header.subarray(0, 100));
      pending = { type, path: (paxPath ?? (prefix ? `${prefix}/${name}` : name)).replace(/^\/+/, '') };
      // Not yet touched: its pages are first written chunk by chunk.
      body = Buffer.allocUnsafeSlow(size);
      bodyFilled = 0;
      skip = padding;
      if (size === 0) onBody();
    } else {
      paxPath = undefined; // directories, links and global headers carry nothing a bundle needs
      skip = size + padding;
    }
    offset += BLOCK + size + padding;
  };
  const onBody = (): void => {
    const done = body as Buffer;
    const entry = pending as { type: string; path: string };
    body = undefined;
    pending = undefined;
    if (entry.type === 'x') {
      paxPath = paxValue(done, 'path');
    } else {
      entries.push({ path: entry.path, content: done });
      paxPath = undefined;
    }
  };

  const gunzip = createGunzip({ chunkSize: CHUNK_BYTES });
  gunzip.end(gz);
  let lastYield = performance.now();
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      // Chunks the thread pool inflated meanwhile come one microtask after another, with no turn of the event loop
      // between them: copying ten of them into fresh pages held a reloading server for tens of milliseconds.
      if (performance.now() - lastYield > YIELD_EVERY_MS) {
        await nextTurn();
        lastYield = performance.now();
      }
      total += chunk.length;
      if (total > maxBytes) throw new GunzipFailed(new RangeError(`more than ${maxBytes} bytes unpacked`));
      let at = 0;
      while (at < chunk.length && !ended) {
        if (body !== undefined) {
          const n = Math.min(chunk.length - at, body.length - bodyFilled);
          chunk.copy(body, bodyFilled, at, at + n);
          bodyFilled += n;
          at += n;
          if (bodyFilled === body.length) onBody();
        } else if (skip > 0) {
          const n = Math.min(chunk.length - at, skip);
          skip -= n;
          at += n;
        } else {
          const n = Math.min(chunk.length - at, BLOCK - headerFilled);
          chunk.copy(header, headerFilled, at, at + n);
          headerFilled += n;
          at += n;
          if (headerFilled === BLOCK) {
            headerFilled = 0;
            onHeader();
          }
        }
      }
    }
  } catch (err) {
    gunzip.destroy();
    if (err instanceof TarFormatError || err instanceof GunzipFailed) throw err;
    throw new GunzipFailed(err);
  }
  if (body !== undefined) throw new TarFormatError(`truncated entry at offset ${lastHeaderAt}`);
  if (skip > padding) throw new TarFormatError(`truncated entry at offset ${lastHeaderAt}`);
  return entries;
}

/** zlib refused the stream, or it unpacked to more than the limit. */
export class GunzipFailed extends Error {
  override readonly name = 'GunzipFailed';
  constructor(cause: unknown) {
    super('not a gzip stream, or larger than the limit unpacked', { cause });
  }
}

const BLOCK = 512;
/** Most time between two turns of the event loop while unpacking. */
const YIELD_EVERY_MS = 8;
/** Inflated bytes per chunk: copying one into fresh pages takes a few milliseconds. */
const CHUNK_BYTES = 1024 * 1024;

