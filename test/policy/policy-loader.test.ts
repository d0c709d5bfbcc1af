import { readFile, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isPdpError, type ErrorDetail, type PdpError } from '../../src/errors/pdp-error.js';
import { buildPolicySet, buildPolicySetYielding, loadPolicyDir } from '../../src/policy/policy-loader.js';
import { policyDir, SEED_POLICY, yaml } from './policy-fixtures.js';

async function refusal(dir: string): Promise<PdpError> {
  try {
    await loadPolicyDir(dir);
  } catch (err) {
    if (isPdpError(err)) return err;
    throw err;
  }
  throw new Error('expected the policy set to be refused');
}

const ROLE = yaml`
  role_policy:
    id: support-agent
    integrations:
      crm:
        max_scope: [tickets:read, tickets:write]
        bind:
          tickets:write: { resource: customer, context: customer_id }
`;

describe('loadPolicyDir: valid sets', () => {
  it('loads the seed example verbatim', async () => {
    const set = await loadPolicyDir(await policyDir({ 'code-review-agent.yaml': SEED_POLICY }));
    expect(set.agents).toEqual(['code-review-agent']);
    expect(set.warnings).toEqual([]);
    expect(set.data.policies.agents['code-review-agent']).toEqual({
      token_ttl: 3600,
      per_task_downscope: true,
      integrations: {
        github: {
          allowed: { 'repo:read': true, 'pr:read': true, 'issues:read': true },
          denied: { 'repo:write': true, 'admin:org': true, delete_repo: true },
          bindings: {},
          escalation: {},
        },
        slack: {
          allowed: { 'channels:read': true, 'chat:write': true },
          denied: { admin: true, 'channels:manage': true },
          bindings: {},
          escalation: {},
        },
      },
      task_types: {},
    });
    expect(set.data.policies.integrations).toEqual({ github: { implies: {} }, slack: { implies: {} } });
    expect(set.integrations).toEqual({ github: {}, slack: {} });
  });

  it('ships the seed example verbatim, comment included, plus one escalation block', async () => {
    const shipped = await readFile(new URL('../../policies/agents/code-review-agent.yaml', import.meta.url), 'utf8');
    // The demo's break-glass scope (docs/policy-authoring.md, "Escalation"): the seed with it taken out is verbatim.
    const escalation = /^ {6}escalation:\n(?: {8}.*\n)+/m;
    expect(shipped).toMatch(escalation);
    expect(shipped.replace(escalation, '')).toContain(SEED_POLICY);
  });

  it('loads the shipped policies/ directory without errors or warnings', async () => {
    const set = await loadPolicyDir('test/fixtures/policies');
    expect(set.warnings).toEqual([]);
    expect(set.agents).toEqual(['code-review-agent', 'feedback-workflow', 'mailbox-summarizer', 'support-resolver']);
    expect(set.files.map((f) => f.path)).toContain('roles/support-agent.yaml');
    expect(set.integrations['github']).toEqual({ audience: 'https://api.github.com' });
    expect(set.revision).toMatch(/^[0-9a-f]{16}$/);
    // The worked example of docs/policy-authoring.md.
    expect(set.data.policies.agents['support-resolver']).toEqual({
      token_ttl: 900,
      per_task_downscope: true,
      integrations: {
        crm: {
          allowed: { 'tickets:read': true, 'tickets:write': true },
          denied: { admin: true, 'tickets:delete': true },
          bindings: { 'tickets:write': { resource_type: 'customer', context_key: 'customer_id' } },
          escalation: {},
        },
      },
      task_types: {
        complaint_resolution: { crm: { 'tickets:read': true, 'tickets:write': true } },
        triage: { crm: { 'tickets:read': true } },
      },
    });
    expect(set.data.policies.integrations['github']?.implies['admin:org']).toEqual(['read:org', 'write:org']);
  });

  it('returns a deeply frozen set', async () => {
    const set = await loadPolicyDir('test/fixtures/policies');
    const asOpaData: Readonly<Record<string, unknown>> = set.data; // what WasmEvaluator.create takes, no cast
    expect(Object.keys(asOpaData)).toEqual(['policies']);
    const github = set.data.policies.agents['code-review-agent']?.integrations['github'];
    expect(Object.isFrozen(set)).toBe(true);
    expect(Object.isFrozen(github?.allowed)).toBe(true);
    expect(Object.isFrozen(set.data.policies.integrations['github']?.implies['admin:org'])).toBe(true);
    expect(() => {
      (github?.allowed as Record<string, boolean>)['repo:write'] = true;
    }).toThrow(TypeError);
  });

  it('derives the revision from the data only: formatting, comments and key order do not change it', async () => {
    const a = await loadPolicyDir(await policyDir({ 'a.yaml': SEED_POLICY }));
    const reordered = yaml`
      # same policy, other order and flow style
      agent_policy:
        per_task_downscope: true
        token_ttl: 3600
        id: code-review-agent
        integrations:
          slack: { deny_scope: [channels:manage, admin], max_scope: [chat:write, channels:read] }
          github:
            deny_scope: [delete_repo, admin:org, repo:write]
            max_scope: [issues:read, pr:read, repo:read]
    `;
    const b = await loadPolicyDir(await policyDir({ 'nested/b.yml': reordered }));
    expect(b.revision).toBe(a.revision);
    const c = await loadPolicyDir(await policyDir({ 'a.yaml': SEED_POLICY.replace('3600', '1800') }));
    expect(c.revision).not.toBe(a.revision);
  });

  it('reads *.yaml and *.yml recursively and skips other and hidden files', async () => {
    const dir = await policyDir({
      'agents/deep/one.yml': SEED_POLICY,
      'README.md': '# not a policy',
      '.hidden.yaml': 'not: [valid',
      '.git/config.yaml': 'not: [valid',
    });
    expect((await loadPolicyDir(dir)).files.map((f) => f.path)).toEqual(['agents/deep/one.yml']);
  });
});

