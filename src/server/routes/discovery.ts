import { authorizationServerMetadata } from '../../issuer/metadata.js';
import type { IssuerKeys } from '../../pdp/issuer-keys.js';
import { json } from '../openapi.js';
import { publicRoute, type Route } from '../route.js';

const CACHE = { 'cache-control': 'public, max-age=300' };

/** Public: the JWKS (public keys only) and RFC 8414 metadata. Resource servers fetch these unauthenticated. */
export function discoveryRoutes(keys: IssuerKeys, issuer: string, integrations: () => readonly string[]): Route[] {
  return [
    publicRoute({
      method: 'GET',
      path: '/.well-known/jwks.json',
      handle: () => ({ status: 200, json: keys.jwks, headers: CACHE }),
      openapi: { operationId: 'getJwks', summary: 'Public signing keys (JWKS)', responses: { '200': { description: 'the key set', content: json('Jwks') } } },
    }),
    publicRoute({
      method: 'GET',
      path: '/.well-known/oauth-authorization-server',
      handle: () => ({ status: 200, json: authorizationServerMetadata(issuer, { authorizationDetailsTypes: integrations() }), headers: CACHE }),
      openapi: {
        operationId: 'getAuthorizationServerMetadata',
        summary: 'RFC 8414 authorization server metadata',
        responses: { '200': { description: 'metadata', content: json('AuthorizationServerMetadata') } },
      },
    }),
  ];
}
