import type { Evaluation, EvaluationInputV1 } from '../policy/decision-types.js';

/** A decision as a person reads it: what was asked, what was granted, and why. */
export function explainEvaluation(input: EvaluationInputV1, evaluation: Evaluation, revision: string): string {
  const lines = [
    `decision: ${evaluation.outcome.toUpperCase()}  (policy revision ${revision})`,
    `  agent ${input.agent_id} on ${input.integration}, task ${input.task.id}${input.task.type ? ` (${input.task.type})` : ''}`,
    `  requested: ${input.scopes.join(' ')}${input.resource ? `  on ${input.resource.type} ${input.resource.id}` : ''}`,
    `  granted:   ${evaluation.granted_scopes.join(' ') || '(none)'}${evaluation.token_ttl_seconds ? `  for ${evaluation.token_ttl_seconds}s` : ''}`,
  ];
  for (const d of evaluation.denied_scopes) {
    lines.push(`  denied:    ${d.scope}  (${d.reason}${d.granted_instead ? `; granted ${d.granted_instead.join(' ')} instead` : ''})`);
  }
  for (const r of evaluation.reasons) lines.push(`  because:   ${r.code}: ${r.message}`);
  const offer = evaluation.access_request;
  if (offer !== undefined) {
    lines.push(
      `  requestable: ${offer.scopes.join(' ')}  (approvers ${offer.approvers.join(', ')}; up to ${offer.max_duration}s${offer.require_reason ? '; a reason is required' : ''})`,
    );
  }
  if (evaluation.elevated_scopes.length > 0) {
    lines.push(`  elevated:  ${evaluation.elevated_scopes.join(' ')}  (granted by access request ${input.elevation?.access_request_id ?? '?'})`);
  }
  return `${lines.join('\n')}\n`;
}
