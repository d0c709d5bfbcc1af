import type { CallerConfig } from '../config/config-types.js';
import { isPdpError, PdpError, type PdpErrorCode } from '../errors/pdp-error.js';
import type { Evaluation, EvaluationInputV1, Reason } from '../policy/decision-types.js';
import type { ElevationRecord, FindElevationsInput, TaskElevation } from '../store/index.js';
import type { ElevationInputV1 } from '../wire/access-request-v1.js';
import type { DecisionRequestV1, DecisionResponseV1 } from '../wire/decision-v1.js';
import type { RecordedOutcome, ResourceRef } from '../wire/evaluation-v1.js';
import { maySpeakFor } from './caller-agents.js';
import { newDecisionId } from './decision-id.js';
import { buildEvaluationInput } from './evaluation-input.js';
import type { PolicyEngine } from './policy-engine.js';
import { resolveTask, type TaskLookup } from './trusted-task.js';

/** What the decider needs from the store: a task lookup, the elevation lookup and a durable decision write. */
export interface DecisionStore extends TaskLookup {
  recordDecision(record: DecisionRecord): Promise<unknown>;
  /** For a task no orchestrator registered (a registered one brings its elevations with it). */
  findElevations(key: FindElevationsInput): Promise<readonly ElevationRecord[]>;
}

export interface DecisionRecord {
  decision_id: string;
  caller_id: string;
  agent_id: string;
  task_id: string;
  integration: string;
  outcome: RecordedOutcome;
  input: EvaluationInputV1;
  result: DecisionResponseV1 | DecisionErrorResultV1;
  /** Unmasked copy of what a token is issued from (an allow), or of what an access request is made from (a requestable deny); else null. */
  token_grant: TokenGrantSource | EscalationGrantSource | null;
  policy_revision: string;
  trace_id: string | null;
  created_at: string;
  redeemable_until: string | null;
  /** The access request whose elevation this decision was granted with, or null. */
  access_request_id: string | null;
}

/**
 * The recorded result of a request the PDP could not evaluate: shaped like a response, nothing granted, one
 * reason whose code is the error's (`evaluation_failed`, `bundle_missing`). The caller got a 503, not this.
 */
export interface DecisionErrorResultV1 extends Omit<DecisionResponseV1, 'allow' | 'outcome' | 'granted_scopes' | 'denied_scopes' | 'token_ttl_seconds' | 'redeemable_until'> {
  allow: false;
  outcome: 'error';
  granted_scopes: [];
  denied_scopes: [];
  token_ttl_seconds: 0;
  redeemable_until: null;
}

/** `policy_revision` of an error recorded while no policy was loaded (the store requires a non-empty one). */
export const NO_POLICY_REVISION = 'none';

/**
 * What a requestable denial keeps, unmasked, for `POST /v1/access-requests` (in the decision's `token_grant`
 * column, which a deny can never be redeemed from): the scopes an approval would add and the policy's terms.
 */
export interface EscalationGrantSource {
  access_request: {
    scopes: string[];
    approvers: string[];
    max_duration: number;
    require_reason: boolean;
    /** Until when a request for this denial is accepted. */
    expires_at: string;
    resource: ResourceRef | null;
    task_id: string;
  };
}

/** What POST /v1/tokens issues a token from: the allow's grant, as decided (never masked). */
export interface TokenGrantSource {
  granted_scopes: string[];
  resource: DecisionResponseV1['resource'];
  token_ttl_seconds: number;
  task_id: string;
  /** An allow granted with an elevation: the end of its approval window, which no token from it outlives. */
  not_after?: string;
}

export interface DecisionObserver {
  decided(outcome: Evaluation['outcome'], reasons: readonly Reason[], evaluationSeconds: number): void;
  /** The fourth outcome: an authorised request the PDP could not answer (503, nothing allowed). */
  failed?(code: PdpErrorCode): void;
}

