import { Router } from 'express';
import { authorizationServerMetadata } from '../../issuer/metadata.js';
import type { IssuerKeys } from '../../pdp/issuer-keys.js';

/** Public: the JWKS (public keys only) and RFC 8414 metadata. Resource servers fetch these unauthenticated. */
export function discoveryRoutes(keys: IssuerKeys, issuer: string, integrations: () => readonly string[]): Router {
  const router = Router();
  router.get('/.well-known/jwks.json', (_req, res) => {
    res.setHeader('cache-control', 'public, max-age=300');
    res.json(keys.jwks);
  });
  router.get('/.well-known/oauth-authorization-server', (_req, res) => {
    res.setHeader('cache-control', 'public, max-age=300');
    res.json(authorizationServerMetadata(issuer, { authorizationDetailsTypes: integrations() }));
  });
  return router;
}
