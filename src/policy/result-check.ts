import { PdpError } from '../errors/pdp-error.js';
import { DENIED_SCOPE_REASONS } from '../wire/evaluation-v1.js';
import type { AccessRequestOfferV1, DeniedScope, DeniedScopeReason, EvaluationResultV1, Reason } from './decision-types.js';

const DENIED_REASONS: ReadonlySet<DeniedScopeReason> = new Set(DENIED_SCOPE_REASONS);

/** The bounds of an escalation's `max_duration` (schemas/agent-policy.schema.json). */
const MAX_DURATION = { min: 60, max: 604_800 } as const;

/**
 * Validates the untyped value the Rego core returned before anyone else sees it. A result that does not have
 * the documented shape is an evaluation failure (fail closed), never something to guess at.
 */
export function checkEvaluationResult(value: unknown): EvaluationResultV1 {
  const fail = (what: string): never => {
    throw new PdpError('evaluation_failed', `policy result is malformed: ${what}`);
  };
  if (!isObject(value)) return fail('not an object');
  const { outcome, granted_scopes, denied_scopes, reasons, token_ttl_seconds, elevated_scopes, access_request } = value;
  if (outcome !== 'allow' && outcome !== 'deny') fail('outcome');
  if (!isStringArray(granted_scopes)) return fail('granted_scopes');
  if (!Array.isArray(denied_scopes)) return fail('denied_scopes');
  if (!Array.isArray(reasons)) return fail('reasons');
  if (typeof token_ttl_seconds !== 'number' || !Number.isInteger(token_ttl_seconds) || token_ttl_seconds < 0) {
    return fail('token_ttl_seconds');
  }
  const denied: DeniedScope[] = denied_scopes.map((d) => {
    if (!isObject(d) || typeof d.scope !== 'string' || !DENIED_REASONS.has(d.reason as DeniedScopeReason)) {
      return fail('denied_scopes entry');
    }
    const entry: DeniedScope = { scope: d.scope, reason: d.reason as DeniedScopeReason };
    if (d.granted_instead !== undefined) {
      if (!isStringArray(d.granted_instead)) return fail('granted_instead');
      entry.granted_instead = d.granted_instead;
    }
    return entry;
  });
  const checkedReasons: Reason[] = reasons.map((r) =>
    isObject(r) && typeof r.code === 'string' && typeof r.message === 'string'
      ? { code: r.code, message: r.message }
      : fail('reasons entry'),
  );
  if (outcome === 'allow' && (granted_scopes.length === 0 || token_ttl_seconds === 0)) {
    fail('allow without scopes or ttl');
  }
  if (outcome === 'deny' && granted_scopes.length > 0) fail('deny with granted scopes');
  // Elevated scopes are granted ones, and only an allow has them. A decision core that predates escalation (a
  // bundle built from an older or a custom agentpdp package) reports none: absent reads as [].
  const elevated: unknown = elevated_scopes === undefined ? [] : elevated_scopes;
  if (!isStringArray(elevated)) return fail('elevated_scopes');
  const granted = new Set(granted_scopes);
  if (elevated.some((s) => !granted.has(s))) fail('elevated scope not granted');
  const result: EvaluationResultV1 = {
    outcome: outcome as 'allow' | 'deny',
    granted_scopes,
    denied_scopes: denied,
    reasons: checkedReasons,
    token_ttl_seconds,
    elevated_scopes: elevated,
  };
  if (access_request !== undefined) {
    if (outcome !== 'deny') fail('access_request on an allow');
    result.access_request = checkOffer(access_request, denied, fail);
  }
  return result;
}

/** A requestable denial's offer: non-empty, bounded, and naming exactly the scopes denied with `approval_required`. */
function checkOffer(value: unknown, denied: readonly DeniedScope[], fail: (what: string) => never): AccessRequestOfferV1 {
  if (!isObject(value)) return fail('access_request');
  const { scopes, approvers, max_duration, require_reason } = value;
  if (!isStringArray(scopes) || scopes.length === 0) return fail('access_request.scopes');
  if (!isStringArray(approvers) || approvers.length === 0) return fail('access_request.approvers');
  if (
    typeof max_duration !== 'number' ||
    !Number.isInteger(max_duration) ||
    max_duration < MAX_DURATION.min ||
    max_duration > MAX_DURATION.max
  ) {
    return fail('access_request.max_duration');
  }
  if (typeof require_reason !== 'boolean') return fail('access_request.require_reason');
  // Exactly those scopes, each once: as many as the denials, none twice, each denied (a few: no sets built).
  const needing = denied.filter((d) => d.reason === 'approval_required');
  if (needing.length !== scopes.length) fail('access_request.scopes');
  scopes.forEach((s, i) => {
    if (scopes.indexOf(s) !== i || !needing.some((d) => d.scope === s)) fail('access_request.scopes');
  });
  return { scopes, approvers, max_duration, require_reason };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}