export interface DeciderOptions {
  engine: PolicyEngine;
  store: DecisionStore;
  redeemWindowSeconds: number;
  /**
   * The issuer's cap on a token's lifetime (`issuer.max_token_ttl_seconds`): an answer's `token_ttl_seconds` is the
   * policy's TTL capped by it, the lifetime a token redeemed from it gets (a task expiring sooner caps it further).
   * Default: no cap.
   */
  maxTokenTtlSeconds?: number;
  observer?: DecisionObserver;
  now?: () => Date;
  /** Default: a UUIDv7 (`decision-id.ts`) stamped with `now`. */
  newId?: () => string;
  /**
   * Where a requestable denial points the PEP (`<escalation.public_url>/v1/access-requests`), and for how long a
   * request is accepted (`escalation.request_window_seconds`). Default: the path alone, 600 s.
   */
  accessRequests?: { endpoint: string; windowSeconds: number };
}

/**
 * A decision request → trusted task context → evaluation → durable record → response. Nothing reaches the
 * caller before the record is committed; any failure on the way is an error (503), never an allow. A failed
 * evaluation is still recorded, as outcome `error`, when the store works.
 */
export class Decider {
  readonly #o: DeciderOptions;

  constructor(options: DeciderOptions) {
    this.#o = options;
  }

  /**
   * `options.tasks`: where the task is read instead of the store, e.g. one read shared by the decisions of one batch
   * (an AuthZEN `evaluations` request): they are judged on the same snapshot of their task.
   */
  async decide(caller: CallerConfig, request: DecisionRequestV1, traceId: string | null, options: { tasks?: TaskLookup } = {}): Promise<DecisionResponseV1> {
    if (!maySpeakFor(caller, request.agent_id)) {
      throw new PdpError('forbidden_agent', `caller ${caller.id} may not ask decisions for agent ${request.agent_id}`, {
        details: [{ path: 'agent_id', message: 'not an agent this caller may speak for' }],
      });
    }
    try {
      return await this.#decide(caller, request, traceId, options.tasks ?? this.#o.store);
    } catch (err) {
      if (!isPdpError(err) || err.status >= 500) this.#o.observer?.failed?.(isPdpError(err) ? err.code : 'internal');
      throw err;
    }
  }

