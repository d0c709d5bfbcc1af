/**
 * The approval-link key: 32 random bytes that sign the links in notifications (approval-links.ts). It lives in its
 * own file (config `escalation.link_key_file`, default `<issuer.keys>/approval-link.key`), never in the database
 * or the config. Layout, as the audit key's (src/issuer/audit-key.ts):
 *
 *   <folder>/                0700  created on first start; a folder group or others may write is refused
 *   <folder>/<file>          0600  one line: the key in base64url, created on first start
 *
 * A key file that group or others may read or write is refused: whoever reads it can mint links for any request.
 * Changing the key invalidates every link already sent (approvers then open the request from their inbox).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { PdpError } from '../errors/pdp-error.js';
import { MIN_LINK_KEY_BYTES } from './approval-links.js';

export const LINK_KEY_FILE = 'approval-link.key';

const checkModes = process.platform !== 'win32';

/**
 * Loads the link key from `file`. With `create`, a folder or file that does not exist yet is created (the server,
 * on first start); without, a missing file is an error (the CLI never makes one up).
 */
export function loadLinkKey(file: string, options: { create?: boolean } = {}): Buffer {
  if (typeof file !== 'string' || file === '') throw new TypeError('"file" must name the approval-link key file');
  if (options.create === true) {
    prepareFolder(file);
    if (!fs.existsSync(file)) createKeyFile(file);
  }
  let text: string;
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) throw failure(file, 'is not a file');
    if (checkModes && (stat.mode & 0o077) !== 0) {
      throw failure(file, `is readable or writable by group or others (mode ${octal(stat.mode)}); chmod 600 it`);
    }
    text = fs.readFileSync(file, 'utf8');
  } catch (cause) {
    if (cause instanceof PdpError) throw cause;
    const missing = (cause as NodeJS.ErrnoException).code === 'ENOENT';
    throw failure(file, missing ? 'does not exist: the server creates it on first start' : 'cannot be read', cause);
  }
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9_-]+$/.test(trimmed)) throw failure(file, 'does not hold a base64url key');
  const key = Buffer.from(trimmed, 'base64url');
  if (key.length < MIN_LINK_KEY_BYTES) throw failure(file, `holds a key shorter than ${MIN_LINK_KEY_BYTES} bytes`);
  return key;
}

/** Creates the key's folder (0700) if missing; refuses a folder others may write to. */
function prepareFolder(file: string): void {
  const dir = dirname(file);
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (cause) {
    throw failure(file, 'its folder cannot be created', cause);
  }
  const stat = fs.statSync(dir);
  if (!stat.isDirectory()) throw failure(file, 'its folder is not a folder');
  if (checkModes && (stat.mode & 0o022) !== 0) {
    throw failure(file, `its folder is writable by group or others (mode ${octal(stat.mode)}); chmod 700 it`);
  }
}

/**
 * Writes a new key to a temporary file (mode 0600, synced) and links it into place, so a crash never leaves a
 * half-written key file; another process linking its key first is fine (theirs is used).
 */
function createKeyFile(file: string): void {
  const temp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fd = fs.openSync(temp, 'wx', 0o600);
    try {
      fs.fchmodSync(fd, 0o600);
      fs.writeFileSync(fd, `${randomBytes(MIN_LINK_KEY_BYTES).toString('base64url')}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.linkSync(temp, file);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code !== 'EEXIST') throw failure(file, 'cannot be created', cause);
  } finally {
    fs.rmSync(temp, { force: true });
  }
}

function failure(file: string, message: string, cause?: unknown): PdpError {
  return new PdpError('config_invalid', `approval-link key ${file}: ${message}`, { expose: false, cause });
}

const octal = (mode: number) => (mode & 0o777).toString(8).padStart(3, '0');
