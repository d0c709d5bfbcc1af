/**
 * What each audit event type records: its payload (`data`), the ids it carries, and one builder per type that
 * produces the event a writer appends (`NewAuditEvent`). The store builds the first six, the access request and
 * elevation events, and the trail's own events (`audit.*`), inside its transactions; `main` builds policy.* and auth.failed and hands them to
 * `Store.appendEvents`. Builders neither mask nor encode: the store does both, once.
 *
 * Documented member by member in docs/audit-events.md ("Event payloads"); test/audit/event-payloads.test.ts parses
 * that page and fails when it and these builders (or the events a real store writes) disagree. Change both together.
 */
import { ELEVATION_END_REASONS } from '../wire/access-request-v1.js';
import type { ElevationEndReason } from '../wire/access-request-v1.js';
import { ID_PATTERN, SCOPE_PATTERN } from '../wire/decision-v1.js';
import type { ResourceRef } from '../wire/evaluation-v1.js';
import { USAGE_RECORD_ID_MAX, USAGE_ROUTE_MAX } from '../wire/usage-v1.js';
import { isIsoTime } from './audit-event.js';
import type { AUDIT_EVENT_TYPES, AuditEventType, AuditIds, NewAuditEvent } from './audit-event.js';
import { parseSignedHead } from './signed-head.js';
import type { SignedHeadV1 } from './signed-head.js';

/**
 * Why a caller failed authentication (our API's `Bearer <key>`, or on the OAuth endpoints the same key as a bearer
 * credential, `client_secret_basic` or `client_secret_post`, the client id being the caller's id):
 * - `missing`: no credential at all (no `Authorization` header, and on an OAuth endpoint no posted `client_secret`);
 * - `malformed`: a credential that is not well-formed: not `Bearer <key>`; a Basic value that does not decode to
 *   `id:secret`; a `client_id` or `client_secret` that is not one string, an empty or over-long secret, a secret posted
 *   without its `client_id`; or two methods at once (a header and a posted secret);
 * - `unknown_key`: a key no caller holds, or a client id and secret that are not one caller's id and key (Basic or
 *   posted), including a posted `client_id` naming another caller than the header's key;
 * - `unknown_session`: a web console session cookie (sent without an `Authorization` header) naming no live session:
 *   unknown, signed out, expired or idle too long, or its caller's key changed or removed since sign-in.
 */
export const AUTH_FAILURE_REASONS = ['missing', 'malformed', 'unknown_key', 'unknown_session'] as const;
export type AuthFailureReason = (typeof AUTH_FAILURE_REASONS)[number];

/**
 * What an authenticated caller was refused (an `access.refused` event): a role not allowed on the route, an agent
 * it may not speak for, task context it may not assert, another caller's decision.
 */
export const ACCESS_REFUSAL_CODES = [
  'forbidden_role',
  'forbidden_agent',
  'context_assertion_forbidden',
  'decision_wrong_caller',
  'self_approval',
  'forbidden_approver_group',
  'csrf_failed',
] as const;
export type AccessRefusalCode = (typeof ACCESS_REFUSAL_CODES)[number];

/** Whether an error code is one of the refusals an `access.refused` event records. */
export const isAccessRefusalCode = (code: string): code is AccessRefusalCode => (ACCESS_REFUSAL_CODES as readonly string[]).includes(code);

/** Why a token was revoked: by the caller it was issued to, or because its task closed. */
export const TOKEN_REVOKE_REASONS = ['revoked_by_caller', 'task_completed', 'task_expired'] as const;
export type TokenRevokeReason = (typeof TOKEN_REVOKE_REASONS)[number];

/** How a task closed. */
export const TASK_CLOSE_STATUSES = ['completed', 'expired'] as const;
export type TaskCloseStatus = (typeof TASK_CLOSE_STATUSES)[number];

/**
 * What was done with a token: `introspect`, the PDP answered a resource server's introspection; `proxy`, the
 * enforcement proxy checked it for one call to an upstream API (and forwarded the call or refused it);
 * `resource_server`, a resource server reported (`POST /v1/usage`) a request its middleware let through with it.
 */
export const TOKEN_USE_ACTIONS = ['introspect', 'proxy', 'resource_server'] as const;
export type TokenUseAction = (typeof TOKEN_USE_ACTIONS)[number];

/**
 * What became of a proxied call: `forwarded`, the upstream answered and its response went back whole; `refused`,
 * the proxy refused it before the upstream saw anything; `failed`, the upstream could not be reached, timed out or
 * the response was cut.
 */
export const TOKEN_PROXY_OUTCOMES = ['forwarded', 'refused', 'failed'] as const;
export type TokenProxyOutcome = (typeof TOKEN_PROXY_OUTCOMES)[number];

/** Longest `path_template` of a proxied token.used event: an endpoint map entry's path. Longer is refused. */
export const PROXY_PATH_TEMPLATE_MAX = 512;
/** Longest `code` of a proxied token.used event (a refusal or failure code). Longer is refused. */
export const PROXY_CODE_MAX = 64;
/**
 * Longest `record.id` of a proxied token.used event (UTF-16 code units), as long as a decision's record id may be.
 * The id is read from the request (a path segment, a query or body field), so a longer one is cut, ending in `…`.
 */
export const PROXY_RECORD_ID_MAX = 256;
/** Longest HTTP method of a proxied token.used event. */
export const PROXY_METHOD_MAX = 16;
/** Longest `route` of a reported token.used event (a route template); longer is refused. */
export const REPORTED_ROUTE_MAX = USAGE_ROUTE_MAX;
/** Longest `record.id` of a reported token.used event; a longer one is cut, ending in `…`. */
export const REPORTED_RECORD_ID_MAX = USAGE_RECORD_ID_MAX;

/**
 * Longest `route` of an auth.failed event (UTF-16 code units). The route is a template of the route table, never
 * the request path (a path no route matches is answered 404 before authentication): a bound kept in the builder.
 */
export const AUTH_FAILED_ROUTE_MAX = 256;
/** Longest `ip` of an auth.failed event: an IPv6 address with a zone index fits. */
export const AUTH_FAILED_IP_MAX = 64;
/** Most `details` a policy.refused event keeps; the rest are in the log only. */
export const POLICY_REFUSED_DETAILS_MAX = 50;
/** Longest `last_error` of an access_request.notification_failed event (UTF-16 code units); a longer one is cut. */
export const DELIVERY_ERROR_MAX = 1000;

