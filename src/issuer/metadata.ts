/**
 * RFC 8414 authorization server metadata, served at `GET /.well-known/oauth-authorization-server`.
 *
 * agent-pdp has no authorization endpoint: a caller redeems an allowed decision at the token endpoint. Its
 * grant type and the API key as a client credential are not registered OAuth values, so they are advertised as
 * absolute URIs (RFC 7591 §2 allows unregistered URIs) next to the standard `client_secret_basic` and
 * `client_secret_post`.
 */

import { DECISION_GRANT_TYPE } from '../wire/token-v1.js';

export { DECISION_GRANT_TYPE };

/** Callers authenticate with an API key sent as `Authorization: Bearer <key>`. */
export const API_KEY_AUTH_METHOD = 'urn:agent-pdp:params:oauth:client-auth:api-key';

/**
 * Client authentication the token, introspection and revocation endpoints accept: RFC 6749 §2.3.1's two methods
 * (client id = the caller's id, secret = its API key) and the API key as a bearer credential.
 */
export const ENDPOINT_AUTH_METHODS = ['client_secret_basic', 'client_secret_post', API_KEY_AUTH_METHOD] as const;

/** Paths of the endpoints, relative to the issuer identifier. */
export const ENDPOINT_PATHS = {
  jwks_uri: '/.well-known/jwks.json',
  token_endpoint: '/v1/tokens',
  introspection_endpoint: '/v1/introspect',
  revocation_endpoint: '/v1/revoke',
} as const;

export interface AuthorizationServerMetadataOptions {
  /** Integration names: the `type` values of the tokens' authorization details. Required (may be empty). */
  authorizationDetailsTypes: readonly string[];
  /** Default `[DECISION_GRANT_TYPE]`. */
  grantTypes?: readonly string[];
  /** Client authentication at the token, introspection and revocation endpoints. Default `ENDPOINT_AUTH_METHODS`. */
  endpointAuthMethods?: readonly string[];
}

export interface AuthorizationServerMetadata {
  issuer: string;
  jwks_uri: string;
  token_endpoint: string;
  introspection_endpoint: string;
  revocation_endpoint: string;
  /** Empty: there is no authorization endpoint. */
  response_types_supported: string[];
  grant_types_supported: string[];
  token_endpoint_auth_methods_supported: string[];
  introspection_endpoint_auth_methods_supported: string[];
  revocation_endpoint_auth_methods_supported: string[];
  authorization_details_types_supported: string[];
}

/**
 * The metadata document for `issuerUrl`, which must be the exact `iss` of the tokens: an http(s) URL without
 * query or fragment (RFC 8414 §2). Endpoints are the issuer URL plus `ENDPOINT_PATHS`.
 */
export function authorizationServerMetadata(issuerUrl: string, options: AuthorizationServerMetadataOptions): AuthorizationServerMetadata {
  let url: URL;
  try {
    url = new URL(issuerUrl);
  } catch {
    throw new TypeError('authorizationServerMetadata: issuer is not a URL');
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.search !== '' || url.hash !== '' || issuerUrl.includes('#')) {
    throw new TypeError('authorizationServerMetadata: issuer must be an http(s) URL without query or fragment');
  }
  if (!Array.isArray(options?.authorizationDetailsTypes)) {
    throw new TypeError('authorizationServerMetadata: "authorizationDetailsTypes" must be a list of integration names');
  }
  const base = issuerUrl.replace(/\/+$/, '');
  const authMethods = [...(options.endpointAuthMethods ?? ENDPOINT_AUTH_METHODS)];
  return {
    issuer: issuerUrl,
    jwks_uri: base + ENDPOINT_PATHS.jwks_uri,
    token_endpoint: base + ENDPOINT_PATHS.token_endpoint,
    introspection_endpoint: base + ENDPOINT_PATHS.introspection_endpoint,
    revocation_endpoint: base + ENDPOINT_PATHS.revocation_endpoint,
    response_types_supported: [],
    grant_types_supported: [...(options.grantTypes ?? [DECISION_GRANT_TYPE])],
    token_endpoint_auth_methods_supported: authMethods,
    introspection_endpoint_auth_methods_supported: [...authMethods],
    revocation_endpoint_auth_methods_supported: [...authMethods],
    authorization_details_types_supported: [...new Set(options.authorizationDetailsTypes)].sort(),
  };
}
