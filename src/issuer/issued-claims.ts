/**
 * Whether a verified token's claims are the ones this PDP issued under its `jti`: the signature proves only that a
 * signing key made them. A token the store issued is compared with its record (holder, agent, scopes, audience,
 * expiry, decision, task, and the integration and record it is bound to when the caller knows them), so that whoever
 * held a signing key could not widen a real token (more scopes, another integration or record, a later `exp`) and
 * have it accepted. Imports only the claim types.
 */
import type { AccessTokenClaims, ResourceRef } from './token-claims.js';

/** What the store recorded when it issued a token (its row, and its decision for `integration` and `resource`). */
export interface IssuedToken {
  caller_id: string;
  /** The decision's integration: the one `authorization_details` entry's `type`. Undefined: not known here, not compared. */
  integration?: string;
  agent_id: string;
  scopes: readonly string[];
  /** null: not recorded (a row written before audiences were kept): not compared. */
  audience: string | null;
  expires_at: string;
  decision_id: string;
  task_id: string | null;
  /** The record the grant was bound to (null: none); undefined: not known here, not compared. */
  resource?: ResourceRef | null;
}

/**
 * The issued facts of a token: its store row, with the integration and bound record of the decision it redeemed
 * (`undefined` when that decision is not at hand: neither is compared then).
 */
export function issuedToken(
  row: Omit<IssuedToken, 'integration' | 'resource'>,
  decision: { integration: string; token_grant: unknown } | undefined,
): IssuedToken {
  if (decision === undefined) return row;
  const resource = (decision.token_grant as { resource?: ResourceRef | null } | null)?.resource;
  return { ...row, integration: decision.integration, resource: resource ?? null };
}

export function claimsAreIssued(claims: AccessTokenClaims, issued: IssuedToken): boolean {
  if (claims.client_id !== issued.caller_id || claims.sub !== issued.agent_id || claims.decision_id !== issued.decision_id) return false;
  if (issued.task_id !== null && claims.task_id !== issued.task_id) return false;
  if (claims.exp * 1000 !== Date.parse(issued.expires_at)) return false;
  if (issued.audience !== null && claims.aud !== issued.audience) return false;
  // The token's scope is the grant's, deduplicated and sorted (token-service.ts): compared the same way.
  const scopes = [...new Set(issued.scopes)].sort();
  if (claims.scope !== scopes.join(' ')) return false;
  if (issued.integration !== undefined && (claims.authorization_details.length !== 1 || claims.authorization_details[0]?.type !== issued.integration)) return false;
  for (const detail of claims.authorization_details) {
    if (detail.actions.length !== scopes.length || detail.actions.some((a, i) => a !== scopes[i])) return false;
    if (issued.resource === undefined) continue;
    const bound = issued.resource;
    if (bound === null ? detail.identifier !== undefined || detail.resource_type !== undefined : detail.identifier !== bound.id || detail.resource_type !== bound.type) return false;
  }
  return true;
}
