/**
 * Wire format v1 of the token endpoints (`POST /v1/tokens`, `POST /v1/introspect`, RFC 8414 metadata) and of the
 * access token's claims, shared by the server, the issuer and the PEP SDK. Types and request schemas; imports
 * nothing.
 */

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

/** `201` answer of `POST /v1/tokens`: an RFC 6749 token response plus the grant and the token id. */
export interface TokenResponseV1 {
  access_token: string;
  token_type: 'Bearer';
  /** Lifetime in seconds from issue. */
  expires_in: number;
  /** Granted scopes, space-separated. */
  scope: string;
  authorization_details: AuthorizationDetail[];
  /** The token's `jti`. */
  jti: string;
}

/** RFC 7662 answer of `POST /v1/introspect`: `{ active: false }` and nothing else, or the claims of an active token. */
export type IntrospectionResponseV1 = { active: false } | ({ active: true; token_type: 'Bearer' } & AccessTokenClaims);

/** The RFC 8414 members a PEP or resource server uses, from `GET /.well-known/oauth-authorization-server`. */
export interface AuthorizationServerMetadataV1 {
  /** The `iss` of every token; what a resource server must expect. */
  issuer: string;
  jwks_uri: string;
  token_endpoint: string;
  introspection_endpoint: string;
  revocation_endpoint: string;
  authorization_details_types_supported: string[];
}

/** `POST /v1/tokens` (JSON body of our SDK). */
export interface TokenRequestV1 {
  decision_id: string;
}

export const tokenRequestSchema = {
  $id: 'TokenRequestV1',
  type: 'object',
  additionalProperties: false,
  required: ['decision_id'],
  properties: { decision_id: { type: 'string', minLength: 1, maxLength: 128, description: 'an allowed, unredeemed decision of this caller' } },
} as const;

/** RFC 7662 / RFC 7009 bodies: `token=` form-encoded as the RFCs say, or the same fields as JSON. */
export interface TokenBodyV1 {
  token: string;
  token_type_hint?: string;
}

export const tokenBodySchema = {
  $id: 'TokenBodyV1',
  type: 'object',
  additionalProperties: false,
  required: ['token'],
  properties: { token: { type: 'string', minLength: 1, maxLength: 8192 }, token_type_hint: { type: 'string', maxLength: 64 } },
} as const;
