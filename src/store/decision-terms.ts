/**
 * A decision's terms: what a redemption, an access request and an audit read need of a decision beyond the ids its
 * event carries in columns. Each decision is stored once (migration 11): the decision event is the record, and its
 * terms are read back from the event's data, except where the event cannot give them back exactly. Then, and only
 * then, a decide writes a decisions row holding them: audit.mask changed a value a term is read from (a masked
 * resource id must not become the token's record). A requestable denial's offer is its answer's `access_request`
 * with the approver groups the event keeps beside the answer (`approvers`); a denial recorded before that has a row.
 */
import { sameJson } from './decision-codec.js';

export interface DecisionTerms {
  integration: string;
  outcome: string;
  policy_revision: string;
  redeemable_until: string | null;
  /** An allow's grant (`TokenGrantSource`) or a requestable denial's offer (`EscalationGrantSource`), or null. */
  token_grant: unknown;
  access_request_id: string | null;
}

type Json = Record<string, unknown>;

const record = (value: unknown): Json | undefined =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : undefined;

const text = (value: unknown): string | null => (typeof value === 'string' ? value : null);

/**
 * The terms the decision event's data (`{input, result, policy_revision}`, masked as stored) states. An allow's grant
 * is its answer's granted scopes, record, TTL and task, ending with the approval it was granted under (decider.ts).
 */
export function termsFromEvent(data: unknown): DecisionTerms {
  const d = record(data) ?? {};
  const input = record(d['input']) ?? {};
  const result = record(d['result']) ?? {};
  const approval = record(result['approval']);
  const outcome = text(result['outcome']) ?? '';
  let grant: Json | null = null;
  const offered = record(result['access_request']);
  if (outcome === 'deny' && offered !== undefined && Array.isArray(d['approvers'])) {
    // The offer as the Decider makes it (decider.ts): the answer's hint, its approvers, the answer's record and task.
    grant = {
      access_request: {
        scopes: offered['scopes'],
        approvers: d['approvers'],
        max_duration: offered['max_duration_seconds'],
        require_reason: offered['require_reason'],
        expires_at: offered['expires_at'],
        resource: result['resource'],
        task_id: result['task_id'],
      },
    };
  }
  if (outcome === 'allow') {
    grant = {
      granted_scopes: result['granted_scopes'],
      resource: result['resource'],
      token_ttl_seconds: result['token_ttl_seconds'],
      task_id: result['task_id'],
    };
    if (approval !== undefined) grant['not_after'] = approval['approved_until'];
  }
  return {
    integration: text(input['integration']) ?? '',
    outcome,
    policy_revision: text(d['policy_revision']) ?? '',
    redeemable_until: text(result['redeemable_until']),
    token_grant: grant,
    access_request_id: approval === undefined ? null : text(approval['id']),
  };
}

/** Whether `derived` (termsFromEvent) gives back exactly `terms`: then the event alone is the decision's record. */
export function sameTerms(terms: DecisionTerms, derived: DecisionTerms): boolean {
  return (
    terms.integration === derived.integration &&
    terms.outcome === derived.outcome &&
    terms.policy_revision === derived.policy_revision &&
    terms.redeemable_until === derived.redeemable_until &&
    terms.access_request_id === derived.access_request_id &&
    sameGrant(terms.token_grant ?? null, derived.token_grant ?? null)
  );
}

function sameGrant(grant: unknown, derived: unknown): boolean {
  if (grant === null || derived === null) return grant === derived;
  return sameJson(grant, derived);
}
