import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { isPdpError, type ErrorDetail, type PdpError } from '../../src/errors/pdp-error.js';
import { buildEvaluationInput } from '../../src/pdp/evaluation-input.js';
import { readBundleFile } from '../../src/policy/bundle-reader.js';
import type { ElevationInputV1, EvaluationInputV1 } from '../../src/policy/decision-types.js';
import { buildPolicySet, loadPolicyDir } from '../../src/policy/policy-loader.js';
import { loadTestSuites, runPolicyTests } from '../../src/policy-test/index.js';
import { checkEvaluationResult } from '../../src/policy/result-check.js';
import { WasmEvaluator } from '../../src/policy/wasm-evaluator.js';
import { opaEvalDecisions } from '../support/opa-cli.js';
import { policyDir, yaml } from './policy-fixtures.js';

/*
 * Break-glass escalation (issue 16), policy side: the `escalation` blocks of the YAML, their checks, the compiled
 * `escalation` map, and the Rego's answers to requestable denials and elevations through the committed bundle.
 */

const GITHUB = yaml`
  integration:
    id: github
    scopes: [repo:read, repo:write, pr:read, pr:write, issues:read, issues:write, delete_repo]
    implies:
      pr:write: [pr:read]
`;

function build(files: Record<string, string>) {
  return buildPolicySet(Object.entries(files).map(([file, text]) => ({ file, text })));
}

function refusal(files: Record<string, string>): PdpError {
  try {
    build(files);
  } catch (err) {
    if (isPdpError(err)) return err;
    throw err;
  }
  throw new Error('expected the policy set to be refused');
}

const at = (d: ErrorDetail): string => `${d.file}:${d.line} ${d.path}: ${d.message}`;

