/** The public face of src/audit/: event types, canonical encoding, hash chain, verification, masking, exports. */
export {
  AUDIT_EVENT_TYPES,
  AUDIT_EVENT_VERSION,
  AUDIT_ID_FIELDS,
  TRAIL_EVENT_TYPES,
  assertNewAuditEvent,
  isAuditEventType,
  isIsoTime,
  isTrailEventType,
} from './audit-event.js';
export type { AuditEventType, AuditEventV1, AuditIds, NewAuditEvent } from './audit-event.js';
export {
  ACCESS_REFUSAL_CODES,
  isAccessRefusalCode,
  AUTH_FAILED_IP_MAX,
  DELIVERY_ERROR_MAX,
  AUTH_FAILED_ROUTE_MAX,
  AUTH_FAILURE_REASONS,
  POLICY_REFUSED_DETAILS_MAX,
  PROXY_CODE_MAX,
  PROXY_METHOD_MAX,
  PROXY_PATH_TEMPLATE_MAX,
  PROXY_RECORD_ID_MAX,
  REPORTED_RECORD_ID_MAX,
  REPORTED_ROUTE_MAX,
  SUGGESTION_KINDS,
  SUGGESTION_NOTE_MAX,
  TASK_CLOSE_STATUSES,
  TOKEN_PROXY_OUTCOMES,
  TOKEN_REVOKE_REASONS,
  TOKEN_USE_ACTIONS,
  accessRefusedEvent,
  accessRequestApprovedEvent,
  accessRequestDeniedEvent,
  accessRequestExpiredEvent,
  accessRequestNotificationFailedEvent,
  accessRequestNotifiedEvent,
  accessRequestSubmittedEvent,
  auditHeadSignedEvent,
  elevationEndedEvent,
  callersReplacedEvent,
  auditPrunedEvent,
  authFailedEvent,
  decisionEvent,
  evaluationEvent,
  policyLoadedEvent,
  policyRefusedEvent,
  policySuggestionAppliedEvent,
  policySuggestionDismissedEvent,
  consoleSessionStartedEvent,
  consoleSessionEndedEvent,
  CONSOLE_SESSION_END_REASONS,
  taskCompletedEvent,
  taskRegisteredEvent,
  tokenIssuedEvent,
  providerCredentialDiscardedEvent,
  tokenRevokedEvent,
  tokenUsedEvent,
} from './event-payloads.js';
export type {
  AccessRefusalCode,
  AccessRefusedData,
  AccessRequestApprovedData,
  AccessRequestDeliveryData,
  AccessRequestDeniedData,
  AccessRequestExpiredData,
  AccessRequestNotificationFailedData,
  AccessRequestNotifiedData,
  AccessRequestSubmittedData,
  Aggregate,
  AuditEventData,
  CallerSummary,
  CallersReplacedData,
  AuditEventOf,
  AuditHeadSignedData,
  AuditPrunedData,
  AuthFailedData,
  AuthFailureReason,
  DecisionEventData,
  EvaluationEventData,
  ElevationEndedData,
  EventIds,
  PolicyFileDigest,
  PolicyLoadedData,
  PolicyRefusalDetail,
  PolicyRefusedData,
  PolicySuggestionAppliedData,
  PolicySuggestionDismissedData,
  ConsoleSessionEndReason,
  ConsoleSessionStartedData,
  ConsoleSessionEndedData,
  SuggestionKind,
  TaskCloseStatus,
  TaskCompletedData,
  TaskRegisteredData,
  ProviderCredentialRecord,
  ProviderCredentialDiscardedData,
  AwsCredentialRecord,
  GoogleWorkspaceCredentialRecord,
  GcsCredentialRecord,
  TokenIssuedData,
  TokenIntrospectedData,
  TokenReportedData,
  TokenIssuedExtras,
  TokenProxiedData,
  TokenProxyOutcome,
  TokenRevokeReason,
  TokenRevokedData,
  TokenUseAction,
  TokenUsedData,
} from './event-payloads.js';
export { CanonicalJsonError, MAX_DEPTH, RawJson, canonicalJson, canonicalJsonAt, sortKeys } from './canonical-json.js';
export { GENESIS_HASH, GENESIS_HEAD, hashEvent, hashInput, isHash, matchesOwnHash, sealEvent, sha256Hex } from './hash-chain.js';
export type { ChainHead, UnsealedEvent } from './hash-chain.js';
export { ChainVerifier, verifyChain, verifyChainAsync } from './chain-verifier.js';
export type { PruneCheckpoint } from './trail-events.js';
export { SIGNED_HEAD_CONTEXT, parseSignedHead, signHead, signedHeadPayload, signedHeadProblem } from './signed-head.js';
export type { AuditSigningKey, HeadKeys, SignedHeadV1 } from './signed-head.js';
export { appendSignedHead, readSignedHeads, scanSignedHeads } from './signed-head-file.js';
export type { AppendSignedHeadResult, SignedHeadLine, SignedHeadsScan } from './signed-head-file.js';
export { HEAD_SIGNING_DEFAULTS, HeadSigner } from './head-signer.js';
export type { HeadSignerOptions, HeadSignerStore } from './head-signer.js';
export type { SignedHeadsSeen } from './trail-events.js';
export type { ChainBreakKind, VerifyOptions, VerifyResult } from './chain-verifier.js';
export { compileMask, maskEmbedded } from './masking.js';
export type { EmbeddedSources, MaskOptions, Masker } from './masking.js';
export { decisionOutcome, decisionReasonCodes, matchesFilter } from './export-filter.js';
export { decisionSummary } from './decision-summary.js';
export { decisionCursor, parseDecisionSearchQuery, seqOfDecisionCursor } from './decision-search-query.js';
export type { DecisionSearchRequest } from './decision-search-query.js';
export type { ExportFilterV1 } from './export-filter.js';
export { EXPORT_FORMAT, exportJsonl, verifyExportFile, verifyExportLines } from './export-jsonl.js';
export type {
  ExportHeaderV1,
  ExportJsonlOptions,
  ExportSkipV1,
  ExportStart,
  ExportTrailerV1,
  ExportVerifyOptions,
  ExportVerifyResult,
} from './export-jsonl.js';
export { CSV_COLUMNS, csvCells, csvField, csvRow, exportCsv } from './export-csv.js';
export type { CsvColumn } from './export-csv.js';
export { OPA_BUNDLE_NAME, OPA_DECISION_PATH, exportOpa, rfc3339Nano, toOpaEvent } from './export-opa.js';
export type { OpaDecisionLogEventV1 } from './export-opa.js';
export { EXPORT_FORMATS, EXPORT_MEDIA_TYPES, exportLines, inChunks, planExport } from './export-plan.js';
export type {
  ExportFormat,
  ExportLinesOptions,
  ExportPlan,
  ExportRequest,
  ExportSource,
  ExportSourceQuery,
} from './export-plan.js';
export { writeChunks } from './write-chunks.js';
export { REASON_CODE, parseAuditTime, parseExportQuery } from './export-query.js';
export type { ExportQuery } from './export-query.js';
