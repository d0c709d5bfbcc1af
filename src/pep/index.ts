/**
 * `agent-pdp/pep`: the client SDK for policy enforcement points. Agent middleware puts tools behind the PDP with
 * `guardTool`; a tool API protects its routes with `createResourceServerAuth`; both speak to the PDP through
 * `PdpClient`. Nothing here imports the server side, so this entry point ships and loads on its own.
 */
export { PdpClient, type PdpClientOptions, type SubmitAccessRequestOptions, type WaitForAccessRequestOptions } from './pdp-client.js';
export {
  guardTool,
  ToolGrant,
  type ApprovalContext,
  type ApprovalHandler,
  type ApprovalOptions,
  type FromArgs,
  type GuardedTool,
  type TaskRef,
  type ToolDeclaration,
} from './guard-tool.js';
export { TokenCache, type CachedToken, type TokenCacheOptions } from './token-cache.js';
export {
  accessTokenClaims,
  createResourceServerAuth,
  type RequireToken,
  type ResourceMiddleware,
  type ResourceServerAuth,
  type RouteRequest,
  type ResourceServerAuthOptions,
  type RouteRequirement,
} from './resource-server-auth.js';
export { UsageReporter, type UsageReporting, type UsageReportingOptions, type UsageSink, type UsageStats } from './usage-reporter.js';
export { RESOURCE_REFUSALS, type ResourceRefusalCode, type ResourceResponse } from './resource-refusal.js';
export {
  ApprovalPending,
  ApprovalRefused,
  isApprovalPending,
  isPepError,
  isPermissionDenied,
  PEP_ERRORS,
  PepError,
  PermissionDenied,
  type PepErrorCode,
  type PepErrorOptions,
} from './pep-error.js';
export {
  DEFAULT_SIGNATURE_TOLERANCE_SECONDS,
  DELIVERY_HEADER,
  EVENT_HEADER,
  SIGNATURE_HEADER,
  signWebhook,
  verifyWebhookSignature,
  type VerifyWebhookOptions,
  type WebhookBody,
  type WebhookSecret,
  type WebhookSignatureFailure,
  type WebhookVerification,
} from './webhook-signature.js';
export type {
  AccessRequestHintV1,
  AccessRequestStatus,
  AccessRequestSubmissionV1,
  AccessRequestV1,
  ApprovalRefV1,
  ElevationEndReason,
} from '../wire/access-request-v1.js';
export type { AuthorizationServerMetadataV1, IntrospectionResponseV1, TokenResponseV1 } from '../wire/token-v1.js';
export type { UsageAnswerV1, UsageBatchV1, UsageRejectionCode, UsageReportV1 } from '../wire/usage-v1.js';
export type {
  ContextValue,
  DecisionRequestV1,
  DecisionResponseV1,
  TaskRegistrationV1,
  TaskV1,
} from '../wire/decision-v1.js';
export type { GrantableIntegrationV1, GrantableScopesRequestV1, GrantableScopesResponseV1 } from '../wire/grantable-scopes-v1.js';
export type { DeniedScope, DeniedScopeReason, Outcome, Reason, ResourceRef } from '../wire/evaluation-v1.js';
export type { AccessTokenClaims, AuthorizationDetail } from '../issuer/token-claims.js';
export { verifyAccessToken, verifyResourceToken, type VerifyAccessTokenOptions, type VerifyResourceTokenOptions } from '../issuer/verify-access-token.js';
export { isTokenVerificationError, TokenVerificationError, type TokenVerificationErrorCode } from '../issuer/verification-error.js';
export { authorizationHeaders, readBearer, type BearerHeader } from '../issuer/bearer-header.js';