describe('escalation: compiled data', () => {
  it('compiles an agent block with its defaults, and {} where there is none', () => {
    const set = build({
      'github.yaml': GITHUB,
      'a.yaml': yaml`
        agent_policy:
          id: a
          integrations:
            github:
              max_scope: [repo:read, pr:read]
              escalation:
                scopes: [pr:write, issues:write]
                approvers: [security, platform-oncall]
            slack:
              max_scope: [chat:write]
      `,
    });
    expect(set.warnings).toEqual([]);
    const agent = set.data.policies.agents['a'];
    expect(agent?.integrations['github']?.escalation).toEqual({
      'issues:write': { approvers: ['platform-oncall', 'security'], max_duration: 3600, require_reason: false, override_deny: false },
      'pr:write': { approvers: ['platform-oncall', 'security'], max_duration: 3600, require_reason: false, override_deny: false },
    });
    expect(Object.keys(agent?.integrations['github']?.escalation ?? {})).toEqual(['issues:write', 'pr:write']);
    expect(agent?.integrations['slack']?.escalation).toEqual({});
    // Above the ceiling: still not allowed; only an approval grants it.
    expect(agent?.integrations['github']?.allowed).toEqual({ 'pr:read': true, 'repo:read': true });
  });

  it('merges per scope: the agent wins over its roles, roles over the integration file; roles unite', () => {
    const set = build({
      'github.yaml': yaml`
        integration:
          id: github
          escalation:
            scopes: [pr:write, issues:write, repo:write]
            approvers: [everyone]
            max_duration: 86400
      `,
      'r.yaml': yaml`
        role_policy:
          id: r
          integrations:
            github:
              max_scope: [repo:read]
              escalation: { scopes: [pr:write, issues:write], approvers: [team-r], max_duration: 1800 }
      `,
      's.yaml': yaml`
        role_policy:
          id: s
          integrations:
            github:
              max_scope: [pr:read]
              escalation: { scopes: [pr:write], approvers: [team-s, team-r], max_duration: 7200, require_reason: true }
      `,
      'a.yaml': yaml`
        agent_policy:
          id: a
          roles: [r, s]
          integrations:
            github:
              escalation: { scopes: [issues:write], approvers: [own], max_duration: 60 }
      `,
      'b.yaml': yaml`
        agent_policy:
          id: b
          integrations:
            github: { max_scope: [repo:read] }
      `,
      'c.yaml': yaml`
        agent_policy:
          id: c
          integrations:
            slack: { max_scope: [chat:write] }
      `,
    });
    expect(set.warnings).toEqual([]);
    const esc = (id: string, integration = 'github') => set.data.policies.agents[id]?.integrations[integration]?.escalation;
    expect(esc('a')).toEqual({
      'issues:write': { approvers: ['own'], max_duration: 60, require_reason: false, override_deny: false }, // the agent's
      'pr:write': { approvers: ['team-r', 'team-s'], max_duration: 1800, require_reason: true, override_deny: false }, // roles r ∪ s
      'repo:write': { approvers: ['everyone'], max_duration: 86400, require_reason: false, override_deny: false }, // the file's
    });
    // The integration file reaches every agent covering github, and no other.
    expect(Object.keys(esc('b') ?? {})).toEqual(['issues:write', 'pr:write', 'repo:write']);
    expect(esc('c', 'slack')).toEqual({});
    expect(set.data.policies.agents['c']?.integrations['github']).toBeUndefined();
  });

  it('an integration file never reaches a denied scope; an agent deny drops a role escalation', () => {
    const set = build({
      'github.yaml': yaml`
        integration:
          id: github
          escalation: { scopes: [repo:write, pr:write], approvers: [oncall] }
      `,
      'r.yaml': yaml`
        role_policy:
          id: r
          integrations:
            github:
              max_scope: [repo:read]
              escalation: { scopes: [issues:write], approvers: [team-r] }
      `,
      'a.yaml': yaml`
        agent_policy:
          id: a
          roles: [r]
          integrations:
            github: { deny_scope: [repo:write, issues:write] }
      `,
    });
    expect(set.warnings).toEqual([]);
    expect(Object.keys(set.data.policies.agents['a']?.integrations['github']?.escalation ?? {})).toEqual(['pr:write']);
  });

  it('override_deny lifts the document’s own deny for approved requests, with a warning each', () => {
    const set = build({
      'github.yaml': GITHUB,
      'a.yaml': yaml`
        agent_policy:
          id: a
          integrations:
            github:
              max_scope: [repo:read]
              deny_scope: [repo:write, delete_repo]
              escalation:
                scopes: [repo:write]
                approvers: [security]
                max_duration: 600
                override_deny: [repo:write]
      `,
    });
    expect(set.warnings.map(at)).toEqual([
      'a.yaml:11 agent_policy.integrations.github.escalation.override_deny[0]: "repo:write" is in deny_scope for github but may be requested with an approver\'s approval (override_deny)',
    ]);
    const github = set.data.policies.agents['a']?.integrations['github'];
    expect(github?.denied).toEqual({ delete_repo: true, 'repo:write': true });
    expect(github?.escalation).toEqual({ 'repo:write': { approvers: ['security'], max_duration: 600, require_reason: false, override_deny: true } });
  });

  it('a role lifting its own deny: the agent gets it unless another of its roles denies the scope too (warning)', () => {
    const lifting = yaml`
      role_policy:
        id: lifting
        integrations:
          github:
            max_scope: [repo:read]
            deny_scope: [repo:write]
            escalation: { scopes: [repo:write], approvers: [security], override_deny: [repo:write] }
    `;
    const strict = yaml`
      role_policy:
        id: strict
        integrations:
          github:
            max_scope: [pr:read]
            deny_scope: [repo:write]
    `;
    const one = build({ 'l.yaml': lifting, 'a.yaml': 'agent_policy:\n  id: a\n  roles: [lifting]\n' });
    expect(one.warnings.map((w) => w.path)).toEqual(['role_policy.integrations.github.escalation.override_deny[0]']);
    expect(one.data.policies.agents['a']?.integrations['github']?.escalation['repo:write']?.override_deny).toBe(true);

    const two = build({ 'l.yaml': lifting, 's.yaml': strict, 'a.yaml': 'agent_policy:\n  id: a\n  roles: [lifting, strict]\n' });
    expect(two.warnings.map(at)).toContain(
      'a.yaml:3 agent_policy.roles[0]: role lifting\'s escalation of "repo:write" for github is dropped: role strict denies it',
    );
    expect(two.data.policies.agents['a']?.integrations['github']?.escalation).toEqual({});
  });

  it('a requestable scope may be bound although it is not in max_scope (agent and role)', () => {
    const set = build({
      'r.yaml': yaml`
        role_policy:
          id: r
          integrations:
            crm:
              max_scope: [tickets:read]
              bind: { tickets:delete: { resource: customer, context: customer_id } }
              escalation: { scopes: [tickets:delete], approvers: [support-leads] }
      `,
      'a.yaml': yaml`
        agent_policy:
          id: a
          integrations:
            crm:
              max_scope: [tickets:read]
              bind: { tickets:write: { resource: customer, context: customer_id } }
              escalation: { scopes: [tickets:write], approvers: [support-leads] }
      `,
      'b.yaml': 'agent_policy:\n  id: b\n  roles: [r]\n',
    });
    expect(set.data.policies.agents['a']?.integrations['crm']?.bindings['tickets:write']).toEqual({ resource_type: 'customer', context_key: 'customer_id' });
    expect(set.data.policies.agents['b']?.integrations['crm']?.bindings['tickets:delete']).toBeDefined();
    expect(set.data.policies.agents['b']?.integrations['crm']?.escalation['tickets:delete']).toBeDefined();
  });
});

