/**
 * The request mix every comparison uses: the same decisions asked of our `POST /v1/decide` (DecisionRequestV1,
 * with a pep key) and of OPA's `POST /v1/data/agentpdp/decision` (`{"input": <EvaluationInputV1>}`, the exact
 * input our PDP builds for that request). Allow, deny, capped and record-bound cases; registered tasks and
 * inline (asserted) context. `weight` is how many times a case appears in the round-robin target list.
 */
import { buildEvaluationInput, unregisteredTask } from '../../src/pdp/evaluation-input.js';
import type { EvaluationInputV1 } from '../../src/policy/decision-types.js';
import type { DecisionRequestV1, TaskRegistrationV1 } from '../../src/wire/decision-v1.js';

/** The pep caller the bench authenticates as; may assert context, so the mix has both task paths. */
export const BENCH_PEP = { id: 'bench-pep', key: 'bench-pep-key-not-a-dev-key' } as const;
export const BENCH_ORCHESTRATOR = { id: 'bench-orchestrator', key: 'bench-orchestrator-key-not-a-dev-key' } as const;
/** The resource server the bench introspects tokens as (RFC 7662: the API a token is presented to asks). */
export const BENCH_RESOURCE_SERVER = { id: 'bench-resource-server', key: 'bench-resource-server-key-not-a-dev-key' } as const;
/** The approver of break-glass requests (escalation-http-bench): group platform-oncall, code-review-agent's approvers. */
export const BENCH_APPROVER = { id: 'bench-approver', key: 'bench-approver-key-not-a-dev-key' } as const;
export const BENCH_AGENTS = ['support-resolver', 'code-review-agent', 'mailbox-summarizer', 'feedback-workflow'] as const;

/** Tasks the orchestrator registers before any measurement: the registered-task path of the mix. */
export const BENCH_TASKS: readonly TaskRegistrationV1[] = [
  { id: 'bench-task-sr', agent_id: 'support-resolver', type: 'complaint_resolution', context: { customer_id: '1234' }, expires_in_seconds: 86400 },
  { id: 'bench-task-ms', agent_id: 'mailbox-summarizer', type: 'categorize', context: { mailbox: 'support@example.com' }, expires_in_seconds: 86400 },
  { id: 'bench-task-fw', agent_id: 'feedback-workflow', type: 'feedback_read', context: { table: 'customer_feedback' }, expires_in_seconds: 86400 },
];

export type CaseKind = 'allow' | 'allow, capped' | 'allow, record-bound' | 'deny' | 'deny, record-bound' | 'deny, requestable';

export interface MixCase {
  name: string;
  kind: CaseKind;
  weight: number;
  /** Expected outcome and granted scopes; the preflight checks both servers agree with it. */
  expect: { outcome: 'allow' | 'deny'; granted: string[] };
  request: DecisionRequestV1;
}

