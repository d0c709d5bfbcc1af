import request from 'supertest';
import type { DecisionRequestV1, DecisionResponseV1 } from '../../src/wire/decision-v1.js';
import { auth, KEYS, startTestPdp, TEST_CALLERS, type TestPdp } from '../support/pdp-harness.js';
import { policyDir } from '../policy/policy-fixtures.js';

/**
 * A whole PDP (real bundle, HTTP on loopback) serving the policy files a semantics test writes: `files` maps a
 * path under the policy folder to its YAML. The test PEP `pep-1` may speak for `agents` and assert task context.
 */
export async function startSemanticsPdp(files: Record<string, string>, agents: readonly string[]): Promise<TestPdp> {
  const callers = TEST_CALLERS.map((c) => (c.id === 'pep-1' ? { ...c, agents: [...agents] } : c));
  return startTestPdp({ policies: await policyDir(files), config: { callers } });
}

/** POST /v1/decide as `pep-1`; the raw supertest response (status and body). */
export function decide(t: TestPdp, body: DecisionRequestV1 | Record<string, unknown>) {
  return request(t.url).post('/v1/decide').set(auth(KEYS.pep)).send(body);
}

/** The fields of an answer that the policy decides (docs/policy-semantics.md, "The answer"). */
export function policyFields(body: DecisionResponseV1) {
  const { outcome, granted_scopes, denied_scopes, reasons, token_ttl_seconds } = body;
  return { outcome, granted_scopes, denied_scopes, reasons: reasons.map((r) => r.code), token_ttl_seconds };
}
