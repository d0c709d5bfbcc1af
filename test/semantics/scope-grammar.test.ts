import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPolicyShape, policySchema } from '../../src/policy/policy-schema.js';
import { parseDecisionRequest } from '../../src/wire/request-parsers.js';
import { SCOPE_PATTERN } from '../../src/wire/decision-v1.js';
import type { TestPdp } from '../support/pdp-harness.js';
import { decide, policyFields, startSemanticsPdp } from './semantics-pdp.js';

/**
 * Issue 14, bug 1: one scope grammar (letters, digits and `_ . : / * + @ = -`, 1 to 128 characters), used by the
 * policy files and by decision requests alike. A scope a policy can name can be requested, and the other way round.
 */

const requestWith = (scope: string) => ({ agent_id: 'a', task: { id: 't' }, integration: 'api', scopes: [scope] });
const requestAccepts = (scope: string): boolean => {
  try {
    parseDecisionRequest(requestWith(scope));
    return true;
  } catch {
    return false;
  }
};
const policyAccepts = (scope: string): boolean =>
  checkPolicyShape({ agent_policy: { id: 'a', integrations: { api: { max_scope: [scope] } } } }).length === 0;

describe('one scope grammar for policies and requests', () => {
  it.each([
    { note: 'plain', scope: 'repo:read', valid: true },
    { note: 'plus', scope: 'a+b', valid: true },
    { note: 'equals', scope: 'role=admin', valid: true },
    { note: 'a URL scope', scope: 'https://www.googleapis.com/auth/calendar.readonly', valid: true },
    { note: 'at, star, dash, underscore', scope: 'mail@example.com/*_x-y', valid: true },
    { note: 'every special character may come first', scope: '+=@-./:*_', valid: true },
    { note: 'one character', scope: '=', valid: true },
    { note: '128 characters', scope: 's'.repeat(128), valid: true },
    { note: 'hash is not in the grammar', scope: 'a#b', valid: false },
    { note: '129 characters', scope: 's'.repeat(129), valid: false },
    { note: 'empty', scope: '', valid: false },
    { note: 'space', scope: 'repo read', valid: false },
    { note: 'comma', scope: 'a,b', valid: false },
    { note: 'quote', scope: 'a"b', valid: false },
    { note: 'non-ASCII letter', scope: 'résumé:read', valid: false },
    { note: 'newline at the end', scope: 'repo:read\n', valid: false },
  ])('$note: $scope', ({ scope, valid }) => {
    expect(policyAccepts(scope)).toBe(valid);
    expect(requestAccepts(scope)).toBe(valid);
  });

  it('every printable ASCII character is in both grammars or in neither', () => {
    for (let c = 0x21; c < 0x7f; c++) {
      const scope = `x${String.fromCharCode(c)}`;
      expect({ scope, policy: policyAccepts(scope) }).toEqual({ scope, policy: requestAccepts(scope) });
    }
  });

  it('the policy validator uses the one definition, and the shipped schema file states it for editors', () => {
    const definitions = policySchema['definitions'] as Record<string, { pattern: string }>;
    expect(definitions['scope']?.pattern).toBe(SCOPE_PATTERN);
    const file = JSON.parse(readFileSync('schemas/agent-policy.schema.json', 'utf8')) as typeof policySchema;
    const inFile = (file['definitions'] as Record<string, { pattern: string }>)['scope']?.pattern;
    expect(inFile, 'set definitions.scope.pattern in schemas/agent-policy.schema.json to SCOPE_PATTERN').toBe(SCOPE_PATTERN);
  });
});

describe('over HTTP: a scope with + or = can be requested', () => {
  let t: TestPdp;
  beforeAll(async () => {
    t = await startSemanticsPdp(
      {
        'agents/grammar.yaml': 'agent_policy:\n  id: grammar\n  integrations:\n    api:\n      max_scope: ["a+b", "role=admin", "mail@example.com/*"]\n',
      },
      ['grammar'],
    );
  });
  afterAll(async () => {
    await t.close();
  });

  it('a policy scope with + and = is granted when asked for', async () => {
    const res = await decide(t, { agent_id: 'grammar', task: { id: 't1' }, integration: 'api', scopes: ['a+b', 'role=admin'] });
    expect(res.status).toBe(200);
    expect(policyFields(res.body)).toEqual({
      outcome: 'allow',
      granted_scopes: ['a+b', 'role=admin'],
      denied_scopes: [],
      reasons: ['allowed'],
      token_ttl_seconds: 3600,
    });
  });

  it('a scope outside the grammar (#) is refused at the edge: no policy could name it', async () => {
    const res = await decide(t, { agent_id: 'grammar', task: { id: 't1' }, integration: 'api', scopes: ['a+b', 'a#b'] });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
    expect(res.body.error.details).toEqual([expect.objectContaining({ path: 'scopes[1]' })]);
  });
});
