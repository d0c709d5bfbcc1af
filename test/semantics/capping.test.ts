import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestPdp } from '../support/pdp-harness.js';
import { decide, policyFields, startSemanticsPdp } from './semantics-pdp.js';

/**
 * Issue 14, bug 2: capping substitutes only scopes that can be granted for this request. A bound scope whose
 * record does not match is no substitute, so it neither refuses the request nor appears in the answer; a
 * `granted_instead` names only what was granted (docs/policy-semantics.md, "Capping").
 */

const FILES = {
  'integrations/svc.yaml': 'integration:\n  id: svc\n  implies:\n    svc:admin: [svc:read, svc:write]\n    svc:owner: [svc:write]\n',
  'agents/svc-agent.yaml': [
    'agent_policy:',
    '  id: svc-agent',
    '  integrations:',
    '    svc:',
    '      max_scope: [svc:read, svc:write]',
    '      deny_scope: [svc:delete]',
    '      bind:',
    '        svc:write: { resource: customer, context: customer_id }',
    '  token_ttl: 600',
    '',
  ].join('\n'),
};

const task = { id: 'task-1', context: { customer_id: '1234' } };
const ask = (scopes: string[], resource?: { type: string; id: string }) => ({
  agent_id: 'svc-agent',
  task,
  integration: 'svc',
  scopes,
  ...(resource ? { resource } : {}),
});

describe('capping and record bindings over HTTP', () => {
  let t: TestPdp;
  beforeAll(async () => {
    t = await startSemanticsPdp(FILES, ['svc-agent']);
  });
  afterAll(async () => {
    await t.close();
  });

  it.each([
    {
      note: "the issue's example: no resource, so svc:write is no substitute; svc:read is granted",
      body: ask(['svc:admin']),
      want: { outcome: 'allow', granted_scopes: ['svc:read'], denied_scopes: [{ scope: 'svc:admin', reason: 'capped', granted_instead: ['svc:read'] }], reasons: ['allowed', 'scopes_capped'], token_ttl_seconds: 600 },
    },
    {
      note: 'on its record the bound substitute is granted too',
      body: ask(['svc:admin'], { type: 'customer', id: '1234' }),
      want: { outcome: 'allow', granted_scopes: ['svc:read', 'svc:write'], denied_scopes: [{ scope: 'svc:admin', reason: 'capped', granted_instead: ['svc:read', 'svc:write'] }], reasons: ['allowed', 'scopes_capped'], token_ttl_seconds: 600 },
    },
    {
      note: 'another record: the same as no resource',
      body: ask(['svc:admin'], { type: 'customer', id: '5678' }),
      want: { outcome: 'allow', granted_scopes: ['svc:read'], denied_scopes: [{ scope: 'svc:admin', reason: 'capped', granted_instead: ['svc:read'] }], reasons: ['allowed', 'scopes_capped'], token_ttl_seconds: 600 },
    },
    {
      note: 'the only substitute fails its binding: the scope is dropped; no unrequested scope, no granted_instead',
      body: ask(['svc:owner']),
      want: { outcome: 'deny', granted_scopes: [], denied_scopes: [{ scope: 'svc:owner', reason: 'above_ceiling' }], reasons: ['no_scope_granted'], token_ttl_seconds: 0 },
    },
    {
      note: 'a bound scope asked for by name on another record still refuses the whole request',
      body: ask(['svc:admin', 'svc:write'], { type: 'customer', id: '5678' }),
      want: { outcome: 'deny', granted_scopes: [], denied_scopes: [{ scope: 'svc:admin', reason: 'capped' }, { scope: 'svc:write', reason: 'record_binding' }], reasons: ['record_binding_mismatch'], token_ttl_seconds: 0 },
    },
    {
      note: 'on any deny a capped scope carries no granted_instead: nothing was granted',
      body: ask(['svc:admin', 'svc:delete'], { type: 'customer', id: '1234' }),
      want: { outcome: 'deny', granted_scopes: [], denied_scopes: [{ scope: 'svc:admin', reason: 'capped' }, { scope: 'svc:delete', reason: 'deny_scope' }], reasons: ['deny_scope'], token_ttl_seconds: 0 },
    },
  ])('$note', async ({ body, want }) => {
    const res = await decide(t, body);
    expect(res.status).toBe(200);
    expect(policyFields(res.body)).toEqual(want);
    for (const d of res.body.denied_scopes as Array<{ scope: string; granted_instead?: string[] }>) {
      expect(body.scopes).toContain(d.scope);
      for (const s of d.granted_instead ?? []) expect(res.body.granted_scopes).toContain(s);
    }
  });
});