  async #decide(caller: CallerConfig, request: DecisionRequestV1, traceId: string | null, tasks: TaskLookup): Promise<DecisionResponseV1> {
    const now = (this.#o.now ?? (() => new Date()))();
    const task = await resolveTask(tasks, caller, request, now);
    const elevation = task.denial ? undefined : await this.#elevation(caller, request, task.elevations, now);
    const input = buildEvaluationInput(request, caller.id, task.input, now, elevation);

    let evaluated: { evaluation: Evaluation; revision: string };
    const started = process.hrtime.bigint();
    try {
      evaluated = this.#evaluate(input, task.denial);
    } catch (err) {
      await this.#recordError(err, caller, request, input, traceId, now).catch(() => undefined);
      throw err;
    }
    const evaluationSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const { evaluation, revision } = evaluated;

    const allow = evaluation.outcome === 'allow';
    const decisionId = this.#newId(now);
    // An allow holding elevated scopes lasts no longer than the approval: its TTL, redeem window and token end by then.
    const elevated = allow && elevation !== undefined && evaluation.elevated_scopes.length > 0 ? elevation : undefined;
    const windowEnd = elevated === undefined ? Number.POSITIVE_INFINITY : Date.parse(elevated.approved_until);
    const redeemableUntil = allow ? new Date(Math.min(now.getTime() + this.#o.redeemWindowSeconds * 1000, windowEnd)).toISOString() : null;
    const ttlCap = Math.min(this.#o.maxTokenTtlSeconds ?? Number.POSITIVE_INFINITY, Math.floor((windowEnd - now.getTime()) / 1000));
    const response: DecisionResponseV1 = {
      decision_id: decisionId,
      allow,
      outcome: evaluation.outcome,
      agent_id: request.agent_id,
      integration: request.integration,
      granted_scopes: evaluation.granted_scopes,
      denied_scopes: evaluation.denied_scopes,
      reasons: evaluation.reasons,
      token_ttl_seconds: Math.min(evaluation.token_ttl_seconds, ttlCap),
      resource: request.resource ?? null,
      task_id: request.task.id,
      policy_revision: revision,
      redeemable_until: redeemableUntil,
    };
    let grant: TokenGrantSource | EscalationGrantSource | null = null;
    if (allow) {
      grant = { granted_scopes: response.granted_scopes, resource: response.resource, token_ttl_seconds: response.token_ttl_seconds, task_id: response.task_id };
      if (elevated !== undefined) {
        grant.not_after = elevated.approved_until;
        response.approval = { id: elevated.access_request_id, approved_until: elevated.approved_until };
      }
    } else if (evaluation.outcome === 'deny' && evaluation.access_request !== undefined) {
      const offer = evaluation.access_request;
      const offered = this.#o.accessRequests ?? { endpoint: '/v1/access-requests', windowSeconds: 600 };
      const expiresAt = new Date(now.getTime() + offered.windowSeconds * 1000).toISOString();
      response.access_request = {
        endpoint: offered.endpoint,
        expires_at: expiresAt,
        template: { decision_id: decisionId, duration_seconds: offer.max_duration },
        scopes: [...offer.scopes],
        max_duration_seconds: offer.max_duration,
        require_reason: offer.require_reason,
      };
      grant = {
        access_request: {
          scopes: [...offer.scopes],
          approvers: [...offer.approvers],
          max_duration: offer.max_duration,
          require_reason: offer.require_reason,
          expires_at: expiresAt,
          resource: response.resource,
          task_id: response.task_id,
        },
      };
    }
    await this.#record({ caller, request, input, traceId, now }, response, grant, elevated?.access_request_id ?? null);
    this.#o.observer?.decided(evaluation.outcome, evaluation.reasons, evaluationSeconds);
    return response;
  }

  /** A task denial is decided here (the policy is not consulted); everything else by the policy in force. */
  #evaluate(input: EvaluationInputV1, denial: Reason | undefined): { evaluation: Evaluation; revision: string } {
    if (!denial) {
      const { evaluation, active } = this.#o.engine.evaluate(input);
      return { evaluation, revision: active.revision };
    }
    const active = this.#o.engine.active;
    if (!active) throw new PdpError('bundle_missing', 'no policy is loaded');
    return {
      evaluation: { defined: true, outcome: 'deny', granted_scopes: [], denied_scopes: [], reasons: [denial], token_ttl_seconds: 0, elevated_scopes: [] },
      revision: active.revision,
    };
  }

  /**
   * Records an authorised request that could not be evaluated as outcome `error`: no grant, no redeem window.
   * The caller still gets the evaluation error (503); when this write fails too, `#decide` drops its error so the
   * original one is what propagates.
   */
  async #recordError(
    err: unknown,
    caller: CallerConfig,
    request: DecisionRequestV1,
    input: EvaluationInputV1,
    traceId: string | null,
    now: Date,
  ): Promise<void> {
    const code: PdpErrorCode = isPdpError(err) ? err.code : 'internal';
    const decisionId = this.#newId(now);
    const revision = this.#o.engine.active?.revision ?? NO_POLICY_REVISION;
    const result: DecisionErrorResultV1 = {
      decision_id: decisionId,
      allow: false,
      outcome: 'error',
      agent_id: request.agent_id,
      integration: request.integration,
      granted_scopes: [],
      denied_scopes: [],
      reasons: [{ code, message: isPdpError(err) ? err.message : 'the policy evaluation failed unexpectedly' }],
      token_ttl_seconds: 0,
      resource: request.resource ?? null,
      task_id: request.task.id,
      policy_revision: revision,
      redeemable_until: null,
    };
    await this.#record({ caller, request, input, traceId, now }, result, null);
  }

  /**
   * The approved, still open elevation for exactly this agent, task, integration and record, asked for by this
   * caller (one indexed lookup),
   * as the policy's `input.elevation`; of several, the one covering most of the requested scopes, then the latest.
   */
  async #elevation(
    caller: CallerConfig,
    request: DecisionRequestV1,
    ofTask: readonly TaskElevation[] | undefined,
    now: Date,
  ): Promise<ElevationInputV1 | undefined> {
    // The policy grants an elevated scope only if it lists it as requestable: a request naming none (nearly every
    // decide) cannot use an elevation. The policy evaluated next decides either way.
    if (!this.#namesRequestable(request)) return undefined;
    // A registered task carries its elevations (read with it); only an unregistered one needs the store's lookup.
    const found = ofTask !== undefined ? ofTask.filter((e) => this.#fits(e, caller, request, now)) : await this.#o.store.findElevations({
      agent_id: request.agent_id,
      task_id: request.task.id,
      integration: request.integration,
      requested_by: caller.id,
      resource: request.resource ?? null,
      now: now.toISOString(),
    });
    if (found.length === 0) return undefined;
    if (found.length === 1) return elevationInput(found[0] as ElevationRecord);
    const covered = (e: ElevationRecord) => request.scopes.filter((s) => e.scopes.includes(s)).length;
    return elevationInput([...found].sort((a, b) => covered(b) - covered(a) || b.approved_until.localeCompare(a.approved_until))[0] as ElevationRecord);
  }

