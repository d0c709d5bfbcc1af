import type { TokenService } from '../../pdp/token-service.js';
import { DECISION_GRANT_TYPE, type TokenBodyV1, type TokenRequestV1, type TokenResponseV1 } from '../../wire/token-v1.js';
import { parseTokenBody, parseTokenBodyForm, parseTokenForm, parseTokenRequest } from '../../wire/request-parsers.js';
import { errors, json, NO_STORE_HEADER } from '../openapi.js';
import { route, type Route } from '../route.js';

/** Responses carrying tokens or their claims are never cached (RFC 6749 §5.1, RFC 7662 §2.2). */
/** RFC 6749 §5.1 (and §5.2 for its errors): a response holding a token is never cached, `Pragma` for HTTP/1.0 caches. */
const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' };
const formOrJson = { 'application/x-www-form-urlencoded': { schema: { $ref: '#/components/schemas/TokenBody' } }, ...json('TokenBody') };

/** The token endpoints: redeem a decision (RFC 6749 §5.1 answer), introspect (RFC 7662), revoke (RFC 7009). */
export function tokenRoutes(tokens: TokenService): Route[] {
  return [
    route<TokenRequestV1>({
      method: 'POST',
      path: '/v1/tokens',
      roles: ['pep'],
      oauth: true,
      body: { media: ['json', 'form'], parse: parseTokenRequest, parseForm: parseTokenForm },
      async handle({ caller, body, traceId, log, dialect }) {
        log.decisionId = body.decision_id;
        const issued = await tokens.redeem(caller, body.decision_id, traceId, body.resource === undefined ? {} : { resource: body.resource });
        const answer: TokenResponseV1 = {
          access_token: issued.access_token,
          token_type: issued.token_type,
          expires_in: issued.expires_in,
          scope: issued.scope,
          authorization_details: issued.authorization_details,
          jti: issued.jti,
          ...(issued.provider_credential === undefined ? {} : { provider_credential: issued.provider_credential }),
        };
        // RFC 6749 §5.1 says 200; our SDK's JSON request has always been answered 201 Created.
        return { status: dialect === 'oauth' ? 200 : 201, json: answer, headers: NO_STORE };
      },
      openapi: {
        operationId: 'redeemDecision',
        summary: 'Redeem an allowed decision for an access token, once, within its window',
        description:
          'An RFC 6749 token request (form-encoded, grant_type ' + DECISION_GRANT_TYPE + ', client authentication client_secret_basic, ' +
          'client_secret_post or the API key as a bearer credential) is answered 200 and RFC 6749 §5.2 errors; the JSON body of our SDK is answered 201 and our Error body.',
        requestBody: { required: true, content: { 'application/x-www-form-urlencoded': { schema: { $ref: '#/components/schemas/TokenForm' } }, ...json('TokenRequest') } },
        responses: {
          '200': { description: 'the token (form request); its record committed before it was signed', headers: NO_STORE_HEADER, content: json('TokenResponse') },
          '201': { description: 'the token (JSON request); its record committed before it was signed', headers: NO_STORE_HEADER, content: json('TokenResponse') },
          ...errors(404, 409, 502, 503),
        },
      },
    }),
    route<TokenBodyV1>({
      method: 'POST',
      path: '/v1/introspect',
      roles: ['resource_server', 'pep'],
      oauth: true,
      body: { media: ['form', 'json'], parse: parseTokenBody, parseForm: parseTokenBodyForm },
      async handle({ caller, body, traceId }) {
        return { status: 200, json: await tokens.introspect(caller, body.token, traceId), headers: NO_STORE };
      },
      openapi: {
        operationId: 'introspectToken',
        summary: 'RFC 7662 token introspection',
        requestBody: { required: true, content: formOrJson },
        responses: { '200': { description: 'active with its claims, or just inactive', headers: NO_STORE_HEADER, content: json('Introspection') }, ...errors(503) },
      },
    }),
    route<TokenBodyV1>({
      method: 'POST',
      path: '/v1/revoke',
      roles: ['pep', 'resource_server'],
      oauth: true,
      body: { media: ['form', 'json'], parse: parseTokenBody, parseForm: parseTokenBodyForm },
      async handle({ caller, body, traceId }) {
        await tokens.revoke(caller, body.token, traceId);
        return { status: 200, empty: true };
      },
      openapi: {
        operationId: 'revokeToken',
        summary: 'RFC 7009 token revocation: by the caller it was issued to, or by a resource server it was presented to',
        requestBody: { required: true, content: formOrJson },
        responses: { '200': { description: 'revoked, or nothing to revoke (RFC 7009 §2.2), empty body' }, ...errors(503) },
      },
    }),
  ];
}
