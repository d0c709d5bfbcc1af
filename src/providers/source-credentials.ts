import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ProviderConfig } from '../config/config-types.js';
import { PdpError } from '../errors/pdp-error.js';

/**
 * An AWS source credential, read once at start from the variable or file the config names. Its fields are private:
 * `JSON.stringify`, `util.inspect` and a logger see only the access key id's last four characters.
 */
export class AwsSourceCredential {
  readonly #accessKeyId: string;
  readonly #secretAccessKey: string;
  readonly #sessionToken: string | undefined;

  constructor(value: { access_key_id: string; secret_access_key: string; session_token?: string }) {
    this.#accessKeyId = value.access_key_id;
    this.#secretAccessKey = value.secret_access_key;
    this.#sessionToken = value.session_token;
  }

  /** For the AWS SDK's `credentials` option only. */
  sdkCredentials(): { accessKeyId: string; secretAccessKey: string; sessionToken?: string } {
    return { accessKeyId: this.#accessKeyId, secretAccessKey: this.#secretAccessKey, ...(this.#sessionToken === undefined ? {} : { sessionToken: this.#sessionToken }) };
  }

  toJSON(): string {
    return `AwsSourceCredential(…${this.#accessKeyId.slice(-4)})`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toJSON();
  }
}

/**
 * Reads `providers[i].credential` (a variable or a file holding JSON `{"access_key_id", "secret_access_key",
 * "session_token"?}`). An error names the setting and what is wrong, never the text read.
 */
export function loadAwsSourceCredential(provider: ProviderConfig, index: number, variables: NodeJS.ProcessEnv = process.env): AwsSourceCredential {
  const at = `providers[${index}].credential`;
  let text: string | undefined;
  if (provider.credential.env !== null) {
    text = variables[provider.credential.env];
    if (!text?.trim()) throw new PdpError('config_invalid', `${at}.env: environment variable ${provider.credential.env} is unset or empty`);
  } else if (provider.credential.file !== null) {
    try {
      text = readFileSync(provider.credential.file, 'utf8');
    } catch {
      throw new PdpError('config_invalid', `${at}.file: cannot read ${provider.credential.file}`);
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(text ?? '');
  } catch {
    throw new PdpError('config_invalid', `${at}: not JSON (expected {"access_key_id", "secret_access_key", "session_token"?})`);
  }
  const v = value as Record<string, unknown>;
  const ok =
    typeof v === 'object' && v !== null && typeof v['access_key_id'] === 'string' && v['access_key_id'] !== '' &&
    typeof v['secret_access_key'] === 'string' && v['secret_access_key'] !== '' &&
    (v['session_token'] === undefined || typeof v['session_token'] === 'string');
  if (!ok) throw new PdpError('config_invalid', `${at}: expected {"access_key_id", "secret_access_key", "session_token"?} with non-empty strings`);
  return new AwsSourceCredential(v as { access_key_id: string; secret_access_key: string; session_token?: string });
}

/** A service account's JSON key, read once at start. Like the AWS one, it prints as its email only. */
export class GoogleServiceAccount {
  readonly email: string;
  readonly keyId: string | undefined;
  readonly #key: KeyObject;

  constructor(email: string, keyId: string | undefined, key: KeyObject) {
    this.email = email;
    this.keyId = keyId;
    this.#key = key;
  }

  /** For signing the assertion only. */
  signingKey(): KeyObject {
    return this.#key;
  }

  toJSON(): string {
    return `GoogleServiceAccount(${this.email})`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toJSON();
  }
}

/** Reads `providers[i].credential` as a service account JSON key (`client_email`, `private_key`, `private_key_id`?). */
export function loadGoogleServiceAccount(provider: ProviderConfig, index: number, variables: NodeJS.ProcessEnv = process.env): GoogleServiceAccount {
  const at = `providers[${index}].credential`;
  const text = readSource(provider, at, variables);
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new PdpError('config_invalid', `${at}: not JSON (expected a service account key)`);
  }
  if (typeof v !== 'object' || v === null || typeof v['client_email'] !== 'string' || typeof v['private_key'] !== 'string') {
    throw new PdpError('config_invalid', `${at}: expected a service account key with client_email and private_key`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(v['private_key']);
  } catch {
    throw new PdpError('config_invalid', `${at}: private_key is not a PEM private key`);
  }
  if (key.asymmetricKeyType !== 'rsa') throw new PdpError('config_invalid', `${at}: private_key must be an RSA key (RS256)`);
  return new GoogleServiceAccount(v['client_email'], typeof v['private_key_id'] === 'string' ? v['private_key_id'] : undefined, key);
}

function readSource(provider: ProviderConfig, at: string, variables: NodeJS.ProcessEnv): string {
  if (provider.credential.env !== null) {
    const text = variables[provider.credential.env];
    if (!text?.trim()) throw new PdpError('config_invalid', `${at}.env: environment variable ${provider.credential.env} is unset or empty`);
    return text;
  }
  try {
    return readFileSync(provider.credential.file ?? '', 'utf8');
  } catch {
    throw new PdpError('config_invalid', `${at}.file: cannot read ${String(provider.credential.file)}`);
  }
}
