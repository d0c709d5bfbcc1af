/** The public face of src/audit/: event types, canonical encoding, hash chain, verification, masking, export. */
export {
  AUDIT_EVENT_TYPES,
  AUDIT_EVENT_VERSION,
  AUDIT_ID_FIELDS,
  assertNewAuditEvent,
  isAuditEventType,
  isIsoTime,
} from './audit-event.js';
export type { AuditEventType, AuditEventV1, AuditIds, NewAuditEvent } from './audit-event.js';
export { CanonicalJsonError, MAX_DEPTH, RawJson, canonicalJson } from './canonical-json.js';
export { GENESIS_HASH, GENESIS_HEAD, hashEvent, hashInput, isHash, sealEvent } from './hash-chain.js';
export type { ChainHead, UnsealedEvent } from './hash-chain.js';
export { ChainVerifier, verifyChain, verifyChainAsync } from './chain-verifier.js';
export type { ChainBreakKind, VerifyOptions, VerifyResult } from './chain-verifier.js';
export { compileMask } from './masking.js';
export type { MaskOptions, Masker } from './masking.js';
export { EXPORT_FORMAT, exportJsonl, verifyExportFile, verifyExportLines } from './export-jsonl.js';
export type { ExportHeaderV1, ExportVerifyResult } from './export-jsonl.js';