/** What a policy suggestion proposes (src/suggest/): the closed list its events name. */
export const SUGGESTION_KINDS = ['remove_scope', 'move_to_task_type', 'shorten_ttl'] as const;
export type SuggestionKind = (typeof SUGGESTION_KINDS)[number];
/** Longest `note` of a policy.suggestion.* event (UTF-16 code units); a longer one is cut. */
export const SUGGESTION_NOTE_MAX = 1000;

export interface DecisionEventData {
  /** The evaluation input the policy saw (masked); the store passes it pre-encoded. */
  input: unknown;
  /** The decision response (masked); the store passes it pre-encoded. */
  result: unknown;
  policy_revision: string;
  /**
   * A requestable denial only: the approver groups its offer goes to (the policy's `escalation.approvers`). The
   * answer does not show them; the record keeps them, so approving can check the approver's groups against it.
   */
  approvers?: readonly string[];
}

/** OPA's data API or AuthZEN asked a Rego entrypoint: what was asked, through which door, and the rule's value. */
export interface EvaluationEventData {
  /** The door: `opa` (`/v1/data/{path}`) or `authzen` (a request whose subject type routes to a Rego pack). */
  api: 'opa' | 'authzen';
  /** The entrypoint, as a slash-separated data path (`authzen/certification/decision`). */
  path: string;
  /** The input as the caller sent it (masked); absent when it sent none (OPA's data API allows that). */
  input?: unknown;
  /** The rule's value; absent when it was undefined for the input. */
  result?: unknown;
  policy_revision: string;
}

/** What the issuer adds to token.issued: it alone knows the signing key. */
export interface TokenIssuedExtras {
  integration: string;
  /** The record the token is bound to, or null. */
  resource: ResourceRef | null;
  /** `kid` of the key that signs the token. */
  kid: string;
  /** For an integration minted by a provider: what was minted (never the secret). Absent otherwise. */
  provider_credential?: ProviderCredentialRecord;
}

/**
 * What the trail keeps of a provider credential (docs/providers.md): who minted it and with which effective
 * policy, never an access key, secret or session token.
 */
export type ProviderCredentialRecord = AwsCredentialRecord | GoogleWorkspaceCredentialRecord | GcsCredentialRecord;

/** A token downscoped by a Credential Access Boundary: the account and the boundary; never a token. */
export interface GcsCredentialRecord {
  provider: 'gcp_storage';
  request_id: null;
  expires_at: string;
  service_account: string;
  /** The `options` sent to Google's STS: `{ accessBoundary: { accessBoundaryRules } }`. */
  access_boundary: Record<string, unknown>;
}

/** A Google access token minted with a service account's assertion: who for, which scopes; never the token. */
export interface GoogleWorkspaceCredentialRecord {
  provider: 'google_workspace';
  /** Google's token endpoint gives none: always null. */
  request_id: null;
  expires_at: string;
  /** The service account (`iss` of the assertion). */
  service_account: string;
  /** The user it acts for (`sub`). */
  subject: string;
  /** The Google scope URLs asked for (`scope`), sorted. */
  scopes: string[];
}

export interface AwsCredentialRecord {
  provider: 'aws';
  /** The provider's request id (STS's `RequestId`), or null when it gave none. */
  request_id: string | null;
  expires_at: string;
  /** The role assumed. */
  role_arn: string;
  /** `RoleSessionName`, `SourceIdentity` and the session tags sent. */
  session_name: string;
  source_identity: string;
  session_tags: Record<string, string>;
  /** The session policy sent, as the JSON object it encodes. */
  session_policy: Record<string, unknown>;
}

export interface TokenIssuedData extends TokenIssuedExtras {
  scopes: string[];
  audience: string | null;
  issued_at: string;
  expires_at: string;
}

/**
 * A token.used event: an introspection, one call through the enforcement proxy, or one request a resource server
 * reported (told apart by `action`).
 */
export type TokenUsedData = TokenIntrospectedData | TokenProxiedData | TokenReportedData;

export interface TokenIntrospectedData {
  action: 'introspect';
  /** The verdict returned (RFC 7662 `active`). */
  active: boolean;
}

/**
 * One call through the enforcement proxy with a verified token. Never a body, a query string, a header or a
 * credential: the path is the endpoint map entry's template, not the request path.
 */
export interface TokenProxiedData {
  action: 'proxy';
  /** The integration whose upstream the call was for (the path prefix). */
  integration: string;
  /** The request's HTTP method, upper case. */
  method: string;
  /** The endpoint map entry's path (`/repos/{owner}/{repo}/pulls/{pull_number}`), never the request path; '' when unmapped. */
  path_template: string;
  /** The scope the call needed; null when unmapped. */
  scope: string | null;
  /** The record the call touches, per the map entry; null when it names none (and when unmapped). */
  record: { type: string; id: string } | null;
  outcome: TokenProxyOutcome;
  /** The refusal or failure code (`endpoint_not_mapped`, `token_scope_insufficient`, `upstream_timeout`, ...); null when forwarded. */
  code: string | null;
  /** The upstream's HTTP status; null when it sent none (refused, unreachable, timed out). */
  upstream_status: number | null;
  /** Request body bytes forwarded to the upstream. */
  bytes_in: number;
  /** Response body bytes streamed back to the agent. */
  bytes_out: number;
  /** From the request's receipt to the upstream's last byte (or the refusal), in whole milliseconds. */
  latency_ms: number;
}

/**
 * One request a resource server's middleware let through with the token, as the resource server reported it
 * (`POST /v1/usage`), after the PDP checked the report against the token: its integration, a scope it grants, its
 * record, a time within its life. Self-reported by the resource server (its `caller_id`), never a path, a body or
 * a header.
 */
export interface TokenReportedData {
  action: 'resource_server';
  /** The integration of the route (the token's). */
  integration: string;
  /** The one scope the request required. */
  scope: string;
  /** The record the request touched, or null. */
  record: { type: string; id: string } | null;
  /** The route template the resource server names (`/customers/:id`, at most REPORTED_ROUTE_MAX), never a concrete path; null when unknown. */
  route: string | null;
  /** When the request was let through, by the resource server's clock (the event's `time` is the PDP's). */
  used_at: string;
}

export interface TokenRevokedData {
  reason: TokenRevokeReason;
  /** The caller the token was issued to (the event's caller_id is who revoked it). */
  issued_to: string;
}

export interface TaskRegisteredData {
  type: string;
  context: Record<string, string | number | boolean>;
  expires_at: string;
}

