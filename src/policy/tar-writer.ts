import { gzipSync } from 'node:zlib';

/**
 * Writes a gzipped ustar archive of regular files, deterministically: the same entries give the same bytes on every
 * machine (mode 0644, owner 0, mtime 0, no user or group names, entries in the order given, gzip without a name or
 * time). What `readTarGz` (`tar-reader.ts`) and `opa` read. Paths are written with a leading `/`, as `opa build`
 * writes them.
 */
export interface TarFile {
  /** `/`-separated, without a leading `/`; at most 99 bytes (no PAX headers are written). */
  path: string;
  content: Buffer;
}

const BLOCK = 512;

export function writeTarGz(files: readonly TarFile[]): Buffer {
  const parts: Buffer[] = [];
  for (const file of files) {
    const name = `/${file.path}`;
    if (file.path === '' || file.path.startsWith('/') || Buffer.byteLength(name) > 99) {
      throw new TypeError(`tar entry path must be relative and at most 98 bytes: ${JSON.stringify(file.path)}`);
    }
    parts.push(header(name, file.content.length), file.content);
    const pad = (BLOCK - (file.content.length % BLOCK)) % BLOCK;
    if (pad > 0) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(BLOCK * 2)); // end-of-archive marker
  return gzipSync(Buffer.concat(parts), { level: 6 });
}

function header(name: string, size: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(0o644, 8), 100, 'ascii'); // mode
  h.write(octal(0, 8), 108, 'ascii'); // uid
  h.write(octal(0, 8), 116, 'ascii'); // gid
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(0, 12), 136, 'ascii'); // mtime
  h.fill(0x20, 148, 156); // checksum placeholder: spaces
  h.write('0', 156, 'ascii'); // regular file
  h.write('ustar\u000000', 257, 'ascii');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i] ?? 0;
  h.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'ascii');
  return h;
}

/** A NUL-terminated octal field of `width` bytes. */
function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\u0000`;
}
