/**
 * OPA's data API (`/v1/data/{path}`) over agent-pdp: which of our two evaluation paths a data-API request takes.
 *
 * - Any entrypoint of the bundle but the agent decision: `RuleEvaluator` (the rule's value, an `evaluation` audit
 *   event, its id as OPA's `decision_id`).
 * - `agentpdp/decision`: the input is a decision request in disguise. Evaluating the rule on it verbatim would let a
 *   caller write the trusted part of the input (a task's context, `registered: true`) itself, so it is read as a
 *   `DecisionRequestV1` (the same schema as `POST /v1/decide`) and decided by the `Decider` exactly as `POST
 *   /v1/decide` decides it: the caller must speak for the agent, a registered task's type and context come from its
 *   registration (never from the input), inline context only from a caller trusted to assert it, a `decision` event,
 *   a decision id redeemable for a token. The answer's `result` is that `DecisionResponseV1`, not the rule's raw value.
 */
import type { CallerConfig } from '../config/config-types.js';
import { isPdpError, PdpError } from '../errors/pdp-error.js';
import { DECISION_ENTRYPOINT } from '../policy/bundle-reader.js';
import type { DecisionRequestV1, DecisionResponseV1 } from '../wire/decision-v1.js';
import { parseDecisionRequest } from '../wire/request-parsers.js';
import type { Decider } from './decider.js';
import type { RuleEvaluator } from './rule-evaluator.js';

/** The rule OPA's `POST /` evaluates (OPA's `default_decision`, fixed here: `/system/main`, OPA's default). */
export const DEFAULT_DECISION_ENTRYPOINT = 'system/main';

export interface DataApiOptions {
  rules: Pick<RuleEvaluator, 'evaluate'>;
  decider: Pick<Decider, 'decide'>;
}

export interface DataAnswer {
  /** The audit event's id: an `evaluation` event, or the `decision` event of an agent decision. */
  decision_id: string;
  /** Absent when the rule is undefined for the input. */
  result?: unknown;
}

export class DataApi {
  readonly #o: DataApiOptions;

  constructor(options: DataApiOptions) {
    this.#o = options;
  }

  /**
   * Evaluates entrypoint `path` (`a/b/c`, already checked against the entrypoint grammar) with `input` (undefined:
   * none) for `caller`. `onAgent` is told the agent of an agent decision before it is decided (the access log and a
   * refusal's audit event name it).
   */
  async evaluate(caller: CallerConfig, path: string, input: unknown, traceId: string | null, onAgent?: (agentId: string) => void): Promise<DataAnswer> {
    if (path !== DECISION_ENTRYPOINT) {
      const evaluation = await this.#o.rules.evaluate(caller, 'opa', path, input, traceId);
      return { decision_id: evaluation.decision_id, ...(evaluation.defined ? { result: evaluation.result } : {}) };
    }
    const request = decisionRequestOf(input);
    onAgent?.(request.agent_id);
    const response: DecisionResponseV1 = await this.#o.decider.decide(caller, request, traceId);
    return { decision_id: response.decision_id, result: response };
  }

  /**
   * OPA's default decision (`POST /`): `system/main` with `input`, its value alone. Not in the bundle: 404
   * `entrypoint_not_found`; undefined for the input: 404 `not_found` (OPA's `undefined_document`). Recorded as any
   * evaluation is, before the answer.
   */
  async defaultDecision(caller: CallerConfig, input: unknown, traceId: string | null): Promise<{ decision_id: string; result: unknown }> {
    const evaluation = await this.#o.rules.evaluate(caller, 'opa', DEFAULT_DECISION_ENTRYPOINT, input, traceId);
    if (!evaluation.defined) {
      throw new PdpError('not_found', `the default decision ${DEFAULT_DECISION_ENTRYPOINT} is undefined for this input (decision ${evaluation.decision_id})`, {
        details: [{ path: 'input', message: `${DEFAULT_DECISION_ENTRYPOINT} is undefined for it` }],
      });
    }
    return { decision_id: evaluation.decision_id, result: evaluation.result };
  }
}

/** The input of `agentpdp/decision` as a decision request; its faults are named under `input.` (`input.task.id`). */
function decisionRequestOf(input: unknown): DecisionRequestV1 {
  if (input === undefined) {
    throw new PdpError('invalid_request', `${DECISION_ENTRYPOINT} takes a decision request as its input`, {
      details: [{ path: 'input', message: 'is required: a decision request (as POST /v1/decide takes)' }],
    });
  }
  try {
    return parseDecisionRequest(input);
  } catch (err) {
    if (!isPdpError(err) || err.code !== 'invalid_request') throw err;
    const details = err.details.map((d) => ({ ...d, path: d.path === '(body)' ? 'input' : `input.${d.path}` }));
    throw new PdpError('invalid_request', `the input of ${DECISION_ENTRYPOINT} is not a decision request: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`, { details });
  }
}
