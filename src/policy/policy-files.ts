/*
 * Reading the policy directory: which files, whether anyone else could have written them, and their bytes.
 *
 * - Every `*.yaml` / `*.yml` under the directory, recursively; names starting with `.` are skipped.
 * - A symbolic link to a file is followed only when its target (every link resolved) lies inside the directory: a
 *   Kubernetes ConfigMap's `name.yaml -> ..data/name.yaml` loads, a link to `/home/someone/agent.yaml` is an error.
 *   Symbolic links to folders are not followed.
 * - A file or folder of the tree that group or others may write, and a folder above the directory that they may
 *   write without the sticky bit, refuse the set; with `allowInsecurePermissions` each becomes a warning.
 * - A file larger than `maxFileBytes` refuses the set before anything is parsed; at most that many bytes (+1) are
 *   read, even if the file grows meanwhile.
 * Nothing is parsed here; every problem of every file is collected, then the set is refused in one error.
 */
import { createHash } from 'node:crypto';
import { constants, open, readdir, realpath, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { PdpError, type ErrorDetail } from '../errors/pdp-error.js';
import { acceptedInsecure, INSECURE_HINT, octalMode, writableAncestors, writableByOthers } from './file-permissions.js';
import type { PolicySource } from './policy-types.js';

export const POLICY_FILE = /\.ya?ml$/;
const READ_CONCURRENCY = 64;
const NO_FOLLOW = constants.O_NOFOLLOW ?? 0;
const NON_BLOCK = constants.O_NONBLOCK ?? 0;

export interface PolicyFileOptions {
  maxFileBytes: number;
  allowInsecurePermissions: boolean;
}

export interface PolicyFiles {
  sources: PolicySource[];
  /** Insecure permissions accepted because `allowInsecurePermissions` is set. */
  warnings: ErrorDetail[];
}

interface Scan {
  /** The directory with every symbolic link resolved. */
  root: string;
  /** Files to read: `rel` names it (relative to the directory), `real` is where its bytes are. */
  files: Array<{ rel: string; real: string }>;
  unreadable: ErrorDetail[];
  refused: ErrorDetail[];
  insecure: ErrorDetail[];
}

/** Lists, checks and reads the policy files under `dir`. policy_invalid listing every problem. */
export async function readPolicyFiles(dir: string, options: PolicyFileOptions): Promise<PolicyFiles> {
  let root: string;
  try {
    root = await realpath(dir);
  } catch (cause) {
    throw unreadable(dir, [{ path: '', file: dir, message: (cause as Error).message }], cause);
  }
  const scan: Scan = { root, files: [], unreadable: [], refused: [], insecure: [] };
  const sources: PolicySource[] = [];
  try {
    for (const above of await writableAncestors(root)) scan.insecure.push({ path: '', file: above.path, message: `${above.message}; ${INSECURE_HINT}` });
    await walk(scan, '');
    scan.files.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
    // READ_CONCURRENCY reads in flight: read one at a time, 5,000 agent files spent a quarter of their load time waiting.
    for (let i = 0; i < scan.files.length; i += READ_CONCURRENCY) {
      const read = await Promise.all(scan.files.slice(i, i + READ_CONCURRENCY).map((file) => readOne(scan, file, options.maxFileBytes)));
      for (const source of read) if (source !== undefined) sources.push(source);
    }
  } catch (cause) {
    throw unreadable(dir, [{ path: '', file: dir, message: (cause as Error).message }], cause);
  }
  if (scan.unreadable.length > 0) throw unreadable(dir, [...scan.unreadable, ...scan.refused]);
  const refused = options.allowInsecurePermissions ? scan.refused : [...scan.refused, ...scan.insecure];
  if (refused.length > 0) {
    const first = refused[0] as ErrorDetail;
    const count = refused.length === 1 ? '1 problem' : `${refused.length} problems`;
    throw new PdpError('policy_invalid', `policies under ${dir} are refused (${count}; first: ${first.file ?? ''} ${first.message})`, { details: refused });
  }
  return { sources, warnings: scan.insecure.map(acceptedInsecure) };
}

async function walk(scan: Scan, prefix: string): Promise<void> {
  const dir = prefix === '' ? scan.root : join(scan.root, prefix);
  await checkFolder(scan, dir);
  const entries = await readdir(dir, { withFileTypes: true });
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const rel = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) await walk(scan, rel);
    else if (!POLICY_FILE.test(entry.name)) continue;
    else if (entry.isSymbolicLink()) await followLink(scan, rel);
    else if (entry.isFile()) scan.files.push({ rel, real: join(scan.root, rel) });
  }
}

