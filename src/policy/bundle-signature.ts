import { createHash, createSecretKey, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { CompactSign, compactVerify, decodeProtectedHeader } from 'jose';
import { PdpError } from '../errors/pdp-error.js';

/**
 * OPA's bundle signatures (`.signatures.json`), both ways: what `opa build --signing-key` writes and what
 * `opa run --verification-key` checks (open-policy-agent/opa `v1/bundle/sign.go`, `verify.go`, `hash.go`).
 *
 * `.signatures.json` is `{"signatures": [JWS]}` with exactly one compact JWS whose payload lists every other file
 * of the bundle: `{"files": [{"name", "hash", "algorithm"}], "keyid"?, "scope"?}`. A JSON file OPA reads as a
 * document (`data.json`, `.manifest`) is hashed over its parsed value with object keys sorted (so whitespace and key
 * order do not matter); any other file over its bytes. Verification refuses, fail closed: no signature or several, a
 * key id that names no configured key, an algorithm other than the key's, a scope other than the configured one, a
 * file of the bundle the signature does not list, a listed file the bundle lacks, a digest that differs, and the
 * weak digests OPA still accepts (MD5, SHA-1, SHA-224).
 */
export const SIGNATURES_FILE = '.signatures.json';

/** JWS algorithms a bundle may be signed with. */
export const BUNDLE_SIGNING_ALGORITHMS = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'HS256', 'HS384', 'HS512',
] as const;
export type BundleSigningAlgorithm = (typeof BUNDLE_SIGNING_ALGORITHMS)[number];

/** File digests accepted in a signature (OPA also accepts MD5, SHA-1 and SHA-224; we do not). */
const DIGESTS: Readonly<Record<string, string>> = { 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512' };

export interface BundleSigningKey {
  algorithm: BundleSigningAlgorithm;
  /** PEM private key (RS*, PS*, ES*) or the shared secret (HS*), as OPA's `--signing-key` takes them. */
  key: string;
  /** Written as the JWS `kid`; verifiers look their key up by it. */
  keyId?: string;
  /** Written as the payload's `scope`; a verifier configured with a scope accepts only that one. */
  scope?: string;
}

export interface BundleVerificationKey {
  algorithm: BundleSigningAlgorithm;
  /** PEM public key or certificate (RS*, PS*, ES*) or the shared secret (HS*). */
  key: string;
  scope?: string;
}

export interface BundleVerification {
  /** Keys by id. */
  keys: Readonly<Record<string, BundleVerificationKey>>;
  /** The key to use whatever the signature says (OPA's `--verification-key-id`); else the JWS `kid`, else the payload's `keyid`. */
  keyId?: string;
  /** Overrides the key's scope. */
  scope?: string;
}

interface FileEntry {
  name: string;
  hash: string;
  algorithm: string;
}

/** A bundle file's digest as OPA computes it: structured (sorted keys) for `data.json`/`.manifest`, else the bytes. */
export function bundleFileDigest(name: string, content: Buffer, algorithm = 'SHA-256'): string {
  const digest = DIGESTS[algorithm];
  if (digest === undefined) throw new PdpError('bundle_invalid', `bundle signature: digest ${algorithm} is not accepted (SHA-256, SHA-384, SHA-512)`);
  const hash = createHash(digest);
  if (isStructured(name)) {
    let value: unknown;
    try {
      value = JSON.parse(content.toString('utf8'));
    } catch (cause) {
      throw new PdpError('bundle_invalid', `bundle file ${name} is not JSON`, { cause });
    }
    hash.update(goCanonical(value));
  } else {
    hash.update(content);
  }
  return hash.digest('hex');
}

/** The `.signatures.json` text for `files` (every file of the bundle but the signature itself). */
export async function signBundleFiles(files: ReadonlyMap<string, Buffer>, signing: BundleSigningKey): Promise<string> {
  const entries: FileEntry[] = [...files.keys()]
    .filter((name) => name !== SIGNATURES_FILE)
    .sort()
    .map((name) => ({ name, hash: bundleFileDigest(name, files.get(name) as Buffer), algorithm: 'SHA-256' }));
  const payload: Record<string, unknown> = { files: entries };
  if (signing.keyId !== undefined) payload['keyid'] = signing.keyId;
  if (signing.scope !== undefined) payload['scope'] = signing.scope;
  const jws = await new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg: signing.algorithm, ...(signing.keyId === undefined ? {} : { kid: signing.keyId }) })
    .sign(privateKey(signing));
  return `${JSON.stringify({ signatures: [jws] })}\n`;
}

/**
 * Checks the bundle's `.signatures.json` against `verification` and every file against it. Throws
 * `PdpError('bundle_invalid')` saying what failed; never says anything about the keys.
 */
