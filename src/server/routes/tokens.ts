import { Router } from 'express';
import type { TokenService } from '../../pdp/token-service.js';
import { callerOf, requireRole } from '../authenticate.js';
import { bodyValidator } from '../validate-body.js';

const parseRedeem = bodyValidator<{ decision_id: string }>({
  type: 'object',
  additionalProperties: false,
  required: ['decision_id'],
  properties: { decision_id: { type: 'string', minLength: 1, maxLength: 128 } },
});

/** RFC 7662 / RFC 7009 bodies: `token=` form-encoded as the RFCs say, or the same fields as JSON. */
const parseTokenBody = bodyValidator<{ token: string; token_type_hint?: string }>({
  type: 'object',
  additionalProperties: false,
  required: ['token'],
  properties: {
    token: { type: 'string', minLength: 1, maxLength: 8192 },
    token_type_hint: { type: 'string', maxLength: 64 },
  },
});

/** Token endpoints. Responses carrying tokens are never cached (RFC 6749 §5.1). */
export function tokenRoutes(tokens: TokenService): Router {
  const router = Router();
  router.post('/v1/tokens', requireRole('pep'), async (req, res) => {
    const { decision_id } = parseRedeem(req.body);
    req.decisionId = decision_id;
    const issued = await tokens.redeem(callerOf(req), decision_id, req.traceId ?? null);
    res.setHeader('cache-control', 'no-store');
    res.status(201).json({
      access_token: issued.access_token,
      token_type: issued.token_type,
      expires_in: issued.expires_in,
      scope: issued.scope,
      authorization_details: issued.authorization_details,
      jti: issued.jti,
    });
  });
  router.post('/v1/introspect', requireRole('resource_server', 'pep'), async (req, res) => {
    const { token } = parseTokenBody(req.body);
    res.setHeader('cache-control', 'no-store');
    res.json(await tokens.introspect(callerOf(req), token, req.traceId ?? null));
  });
  router.post('/v1/revoke', requireRole('pep', 'resource_server'), async (req, res) => {
    const { token } = parseTokenBody(req.body);
    await tokens.revoke(callerOf(req), token, req.traceId ?? null);
    res.status(200).end();
  });
  return router;
}
