/**
 * The claims of an agent-pdp access token: a JWT in the RFC 9068 profile whose grant is spelled out as one
 * RFC 9396 authorization details object. Types and constants only; imports nothing, so the PEP SDK can take
 * it as it is.
 */

/** `typ` header of every access token (RFC 9068 §2.1). Verifiers also accept `application/at+jwt`. */
export const ACCESS_TOKEN_TYP = 'at+jwt';

/**
 * The signing algorithms an access token may use. Verification refuses every other `alg` before any key is
 * looked up, so `none`, `HS256` signed with a public key, and RSA downgrades never reach a signature check.
 */
export const ACCESS_TOKEN_ALGS = ['EdDSA', 'ES256'] as const;

export type AccessTokenAlg = (typeof ACCESS_TOKEN_ALGS)[number];

/** The record a token is bound to: a token for customer `1234` is refused for customer `5678`. */
export interface ResourceRef {
  /** Kind of record, e.g. `customer`. */
  type: string;
  /** The record's id, e.g. `1234`. */
  id: string;
}

/** One RFC 9396 authorization details object: which integration, which scopes, which record. */
export interface AuthorizationDetail {
  /** The integration name (`crm`); advertised in the metadata's `authorization_details_types_supported`. */
  type: string;
  /** The granted scopes of that integration, sorted and unique; the same set as the `scope` claim. */
  actions: string[];
  /** Id of the record the token is bound to. Absent when the token is not bound to one record. */
  identifier?: string;
  /** Kind of the bound record (`customer`). Present exactly when `identifier` is. */
  resource_type?: string;
}

/** The claims set of an access token, as issued and as returned by `verifyAccessToken`. */
export interface AccessTokenClaims {
  /** Issuer identifier, equal to the metadata's `issuer`. */
  iss: string;
  /** The agent the token was issued for. */
  sub: string;
  /** The integration, or the audience configured for it. */
  aud: string;
  /** The authenticated caller (PEP) that redeemed the decision. */
  client_id: string;
  /** Issued at, seconds since the epoch. */
  iat: number;
  /** Expires at, seconds since the epoch; `exp - iat` never exceeds the decision's TTL nor the task's expiry. */
  exp: number;
  /** Random 128-bit id, base64url; the key for revocation and introspection. */
  jti: string;
  /** Granted scopes, space-separated, sorted. */
  scope: string;
  /** Exactly one entry, naming the integration as `type`. */
  authorization_details: AuthorizationDetail[];
  /** The task the decision was made for. */
  task_id: string;
  /** The decision this token redeems. */
  decision_id: string;
}
