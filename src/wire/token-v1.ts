/**
 * Wire format v1 of the token endpoints (`POST /v1/tokens`, `POST /v1/introspect`, RFC 8414 metadata), shared by
 * the server and the PEP SDK. Types only; the claim types come from the issuer's import-free leaf.
 */
import type { AccessTokenClaims, AuthorizationDetail } from '../issuer/token-claims.js';

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
