/**
 * How the guard refuses a `tools/call`: an MCP tool error (a `CallToolResult` with `isError: true`), never a
 * JSON-RPC error and never a dropped session, so the model sees why and the session goes on. The text is for the
 * model; `_meta["agent-pdp.dev/refusal"]` is for programs: a code from the closed table below, the decision id and
 * reasons when the PDP decided, and the access-request hint when an approver could lift the denial.
 */
import type { AccessRequestHintV1 } from '../wire/access-request-v1.js';
import type { DeniedScope, Outcome, Reason } from '../wire/evaluation-v1.js';

/** The `_meta` key of a refusal's details (MCP `_meta` keys are prefixed by a reverse-DNS-like name). */
export const REFUSAL_META = 'agent-pdp.dev/refusal';

/**
 * The JSON-RPC error code of a refused task-augmented `tools/call` (MCP tasks: the client expects a CreateTaskResult,
 * which a refusal is not), in the range JSON-RPC leaves to implementations; its `data` is the refusal's `_meta`,
 * `{ "agent-pdp.dev/refusal": McpRefusal }`.
 */
export const REFUSAL_ERROR_CODE = -32003;

/** Every way the guard refuses a call, and whether trying again later can help. */
export const MCP_REFUSALS = {
  /** The PDP denied the call (or granted less than it needs). With `access_request` when an approver can lift it. */
  permission_denied: { retryable: false },
  /** No mapping declares the tool, and unmapped tools are refused (the default). */
  tool_not_mapped: { retryable: false },
  /** The mapping could not read the call's arguments (missing or malformed record id, a mapping function threw). */
  mapping_failed: { retryable: false },
  /** The session has no agent identity (no verified token, no configured identity). */
  identity_missing: { retryable: false },
  /** No task: neither the session nor the call names a registered task. */
  task_missing: { retryable: false },
  /** The call names a task other than the session's. */
  task_mismatch: { retryable: false },
  /** The PDP could not be reached or answered 503: the call was not made. */
  pdp_unavailable: { retryable: true },
  /** The PDP refused the request itself (this server's key may not speak for the agent, a malformed request, ...). */
  pdp_error: { retryable: false },
  /** Allowed, but no token could be had for it (redeem window passed, issuer down): the call was not made. */
  token_unavailable: { retryable: true },
  /**
   * Allowed, but the arguments as the tool's input schema parsed them (defaults, coercions) ask for another record
   * or scopes than the raw arguments the call was decided on: the handler was not run.
   */
  arguments_changed: { retryable: false },
} as const;

export type McpRefusalCode = keyof typeof MCP_REFUSALS;

/** What `_meta["agent-pdp.dev/refusal"]` holds. */
export interface McpRefusal {
  code: McpRefusalCode;
  message: string;
  retryable: boolean;
  tool: string;
  /** The decision that refused the call (`permission_denied`): its audit record is `GET /v1/audit/decisions/{id}`. */
  decision_id?: string;
  outcome?: Outcome;
  reasons?: Reason[];
  denied_scopes?: DeniedScope[];
  /** Scopes the call needs that the grant lacks. */
  missing_scopes?: string[];
  /** Present when an approver could lift the denial (break-glass, docs/escalation.md). */
  access_request?: AccessRequestHintV1;
  /** The argument at fault (`mapping_failed`). */
  argument?: string;
}

/** The `CallToolResult` of a refusal. */
export interface RefusalResult {
  [key: string]: unknown;
  isError: true;
  content: Array<{ type: 'text'; text: string }>;
  _meta: { [REFUSAL_META]: McpRefusal };
}

export function refusalResult(refusal: Omit<McpRefusal, 'retryable'>): RefusalResult {
  const full: McpRefusal = { ...refusal, retryable: MCP_REFUSALS[refusal.code].retryable };
  return { isError: true, content: [{ type: 'text', text: describe(full) }], _meta: { [REFUSAL_META]: full } };
}

/** One paragraph the model can act on: what was refused, why, and what (if anything) can change that. */
function describe(r: McpRefusal): string {
  const lines = [`agent-pdp refused ${r.tool} (${r.code}): ${r.message}`];
  if (r.reasons !== undefined && r.reasons.length > 0) lines.push(`Reasons: ${r.reasons.map((x) => x.code).join(', ')}.`);
  if (r.decision_id !== undefined) lines.push(`Decision ${r.decision_id}.`);
  if (r.access_request !== undefined) {
    lines.push(`An approver can lift this denial: submit an access request for decision ${r.decision_id} to ${r.access_request.endpoint} before ${r.access_request.expires_at}.`);
  }
  if (r.retryable) lines.push('The call was not made; it may succeed if tried again later.');
  return lines.join(' ');
}
