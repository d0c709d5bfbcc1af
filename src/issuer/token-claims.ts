/**
 * The claims of an agent-pdp access token: a JWT in the RFC 9068 profile whose grant is spelled out as one
 * RFC 9396 authorization details object. Constants here; the claim types are the wire's (`src/wire/token-v1.ts`), imported as types only, so the PEP
 * SDK can take this file as it is.
 */

/** `typ` header of every access token (RFC 9068 §2.1). Verifiers also accept `application/at+jwt`. */
export const ACCESS_TOKEN_TYP = 'at+jwt';

/**
 * The signing algorithms an access token may use. Verification refuses every other `alg` before any key is
 * looked up, so `none`, `HS256` signed with a public key, and RSA downgrades never reach a signature check.
 */
export const ACCESS_TOKEN_ALGS = ['EdDSA', 'ES256'] as const;

export type AccessTokenAlg = (typeof ACCESS_TOKEN_ALGS)[number];

export type { AccessTokenClaims, AuthorizationDetail, ResourceRef } from '../wire/token-v1.js';
