/**
 * The key folder on disk. Layout (version 1):
 *
 *   <dir>/             0700
 *   <dir>/keys.json    0600  index: every key's kid, alg, state, dates and public JWK
 *   <dir>/<kid>.pem    0600  PKCS#8 private key; exists only while the key is `next` or `active`
 *
 * A retired key never signs again, so its private key file is deleted when it retires; its public JWK stays
 * in the index until it leaves the JWKS. Files are written to a temporary name, fsynced, then linked or renamed
 * into place, and private keys before the index that names them, so a crash never leaves an index pointing
 * at a missing key. A writable-by-others index or key file is refused: whoever can write `keys.json` can
 * publish a key of their own, and so mint tokens.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { PdpError } from '../errors/pdp-error.js';
import type { KeyIndexV1 } from './key-index.js';
import { KID_PATTERN } from './signing-key.js';

export const INDEX_FILE = 'keys.json';

const checkModes = process.platform !== 'win32';

export function storeError(dir: string, message: string, cause?: unknown): PdpError {
  return new PdpError('issuer_unavailable', `key store ${dir}: ${message}`, { expose: false, cause });
}

/** Creates `dir` (mode 0700) if missing; refuses a folder others may write to. */
export function prepareDirectory(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (cause) {
    throw storeError(dir, 'cannot create the key folder', cause);
  }
  const stat = fs.statSync(dir);
  if (!stat.isDirectory()) throw storeError(dir, 'is not a folder');
  if (checkModes && (stat.mode & 0o022) !== 0) {
    throw storeError(dir, `the key folder is writable by group or others (mode ${octal(stat.mode)}); chmod 700 it`);
  }
}

/** Mode 0700 for a folder this process has just started using as its key folder. */
export function tightenDirectory(dir: string): void {
  if (checkModes) fs.chmodSync(dir, 0o700);
}

/** The raw index text, or undefined when the folder has none yet (first start). */
export function readIndexText(dir: string): string | undefined {
  const file = join(dir, INDEX_FILE);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw storeError(dir, `cannot read ${INDEX_FILE}`, cause);
  }
  if (checkModes && (stat.mode & 0o022) !== 0) {
    throw storeError(dir, `${INDEX_FILE} is writable by group or others (mode ${octal(stat.mode)}); chmod 600 it`);
  }
  return fs.readFileSync(file, 'utf8');
}

/**
 * Writes the index atomically. `create` succeeds only if no index exists yet and returns false if another
 * process created one first; `replace` overwrites.
 */
export function writeIndex(dir: string, index: KeyIndexV1, mode: 'create' | 'replace'): boolean {
  const target = join(dir, INDEX_FILE);
  const temp = join(dir, `.${INDEX_FILE}.${randomBytes(6).toString('hex')}.tmp`);
  writeSecretFile(temp, `${JSON.stringify(index, null, 2)}\n`);
  try {
    if (mode === 'replace') {
      fs.renameSync(temp, target);
    } else {
      try {
        fs.linkSync(temp, target);
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw cause;
      } finally {
        fs.rmSync(temp, { force: true });
      }
    }
  } catch (cause) {
    fs.rmSync(temp, { force: true });
    throw storeError(dir, `cannot write ${INDEX_FILE}`, cause);
  }
  syncDirectory(dir);
  return true;
}

export function writePrivateKey(dir: string, kid: string, pem: string): void {
  try {
    writeSecretFile(keyFile(dir, kid), pem);
  } catch (cause) {
    throw storeError(dir, `cannot write the private key of ${kid}`, cause);
  }
}

export function readPrivateKey(dir: string, kid: string): string {
  const file = keyFile(dir, kid);
  try {
    const stat = fs.statSync(file);
    if (checkModes && (stat.mode & 0o077) !== 0) {
      throw storeError(dir, `${kid}.pem is readable or writable by group or others (mode ${octal(stat.mode)}); chmod 600 it`);
    }
    return fs.readFileSync(file, 'utf8');
  } catch (cause) {
    if (cause instanceof PdpError) throw cause;
    throw storeError(dir, `cannot read the private key of ${kid}`, cause);
  }
}

/** Deletes a private key file; a missing one is fine (already removed). */
export function removePrivateKey(dir: string, kid: string): void {
  fs.rmSync(keyFile(dir, kid), { force: true });
}

function keyFile(dir: string, kid: string): string {
  if (!KID_PATTERN.test(kid)) throw storeError(dir, 'a kid is not a key thumbprint');
  return join(dir, `${kid}.pem`);
}

/** Creates `file` exclusively with mode 0600 (chmod again in case of an unusual umask) and fsyncs it. */
function writeSecretFile(file: string, text: string): void {
  const fd = fs.openSync(file, 'wx', 0o600);
  try {
    fs.fchmodSync(fd, 0o600);
    fs.writeFileSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function syncDirectory(dir: string): void {
  if (!checkModes) return;
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

const octal = (mode: number) => (mode & 0o777).toString(8).padStart(3, '0');
