import { PdpError } from '../errors/pdp-error.js';
import type { DeniedScope, DeniedScopeReason, EvaluationResultV1, Reason } from './decision-types.js';

const DENIED_REASONS: ReadonlySet<DeniedScopeReason> = new Set([
  'deny_scope',
  'capped',
  'above_ceiling',
  'task_type',
  'record_binding',
]);

/**
 * Validates the untyped value the Rego core returned before anyone else sees it. A result that does not have
 * the documented shape is an evaluation failure (fail closed), never something to guess at.
 */
export function checkEvaluationResult(value: unknown): EvaluationResultV1 {
  const fail = (what: string): never => {
    throw new PdpError('evaluation_failed', `policy result is malformed: ${what}`);
  };
  if (!isObject(value)) return fail('not an object');
  const { outcome, granted_scopes, denied_scopes, reasons, token_ttl_seconds } = value;
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
  return {
    outcome: outcome as 'allow' | 'deny',
    granted_scopes,
    denied_scopes: denied,
    reasons: checkedReasons,
    token_ttl_seconds,
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}
