import { sha256Hex } from '../audit/index.js';
import type { AuthFailureReason } from '../audit/index.js';
import type { CallerConfig } from '../config/config-types.js';

export interface AuthFailure {
  reason: AuthFailureReason;
  /** The route template the request was for (never the raw path: it is the sender's to make arbitrarily long). */
  route: string;
  ip: string | undefined;
}

/** How a request presented (or failed to present) its credential; names the 401 challenge. */
export type AuthScheme = 'bearer' | 'basic' | 'post' | 'none' | 'session';

export type Authentication = { caller: CallerConfig; scheme: AuthScheme } | { failure: AuthFailureReason; scheme: AuthScheme };

/** The scheme is case-insensitive (RFC 7235 §2.1, RFC 6750 §2.1); one space, then the credential. */
const BEARER = /^bearer ([\x21-\x7e]{1,512})$/i;
const BASIC = /^basic ([A-Za-z0-9+/]{1,1400}={0,2})$/i;

/**
 * Resolves callers by API key. Only the SHA-256 of each key is configured; a presented key is hashed and looked
 * up, and never logged, echoed or stored. `replace` swaps the whole caller list at once (a config reload): a
 * request sees the old list or the new one, never a mix.
 */
export class CallerResolver {
  #byHash: ReadonlyMap<string, CallerConfig>;

  constructor(callers: readonly CallerConfig[]) {
    this.#byHash = new Map(callers.map((c) => [c.key_sha256, c]));
  }

  replace(callers: readonly CallerConfig[]): void {
    this.#byHash = new Map(callers.map((c) => [c.key_sha256, c]));
  }

  /** The caller holding the key of this SHA-256 now (a console session's caller, looked up at each request). */
  byKeyHash(keySha256: string): CallerConfig | undefined {
    return this.#byHash.get(keySha256);
  }

  /** Our API's one scheme: `Authorization: Bearer <api key>`. */
  apiKey(header: string | undefined): Authentication {
    if (header === undefined) return { failure: 'missing', scheme: 'none' };
    const key = BEARER.exec(header)?.[1];
    if (key === undefined) return { failure: 'malformed', scheme: /^basic /i.test(header) ? 'basic' : 'bearer' };
    return this.#byKey(key, 'bearer');
  }

  /**
   * An HTML form's credential: the API key in the form field `api_key` (the approval page). Exactly one credential:
   * a request that also sends `Authorization` is malformed.
   */
  formKey(header: string | undefined, form: Readonly<Record<string, unknown>> | undefined): Authentication {
    const key = form?.['api_key'];
    if (header !== undefined) return { failure: 'malformed', scheme: 'post' };
    if (key === undefined || key === '') return { failure: 'missing', scheme: 'post' };
    if (typeof key !== 'string' || !/^[\x21-\x7e]{1,512}$/.test(key)) return { failure: 'malformed', scheme: 'post' };
    return this.#byKey(key, 'post');
  }

  /**
   * The OAuth endpoints' client authentication (RFC 6749 §2.3.1): the API key as a bearer credential,
   * `client_secret_basic` or `client_secret_post`, where the client id is the caller's id and the secret its API
   * key. Exactly one method per request; a `client_id` sent beside another method must name the same caller.
   * `form` is the request's form body (or undefined); its `client_id` and `client_secret` are the caller's to read.
   */
  client(header: string | undefined, form: Readonly<Record<string, unknown>> | undefined): Authentication {
    // RFC 6749 §3.2: a parameter sent without a value is treated as omitted (`client_id=` beside Basic is no client_id).
    const postedId = form?.['client_id'] === '' ? undefined : form?.['client_id'];
    const postedSecret = form?.['client_secret'] === '' ? undefined : form?.['client_secret'];
    if (postedId !== undefined && typeof postedId !== 'string') return { failure: 'malformed', scheme: 'post' };
    if (postedSecret !== undefined && typeof postedSecret !== 'string') return { failure: 'malformed', scheme: 'post' };
    if (header !== undefined && postedSecret !== undefined) return { failure: 'malformed', scheme: 'post' };
    let found: Authentication;
    if (header !== undefined && /^basic /i.test(header)) {
      found = this.#basic(header);
    } else if (header !== undefined) {
      found = this.apiKey(header);
    } else if (postedSecret !== undefined) {
      if (postedId === undefined) return { failure: 'malformed', scheme: 'post' };
      found = this.#idAndSecret(postedId, postedSecret, 'post');
    } else {
      return { failure: 'missing', scheme: 'none' };
    }
    if ('caller' in found && postedId !== undefined && postedId !== found.caller.id) return { failure: 'unknown_key', scheme: found.scheme };
    return found;
  }

  #basic(header: string): Authentication {
    const encoded = BASIC.exec(header)?.[1];
    if (encoded === undefined) return { failure: 'malformed', scheme: 'basic' };
    const decoded = Buffer.from(encoded, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return { failure: 'malformed', scheme: 'basic' };
    // RFC 6749 §2.3.1: the id and the secret are form-urlencoded before they are joined and base64-encoded.
    const id = formDecode(decoded.slice(0, colon));
    const secret = formDecode(decoded.slice(colon + 1));
    if (id === undefined || secret === undefined) return { failure: 'malformed', scheme: 'basic' };
    return this.#idAndSecret(id, secret, 'basic');
  }

  #idAndSecret(id: string, secret: string, scheme: AuthScheme): Authentication {
    if (secret.length === 0 || secret.length > 512) return { failure: 'malformed', scheme };
    const found = this.#byKey(secret, scheme);
    return 'caller' in found && found.caller.id !== id ? { failure: 'unknown_key', scheme } : found;
  }

  #byKey(key: string, scheme: AuthScheme): Authentication {
    const caller = this.#byHash.get(sha256Hex(key));
    return caller === undefined ? { failure: 'unknown_key', scheme } : { caller, scheme };
  }
}

/** `application/x-www-form-urlencoded` decoding of one value (`+` is a space); undefined for a malformed escape. */
function formDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/**
 * The `WWW-Authenticate` challenge of a 401 (RFC 7235 §4.1). Our API accepts only `Bearer`, so that is what it
 * challenges, with `error="invalid_token"` when a credential was presented (RFC 6750 §3.1). An OAuth endpoint
 * challenges the scheme the client tried, and both header schemes when it tried none or posted its secret.
 */
export function challengeFor(scheme: AuthScheme, oauth: boolean): string {
  const realm = 'realm="agent-pdp"';
  const bearer = scheme === 'none' || scheme === 'session' ? `Bearer ${realm}` : `Bearer ${realm}, error="invalid_token"`;
  if (!oauth) return bearer;
  switch (scheme) {
    case 'basic':
      return `Basic ${realm}`;
    case 'bearer':
      return bearer;
    case 'post':
    case 'none':
    case 'session':
      return `Basic ${realm}, Bearer ${realm}`;
  }
}
