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