/** A link is read where it leads, if that is inside the directory; the folders between are checked too. */
async function followLink(scan: Scan, rel: string): Promise<void> {
  let target: string;
  try {
    target = await realpath(join(scan.root, rel));
  } catch (cause) {
    scan.unreadable.push({ path: '', file: rel, message: (cause as Error).message });
    return;
  }
  if (!inside(scan.root, target)) {
    scan.refused.push({ path: '', file: rel, message: `is a symbolic link to ${target}, outside the policy directory: not followed` });
    return;
  }
  // A hidden folder on the way (a ConfigMap's `..2024_01_01...`) is not walked: check it here.
  for (let folder = dirname(target); folder !== scan.root; folder = dirname(folder)) await checkFolder(scan, folder);
  scan.files.push({ rel, real: target });
}

async function checkFolder(scan: Scan, dir: string): Promise<void> {
  const stats = await stat(dir);
  if (await writableByOthers(dir, stats)) {
    const name = dir === scan.root ? '.' : relative(scan.root, dir).split(sep).join('/');
    if (!scan.insecure.some((d) => d.file === name)) {
      scan.insecure.push({ path: '', file: name, message: `folder writable by group or others (mode ${octalMode(stats.mode)}): ${INSECURE_HINT}` });
    }
  }
}

async function readOne(scan: Scan, file: { rel: string; real: string }, maxFileBytes: number): Promise<PolicySource | undefined> {
  let handle: FileHandle;
  try {
    // O_NONBLOCK: a link to a FIFO inside the directory must not hang the reload until someone writes to it.
    handle = await open(file.real, constants.O_RDONLY | NO_FOLLOW | NON_BLOCK);
  } catch (cause) {
    scan.unreadable.push({ path: '', file: file.rel, message: (cause as Error).message });
    return undefined;
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) {
      scan.refused.push({ path: '', file: file.rel, message: 'is not a regular file' });
      return undefined;
    }
    if (await writableByOthers(file.real, stats)) {
      scan.insecure.push({ path: '', file: file.rel, message: `file writable by group or others (mode ${octalMode(stats.mode)}): ${INSECURE_HINT}` });
    }
    if (stats.size > maxFileBytes) {
      scan.refused.push({ path: '', file: file.rel, message: tooLarge(stats.size, maxFileBytes) });
      return undefined;
    }
    const bytes = await readAtMost(handle, maxFileBytes + 1, stats.size);
    if (bytes.length > maxFileBytes) {
      scan.refused.push({ path: '', file: file.rel, message: tooLarge(undefined, maxFileBytes) });
      return undefined;
    }
    return { file: file.rel, text: bytes.toString('utf8'), sha256: createHash('sha256').update(bytes).digest('hex') };
  } catch (cause) {
    scan.unreadable.push({ path: '', file: file.rel, message: (cause as Error).message });
    return undefined;
  } finally {
    await handle.close();
  }
}

/** The message for a file over the size limit (`size` unknown when it grew while being read). */
export function tooLarge(size: number | undefined, maxFileBytes: number): string {
  const what = size === undefined ? 'grew past' : `is ${size} bytes, more than`;
  return `${what} the limit of ${maxFileBytes} bytes per policy file (policy.max_file_bytes): not parsed`;
}

/** At most `limit` bytes, whatever the file's size was when it was opened. */
async function readAtMost(handle: FileHandle, limit: number, sizeHint: number): Promise<Buffer> {
  let buffer = Buffer.allocUnsafe(Math.min(limit, sizeHint + 1));
  let length = 0;
  for (;;) {
    if (length === buffer.length) {
      if (length >= limit) break;
      const bigger = Buffer.allocUnsafe(Math.min(limit, buffer.length * 2));
      buffer.copy(bigger, 0, 0, length);
      buffer = bigger;
    }
    const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
    if (bytesRead === 0) break;
    length += bytesRead;
  }
  return buffer.subarray(0, length);
}

const inside = (root: string, path: string): boolean => path.startsWith(root.endsWith(sep) ? root : root + sep);

function unreadable(dir: string, details: ErrorDetail[], cause?: unknown): PdpError {
  const message = details[0]?.message ?? '';
  return new PdpError('policy_invalid', `cannot read the policy directory ${dir}: ${message}`, { cause, details });
}
