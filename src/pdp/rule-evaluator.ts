/**
 * Evaluating a Rego entrypoint other than the agent decision for a caller: OPA's data API (`/v1/data/{path}`) and
 * AuthZEN requests whose subject type is routed to a Rego pack. One place for what both doors must do: evaluate on
 * the active bundle, write an `evaluation` event (the caller, the path, the input, the rule's value, the revision)
 * and only then answer, with the event's id as OPA's `decision_id`. The store cannot write → 503, nothing answered:
 * no evaluation escapes the chain.
 *
 * The agent decision (`agentpdp/decision`) never comes here: its input is built from a decision request and a
 * trusted task by the Decider, whichever door the request came through.
 */
import type { CallerConfig } from '../config/config-types.js';
import { PdpError } from '../errors/pdp-error.js';
import { evaluationEvent, type NewAuditEvent } from '../audit/index.js';
import { DECISION_ENTRYPOINT } from '../policy/bundle-reader.js';
import { newDecisionId } from './decision-id.js';
import type { PolicyEngine } from './policy-engine.js';

export interface RuleEvaluationStore {
  appendEvents(events: readonly NewAuditEvent[]): Promise<unknown>;
}

export interface RuleEvaluatorOptions {
  engine: PolicyEngine;
  store: RuleEvaluationStore;
  now?: () => Date;
  newId?: () => string;
}

export interface RuleEvaluation {
  /** The id of the `evaluation` event: OPA's `decision_id`. */
  decision_id: string;
  /** False when the rule is undefined for the input (OPA answers `{}` then). */
  defined: boolean;
  result?: unknown;
  policy_revision: string;
}

export class RuleEvaluator {
  readonly #o: RuleEvaluatorOptions;

  constructor(options: RuleEvaluatorOptions) {
    this.#o = options;
  }

  /** The entrypoints a caller may ask through these doors: every one of the bundle but the agent decision. */
  entrypoints(): string[] {
    const active = this.#o.engine.active;
    if (active === undefined) throw new PdpError('bundle_missing', 'no policy is loaded');
    return active.evaluator.entrypoints.filter((e) => e !== DECISION_ENTRYPOINT);
  }

  /** Evaluates `path` with `input`, records it, and answers. `path` is an entrypoint (`a/b/c`, no leading slash). */
  async evaluate(caller: CallerConfig, api: 'opa' | 'authzen', path: string, input: unknown, traceId: string | null): Promise<RuleEvaluation> {
    const { defined, result, revision } = this.peek(path, input);
    return this.record(caller, api, path, input, defined ? { result } : {}, revision, traceId);
  }

  /**
   * Evaluates without recording: for a caller that evaluates many candidates to answer one request (an AuthZEN
   * search) and then records that one answer with `record`. Never answer a caller with a peek alone.
   */
  peek(path: string, input: unknown): { defined: boolean; result?: unknown; revision: string } {
    if (path === DECISION_ENTRYPOINT) {
      throw new PdpError('invalid_request', `${DECISION_ENTRYPOINT} is evaluated only for a decision request`, { details: [{ path: 'path', message: 'the agent decision' }] });
    }
    const { defined, result, active } = this.#o.engine.evaluateEntrypoint(path, input);
    return { defined, ...(defined ? { result } : {}), revision: active.revision };
  }

  /** Writes the `evaluation` event of one answer (committed before it resolves) and returns the answer with its id. */
  async record(
    caller: CallerConfig,
    api: 'opa' | 'authzen',
    path: string,
    input: unknown,
    outcome: { result?: unknown },
    revision: string,
    traceId: string | null,
  ): Promise<RuleEvaluation> {
    // The agent decision's own path is kept for decision events, which a replay can evaluate again.
    if (path === DECISION_ENTRYPOINT) throw new TypeError(`${DECISION_ENTRYPOINT} is recorded as decision events only`);
    const now = (this.#o.now ?? (() => new Date()))();
    const decisionId = this.#o.newId?.() ?? newDecisionId(now.getTime());
    const defined = Object.hasOwn(outcome, 'result') && outcome.result !== undefined;
    const event = evaluationEvent(
      now.toISOString(),
      { decision_id: decisionId, caller_id: caller.id, trace_id: traceId },
      { api, path, input, ...(defined ? { result: outcome.result } : {}), policy_revision: revision },
    );
    await this.#o.store.appendEvents([event]);
    return { decision_id: decisionId, defined, ...(defined ? { result: outcome.result } : {}), policy_revision: revision };
  }
}