export async function verifyBundleFiles(files: ReadonlyMap<string, Buffer>, verification: BundleVerification): Promise<void> {
  const invalid = (message: string, cause?: unknown): PdpError => new PdpError('bundle_invalid', `bundle signature: ${message}`, { cause });
  const raw = files.get(SIGNATURES_FILE);
  if (raw === undefined) throw invalid(`the bundle is not signed (no ${SIGNATURES_FILE}) and a verification key is configured`);
  let signatures: unknown;
  try {
    signatures = (JSON.parse(raw.toString('utf8')) as { signatures?: unknown }).signatures;
  } catch (cause) {
    throw invalid(`${SIGNATURES_FILE} is not JSON`, cause);
  }
  if (!Array.isArray(signatures) || signatures.length !== 1 || typeof signatures[0] !== 'string') {
    throw invalid(`${SIGNATURES_FILE} must hold exactly one JWT`);
  }
  const token = signatures[0];
  let header: ReturnType<typeof decodeProtectedHeader>;
  let claimed: { keyid?: unknown; scope?: unknown; files?: unknown };
  try {
    header = decodeProtectedHeader(token);
    claimed = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as typeof claimed;
  } catch (cause) {
    throw invalid('the JWT is malformed', cause);
  }
  const keyId = verification.keyId ?? (typeof header.kid === 'string' && header.kid !== '' ? header.kid : undefined) ?? (typeof claimed.keyid === 'string' ? claimed.keyid : '');
  if (keyId === '') throw invalid('no key id: configure one, or sign with a kid');
  const key = Object.hasOwn(verification.keys, keyId) ? verification.keys[keyId] : undefined;
  if (key === undefined) throw invalid(`no verification key is configured under the id ${JSON.stringify(keyId)}`);
  const checkWith = publicKey(key); // a key that is no key for its algorithm is the configuration's error, said as such
  let payload: { files?: unknown; scope?: unknown };
  try {
    const verified = await compactVerify(token, checkWith, { algorithms: [key.algorithm] });
    payload = JSON.parse(new TextDecoder().decode(verified.payload)) as typeof payload;
  } catch (cause) {
    throw invalid(`the JWT does not verify with key ${JSON.stringify(keyId)} (${key.algorithm})`, cause);
  }
  const scope = verification.scope ?? key.scope ?? '';
  if ((typeof payload.scope === 'string' ? payload.scope : '') !== scope) throw invalid('scope mismatch');
  if (!Array.isArray(payload.files)) throw invalid('the JWT lists no files');
  const listed = new Map<string, FileEntry>();
  for (const entry of payload.files as unknown[]) {
    const e = entry as Partial<FileEntry> | null;
    if (typeof e?.name !== 'string' || typeof e.hash !== 'string' || typeof e.algorithm !== 'string') throw invalid('a file entry is malformed');
    listed.set(e.name.replace(/^\/+/, ''), e as FileEntry);
  }
  for (const [name, content] of files) {
    if (name === SIGNATURES_FILE) continue;
    const entry = listed.get(name);
    if (entry === undefined) throw invalid(`${name} is not included in the signature`);
    if (!digestMatches(name, content, entry)) throw invalid(`${name}: digest mismatch`);
    listed.delete(name);
  }
  if (listed.size > 0) throw invalid(`signed file(s) missing from the bundle: ${[...listed.keys()].sort().join(', ')}`);
}

/**
 * Whether `content` has the listed digest. A structured document written canonically (as ours are: compact, keys
 * sorted) hashes the same over its bytes as over its parse, so the bytes are tried first: a 55 MB data.json then
 * costs one SHA-256, not a JSON.parse and a re-encoding. Only when they differ is the document parsed.
 */
function digestMatches(name: string, content: Buffer, entry: FileEntry): boolean {
  const want = entry.hash.toLowerCase();
  const digest = DIGESTS[entry.algorithm];
  if (digest !== undefined && isStructured(name) && createHash(digest).update(content).digest('hex') === want) return true;
  return bundleFileDigest(name, content, entry.algorithm) === want;
}

/** OPA's structured documents: parsed, then hashed with sorted keys. */
function isStructured(name: string): boolean {
  const base = name.slice(name.lastIndexOf('/') + 1);
  return base === 'data.json' || base === '.manifest';
}

/**
 * The text OPA's `walk` (`hash.go`) feeds the digest: `{`, sorted keys as JSON strings, `:`, values, `,`, `}`;
 * primitives as Go's encoder writes them without HTML escaping, which differs from `JSON.stringify` only in
 * escaping U+2028 and U+2029.
 */
export function goCanonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(goCanonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    return `{${Object.keys(record).sort().map((k) => `${goString(k)}:${goCanonical(record[k])}`).join(',')}}`;
  }
  return typeof value === 'string' ? goString(value) : JSON.stringify(value);
}

function goString(s: string): string {
  return JSON.stringify(s).replace(/[\u2028\u2029]/g, (c) => (c === '\u2028' ? '\\u2028' : '\\u2029'));
}

function isHmac(algorithm: BundleSigningAlgorithm): boolean {
  return algorithm.startsWith('HS');
}

/**
 * An HMAC secret: at least as long as the hash (RFC 7518 3.2), and not a PEM key configured as one (a public key's
 * text used as the shared secret would let anyone holding the public key sign bundles).
 */
function hmacSecret(algorithm: BundleSigningAlgorithm, text: string): KeyObject {
  const bytes = Buffer.from(text, 'utf8');
  const least = Number(algorithm.slice(2)) / 8;
  if (text.trimStart().startsWith('-----BEGIN')) throw new PdpError('config_invalid', `a PEM key is configured as the ${algorithm} shared secret: use RS*, PS* or ES* for it`);
  if (bytes.length < least) throw new PdpError('config_invalid', `the ${algorithm} shared secret must be at least ${least} bytes`);
  return createSecretKey(bytes);
}

function privateKey(signing: BundleSigningKey): KeyObject {
  if (isHmac(signing.algorithm)) return hmacSecret(signing.algorithm, signing.key);
  try {
    return createPrivateKey(signing.key);
  } catch (cause) {
    throw new PdpError('config_invalid', `the bundle signing key is not a ${isHmac(signing.algorithm) ? 'secret' : 'PEM private key'} for ${signing.algorithm}`, { cause });
  }
}

function publicKey(key: BundleVerificationKey): KeyObject {
  if (isHmac(key.algorithm)) return hmacSecret(key.algorithm, key.key);
  try {
    return createPublicKey(key.key);
  } catch (cause) {
    throw new PdpError('config_invalid', `a bundle verification key is not a ${isHmac(key.algorithm) ? 'secret' : 'PEM public key or certificate'} for ${key.algorithm}`, { cause });
  }
}
