/**
 * The redeem flow over HTTP, step by step, for the token tests: an orchestrator registers a task, a PEP asks
 * for a decision on it, the PEP redeems the allow. Plain HTTP through supertest; nothing of the signing code.
 */
import request from 'supertest';
import { expect } from 'vitest';
import { auth, KEYS, type TestPdp } from '../support/pdp-harness.js';

export interface Decision {
  decision_id: string;
  allow: boolean;
  outcome: string;
  granted_scopes: string[];
  token_ttl_seconds: number;
  task_id: string;
}

export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  scope: string;
  authorization_details: Array<{ type: string; actions: string[]; identifier?: string; resource_type?: string }>;
  jti: string;
}

/** The audience of `crm` tokens: the integration file's `audience` (policies/integrations/crm.yaml). */
export const CRM_AUDIENCE = 'https://crm.example.com/api';

let seq = 0;

/** Registers a complaint-resolution task of support-resolver on customer 1234 (or `customer`). */
export async function registerTask(t: TestPdp, options: { customer?: string; expiresIn?: number } = {}): Promise<string> {
  const id = `task-${++seq}`;
  await request(t.url)
    .post('/v1/tasks')
    .set(auth(KEYS.orchestrator))
    .send({
      id,
      agent_id: 'support-resolver',
      type: 'complaint_resolution',
      context: { customer_id: options.customer ?? '1234' },
      ...(options.expiresIn === undefined ? {} : { expires_in_seconds: options.expiresIn }),
    })
    .expect(201);
  return id;
}

/** A decision on `taskId`: by default tickets:write on customer 1234, which the policy allows. */
export async function decide(
  t: TestPdp,
  taskId: string,
  options: { scopes?: string[]; customer?: string; ttl?: number; key?: string } = {},
): Promise<Decision> {
  const res = await request(t.url)
    .post('/v1/decide')
    .set(auth(options.key ?? KEYS.pep))
    .send({
      agent_id: 'support-resolver',
      task: { id: taskId },
      integration: 'crm',
      scopes: options.scopes ?? ['tickets:write'],
      resource: { type: 'customer', id: options.customer ?? '1234' },
      ...(options.ttl === undefined ? {} : { ttl_seconds: options.ttl }),
    })
    .expect(200);
  return res.body as Decision;
}

export function redeem(t: TestPdp, decisionId: string, key: string = KEYS.pep): request.Test {
  return request(t.url).post('/v1/tokens').set(auth(key)).send({ decision_id: decisionId });
}

/** Task → allow → token, the happy path. */
export async function issueToken(
  t: TestPdp,
  options: { expiresIn?: number; ttl?: number } = {},
): Promise<{ taskId: string; decision: Decision; token: TokenResponse }> {
  const taskId = await registerTask(t, options.expiresIn === undefined ? {} : { expiresIn: options.expiresIn });
  const decision = await decide(t, taskId, options.ttl === undefined ? {} : { ttl: options.ttl });
  expect(decision.outcome).toBe('allow');
  const res = await redeem(t, decision.decision_id).expect(201);
  return { taskId, decision, token: res.body as TokenResponse };
}

export function introspect(t: TestPdp, token: string, key: string = KEYS.resource): request.Test {
  return request(t.url).post('/v1/introspect').set(auth(key)).type('form').send({ token });
}

export function revoke(t: TestPdp, token: string, key: string = KEYS.pep): request.Test {
  return request(t.url).post('/v1/revoke').set(auth(key)).type('form').send({ token });
}

export function completeTask(t: TestPdp, taskId: string): request.Test {
  return request(t.url).post(`/v1/tasks/${taskId}/complete`).set(auth(KEYS.orchestrator)).send({});
}

/** The decoded JSON of a JWT part (0 header, 1 payload), without verifying anything. */
export function decodePart(token: string, index: 0 | 1): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[index] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

export const b64json = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
