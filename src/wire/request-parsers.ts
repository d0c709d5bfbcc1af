/**
 * The request bodies of the HTTP API, validated against the JSON Schemas of this folder (the same objects the
 * OpenAPI document publishes). Used by the server's route table and by the CLI, which read the same formats.
 */
import { decisionRequestSchema, taskRegistrationSchema, type DecisionRequestV1, type TaskRegistrationV1 } from './decision-v1.js';
import { tokenBodySchema, tokenRequestSchema, type TokenBodyV1, type TokenRequestV1 } from './token-v1.js';
import { bodyValidator } from './validate-body.js';

export const parseDecisionRequest = bodyValidator<DecisionRequestV1>(decisionRequestSchema);
export const parseTaskRegistration = bodyValidator<TaskRegistrationV1>(taskRegistrationSchema);
export const parseTokenRequest = bodyValidator<TokenRequestV1>(tokenRequestSchema);
export const parseTokenBody = bodyValidator<TokenBodyV1>(tokenBodySchema);