describe('escalation: refused sets, each problem with its file and line', () => {
  const agent = (escalation: string, extra = '') => yaml`
    agent_policy:
      id: a
      integrations:
        github:
          max_scope: [repo:read]
          deny_scope: [repo:write]${extra}
          escalation: ${escalation}
  `;
  it.each([
    {
      note: 'override_deny naming a scope the escalation does not list',
      files: { 'a.yaml': agent('{ scopes: [pr:write], approvers: [x], override_deny: [repo:write] }') },
      want: 'a.yaml:7 agent_policy.integrations.github.escalation.override_deny[0]: "repo:write" is not in this escalation\'s scopes',
    },
    {
      note: 'override_deny naming a scope nobody denies',
      files: { 'a.yaml': agent('{ scopes: [pr:write], approvers: [x], override_deny: [pr:write] }') },
      want: 'a.yaml:7 agent_policy.integrations.github.escalation.override_deny[0]: "pr:write" is not in this document\'s deny_scope for github: override_deny lifts only that',
    },
    {
      note: 'an agent lifting a role’s deny',
      files: {
        'r.yaml': 'role_policy:\n  id: r\n  integrations:\n    github:\n      max_scope: [repo:read]\n      deny_scope: [delete_repo]\n',
        'a.yaml': yaml`
          agent_policy:
            id: a
            roles: [r]
            integrations:
              github:
                escalation: { scopes: [delete_repo], approvers: [x], override_deny: [delete_repo] }
        `,
      },
      want: 'a.yaml:6 agent_policy.integrations.github.escalation.scopes[0]: "delete_repo" is in the deny_scope of role r (r.yaml:6): an agent cannot lift a role\'s deny',
    },
    {
      note: 'a scope the integration does not list (agent)',
      files: { 'github.yaml': GITHUB, 'a.yaml': agent('{ scopes: [pr:wrte], approvers: [x] }') },
      want: 'a.yaml:7 agent_policy.integrations.github.escalation.scopes[0]: "pr:wrte" is not a scope of integration github (see the scopes list in github.yaml)',
    },
    {
      note: 'a scope the integration does not list (its own escalation)',
      files: { 'github.yaml': `${GITHUB}  escalation: { scopes: [pr:write, admin], approvers: [x] }\n` },
      want: 'github.yaml:6 integration.escalation.scopes[1]: "admin" is not in this integration\'s scopes',
    },
    {
      note: 'no approvers',
      files: { 'a.yaml': agent('{ scopes: [pr:write], approvers: [] }') },
      want: 'a.yaml:7 agent_policy.integrations.github.escalation.approvers: must list at least one',
    },
    {
      note: 'approvers missing',
      files: { 'a.yaml': agent('{ scopes: [pr:write] }') },
      want: 'a.yaml:7 agent_policy.integrations.github.escalation: missing required key "approvers"',
    },
    {
      note: 'no scopes',
      files: { 'a.yaml': agent('{ scopes: [], approvers: [x] }') },
      want: 'a.yaml:7 agent_policy.integrations.github.escalation.scopes: must list at least one',
    },
    {
      note: 'an approver group that is not an id',
      files: { 'a.yaml': agent('{ scopes: [pr:write], approvers: ["on call"] }') },
      want: expect.stringMatching(/^a\.yaml:7 agent_policy\.integrations\.github\.escalation\.approvers\[0\]: "on call" is not a valid id/),
    },
    {
      note: 'max_duration below a minute',
      files: { 'a.yaml': agent('{ scopes: [pr:write], approvers: [x], max_duration: 59 }') },
      want: 'a.yaml:7 agent_policy.integrations.github.escalation.max_duration: must be at least 60, got 59',
    },
    {
      note: 'max_duration above a week',
      files: { 'a.yaml': agent('{ scopes: [pr:write], approvers: [x], max_duration: 604801 }') },
      want: 'a.yaml:7 agent_policy.integrations.github.escalation.max_duration: must be at most 604800, got 604801',
    },
    {
      note: 'override_deny in an integration file (it has no deny list)',
      files: { 'github.yaml': `${GITHUB}  escalation: { scopes: [pr:write], approvers: [x], override_deny: [pr:write] }\n` },
      want: expect.stringMatching(/^github\.yaml:6 integration\.escalation\.override_deny: unknown key "override_deny"; expected one of: scopes, approvers, max_duration, require_reason$/),
    },
  ] as { note: string; files: Record<string, string>; want: unknown }[])('$note', ({ files, want }) => {
    const err = refusal(files);
    expect(err.code).toBe('policy_invalid');
    expect(err.details.map(at)).toContainEqual(want);
  });
});