  /** An elevation of the task serves this decide: its agent, integration, the PEP that asked, record and window. */
  #fits(e: TaskElevation, caller: CallerConfig, request: DecisionRequestV1, now: Date): boolean {
    const resource = request.resource ?? null;
    return (
      e.agent_id === request.agent_id &&
      e.integration === request.integration &&
      e.requested_by === caller.id &&
      Date.parse(e.approved_until) > now.getTime() &&
      (resource === null ? e.resource === null : e.resource !== null && e.resource.type === resource.type && e.resource.id === resource.id)
    );
  }

  /** Whether the active policy lists any requested scope as requestable for this agent and integration. */
  #namesRequestable(request: DecisionRequestV1): boolean {
    const agents = this.#o.engine.active?.policySet.data.policies.agents;
    if (agents === undefined || !Object.hasOwn(agents, request.agent_id)) return false;
    const integrations = agents[request.agent_id]?.integrations;
    if (integrations === undefined || !Object.hasOwn(integrations, request.integration)) return false;
    const escalation = integrations[request.integration]?.escalation;
    return escalation !== undefined && request.scopes.some((s) => Object.hasOwn(escalation, s));
  }

  /** The durable record of one decision: the answer (or error result) with what it was decided from. */
  #record(
    made: { caller: CallerConfig; request: DecisionRequestV1; input: EvaluationInputV1; traceId: string | null; now: Date },
    result: DecisionResponseV1 | DecisionErrorResultV1,
    grant: TokenGrantSource | EscalationGrantSource | null,
    accessRequestId: string | null = null,
  ): Promise<unknown> {
    return this.#o.store.recordDecision({
      decision_id: result.decision_id,
      caller_id: made.caller.id,
      agent_id: made.request.agent_id,
      task_id: made.request.task.id,
      integration: made.request.integration,
      outcome: result.outcome,
      input: made.input,
      result,
      token_grant: grant,
      policy_revision: result.policy_revision,
      trace_id: made.traceId,
      created_at: made.now.toISOString(),
      redeemable_until: result.redeemable_until,
      access_request_id: accessRequestId,
    });
  }

  #newId(now: Date): string {
    return this.#o.newId?.() ?? newDecisionId(now.getTime());
  }
}

/**
 * The policy's `input.elevation` for an elevation (frozen: every decision it serves shares it). A registered task's
 * elevations are the store's shared, frozen list (rows.ts), so each is turned into an input once.
 */
function elevationInput(e: ElevationRecord): ElevationInputV1 {
  let input = elevationInputs.get(e);
  if (input === undefined) {
    input = Object.freeze({
      access_request_id: e.id,
      scopes: Object.freeze(Object.fromEntries(e.scopes.map((s) => [s, true as const]))),
      resource: e.resource,
      approved_until: e.approved_until,
    });
    // Only a record nobody can change is remembered (the store's shared task elevations); a fresh one is not reused.
    if (Object.isFrozen(e)) elevationInputs.set(e, input);
  }
  return input;
}

const elevationInputs = new WeakMap<ElevationRecord, ElevationInputV1>();
