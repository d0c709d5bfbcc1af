/** The public face of src/notify/: the outbox worker, the payload formats, webhook signatures, approval links. */
export { OutboxWorker } from './outbox-worker.js';
export type {
  ClaimedDelivery,
  CompleteDeliveryInput,
  DeliveryLogFields,
  DeliveryOutcome,
  OutboxLogger,
  OutboxStore,
  OutboxWorkerOptions,
  OutboxWorkerStats,
} from './outbox-worker.js';
export type { WebhookFetch } from './webhook-transport.js';
export { deliveryLinks, formatDuration, renderDelivery, SUBMITTED_EVENT } from './payloads.js';
export type { DeliveryLinks, NotifiedRequest, RenderInput } from './payloads.js';
export { notifiedSuggestion, renderSuggestionDelivery, suggestionLinks, SUGGESTIONS_EVENT } from './suggestion-payloads.js';
export type { NotifiedSuggestion, SuggestionLinks, SuggestionRenderInput } from './suggestion-payloads.js';
// The signature scheme lives in the PEP SDK (receivers verify with it); the outbox signs with the same code.
export { DEFAULT_SIGNATURE_TOLERANCE_SECONDS, DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signWebhook, verifyWebhookSignature } from '../pep/index.js';
export type { VerifyWebhookOptions, WebhookSignatureFailure, WebhookVerification } from '../pep/index.js';
export { ApprovalLinks, MIN_LINK_KEY_BYTES } from './approval-links.js';
export type { ApprovalLinkClaims } from './approval-links.js';
export { LINK_KEY_FILE, loadLinkKey } from './link-key.js';