export interface TaskCompletedData {
  status: TaskCloseStatus;
  expires_at: string;
  /** Tokens revoked with the task; one token.revoked event per jti follows in the same transaction. */
  revoked_jtis: string[];
}

export interface PolicyLoadedData {
  /** `<bundle_revision>.<policies_revision>`: what decisions record as their policy revision. */
  revision: string;
  bundle_revision: string;
  policies_revision: string;
  /** The revision it replaced; null for the first load. */
  previous_revision: string | null;
  /** Agents in the loaded policy set. */
  agents: number;
  /** The policy files the revision was compiled from: path relative to the policy folder, SHA-256 of the bytes read. */
  files: PolicyFileDigest[];
}

export interface PolicyFileDigest {
  path: string;
  sha256: string;
}

/**
 * Refusals written at a bounded rate are counted: an event for several identical refusals says how many and
 * between which times (`pdp/refusal-recorder.ts`). Absent on an event for one refusal.
 */
export interface RefusalCount {
  count?: number;
  first_at?: string;
  last_at?: string;
}

/** One thing wrong with a refused policy (a copy of the error detail's members, nothing else). */
export interface PolicyRefusalDetail {
  path: string;
  message: string;
  file?: string;
  line?: number;
  column?: number;
}

export interface PolicyRefusedData {
  /** The error code (`policy_invalid`, `bundle_invalid`, `bundle_missing`, ...). */
  code: string;
  message: string;
  /** At most POLICY_REFUSED_DETAILS_MAX. */
  details: PolicyRefusalDetail[];
  /** The revision that stays active; null when none is loaded. */
  active_revision: string | null;
}

export interface AuthFailedData extends RefusalCount {
  reason: AuthFailureReason;
  /**
   * The route template the request matched (`/v1/tasks/{id}`), never the request path; `*` for a count of many
   * routes. At most AUTH_FAILED_ROUTE_MAX code units.
   */
  route: string;
  /** The peer address, or null when unknown (or when the count spans many peers). */
  ip: string | null;
}

/** One configured caller as the trail records it: never its key, and of its key's SHA-256 only a fingerprint. */
export interface CallerSummary {
  id: string;
  /** The first of `roles`. */
  role: string;
  /** Every role the caller holds. */
  roles: string[];
  /** The approver groups of an approver; `[]` otherwise. */
  approver_groups: string[];
  /** The first 16 hex digits of the key's SHA-256: enough to tell keys apart, not to test guesses of a weak key. */
  key_fingerprint: string;
  agents: string[];
  may_assert_context: boolean;
}

export interface CallersReplacedData {
  /** The callers in force from now on, sorted by id. */
  callers: CallerSummary[];
}

export interface AccessRefusedData extends RefusalCount {
  code: AccessRefusalCode;
  /** The route template; `*` for a count of many routes. */
  route: string;
}

/**
 * The access request events (break-glass escalation) all carry, as `decision_id`, the id of the DENIAL the request
 * asks to lift, so that the denial's chain lists them; and the request's agent_id and task_id.
 */
export interface AccessRequestSubmittedData {
  access_request_id: string;
  integration: string;
  /** The scopes asked for (the ones denied with approval_required). */
  scopes: string[];
  /** The record the elevation would be bound to, or null. */
  resource: ResourceRef | null;
  /** The PEP's reason, or null when it gave none. */
  reason: string | null;
  /** The window asked for. */
  duration_seconds: number;
  /** The policy's cap on the window. */
  max_duration_seconds: number;
  /** The groups that may approve it (each notified). */
  approver_groups: string[];
  /** Until when it stays pending. */
  expires_at: string;
  /** The revision that made the denial. */
  policy_revision: string;
}

/** One webhook delivery of an access request to one approver group. */
export interface AccessRequestDeliveryData {
  access_request_id: string;
  /** The outbox row: the delivery id receivers dedupe on (`X-AgentPDP-Delivery`). */
  delivery_id: string;
  /** The webhook's id in the config (never its URL). */
  destination: string;
  approver_group: string;
  /** Attempts made, this one included. */
  attempts: number;
}

export interface AccessRequestNotifiedData extends AccessRequestDeliveryData {
  /** The receiver's HTTP status, or null when the worker did not record one. */
  status_code: number | null;
}

export interface AccessRequestNotificationFailedData extends AccessRequestDeliveryData {
  /** Why the last attempt failed (a status, a timeout), or null. */
  last_error: string | null;
}

export interface AccessRequestApprovedData {
  access_request_id: string;
  /** The window granted (the approver may shorten or lengthen what was asked, up to the policy's cap). */
  duration_seconds: number;
  /** End of the window: no elevated decision, and no token issued from one, lasts past it. */
  approved_until: string;
  note: string | null;
}

export interface AccessRequestDeniedData {
  access_request_id: string;
  note: string | null;
}

export interface AccessRequestExpiredData {
  access_request_id: string;
  /** When it stopped being pending (the event's time is when the sweeper noticed). */
  expires_at: string;
}

export interface ElevationEndedData {
  access_request_id: string;
  reason: ElevationEndReason;
  /** When it ended: the window's end (`window`), or when the task closed. */
  ended_at: string;
}

/**
 * What a prune deleted: events from_seq..to_seq, the start of the chain. The store's checkpoint (to_seq, last_hash)
 * is what the chain continues from; this event, appended in the same transaction, is what makes that checkpoint
 * verifiable: a chain that starts at a checkpoint no audit.pruned event records had its start cut off by hand.
 */
export interface AuditPrunedData {
  /** The first event deleted (the chain's start before the prune). */
  from_seq: number;
  /** The last event deleted: the checkpoint's seq. The chain continues at to_seq + 1. */
  to_seq: number;
  /** The hash of event to_seq: the checkpoint's hash, the prev_hash of event to_seq + 1. */
  last_hash: string;
  /** The cut asked for: events before the first one at or after it were deleted. */
  before: string;
}

/**
 * A signed head of the chain (signed-head.ts): the event written right after the head it signs, so `seq` is this
 * event's seq - 1 and `hash` its prev_hash; the signature makes the pair unforgeable without the audit key.
 */
export type AuditHeadSignedData = SignedHeadV1;

/**
 * An operator applied a policy suggestion (`agent-pdp suggest apply`): the agent's policy file was rewritten. The
 * event's agent_id is the suggestion's agent; caller_id who applied it, when known.
 */