interface Expected {
  file: string;
  line: number;
  column?: number;
  path: string;
  message: RegExp;
}

const errorCases: { note: string; files: Record<string, string>; expected: Expected }[] = [
  {
    note: 'a typo key is refused with its line',
    files: { 'a.yaml': SEED_POLICY.replace('max_scope: [channels', 'max_scopes: [channels') },
    expected: { file: 'a.yaml', line: 8, column: 7, path: 'agent_policy.integrations.slack.max_scopes', message: /unknown key "max_scopes"; expected one of: max_scope, deny_scope, bind/ },
  },
  {
    note: 'an invalid scope names its list index',
    files: { 'a.yaml': SEED_POLICY.replace('issues:read]', '"issues read"]') },
    expected: { file: 'a.yaml', line: 5, column: 39, path: 'agent_policy.integrations.github.max_scope[2]', message: /"issues read" is not a valid scope/ },
  },
  {
    note: 'token_ttl out of range',
    files: { 'a.yaml': SEED_POLICY.replace('3600', '86401') },
    expected: { file: 'a.yaml', line: 10, column: 14, path: 'agent_policy.token_ttl', message: /must be at most 86400, got 86401/ },
  },
  {
    note: 'wrong type',
    files: { 'a.yaml': SEED_POLICY.replace('per_task_downscope: true', 'per_task_downscope: "yes"') },
    expected: { file: 'a.yaml', line: 11, path: 'agent_policy.per_task_downscope', message: /expected true or false, got a string/ },
  },
  {
    note: 'a YAML syntax error',
    files: { 'a.yaml': SEED_POLICY.replace('[admin, channels:manage]', '[admin, channels:manage') },
    expected: { file: 'a.yaml', line: 10, path: '', message: /flow sequence/i },
  },
  {
    note: 'a duplicate YAML key',
    files: { 'a.yaml': SEED_POLICY.replace('  per_task_downscope: true\n', '  per_task_downscope: true\n  token_ttl: 60\n') },
    expected: { file: 'a.yaml', line: 12, path: '', message: /unique/ },
  },
  {
    note: 'an unknown kind',
    files: { 'a.yaml': SEED_POLICY.replace('agent_policy:', 'agent_polcy:') },
    expected: { file: 'a.yaml', line: 1, column: 1, path: 'agent_polcy', message: /one of: agent_policy, role_policy, integration/ },
  },
  {
    note: 'two kinds in one file',
    files: { 'a.yaml': `${SEED_POLICY}integration:\n  id: github\n` },
    expected: { file: 'a.yaml', line: 1, path: '', message: /exactly one of/ },
  },
  {
    note: 'more than one YAML document',
    files: { 'a.yaml': `${SEED_POLICY}---\n${SEED_POLICY}` },
    expected: { file: 'a.yaml', line: 12, column: 1, path: '', message: /one YAML document/ },
  },
  {
    note: 'an empty file',
    files: { 'a.yaml': '# nothing here\n' },
    expected: { file: 'a.yaml', line: 1, path: '', message: /the file is empty/ },
  },
  {
    note: 'an agent without roles must state max_scope',
    files: { 'a.yaml': SEED_POLICY.replace('      max_scope: [channels:read, chat:write]\n', '') },
    expected: { file: 'a.yaml', line: 7, path: 'agent_policy.integrations.slack', message: /missing required key "max_scope"/ },
  },
  {
    note: 'a duplicate entry in a scope list',
    files: { 'a.yaml': SEED_POLICY.replace('[repo:read, pr:read, issues:read]', '[repo:read, pr:read, repo:read]') },
    expected: { file: 'a.yaml', line: 5, column: 39, path: 'agent_policy.integrations.github.max_scope[2]', message: /duplicate entry/ },
  },
  {
    note: 'an invalid integration name points at the key',
    files: { 'a.yaml': SEED_POLICY.replace('    slack:', '    "sl ack":') },
    expected: { file: 'a.yaml', line: 7, column: 5, path: 'agent_policy.integrations["sl ack"]', message: /"sl ack" is not a valid name/ },
  },
  {
    note: 'an unknown role',
    files: {
      'agents/r.yaml': yaml`
        agent_policy:
          id: resolver
          roles: [support-agent, suport-agent]
      `,
      'roles/support.yaml': ROLE,
    },
    expected: { file: 'agents/r.yaml', line: 3, column: 26, path: 'agent_policy.roles[1]', message: /unknown role "suport-agent"/ },
  },
  {
    note: 'a key twice in one map, named',
    files: { 'a.yaml': SEED_POLICY.replace('    slack:', '    github:') },
    expected: { file: 'a.yaml', line: 7, column: 5, path: '', message: /key "github" appears twice in one map/ },
  },
  {
    note: 'a binding to a context key no task can carry (the task context key grammar)',
    files: { 'r.yaml': ROLE.replace('context: customer_id', 'context: 9cid') },
    expected: { file: 'r.yaml', line: 7, path: 'role_policy.integrations.crm.bind["tickets:write"].context', message: /is not a valid value/ },
  },
  {
    note: 'a bound scope not in max_scope',
    files: {
      'a.yaml': yaml`
        agent_policy:
          id: resolver
          integrations:
            crm:
              max_scope: [tickets:read]
              bind:
                tickets:write: { resource: customer, context: customer_id }
      `,
    },
    expected: { file: 'a.yaml', line: 7, column: 9, path: 'agent_policy.integrations.crm.bind["tickets:write"]', message: /bound scope "tickets:write" is not in max_scope/ },
  },
  {
    note: 'a role binding a scope outside its max_scope',
    files: { 'r.yaml': ROLE.replace('max_scope: [tickets:read, tickets:write]', 'max_scope: [tickets:read]') },
    expected: { file: 'r.yaml', line: 7, path: 'role_policy.integrations.crm.bind["tickets:write"]', message: /not in this role's max_scope/ },
  },
  {
    note: 'task_types naming an integration the agent does not have',
    files: {
      'a.yaml': SEED_POLICY.replace('  per_task_downscope: true\n', '  per_task_downscope: true\n  task_types:\n    review:\n      github: [pr:read]\n      jira: [issues:read]\n'),
    },
    expected: { file: 'a.yaml', line: 15, column: 7, path: 'agent_policy.task_types.review.jira', message: /names integration "jira", which agent "code-review-agent" has no access to/ },
  },
  {
    note: 'a role binding a scope differently from the agent',
    files: {
      'roles/support.yaml': ROLE,
      'agents/r.yaml': yaml`
        agent_policy:
          id: resolver
          roles: [support-agent]
          integrations:
            crm:
              bind:
                tickets:write: { resource: ticket, context: ticket_id }
      `,
    },
    expected: { file: 'agents/r.yaml', line: 7, path: 'agent_policy.integrations.crm.bind["tickets:write"]', message: /already bound differently by role support-agent \(roles\/support.yaml:7\)/ },
  },
  {
    note: 'a scope the integration does not list',
    files: {
      'a.yaml': SEED_POLICY.replace('issues:read]', 'issues:raed]'),
      'github.yaml': 'integration:\n  id: github\n  scopes: [repo:read, repo:write, pr:read, issues:read, admin:org, delete_repo]\n',
    },
    expected: { file: 'a.yaml', line: 5, path: 'agent_policy.integrations.github.max_scope[2]', message: /"issues:raed" is not a scope of integration github \(see the scopes list in github.yaml\)/ },
  },
  {
    note: 'an implication outside the integration scopes',
    files: { 'github.yaml': 'integration:\n  id: github\n  scopes: [repo:read, repo:write]\n  implies:\n    repo:write: [repo:read, repo:raed]\n' },
    expected: { file: 'github.yaml', line: 5, column: 29, path: 'integration.implies["repo:write"][1]', message: /"repo:raed" is not in this integration's scopes/ },
  },
];

describe('loadPolicyDir: refused sets', () => {
  it.each(errorCases)('$note', async ({ files, expected }) => {
    const err = await refusal(await policyDir(files));
    expect(err.code).toBe('policy_invalid');
    expect(err.status).toBe(422);
    const detail = err.details.find((d) => d.path === expected.path && expected.message.test(d.message));
    expect(detail, JSON.stringify(err.details, null, 2)).toBeDefined();
    expect(detail).toMatchObject({ file: expected.file, line: expected.line, ...(expected.column === undefined ? {} : { column: expected.column }) });
  });

  it('names both files of a duplicate id', async () => {
    const err = await refusal(await policyDir({ 'agents/a.yaml': SEED_POLICY, 'agents/b.yaml': `# copy\n${SEED_POLICY}` }));
    expect(err.details).toEqual([
      { file: 'agents/b.yaml', line: 3, column: 7, path: 'agent_policy.id', message: 'duplicate agent_policy id "code-review-agent": also defined in agents/a.yaml:2' },
    ]);
  });

  it('collects every error of every file, and loads nothing', async () => {
    const err = await refusal(
      await policyDir({
        'a.yaml': SEED_POLICY.replace('max_scope: [channels', 'max_scopes: [channels').replace('3600', '0'),
        'b.yaml': 'agent_policy:\n  id: b\n  roles: [nobody]\n',
        'c.yaml': 'integration: [',
        'ok.yaml': 'integration:\n  id: fine\n',
      }),
    );
    const where = (d: ErrorDetail): string => `${d.file}:${d.line} ${d.path}`;
    expect(err.details.map(where)).toEqual([
      'a.yaml:7 agent_policy.integrations.slack',
      'a.yaml:8 agent_policy.integrations.slack.max_scopes',
      'a.yaml:10 agent_policy.token_ttl',
      'b.yaml:3 agent_policy.roles[0]',
      'c.yaml:1 ',
    ]);
    expect(err.message).toMatch(/^policies under .* are invalid \(5 errors; first: a\.yaml:7:5 agent_policy\.integrations\.slack missing required key "max_scope"/);
  });

  it.each([
    { note: 'a missing directory', dir: async () => '/nonexistent/agent-pdp-policies', message: /cannot read the policy directory/ },
    { note: 'a directory without policy files', dir: () => policyDir({ 'README.md': 'hello' }), message: /no policy files/ },
  ])('refuses $note', async ({ dir, message }) => {
    const err = await refusal(await dir());
    expect(err.code).toBe('policy_invalid');
    expect(err.message).toMatch(message);
  });

  it('names the file it could not read among many read at once', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 150; i++) files[`agents/a${String(i).padStart(3, '0')}.yaml`] = SEED_POLICY.replace('code-review-agent', `agent-${i}`);
    const dir = await policyDir(files);
    await symlink(join(dir, 'nowhere.yaml'), join(dir, 'agents', 'a100-dangling.yaml'));
    const err = await refusal(dir);
    expect(err.message).toMatch(/cannot read the policy directory/);
    expect(err.details).toEqual([expect.objectContaining({ file: 'agents/a100-dangling.yaml' })]);
  });

  it('parses a large set in chunks, letting the event loop turn, and builds what buildPolicySet builds', async () => {
    const sources = Array.from({ length: 300 }, (_, i) => ({ file: `agents/a${String(i).padStart(3, '0')}.yaml`, text: SEED_POLICY.replace('code-review-agent', `agent-${i}`) }));
    let turns = 0;
    let counting = true;
    const count = (): void => {
      turns++;
      if (counting) setImmediate(count);
    };
    setImmediate(count);
    const set = await buildPolicySetYielding(sources, 'big');
    counting = false;
    // 300 files in chunks of 50: the loop turned between chunks. Parsing them in one go would not let it turn.
    expect(turns).toBeGreaterThanOrEqual(5);
    expect(set.agents).toHaveLength(300);
    expect(set.revision).toBe(buildPolicySet(sources, 'big').revision);
  });

  it('refuses a large set with the same errors either way', async () => {
    const sources = Array.from({ length: 120 }, (_, i) => ({ file: `a${String(i).padStart(3, '0')}.yaml`, text: SEED_POLICY.replace('code-review-agent', `agent-${i}`) }));
    sources[77] = { file: 'a077.yaml', text: 'agent_policy: [' };
    const sync = (() => {
      try {
        buildPolicySet(sources);
      } catch (err) {
        return err as PdpError;
      }
      throw new Error('buildPolicySet accepted a broken set');
    })();
    const yielding = await buildPolicySetYielding(sources).then(
      () => {
        throw new Error('buildPolicySetYielding accepted a broken set');
      },
      (err: unknown) => err as PdpError,
    );
    expect(yielding.code).toBe('policy_invalid');
    expect(yielding.details).toEqual(sync.details);
    expect(yielding.details[0]).toMatchObject({ file: 'a077.yaml' });
  });

  it('buildPolicySet works on in-memory sources with the same rules', () => {
    expect(buildPolicySet([{ file: 'a.yaml', text: SEED_POLICY }]).agents).toEqual(['code-review-agent']);
    let err: unknown;
    try {
      buildPolicySet([{ file: 'a.yaml', text: 'agent_policy: {}' }]);
    } catch (caught) {
      err = caught;
    }
    expect(isPdpError(err) && err.details.map((d) => d.message)).toEqual([
      'missing required key "id"',
      'missing required key "integrations"',
    ]);
  });
});