describe('escalation: a deny_scope scope listed without override_deny stays denied (a warning, not an error)', () => {
  const STAYS_DENIED = (scope: string) =>
    `"${scope}" is in deny_scope for github, so it stays denied and is never requestable: to let an approver lift the deny, list it in override_deny too; otherwise remove it from scopes`;

  it.each([
    {
      note: 'an agent',
      files: {
        'a.yaml': yaml`
          agent_policy:
            id: a
            integrations:
              github:
                max_scope: [repo:read]
                deny_scope: [repo:write]
                escalation: { scopes: [pr:write, repo:write], approvers: [oncall] }
        `,
      },
      want: `a.yaml:7 agent_policy.integrations.github.escalation.scopes[1]: ${STAYS_DENIED('repo:write')}`,
    },
    {
      note: 'a role (every agent naming it)',
      files: {
        'r.yaml': yaml`
          role_policy:
            id: r
            integrations:
              github:
                max_scope: [repo:read]
                deny_scope: [repo:write]
                escalation: { scopes: [pr:write, repo:write], approvers: [oncall] }
        `,
        'a.yaml': 'agent_policy:\n  id: a\n  roles: [r]\n',
      },
      want: `r.yaml:7 role_policy.integrations.github.escalation.scopes[1]: ${STAYS_DENIED('repo:write')}`,
    },
  ] as { note: string; files: Record<string, string>; want: string }[])('$note: the set loads with one warning; the scope is denied and not in the compiled escalation', ({ files, want }) => {
    const set = build({ 'github.yaml': GITHUB, ...files });
    expect(set.warnings.map(at)).toEqual([want]);
    const github = set.data.policies.agents['a']?.integrations['github'];
    expect(github?.denied).toEqual({ 'repo:write': true });
    expect(github?.escalation).toEqual({ 'pr:write': { approvers: ['oncall'], max_duration: 3600, require_reason: false, override_deny: false } });
  });

  it('loaded from disk and decided by the committed bundle: a plain deny_scope deny, with no access_request', async () => {
    const dir = await policyDir({
      'integrations/github.yaml': GITHUB,
      'agents/a.yaml': yaml`
        agent_policy:
          id: a
          integrations:
            github:
              max_scope: [repo:read]
              deny_scope: [repo:write]
              escalation: { scopes: [pr:write, repo:write], approvers: [platform-oncall] }
      `,
    });
    const set = await loadPolicyDir(dir);
    expect(set.warnings.map(at)).toEqual([`agents/a.yaml:7 agent_policy.integrations.github.escalation.scopes[1]: ${STAYS_DENIED('repo:write')}`]);
    const engine = await WasmEvaluator.create(await readBundleFile('opa-bundle/bundle.tar.gz'), set.data, set.revision);
    const request = { agent_id: 'a', integration: 'github', task: { id: 't1' }, resource: { type: 'repo', id: 'acme/api' } };
    const task = { id: 't1', context: {}, registered: true };
    const now = new Date('2026-01-05T14:00:00Z');
    const inputs = {
      denied: buildEvaluationInput({ ...request, scopes: ['repo:write'] }, 'pep', task, now),
      // An elevation naming it (as if approved) grants nothing either: the scope is not requestable.
      deniedElevated: buildEvaluationInput({ ...request, scopes: ['repo:write'] }, 'pep', task, now, {
        access_request_id: 'ar-1',
        scopes: { 'repo:write': true },
        resource: { type: 'repo', id: 'acme/api' },
        approved_until: '2026-01-05T15:00:00.000Z',
      }),
      withRequestable: buildEvaluationInput({ ...request, scopes: ['pr:write', 'repo:write'] }, 'pep', task, now),
      requestable: buildEvaluationInput({ ...request, scopes: ['pr:write'] }, 'pep', task, now),
    };
    const answers = Object.fromEntries(Object.entries(inputs).map(([k, input]) => [k, engine.evaluate(input)]));

    for (const key of ['denied', 'deniedElevated'] as const) {
      expect(answers[key]).toMatchObject({
        outcome: 'deny',
        granted_scopes: [],
        denied_scopes: [{ scope: 'repo:write', reason: 'deny_scope' }],
        elevated_scopes: [],
      });
      expect(answers[key]?.reasons.map((r) => r.code)).toEqual(['deny_scope', 'no_scope_granted']);
      expect(answers[key]).not.toHaveProperty('access_request');
    }
    // Exactly the answer of the same policy without repo:write in its escalation.
    const plain = build({ 'github.yaml': GITHUB, 'a.yaml': 'agent_policy:\n  id: a\n  integrations:\n    github:\n      max_scope: [repo:read]\n      deny_scope: [repo:write]\n' });
    const control = await WasmEvaluator.create(await readBundleFile('opa-bundle/bundle.tar.gz'), plain.data, plain.revision);
    expect(answers['denied']).toEqual(control.evaluate(inputs.denied));
    // Asked together with a requestable scope, the deny still refuses the whole request: nothing to request.
    expect(answers['withRequestable']?.outcome).toBe('deny');
    expect(answers['withRequestable']?.reasons.map((r) => r.code)).toContain('deny_scope');
    expect(answers['withRequestable']).not.toHaveProperty('access_request');
    // The rest of the block still works: pr:write alone is a requestable denial.
    expect(answers['requestable']).toMatchObject({ outcome: 'deny', reasons: [{ code: 'approval_required' }], access_request: { scopes: ['pr:write'] } });

    const oracle = opaEvalDecisions(set.data, Object.values(inputs));
    expect(Object.values(answers).map(({ defined: _defined, ...result }) => result)).toEqual(oracle);
  });
});