export interface PolicySuggestionAppliedData {
  suggestion_id: string;
  integration: string;
  kind: SuggestionKind;
  /** The scope (remove_scope, move_to_task_type) or `token_ttl` (shorten_ttl). */
  target: string;
  /** The policy file rewritten, relative to the policy folder. */
  file: string;
  /** SHA-256 (hex) of the file's bytes before and after the rewrite. */
  file_sha256_before: string;
  file_sha256_after: string;
  note: string | null;
}

/** An operator dismissed a policy suggestion: it does not come back until its evidence changes. */
/** Why a console session was ended by an event of its own (an idle or expired one ends silently: its time is known). */
export const CONSOLE_SESSION_END_REASONS = ['signed_out', 'replaced', 'evicted'] as const;
export type ConsoleSessionEndReason = (typeof CONSOLE_SESSION_END_REASONS)[number];

/** A web console sign-in (src/console/): which session, with which roles, from where, until when at most. */
export interface ConsoleSessionStartedData {
  /** The first 16 hex digits of the SHA-256 of the session id: tells sessions apart, yields none. */
  session: string;
  /** The console roles the session acts with. */
  roles: string[];
  /** The peer's address (at most 64 characters), or null when unknown. */
  ip: string | null;
  /** The session's absolute end. */
  expires_at: string;
}

export interface ConsoleSessionEndedData {
  session: string;
  reason: ConsoleSessionEndReason;
}

export interface PolicySuggestionDismissedData {
  suggestion_id: string;
  integration: string;
  kind: SuggestionKind;
  target: string;
  note: string | null;
}

/** A provider credential minted and then not handed over: what was minted (never the secret), and why it was dropped. */
export interface ProviderCredentialDiscardedData {
  integration: string;
  /** The error code that refused the redemption after the mint (`task_not_active`, `provider_failed`, …). */
  reason: string;
  provider_credential: ProviderCredentialRecord;
}

/** The payload of each event type. */
export interface AuditEventData {
  decision: DecisionEventData;
  evaluation: EvaluationEventData;
  'token.issued': TokenIssuedData;
  'token.used': TokenUsedData;
  'token.revoked': TokenRevokedData;
  'provider.credential_discarded': ProviderCredentialDiscardedData;
  'task.registered': TaskRegisteredData;
  'task.completed': TaskCompletedData;
  'policy.loaded': PolicyLoadedData;
  'policy.refused': PolicyRefusedData;
  'auth.failed': AuthFailedData;
  'access.refused': AccessRefusedData;
  'callers.replaced': CallersReplacedData;
  'access_request.submitted': AccessRequestSubmittedData;
  'access_request.notified': AccessRequestNotifiedData;
  'access_request.notification_failed': AccessRequestNotificationFailedData;
  'access_request.approved': AccessRequestApprovedData;
  'access_request.denied': AccessRequestDeniedData;
  'access_request.expired': AccessRequestExpiredData;
  'elevation.ended': ElevationEndedData;
  'audit.pruned': AuditPrunedData;
  'audit.head_signed': AuditHeadSignedData;
  'policy.suggestion.applied': PolicySuggestionAppliedData;
  'policy.suggestion.dismissed': PolicySuggestionDismissedData;
  'console.session_started': ConsoleSessionStartedData;
  'console.session_ended': ConsoleSessionEndedData;
}

// Compile-time: a payload for every event type and no payload without a type (AUDIT_EVENT_TYPES is the one list).
type SameKeys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false;
true satisfies SameKeys<AuditEventData, typeof AUDIT_EVENT_TYPES>;

/** An event of type `T` with its typed payload. */
export type AuditEventOf<T extends AuditEventType> = NewAuditEvent & { type: T; data: AuditEventData[T] };

/** Ids an event always carries (non-empty strings), and ids it carries when known (null or undefined: absent). */
export type EventIds<Always extends keyof AuditIds, WhenKnown extends keyof AuditIds = never> = {
  [K in Always]: string;
} & { [K in WhenKnown]?: string | null };

export function decisionEvent(
  time: string,
  ids: EventIds<'decision_id' | 'agent_id' | 'caller_id', 'task_id' | 'trace_id'>,
  data: DecisionEventData,
): AuditEventOf<'decision'> {
  return event('decision', time, ids, {
    input: data.input,
    result: data.result,
    policy_revision: data.policy_revision,
    ...(data.approvers === undefined ? {} : { approvers: data.approvers }),
  });
}

/** `decision_id` is the evaluation's id, which the caller's answer carries (OPA's `decision_id`). */
export function evaluationEvent(
  time: string,
  ids: EventIds<'decision_id' | 'caller_id', 'trace_id'>,
  data: EvaluationEventData,
): AuditEventOf<'evaluation'> {
  return event('evaluation', time, ids, {
    api: data.api,
    path: wellFormed(data.path),
    ...(data.input === undefined ? {} : { input: data.input }),
    ...(data.result === undefined ? {} : { result: data.result }),
    policy_revision: data.policy_revision,
  });
}

export function tokenIssuedEvent(
  time: string,
  ids: EventIds<'decision_id' | 'jti' | 'agent_id' | 'caller_id', 'task_id' | 'trace_id'>,
  data: TokenIssuedData,
): AuditEventOf<'token.issued'> {
  return event('token.issued', time, ids, {
    scopes: [...data.scopes],
    audience: data.audience,
    issued_at: data.issued_at,
    expires_at: data.expires_at,
    integration: data.integration,
    resource: data.resource === null ? null : { type: data.resource.type, id: data.resource.id },
    kid: data.kid,
    ...(data.provider_credential === undefined ? {} : { provider_credential: providerCredentialRecord(data.provider_credential) }),
  });
}

/** A provider credential minted for a redemption refused after the mint (src/pdp/token-service.ts): never returned. */
export function providerCredentialDiscardedEvent(
  time: string,
  ids: EventIds<'decision_id' | 'agent_id' | 'caller_id', 'task_id' | 'trace_id'>,
  data: ProviderCredentialDiscardedData,
): AuditEventOf<'provider.credential_discarded'> {
  if (typeof data.integration !== 'string' || data.integration === '') throw new TypeError('provider.credential_discarded integration must be a non-empty string');
  if (typeof data.reason !== 'string' || !/^[a-z_]{1,64}$/.test(data.reason)) throw new TypeError('provider.credential_discarded reason must be an error code');
  return event('provider.credential_discarded', time, ids, {
    integration: data.integration,
    reason: data.reason,
    provider_credential: providerCredentialRecord(data.provider_credential),
  });
}

