import { Router } from 'express';
import type { Decider } from '../../pdp/decider.js';
import { decisionRequestSchema, type DecisionRequestV1 } from '../../wire/decision-v1.js';
import { callerOf, requireRole } from '../authenticate.js';
import { bodyValidator } from '../validate-body.js';

export const parseDecisionRequest = bodyValidator<DecisionRequestV1>(decisionRequestSchema);

/** POST /v1/decide (role pep): 200 for allow, deny and undefined alike; errors are 4xx/503. */
export function decideRoutes(decider: Decider): Router {
  const router = Router();
  router.post('/v1/decide', requireRole('pep'), async (req, res) => {
    const request = parseDecisionRequest(req.body);
    const response = await decider.decide(callerOf(req), request, req.traceId ?? null);
    req.decisionId = response.decision_id;
    res.status(200).json(response);
  });
  return router;
}