describe('agent-pdp policy check reports them', () => {
  async function check(dir: string, ...args: string[]) {
    const { COMMANDS } = await import('../../src/cli/commands.js');
    const command = COMMANDS.find((c) => c.name === 'policy check');
    let stdout = '';
    let stderr = '';
    const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
    const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
    try {
      const values = { strict: args.includes('--strict'), ...(args.includes('--json') ? { format: 'json' } : {}) };
      const status = await command!.run(values, [dir]);
      return { status, stdout, stderr };
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  }
  const overriding = yaml`
    agent_policy:
      id: a
      integrations:
        github:
          max_scope: [repo:read]
          deny_scope: [repo:write]
          escalation: { scopes: [repo:write], approvers: [security], override_deny: [repo:write] }
  `;

  it('an override_deny is a warning: ok, --strict refuses, --format json lists it with file and line', async () => {
    const dir = await policyDir({ 'agents/a.yaml': overriding });
    const plain = await check(dir);
    expect(plain.status).toBe(0);
    expect(plain.stderr).toContain('warning: agents/a.yaml:7:82 agent_policy.integrations.github.escalation.override_deny[0]: "repo:write" is in deny_scope');
    expect((await check(dir, '--strict')).status).toBe(1);
    const json = await check(dir, '--json');
    expect(JSON.parse(json.stdout)).toMatchObject({
      ok: true,
      warnings: [{ file: 'agents/a.yaml', line: 7, path: 'agent_policy.integrations.github.escalation.override_deny[0]' }],
    });
  });

  it('a deny_scope scope without override_deny is a warning (it stays denied): ok, --strict refuses, file and line', async () => {
    const dir = await policyDir({ 'agents/a.yaml': overriding.replace(', override_deny: [repo:write]', '') });
    const plain = await check(dir);
    expect(plain.status).toBe(0);
    expect(plain.stderr).toContain(
      'warning: agents/a.yaml:7:30 agent_policy.integrations.github.escalation.scopes[0]: "repo:write" is in deny_scope for github, so it stays denied and is never requestable',
    );
    expect((await check(dir, '--strict')).status).toBe(1);
    const json = await check(dir, '--json');
    expect(json.status).toBe(0);
    const report = JSON.parse(json.stdout) as { ok: boolean; errors: unknown[]; warnings: ErrorDetail[] };
    expect(report).toMatchObject({ ok: true, errors: [] });
    expect(report.warnings).toEqual([
      expect.objectContaining({
        file: 'agents/a.yaml',
        line: 7,
        path: 'agent_policy.integrations.github.escalation.scopes[0]',
        message: expect.stringContaining('list it in override_deny too') as unknown,
      }),
    ]);
  });

  it('the shipped policies pass their shipped tests, the requestable denial included', async () => {
    const { suites, errors } = await loadTestSuites('policies/.tests', 'policies');
    expect(errors).toEqual([]);
    const run = await runPolicyTests({ policyDir: 'policies', bundlePath: 'opa-bundle/bundle.tar.gz' }, suites);
    const failed = run.suites.flatMap((s) => s.cases.filter((c) => c.status !== 'pass').map((c) => `${s.name}: ${c.name}`));
    expect(failed).toEqual([]);
    const breakGlass = run.suites.flatMap((s) => s.cases).find((c) => c.name.startsWith('break-glass - pr:write'));
    expect(breakGlass?.answer).toMatchObject({ outcome: 'deny', denied_scopes: [{ scope: 'pr:write', reason: 'approval_required' }] });
  });

  it('the shipped policies check clean, with the example escalation compiled', async () => {
    const set = await loadPolicyDir('policies');
    expect(set.warnings).toEqual([]);
    expect(set.data.policies.agents['code-review-agent']?.integrations['github']?.escalation).toEqual({
      'pr:write': { approvers: ['platform-oncall'], max_duration: 3600, require_reason: true, override_deny: false },
    });
  });
});

describe('escalation: decisions of the committed bundle (and opa eval on rego/)', () => {
  let evaluator: WasmEvaluator;
  let data: Record<string, unknown>;
  beforeAll(async () => {
    const set = build({
      'github.yaml': GITHUB,
      'a.yaml': yaml`
        agent_policy:
          id: a
          integrations:
            github:
              max_scope: [repo:read, pr:read]
              deny_scope: [repo:write, delete_repo]
              bind: { issues:write: { resource: repo, context: repo } }
              escalation:
                scopes: [pr:write, issues:write, repo:write]
                approvers: [platform-oncall]
                max_duration: 1800
                require_reason: true
                override_deny: [repo:write]
      `,
    });
    data = set.data;
    evaluator = await WasmEvaluator.create(await readBundleFile('opa-bundle/bundle.tar.gz'), set.data, set.revision);
  });

  const base: EvaluationInputV1 = {
    agent_id: 'a',
    caller_id: 'pep',
    task: { id: 't1', context: { repo: 'acme/api' }, registered: true },
    integration: 'github',
    scopes: ['pr:write'],
    resource: { type: 'repo', id: 'acme/api' },
  };
  const elevation = (scopes: string[], resource: ElevationInputV1['resource'] = { type: 'repo', id: 'acme/api' }): ElevationInputV1 => ({
    access_request_id: 'ar-9',
    scopes: Object.fromEntries(scopes.map((s) => [s, true as const])),
    resource,
    approved_until: '2026-01-05T15:00:00.000Z',
  });
  const cases: { note: string; input: EvaluationInputV1 }[] = [
    { note: 'requestable', input: base },
    { note: 'elevated', input: { ...base, elevation: elevation(['pr:write']) } },
    { note: 'elevation for another record', input: { ...base, elevation: elevation(['pr:write'], { type: 'repo', id: 'acme/web' }) } },
    { note: 'override_deny, elevated', input: { ...base, scopes: ['repo:write'], elevation: elevation(['repo:write']) } },
    { note: 'bound, on another record', input: { ...base, scopes: ['issues:write'], resource: { type: 'repo', id: 'acme/web' } } },
    { note: 'with a denied scope', input: { ...base, scopes: ['pr:write', 'delete_repo'] } },
  ];

  it('a requestable denial carries the policy’s terms', () => {
    const e = evaluator.evaluate(base);
    expect(e).toMatchObject({
      outcome: 'deny',
      granted_scopes: [],
      denied_scopes: [{ scope: 'pr:write', reason: 'approval_required' }],
      reasons: [{ code: 'approval_required' }],
      elevated_scopes: [],
      access_request: { scopes: ['pr:write'], approvers: ['platform-oncall'], max_duration: 1800, require_reason: true },
    });
  });

  it('the elevation grants its scope, on its record only, and says so', () => {
    expect(evaluator.evaluate({ ...base, elevation: elevation(['pr:write']) })).toMatchObject({
      outcome: 'allow',
      granted_scopes: ['pr:write'],
      elevated_scopes: ['pr:write'],
      reasons: [{ code: 'allowed' }, { code: 'elevated', message: 'granted by access request ar-9: pr:write' }],
    });
    const other = evaluator.evaluate({ ...base, elevation: elevation(['pr:write'], { type: 'repo', id: 'acme/web' }) });
    expect(other.outcome).toBe('deny');
    expect(other.access_request?.scopes).toEqual(['pr:write']);
  });

  it('gives exactly what opa eval gives', () => {
    const oracle = opaEvalDecisions(data, cases.map((c) => c.input));
    const ours = cases.map((c) => {
      const { defined: _defined, ...result } = evaluator.evaluate(c.input);
      return result;
    });
    expect(ours).toEqual(oracle);
  });
});

describe('checkEvaluationResult: escalation fields, failing closed', () => {
  const deny = {
    outcome: 'deny',
    granted_scopes: [],
    denied_scopes: [{ scope: 'pr:write', reason: 'approval_required' }],
    reasons: [{ code: 'approval_required', message: 'm' }],
    token_ttl_seconds: 0,
    elevated_scopes: [],
    access_request: { scopes: ['pr:write'], approvers: ['oncall'], max_duration: 3600, require_reason: false },
  };
  const allow = {
    outcome: 'allow',
    granted_scopes: ['pr:write'],
    denied_scopes: [],
    reasons: [{ code: 'elevated', message: 'm' }],
    token_ttl_seconds: 60,
    elevated_scopes: ['pr:write'],
  };

  it('accepts the documented shapes', () => {
    expect(checkEvaluationResult(deny)).toEqual(deny);
    expect(checkEvaluationResult(allow)).toEqual(allow);
  });

  it('reads a result without elevated_scopes (a decision core that predates escalation) as elevating nothing', () => {
    const { elevated_scopes: _e, ...older } = { ...allow, reasons: [{ code: 'allowed', message: 'm' }] };
    expect(checkEvaluationResult(older)).toEqual({ ...older, elevated_scopes: [] });
  });

  it.each([
    { note: 'elevated_scopes not strings', value: { ...allow, elevated_scopes: [1] } },
    { note: 'an elevated scope that was not granted', value: { ...allow, elevated_scopes: ['repo:write'] } },
    { note: 'access_request on an allow', value: { ...allow, access_request: deny.access_request } },
    { note: 'access_request not an object', value: { ...deny, access_request: 'yes' } },
    { note: 'no scopes', value: { ...deny, access_request: { ...deny.access_request, scopes: [] } } },
    { note: 'scopes other than the approval_required ones', value: { ...deny, access_request: { ...deny.access_request, scopes: ['repo:write'] } } },
    { note: 'a scope named twice', value: { ...deny, access_request: { ...deny.access_request, scopes: ['pr:write', 'pr:write'] } } },
    {
      note: 'fewer scopes than the approval_required ones',
      value: { ...deny, denied_scopes: [...deny.denied_scopes, { scope: 'issues:write', reason: 'approval_required' }] },
    },
    {
      note: 'a scope denied twice in place of another',
      value: {
        ...deny,
        denied_scopes: [...deny.denied_scopes, ...deny.denied_scopes],
        access_request: { ...deny.access_request, scopes: ['pr:write', 'issues:write'] },
      },
    },
    { note: 'no approvers', value: { ...deny, access_request: { ...deny.access_request, approvers: [] } } },
    { note: 'max_duration below a minute', value: { ...deny, access_request: { ...deny.access_request, max_duration: 59 } } },
    { note: 'max_duration above a week', value: { ...deny, access_request: { ...deny.access_request, max_duration: 604801 } } },
    { note: 'max_duration a fraction', value: { ...deny, access_request: { ...deny.access_request, max_duration: 60.5 } } },
    { note: 'require_reason not a boolean', value: { ...deny, access_request: { ...deny.access_request, require_reason: 'true' } } },
    { note: 'an unknown denied-scope reason', value: { ...deny, denied_scopes: [{ scope: 'pr:write', reason: 'approval' }] } },
  ])('refuses $note', ({ value }) => {
    expect(() => checkEvaluationResult(value)).toThrow(expect.objectContaining({ code: 'evaluation_failed' }));
  });
});

describe('buildEvaluationInput: input.elevation', () => {
  const request = { agent_id: 'a', integration: 'github', scopes: ['pr:write'], task: { id: 't1' } };
  const task = { id: 't1', context: {}, registered: true };

  it('is set exactly when an elevation is given', () => {
    const elevation: ElevationInputV1 = { access_request_id: 'ar-1', scopes: { 'pr:write': true }, resource: null, approved_until: '2026-01-05T15:00:00.000Z' };
    const now = new Date('2026-01-05T14:00:00Z');
    expect(buildEvaluationInput(request, 'pep', task, now, elevation).elevation).toEqual(elevation);
    expect('elevation' in buildEvaluationInput(request, 'pep', task, now)).toBe(false);
    expect('elevation' in buildEvaluationInput(request, 'pep', task)).toBe(false);
  });
});

it('the editor schema describes escalation where the loader accepts it', () => {
  const schema = JSON.parse(readFileSync('schemas/agent-policy.schema.json', 'utf8')) as {
    definitions: Record<string, { properties: Record<string, unknown> }>;
  };
  expect(schema.definitions['agentIntegration']?.properties['escalation']).toEqual({ $ref: '#/definitions/escalation' });
  expect(schema.definitions['roleIntegration']?.properties['escalation']).toEqual({ $ref: '#/definitions/escalation' });
  expect(schema.definitions['integration']?.properties['escalation']).toEqual({ $ref: '#/definitions/integrationEscalation' });
});