/** Only the documented members, checked: a secret handed in by mistake is not copied into the trail. */
function providerCredentialRecord(r: ProviderCredentialRecord): ProviderCredentialRecord {
  if (r.provider === 'gcp_storage') {
    if (typeof r.expires_at !== 'string' || typeof r.service_account !== 'string') throw new TypeError('token.issued provider_credential: expires_at and service_account must be strings');
    return { provider: r.provider, request_id: null, expires_at: r.expires_at, service_account: r.service_account, access_boundary: JSON.parse(JSON.stringify(r.access_boundary)) as Record<string, unknown> };
  }
  if (r.provider === 'google_workspace') {
    for (const key of ['expires_at', 'service_account', 'subject'] as const) {
      if (typeof r[key] !== 'string') throw new TypeError(`token.issued provider_credential.${key} must be a string`);
    }
    if (!Array.isArray(r.scopes) || !r.scopes.every((s) => typeof s === 'string')) throw new TypeError('token.issued provider_credential.scopes must be strings');
    return { provider: r.provider, request_id: null, expires_at: r.expires_at, service_account: r.service_account, subject: r.subject, scopes: [...r.scopes] };
  }
  if (r.provider !== 'aws') throw new TypeError('token.issued provider_credential.provider must be aws or google_workspace');
  for (const key of ['expires_at', 'role_arn', 'session_name', 'source_identity'] as const) {
    if (typeof r[key] !== 'string') throw new TypeError(`token.issued provider_credential.${key} must be a string`);
  }
  if (r.request_id !== null && typeof r.request_id !== 'string') throw new TypeError('token.issued provider_credential.request_id must be a string or null');
  const tags: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.session_tags)) {
    if (typeof v !== 'string') throw new TypeError('token.issued provider_credential.session_tags values must be strings');
    tags[k] = v;
  }
  return {
    provider: r.provider,
    request_id: r.request_id,
    expires_at: r.expires_at,
    role_arn: r.role_arn,
    session_name: r.session_name,
    source_identity: r.source_identity,
    session_tags: tags,
    session_policy: JSON.parse(JSON.stringify(r.session_policy)) as Record<string, unknown>,
  };
}

/**
 * The token's decision, task and agent are known when the token is one of ours. caller_id is who presented it: the
 * resource server that introspected or reported it, or the proxy (its configured id). An introspection records
 * `{ action, active }`; a proxied call and a reported one are checked member by member (tokenProxiedData,
 * tokenReportedData) and only their documented members are kept.
 */
export function tokenUsedEvent(
  time: string,
  ids: EventIds<'jti' | 'caller_id', 'decision_id' | 'task_id' | 'agent_id' | 'trace_id'>,
  data: TokenUsedData,
): AuditEventOf<'token.used'> {
  if (!isRecord(data)) throw new TypeError('token.used data must be an object');
  oneOf('token.used action', data.action, TOKEN_USE_ACTIONS);
  if (data.action === 'proxy') return event('token.used', time, ids, tokenProxiedData(data));
  if (data.action === 'resource_server') return event('token.used', time, ids, tokenReportedData(data));
  if (typeof data.active !== 'boolean') throw new TypeError('token.used active must be a boolean');
  return event('token.used', time, ids, { action: data.action, active: data.active });
}

const METHOD = new RegExp(`^[A-Z][A-Z-]{0,${PROXY_METHOD_MAX - 1}}$`);
const CODE = new RegExp(`^[a-z][a-z0-9_]{0,${PROXY_CODE_MAX - 1}}$`);
const ID = new RegExp(ID_PATTERN);
const SCOPE = new RegExp(SCOPE_PATTERN);
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * The members of a proxied use, checked: what the proxy itself supplies (the map's template, scope and record type,
 * codes, counts) is refused with a TypeError when malformed; the record id, which the request supplies, is kept
 * well formed and cut at PROXY_RECORD_ID_MAX. The outcome and the members must agree: `forwarded` has no code and an
 * upstream status; `refused` has a code, no upstream status and forwarded no byte; `failed` has a code. An
 * unmapped call ('' template) has no scope and no record.
 */
function tokenProxiedData(data: TokenProxiedData): TokenProxiedData {
  const name = (member: string): string => `token.used (proxy) ${member}`;
  if (typeof data.integration !== 'string' || !ID.test(data.integration)) throw new TypeError(`${name('integration')} must be an integration id`);
  if (typeof data.method !== 'string' || !METHOD.test(data.method)) throw new TypeError(`${name('method')} must be an upper-case HTTP method`);
  const template = data.path_template;
  if (typeof template !== 'string' || template.length > PROXY_PATH_TEMPLATE_MAX || (template !== '' && !template.startsWith('/')) || CONTROL.test(template)) {
    throw new TypeError(`${name('path_template')} must be '' or a path template of at most ${PROXY_PATH_TEMPLATE_MAX} characters`);
  }
  if (data.scope !== null && (typeof data.scope !== 'string' || !SCOPE.test(data.scope))) throw new TypeError(`${name('scope')} must be a scope or null`);
  const record = data.record;
  if (record !== null && (!isRecord(record) || typeof record.type !== 'string' || !ID.test(record.type) || typeof record.id !== 'string')) {
    throw new TypeError(`${name('record')} must be { type, id } or null`);
  }
  if ((template === '') !== (data.scope === null)) throw new TypeError(`${name('scope')} is null exactly when the call is unmapped ('' path_template)`);
  if (template === '' && record !== null) throw new TypeError(`${name('record')} must be null for an unmapped call`);
  oneOf(name('outcome'), data.outcome, TOKEN_PROXY_OUTCOMES);
  if (data.code !== null && (typeof data.code !== 'string' || !CODE.test(data.code))) throw new TypeError(`${name('code')} must be a code of at most ${PROXY_CODE_MAX} characters or null`);
  const status = data.upstream_status;
  if (status !== null && (!Number.isSafeInteger(status) || status < 100 || status > 599)) throw new TypeError(`${name('upstream_status')} must be an HTTP status or null`);
  count(name('bytes_in'), data.bytes_in);
  count(name('bytes_out'), data.bytes_out);
  count(name('latency_ms'), data.latency_ms);
  if ((data.outcome === 'forwarded') !== (data.code === null)) throw new TypeError(`${name('code')} is null exactly when the call was forwarded`);
  if (data.outcome === 'forwarded' && status === null) throw new TypeError(`${name('upstream_status')} is required when the call was forwarded`);
  if (data.outcome === 'refused' && (status !== null || data.bytes_in !== 0)) throw new TypeError(`a refused call reached no upstream: ${name('upstream_status')} null, bytes_in 0`);
  return {
    action: 'proxy',
    integration: data.integration,
    method: data.method,
    path_template: template,
    scope: data.scope,
    record: record === null ? null : { type: record.type, id: clip(record.id, PROXY_RECORD_ID_MAX) },
    outcome: data.outcome,
    code: data.code,
    upstream_status: status,
    bytes_in: data.bytes_in,
    bytes_out: data.bytes_out,
    latency_ms: data.latency_ms,
  };
}

