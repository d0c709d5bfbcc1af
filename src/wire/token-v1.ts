/**
 * Wire format v1 of the token endpoints (`POST /v1/tokens`, `POST /v1/introspect`, RFC 8414 metadata) and of the
 * access token's claims, shared by the server, the issuer and the PEP SDK. Types and request schemas; imports
 * nothing.
 */

/**
 * A decision whose task has less than this left is not redeemed (`task_not_active`): a token lives whole seconds, and
 * none would fit before the task's end. The store's redemption and the token service's provider mint both apply it.
 */
export const LAST_SECOND_MS = 1000;

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
  /**
   * For an integration minted by a provider (docs/providers.md): the provider's own credential, narrowed to the same
   * grant, expiring no later than `expires_in`. Absent for every other integration.
   */
  provider_credential?: ProviderCredentialV1;
}

/** A provider credential minted for one redeemed decision (docs/providers.md). Secret: never log or store it. */
export type ProviderCredentialV1 = AwsProviderCredentialV1 | GoogleWorkspaceCredentialV1 | GcsCredentialV1;

export interface GcsCredentialV1 {
  provider: 'gcp_storage';
  integration: string;
  expires_at: string;
  /** A downscoped access token: only what its Credential Access Boundary allows (buckets, role, object prefix). */
  google: { access_token: string; token_type: 'Bearer' };
}

export interface AwsProviderCredentialV1 {
  provider: 'aws';
  integration: string;
  /** When the provider stops accepting it (ISO 8601, UTC); never after the token's `exp`. */
  expires_at: string;
  /** STS temporary credentials; the shape the AWS SDK's credential provider takes is built from them by the PEP SDK. */
  aws: { access_key_id: string; secret_access_key: string; session_token: string; expiration: string; region: string };
}

export interface GoogleWorkspaceCredentialV1 {
  provider: 'google_workspace';
  integration: string;
  expires_at: string;
  /** An OAuth access token for Google's APIs, acting as `subject` with exactly `scopes`. */
  google: { access_token: string; token_type: 'Bearer'; subject: string; scopes: string[] };
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

/**
 * The grant of `POST /v1/tokens` (RFC 6749 §4.5 extension grant): an allowed decision id in exchange for an access
 * token. Not a registered OAuth value, so an absolute URI (RFC 7591 §2).
 */
export const DECISION_GRANT_TYPE = 'urn:agent-pdp:params:oauth:grant-type:decision';

/**
 * `POST /v1/tokens`: the JSON body of our SDK, or what an RFC 6749 form request (`grant_type=` DECISION_GRANT_TYPE,
 * `decision_id=`, `resource=`) carries.
 */
export interface TokenRequestV1 {
  decision_id: string;
  /** RFC 8707: the audience the token is for; must be the integration's audience (else `invalid_target`). */
  resource?: string;
}

export const tokenRequestSchema = {
  $id: 'TokenRequestV1',
  type: 'object',
  additionalProperties: false,
  required: ['decision_id'],
  properties: {
    decision_id: { type: 'string', minLength: 1, maxLength: 128, description: 'an allowed, unredeemed decision of this caller' },
    resource: { type: 'string', minLength: 1, maxLength: 2048, description: "RFC 8707 resource indicator: must name the integration's audience" },
  },
} as const;

/** The RFC 6749 form request of the decision grant, as read (unknown parameters are ignored, RFC 6749 §3.2). */
export const tokenFormSchema = {
  $id: 'TokenFormV1',
  type: 'object',
  required: ['grant_type', 'decision_id'],
  properties: {
    grant_type: { type: 'string', description: `${DECISION_GRANT_TYPE} (any other: unsupported_grant_type)` },
    ...tokenRequestSchema.properties,
  },
} as const;

/**
 * RFC 7662 / RFC 7009 bodies: `token=` form-encoded as the RFCs say (unknown parameters ignored), or the same
 * fields as JSON (unknown fields refused, like every JSON body of ours).
 */
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

/**
 * An RFC 6749 §5.2 error, as the OAuth endpoints answer a form-encoded (OAuth client's) request. `pdp_error`
 * keeps agent-pdp's own error (the `error` member of `ErrorBodyV1`) for clients that want the precise reason.
 */
export interface OAuthErrorV1 {
  error: 'invalid_request' | 'invalid_client' | 'invalid_grant' | 'unauthorized_client' | 'unsupported_grant_type' | 'invalid_target' | 'server_error' | 'temporarily_unavailable';
  error_description: string;
  pdp_error: { code: string; message: string; details: Array<{ path: string; message: string }> };
}
