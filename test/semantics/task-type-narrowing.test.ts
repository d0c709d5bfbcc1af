import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestPdp } from '../support/pdp-harness.js';
import { decide, policyFields, startSemanticsPdp } from './semantics-pdp.js';

/**
 * Issue 14, bug 3: an agent can only narrow a task type one of its roles declares, integrations included. The
 * role's `triage` lists crm only, so the agent's `triage: { slack: [...] }` gets nothing on slack for triage tasks
 * (docs/policy-semantics.md, "Task types").
 */

const FILES = {
  'roles/r.yaml': [
    'role_policy:',
    '  id: r',
    '  integrations:',
    '    crm: { max_scope: [tickets:read, tickets:write] }',
    '    slack: { max_scope: [chat:write] }',
    '  task_types:',
    '    triage:',
    '      crm: [tickets:read]',
    '',
  ].join('\n'),
  'agents/widener.yaml': [
    'agent_policy:',
    '  id: widener',
    '  roles: [r]',
    '  per_task_downscope: true',
    '  task_types:',
    '    triage:',
    '      slack: [chat:write]',
    '    digest:',
    '      slack: [chat:write]',
    '',
  ].join('\n'),
};

const ask = (type: string, integration: string, scopes: string[]) => ({
  agent_id: 'widener',
  task: { id: 'task-1', type, context: {} },
  integration,
  scopes,
});

describe('an agent narrows its roles’ task types, integrations included', () => {
  let t: TestPdp;
  beforeAll(async () => {
    t = await startSemanticsPdp(FILES, ['widener']);
  });
  afterAll(async () => {
    await t.close();
  });

  it.each([
    {
      note: "the issue's example: slack is not in the role's triage, so a triage task gets nothing there",
      body: ask('triage', 'slack', ['chat:write']),
      want: { outcome: 'deny', granted_scopes: [], denied_scopes: [{ scope: 'chat:write', reason: 'task_type' }], reasons: ['no_scope_granted'], token_ttl_seconds: 0 },
    },
    {
      note: "the role's triage list for crm is inherited as it is",
      body: ask('triage', 'crm', ['tickets:read', 'tickets:write']),
      want: {
        outcome: 'allow',
        granted_scopes: ['tickets:read'],
        denied_scopes: [{ scope: 'tickets:write', reason: 'task_type' }],
        reasons: ['allowed', 'scopes_dropped'],
        token_ttl_seconds: 3600,
      },
    },
    {
      note: 'a type no role declares is the agent’s own, within its allowed scopes',
      body: ask('digest', 'slack', ['chat:write']),
      want: { outcome: 'allow', granted_scopes: ['chat:write'], denied_scopes: [], reasons: ['allowed'], token_ttl_seconds: 3600 },
    },
  ])('$note', async ({ body, want }) => {
    const res = await decide(t, body);
    expect(res.status).toBe(200);
    expect(policyFields(res.body)).toEqual(want);
  });
});