const ROUTE = new RegExp(`^/[^\\u0000-\\u001f\\u007f]{0,${REPORTED_ROUTE_MAX - 1}}$`, 'u');

/**
 * The members of a reported use, checked: integration, scope and record type well formed, the route null or a
 * template (starting with `/`, no control character, at most REPORTED_ROUTE_MAX), `used_at` a time of the trail's
 * format; anything else is a TypeError. The record id is kept well formed and cut at REPORTED_RECORD_ID_MAX.
 */
function tokenReportedData(data: TokenReportedData): TokenReportedData {
  const name = (member: string): string => `token.used (resource_server) ${member}`;
  if (typeof data.integration !== 'string' || !ID.test(data.integration)) throw new TypeError(`${name('integration')} must be an integration id`);
  if (typeof data.scope !== 'string' || !SCOPE.test(data.scope)) throw new TypeError(`${name('scope')} must be a scope`);
  const record = data.record;
  if (record !== null && (!isRecord(record) || typeof record.type !== 'string' || !ID.test(record.type) || typeof record.id !== 'string' || record.id === '')) {
    throw new TypeError(`${name('record')} must be { type, id } or null`);
  }
  if (data.route !== null && (typeof data.route !== 'string' || !ROUTE.test(data.route) || wellFormed(data.route) !== data.route)) {
    throw new TypeError(`${name('route')} must be null or a route template of at most ${REPORTED_ROUTE_MAX} characters starting with /`);
  }
  if (!isIsoTime(data.used_at)) throw new TypeError(`${name('used_at')} must be an ISO 8601 UTC time with milliseconds`);
  return {
    action: 'resource_server',
    integration: data.integration,
    scope: data.scope,
    record: record === null ? null : { type: record.type, id: clip(record.id, REPORTED_RECORD_ID_MAX) },
    route: data.route,
    used_at: data.used_at,
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** caller_id is who revoked it: absent when the task expired. */
export function tokenRevokedEvent(
  time: string,
  ids: EventIds<'jti' | 'decision_id' | 'agent_id', 'task_id' | 'caller_id' | 'trace_id'>,
  data: TokenRevokedData,
): AuditEventOf<'token.revoked'> {
  oneOf('token.revoked reason', data.reason, TOKEN_REVOKE_REASONS);
  return event('token.revoked', time, ids, { reason: data.reason, issued_to: data.issued_to });
}

/** caller_id is the orchestrator that registered the task. */
export function taskRegisteredEvent(
  time: string,
  ids: EventIds<'task_id' | 'agent_id' | 'caller_id', 'trace_id'>,
  data: TaskRegisteredData,
): AuditEventOf<'task.registered'> {
  return event('task.registered', time, ids, { type: data.type, context: { ...data.context }, expires_at: data.expires_at });
}

/** caller_id is who completed the task: absent when it expired. */
export function taskCompletedEvent(
  time: string,
  ids: EventIds<'task_id' | 'agent_id', 'caller_id' | 'trace_id'>,
  data: TaskCompletedData,
): AuditEventOf<'task.completed'> {
  oneOf('task.completed status', data.status, TASK_CLOSE_STATUSES);
  return event('task.completed', time, ids, {
    status: data.status,
    expires_at: data.expires_at,
    revoked_jtis: [...data.revoked_jtis],
  });
}

export function policyLoadedEvent(time: string, data: PolicyLoadedData): AuditEventOf<'policy.loaded'> {
  if (!Number.isSafeInteger(data.agents) || data.agents < 0) throw new TypeError('policy.loaded agents must be a count');
  for (const f of data.files) if (!/^[0-9a-f]{64}$/.test(f.sha256)) throw new TypeError('policy.loaded files[].sha256 must be a SHA-256 in hex');
  return event('policy.loaded', time, {}, {
    revision: data.revision,
    bundle_revision: data.bundle_revision,
    policies_revision: data.policies_revision,
    previous_revision: data.previous_revision,
    agents: data.agents,
    files: data.files.map(({ path, sha256 }) => ({ path: wellFormed(path), sha256 })),
  });
}

/**
 * `error` is the refusal (a PdpError: its code, message and details are copied, the details capped at
 * POLICY_REFUSED_DETAILS_MAX); `activeRevision` the revision that stays active, null when none is loaded.
 */
export function policyRefusedEvent(
  time: string,
  error: { code: string; message: string; details: readonly PolicyRefusalDetail[] },
  activeRevision: string | null,
): AuditEventOf<'policy.refused'> {
  return event('policy.refused', time, {}, {
    code: error.code,
    message: wellFormed(error.message),
    details: error.details.slice(0, POLICY_REFUSED_DETAILS_MAX).map(refusalDetail),
    active_revision: activeRevision,
  });
}

/**
 * `route` is the route template the request matched (or `*` for a count over many routes), never the request path,
 * which an unauthenticated sender chooses; one longer than AUTH_FAILED_ROUTE_MAX code units would still be cut,
 * ending in `…`, so no caller of this builder can write large events. Never pass a key or token: the event holds
 * only these three members.
 */
export function authFailedEvent(
  time: string,
  failure: { reason: AuthFailureReason; route: string; ip: string | null | undefined },
  aggregate?: Aggregate,
): AuditEventOf<'auth.failed'> {
  oneOf('auth.failed reason', failure.reason, AUTH_FAILURE_REASONS);
  return event('auth.failed', time, {}, {
    reason: failure.reason,
    route: clip(failure.route, AUTH_FAILED_ROUTE_MAX),
    ip: failure.ip == null ? null : clip(failure.ip, AUTH_FAILED_IP_MAX),
    ...refusalCount(aggregate),
  });
}

/**
 * An authenticated caller refused what it asked. `route` is the route template (never the raw path); the agent or
 * decision the request named, when the route had read it, are its ids. With `aggregate`, the event stands for
 * `count` identical refusals between `first` and `last`.
 */
export function accessRefusedEvent(
  time: string,
  ids: EventIds<'caller_id', 'agent_id' | 'decision_id' | 'trace_id'>,
  refusal: { code: AccessRefusalCode; route: string },
  aggregate?: Aggregate,
): AuditEventOf<'access.refused'> {
  oneOf('access.refused code', refusal.code, ACCESS_REFUSAL_CODES);
  return event('access.refused', time, ids, { code: refusal.code, route: clip(refusal.route, AUTH_FAILED_ROUTE_MAX), ...refusalCount(aggregate) });
}

/** The callers a reload put in force (`main` writes it when the list changed). */
export function callersReplacedEvent(
  time: string,
  callers: ReadonlyArray<{
    id: string;
    role: string;
    roles?: readonly string[];
    approver_groups?: readonly string[];
    key_sha256: string;
    agents: readonly string[];
    may_assert_context: boolean;
  }>,
): AuditEventOf<'callers.replaced'> {
  const summaries = [...callers]
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((c) => ({
      id: c.id,
      role: c.role,
      roles: [...(c.roles ?? [c.role])],
      key_fingerprint: c.key_sha256.toLowerCase().slice(0, 16),
      agents: [...c.agents],
      may_assert_context: c.may_assert_context,
      approver_groups: [...(c.approver_groups ?? [])],
    }));
  return event('callers.replaced', time, {}, { callers: summaries });
}

/** caller_id is the PEP that submitted it. */
export function accessRequestSubmittedEvent(
  time: string,
  ids: EventIds<'decision_id' | 'agent_id' | 'task_id' | 'caller_id', 'trace_id'>,
  data: AccessRequestSubmittedData,
): AuditEventOf<'access_request.submitted'> {
  count('access_request.submitted duration_seconds', data.duration_seconds);
  count('access_request.submitted max_duration_seconds', data.max_duration_seconds);
  return event('access_request.submitted', time, ids, {
    access_request_id: data.access_request_id,
    integration: data.integration,
    scopes: [...data.scopes],
    resource: data.resource === null ? null : { type: data.resource.type, id: data.resource.id },
    reason: data.reason === null ? null : wellFormed(data.reason),
    duration_seconds: data.duration_seconds,
    max_duration_seconds: data.max_duration_seconds,
    approver_groups: [...data.approver_groups],
    expires_at: data.expires_at,
    policy_revision: data.policy_revision,
  });
}

/** Written by the store when the outbox worker reports a delivery; no caller (the PDP acted). */
export function accessRequestNotifiedEvent(
  time: string,
  ids: EventIds<'decision_id' | 'agent_id' | 'task_id'>,
  data: AccessRequestNotifiedData,
): AuditEventOf<'access_request.notified'> {
  count('access_request.notified attempts', data.attempts);
  if (data.status_code !== null && !Number.isSafeInteger(data.status_code)) throw new TypeError('access_request.notified status_code must be an integer or null');
  return event('access_request.notified', time, ids, { ...delivery(data), status_code: data.status_code });
}

/** Written by the store when a delivery goes to the dead letter; no caller (the PDP acted). */
export function accessRequestNotificationFailedEvent(
  time: string,
  ids: EventIds<'decision_id' | 'agent_id' | 'task_id'>,
  data: AccessRequestNotificationFailedData,
): AuditEventOf<'access_request.notification_failed'> {
  count('access_request.notification_failed attempts', data.attempts);
  return event('access_request.notification_failed', time, ids, {
    ...delivery(data),
    last_error: data.last_error === null ? null : clip(data.last_error, DELIVERY_ERROR_MAX),
  });
}

/** caller_id is the approver. */
export function accessRequestApprovedEvent(
  time: string,
  ids: EventIds<'decision_id' | 'agent_id' | 'task_id' | 'caller_id', 'trace_id'>,
  data: AccessRequestApprovedData,
): AuditEventOf<'access_request.approved'> {
  count('access_request.approved duration_seconds', data.duration_seconds);
  return event('access_request.approved', time, ids, {
    access_request_id: data.access_request_id,
    duration_seconds: data.duration_seconds,
    approved_until: data.approved_until,
    note: data.note === null ? null : wellFormed(data.note),
  });
}

/** caller_id is the approver who denied it. */
export function accessRequestDeniedEvent(
  time: string,
  ids: EventIds<'decision_id' | 'agent_id' | 'task_id' | 'caller_id', 'trace_id'>,
  data: AccessRequestDeniedData,
): AuditEventOf<'access_request.denied'> {
  return event('access_request.denied', time, ids, {
    access_request_id: data.access_request_id,
    note: data.note === null ? null : wellFormed(data.note),
  });
}

/** Written by the sweeper; no caller. */
export function accessRequestExpiredEvent(
  time: string,
  ids: EventIds<'decision_id' | 'agent_id' | 'task_id'>,
  data: AccessRequestExpiredData,
): AuditEventOf<'access_request.expired'> {
  return event('access_request.expired', time, ids, { access_request_id: data.access_request_id, expires_at: data.expires_at });
}

/** caller_id (and trace_id) of who completed the task; absent when the window passed or the task expired. */
export function elevationEndedEvent(
  time: string,
  ids: EventIds<'decision_id' | 'agent_id' | 'task_id', 'caller_id' | 'trace_id'>,
  data: ElevationEndedData,
): AuditEventOf<'elevation.ended'> {
  oneOf('elevation.ended reason', data.reason, ELEVATION_END_REASONS);
  return event('elevation.ended', time, ids, { access_request_id: data.access_request_id, reason: data.reason, ended_at: data.ended_at });
}

function delivery(data: AccessRequestDeliveryData): AccessRequestDeliveryData {
  return {
    access_request_id: data.access_request_id,
    delivery_id: data.delivery_id,
    destination: data.destination,
    approver_group: data.approver_group,
    attempts: data.attempts,
  };
}

function count(name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new TypeError(`${name} must be a non-negative integer`);
}

/** How many refusals one event stands for, between which times. */
export interface Aggregate {
  count: number;
  first: string;
  last: string;
}

function refusalCount(aggregate: Aggregate | undefined): RefusalCount {
  if (aggregate === undefined) return {};
  if (!Number.isSafeInteger(aggregate.count) || aggregate.count < 1) throw new TypeError('a refusal count must be a positive integer');
  return { count: aggregate.count, first_at: aggregate.first, last_at: aggregate.last };
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Written by the store with the suggestion's new status (decideSuggestion); caller_id is who applied it. */
export function policySuggestionAppliedEvent(
  time: string,
  ids: EventIds<'agent_id', 'caller_id' | 'trace_id'>,
  data: PolicySuggestionAppliedData,
): AuditEventOf<'policy.suggestion.applied'> {
  const base = suggestionBase('policy.suggestion.applied', data);
  if (typeof data.file !== 'string' || data.file === '') throw new TypeError('policy.suggestion.applied file must be a non-empty string');
  for (const digest of [data.file_sha256_before, data.file_sha256_after]) {
    if (typeof digest !== 'string' || !SHA256_HEX.test(digest)) throw new TypeError('policy.suggestion.applied file_sha256_before/after must be SHA-256 in lowercase hex');
  }
  return event('policy.suggestion.applied', time, ids, {
    ...base,
    file: wellFormed(data.file),
    file_sha256_before: data.file_sha256_before,
    file_sha256_after: data.file_sha256_after,
  });
}

/** Written by the store with the suggestion's new status (decideSuggestion); caller_id is who dismissed it. */
export function policySuggestionDismissedEvent(
  time: string,
  ids: EventIds<'agent_id', 'caller_id' | 'trace_id'>,
  data: PolicySuggestionDismissedData,
): AuditEventOf<'policy.suggestion.dismissed'> {
  return event('policy.suggestion.dismissed', time, ids, suggestionBase('policy.suggestion.dismissed', data));
}

function suggestionBase(type: string, data: PolicySuggestionDismissedData): PolicySuggestionDismissedData {
  for (const member of ['suggestion_id', 'integration', 'target'] as const) {
    if (typeof data[member] !== 'string' || data[member] === '') throw new TypeError(`${type} ${member} must be a non-empty string`);
  }
  oneOf(`${type} kind`, data.kind, SUGGESTION_KINDS);
  if (data.note !== null && typeof data.note !== 'string') throw new TypeError(`${type} note must be a string or null`);
  return {
    suggestion_id: wellFormed(data.suggestion_id),
    integration: wellFormed(data.integration),
    kind: data.kind,
    target: wellFormed(data.target),
    note: data.note === null ? null : clip(data.note, SUGGESTION_NOTE_MAX),
  };
}

/** The event a prune appends after deleting events from_seq..to_seq (the store writes it; `time` is the prune's). */
export function auditPrunedEvent(time: string, data: AuditPrunedData): AuditEventOf<'audit.pruned'> {
  const { from_seq: from, to_seq: to } = data;
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 1 || to < from) {
    throw new TypeError('audit.pruned from_seq..to_seq must be a range of seqs');
  }
  return event('audit.pruned', time, {}, { from_seq: from, to_seq: to, last_hash: data.last_hash, before: data.before });
}

/** The event that records `head` in the trail (the store writes it right after the head; `time` is the head's). */
export function auditHeadSignedEvent(head: SignedHeadV1): AuditEventOf<'audit.head_signed'> {
  const parsed = parseSignedHead(head);
  if (typeof parsed === 'string') throw new TypeError(`audit.head_signed: ${parsed}`);
  return event('audit.head_signed', parsed.time, {}, parsed);
}

function event<T extends AuditEventType>(
  type: T,
  time: string,
  ids: { [K in keyof AuditIds]?: string | null },
  data: AuditEventData[T],
): AuditEventOf<T> {
  const out = { time, type } as AuditEventOf<T>;
  for (const [key, value] of Object.entries(ids)) {
    if (value !== null && value !== undefined) out[key as keyof AuditIds] = value;
  }
  out.data = data;
  return out;
}

function refusalDetail(detail: PolicyRefusalDetail): PolicyRefusalDetail {
  const out: PolicyRefusalDetail = { path: wellFormed(detail.path), message: wellFormed(detail.message) };
  if (detail.file !== undefined) out.file = wellFormed(detail.file);
  if (detail.line !== undefined) out.line = detail.line;
  if (detail.column !== undefined) out.column = detail.column;
  return out;
}

function oneOf(name: string, value: unknown, allowed: readonly string[]): void {
  if (typeof value !== 'string' || !allowed.includes(value)) throw new TypeError(`unknown ${name}: ${String(value)}`);
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Lone surrogates replaced by U+FFFD: the canonical encoding refuses them, and the event would not be written. */
function wellFormed(text: string): string {
  return text.replace(LONE_SURROGATE, '\ufffd');
}

/** At most `max` code units, well formed; a cut string ends in `…` (never half a surrogate pair). */
function clip(text: string, max: number): string {
  if (text.length <= max) return wellFormed(text);
  const cut = text.slice(0, max - 1);
  return wellFormed(/[\ud800-\udbff]$/.test(cut) ? cut.slice(0, -1) : cut) + '…';
}

/** A console sign-in; `caller_id` the caller whose key it was. */
export function consoleSessionStartedEvent(time: string, ids: EventIds<'caller_id', 'trace_id'>, data: ConsoleSessionStartedData): AuditEventOf<'console.session_started'> {
  if (!/^[0-9a-f]{16}$/.test(data.session)) throw new TypeError('console.session_started session must be 16 lowercase hex digits');
  if (!Array.isArray(data.roles) || data.roles.length === 0 || !data.roles.every((r) => typeof r === 'string' && r !== '')) {
    throw new TypeError('console.session_started roles must be a non-empty list of roles');
  }
  if (data.ip !== null && typeof data.ip !== 'string') throw new TypeError('console.session_started ip must be a string or null');
  return event('console.session_started', time, ids, {
    session: data.session,
    roles: [...data.roles],
    ip: data.ip === null ? null : clip(data.ip, 64),
    expires_at: isIsoTime(data.expires_at) ? data.expires_at : badTime('console.session_started expires_at'),
  });
}

/** A console session ended by its user (sign-out) or by a new sign-in from the same browser. */
export function consoleSessionEndedEvent(time: string, ids: EventIds<'caller_id', 'trace_id'>, data: ConsoleSessionEndedData): AuditEventOf<'console.session_ended'> {
  if (!/^[0-9a-f]{16}$/.test(data.session)) throw new TypeError('console.session_ended session must be 16 lowercase hex digits');
  oneOf('console.session_ended reason', data.reason, CONSOLE_SESSION_END_REASONS);
  return event('console.session_ended', time, ids, { session: data.session, reason: data.reason });
}

function badTime(name: string): never {
  throw new TypeError(`${name} must be an ISO 8601 UTC time with milliseconds`);
}
