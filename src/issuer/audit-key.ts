/**
 * The audit key: one Ed25519 key that signs the heads of the audit chain (src/audit/signed-head.ts). It lives in
 * the key folder beside the issuer keys, in its own file, and never in the database: whoever can write the
 * database but not this folder cannot forge a signed head. Layout:
 *
 *   <dir>/                          0700  (the issuer key folder)
 *   <dir>/audit-signing.key         0600  PKCS#8 PEM Ed25519 private key, created on first start (not `.pem`: the
 *                                         folder's `.pem` files are the issuer's next and active keys)
 *   <dir>/audit-signed-heads.jsonl  0600  every signed head, one per line, appended by the PDP
 *
 * Publish the public key (`agent-pdp audit key`) somewhere the database's writers cannot change it, so an auditor
 * verifies with a key they did not take from the machine they are auditing. A private key file that group or others
 * may read or write is refused, as the issuer's are.
 */
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { PdpError } from '../errors/pdp-error.js';
import { prepareDirectory } from './key-store.js';
import { generatePrivateKeyPem, parsePublicJwk, publicJwkFromPem, publicJwkOf } from './signing-key.js';
import type { PublicJwk } from './signing-key.js';

export const AUDIT_KEY_FILE = 'audit-signing.key';
export const SIGNED_HEADS_FILE = 'audit-signed-heads.jsonl';

/** The audit key: what signs (`kid`, `privateKey`) and what verifies (`publicKey`, `jwk` to publish). */
export interface AuditKey {
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly jwk: Readonly<PublicJwk>;
}

const checkModes = process.platform !== 'win32';

/** Where the signed-heads file of the key folder `dir` is. */
export function signedHeadsPath(dir: string): string {
  return join(dir, SIGNED_HEADS_FILE);
}

/**
 * Loads the audit key from the key folder `dir`. With `create`, a folder or key that does not exist yet is created
 * (the server, on first start); without, a missing key is an error (the CLI never makes one up).
 */
export async function loadAuditKey(dir: string, options: { create?: boolean } = {}): Promise<AuditKey> {
  const file = join(dir, AUDIT_KEY_FILE);
  if (options.create === true) {
    prepareDirectory(dir);
    if (!fs.existsSync(file)) createKeyFile(dir, file);
  }
  let pem: string;
  try {
    const stat = fs.statSync(file);
    if (checkModes && (stat.mode & 0o077) !== 0) {
      throw failure(dir, `${AUDIT_KEY_FILE} is readable or writable by group or others (mode ${octal(stat.mode)}); chmod 600 it`);
    }
    pem = fs.readFileSync(file, 'utf8');
  } catch (cause) {
    if (cause instanceof PdpError) throw cause;
    const missing = (cause as NodeJS.ErrnoException).code === 'ENOENT';
    throw failure(dir, missing ? `has no ${AUDIT_KEY_FILE}: the server creates it on first start` : `cannot read ${AUDIT_KEY_FILE}`, cause);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (cause) {
    throw failure(dir, `${AUDIT_KEY_FILE} is not a private key PEM`, cause);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw failure(dir, `${AUDIT_KEY_FILE} is not an Ed25519 key`);
  const jwk = await publicJwkOf(privateKey, 'EdDSA');
  return Object.freeze({ kid: jwk.kid, privateKey, publicKey: createPublicKey(privateKey), jwk: Object.freeze(jwk) });
}

/**
 * The audit public keys in `text`: a JWK (as `agent-pdp audit key` prints it), a JWK set (`{"keys": [...]}`) or one
 * or more PEM public (or private) keys. Only Ed25519 keys; each JWK's kid must be its thumbprint. TypeError else.
 */
export async function parseAuditPublicKeys(text: string): Promise<PublicJwk[]> {
  const trimmed = text.trim();
  let jwks: PublicJwk[];
  if (trimmed.startsWith('{')) {
    const value = JSON.parse(trimmed) as unknown;
    const keys = typeof value === 'object' && value !== null && 'keys' in value ? (value as { keys: unknown }).keys : [value];
    if (!Array.isArray(keys) || keys.length === 0) throw new TypeError('a JWK set must have a non-empty "keys" array');
    jwks = await Promise.all(keys.map((k) => parsePublicJwk(k)));
  } else {
    const pems = trimmed.match(/-----BEGIN [A-Z ]+-----[\s\S]+?-----END [A-Z ]+-----/g) ?? [];
    if (pems.length === 0) throw new TypeError('neither a JWK, a JWK set nor a PEM key');
    jwks = await Promise.all(pems.map((pem) => publicJwkFromPem(pem)));
  }
  for (const jwk of jwks) if (jwk.crv !== 'Ed25519') throw new TypeError(`key ${jwk.kid} is not an Ed25519 key`);
  return jwks;
}

/** A verifying key from a public JWK (parsePublicJwk / loadAuditKey checked it). */
export function publicKeyOf(jwk: PublicJwk): KeyObject {
  return createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: 'jwk' });
}

/**
 * Writes a new key to a temporary file (mode 0600, synced) and links it into place, so a crash never leaves a
 * half-written key file; another process linking its key first is fine (theirs is used).
 */
function createKeyFile(dir: string, file: string): void {
  const temp = join(dir, `.${AUDIT_KEY_FILE}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fd = fs.openSync(temp, 'wx', 0o600);
    try {
      fs.fchmodSync(fd, 0o600);
      fs.writeFileSync(fd, generatePrivateKeyPem('EdDSA'));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.linkSync(temp, file);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code !== 'EEXIST') throw failure(dir, `cannot create ${AUDIT_KEY_FILE}`, cause);
  } finally {
    fs.rmSync(temp, { force: true });
  }
}

function failure(dir: string, message: string, cause?: unknown): PdpError {
  return new PdpError('issuer_unavailable', `audit key in ${dir}: ${message}`, { expose: false, cause });
}

const octal = (mode: number) => (mode & 0o777).toString(8).padStart(3, '0');