export const MIX: readonly MixCase[] = [
  {
    name: 'support-resolver writes the ticket of its task customer (registered)',
    kind: 'allow, record-bound',
    weight: 3,
    expect: { outcome: 'allow', granted: ['tickets:write'] },
    request: { agent_id: 'support-resolver', task: { id: 'bench-task-sr' }, integration: 'crm', scopes: ['tickets:write'], resource: { type: 'customer', id: '1234' } },
  },
  {
    name: 'support-resolver, another customer (registered)',
    kind: 'deny, record-bound',
    weight: 1,
    expect: { outcome: 'deny', granted: [] },
    request: { agent_id: 'support-resolver', task: { id: 'bench-task-sr' }, integration: 'crm', scopes: ['tickets:write'], resource: { type: 'customer', id: '5678' } },
  },
  {
    name: 'support-resolver triage asks tickets:write (inline)',
    kind: 'allow, capped',
    weight: 1,
    expect: { outcome: 'allow', granted: ['tickets:read'] },
    request: { agent_id: 'support-resolver', task: { id: 'bench-inline-triage', type: 'triage', context: { customer_id: '1234' } }, integration: 'crm', scopes: ['tickets:write'] },
  },
  {
    name: 'code-review-agent asks delete_repo (inline)',
    kind: 'deny',
    weight: 1,
    expect: { outcome: 'deny', granted: [] },
    request: { agent_id: 'code-review-agent', task: { id: 'bench-inline-review', context: { repo: 'acme/api' } }, integration: 'github', scopes: ['delete_repo'] },
  },
  {
    name: 'code-review-agent asks issues:write, pr:read (inline)',
    kind: 'allow, capped',
    weight: 1,
    expect: { outcome: 'allow', granted: ['issues:read', 'pr:read'] },
    request: { agent_id: 'code-review-agent', task: { id: 'bench-inline-review', context: { repo: 'acme/api' } }, integration: 'github', scopes: ['issues:write', 'pr:read'] },
  },
  {
    // Above the ceiling but listed under escalation: denied approval_required, with the access-request hint.
    name: 'code-review-agent asks pr:write (inline, requestable)',
    kind: 'deny, requestable',
    weight: 1,
    expect: { outcome: 'deny', granted: [] },
    request: { agent_id: 'code-review-agent', task: { id: 'bench-inline-review', context: { repo: 'acme/api' } }, integration: 'github', scopes: ['pr:write', 'pr:read'] },
  },
  {
    name: 'mailbox-summarizer labels its mailbox (registered)',
    kind: 'allow, record-bound',
    weight: 1,
    expect: { outcome: 'allow', granted: ['mail:labels', 'mail:read'] },
    request: { agent_id: 'mailbox-summarizer', task: { id: 'bench-task-ms' }, integration: 'mail', scopes: ['mail:read', 'mail:labels'], resource: { type: 'mailbox', id: 'support@example.com' }, ttl_seconds: 300 },
  },
  {
    name: 'mailbox-summarizer asks mail:send (registered)',
    kind: 'deny',
    weight: 1,
    expect: { outcome: 'deny', granted: [] },
    request: { agent_id: 'mailbox-summarizer', task: { id: 'bench-task-ms' }, integration: 'mail', scopes: ['mail:send'], resource: { type: 'mailbox', id: 'support@example.com' } },
  },
  {
    name: 'feedback-workflow reads its table (registered)',
    kind: 'allow, record-bound',
    weight: 1,
    expect: { outcome: 'allow', granted: ['select:customer_feedback'] },
    request: { agent_id: 'feedback-workflow', task: { id: 'bench-task-fw' }, integration: 'database', scopes: ['select:customer_feedback'], resource: { type: 'table', id: 'customer_feedback' } },
  },
  {
    name: 'code-review-agent asks crm (inline, integration not allowed)',
    kind: 'deny',
    weight: 1,
    expect: { outcome: 'deny', granted: [] },
    request: { agent_id: 'code-review-agent', task: { id: 'bench-inline-review', context: { repo: 'acme/api' } }, integration: 'crm', scopes: ['tickets:read'] },
  },
];

/**
 * The EvaluationInputV1 our Decider builds for `request` from this caller (src/pdp/decider.ts and
 * src/pdp/trusted-task.ts): a registered task contributes its registered type and context.
 */
export function evaluationInputFor(request: DecisionRequestV1, callerId: string = BENCH_PEP.id): EvaluationInputV1 {
  const registered = BENCH_TASKS.find((t) => t.id === request.task.id);
  const task: EvaluationInputV1['task'] = registered
    ? { id: registered.id, type: registered.type, context: { ...(registered.context ?? {}) }, registered: true }
    : unregisteredTask(request.task);
  // The server's own builder (src/pdp/evaluation-input.ts), so the bench evaluates what the server would.
  return buildEvaluationInput(request, callerId, task);
}

/** The mix expanded by weight, in a fixed interleaved order (so a short run still sees every case). */
export function weightedMix(): MixCase[] {
  const out: MixCase[] = [];
  const max = Math.max(...MIX.map((c) => c.weight));
  for (let round = 0; round < max; round++) for (const c of MIX) if (c.weight > round) out.push(c);
  return out;
}

/** The allowed cases of the weighted mix, in its order: the decisions the token measurements redeem. */
export function allowedMix(): MixCase[] {
  return weightedMix().filter((c) => c.expect.outcome === 'allow');
}

/** Share of each kind in the weighted mix, for the report. */
export function mixSummary(): Record<string, number> {
  const mix = weightedMix();
  const out: Record<string, number> = {};
  for (const c of mix) out[c.kind] = (out[c.kind] ?? 0) + 1;
  for (const k of Object.keys(out)) out[k] = Math.round(((out[k] ?? 0) / mix.length) * 1000) / 10;
  out['registered task'] = Math.round((mix.filter((c) => BENCH_TASKS.some((t) => t.id === c.request.task.id)).length / mix.length) * 1000) / 10;
  return out;
}
