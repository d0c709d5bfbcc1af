import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildPolicySet } from '../../src/policy/policy-loader.js';
import { suggestPolicies, type EngineInput } from '../../src/suggest/engine.js';
import { widenings } from '../../src/suggest/narrowing.js';
import { DEFAULT_THRESHOLDS, type Suggestion, type SuggestionRun } from '../../src/suggest/suggestion-types.js';
import { editYaml } from '../../src/suggest/yaml-edit.js';
import { policyOf, UsageBuilder } from './usage-builder.js';

/**
 * The suggestion engine on constructed usage summaries (docs/suggestions.md): what it suggests, what it refuses to
 * suggest and says instead, and that no suggestion ever widens a policy.
 */

const GITHUB = `integration:
  id: github
  scopes: [repo:read, repo:write, pr:read, pr:write, issues:read, admin:org]
  implies:
    repo:write: [repo:read]
`;

const CODE_REVIEW = `# The code review agent: reads code and pull requests.
agent_policy:
  id: code-review-agent
  integrations:
    github:
      max_scope: [repo:read, pr:read, repo:write, issues:read]   # repo:write: the old release job
      deny_scope: [admin:org]
    slack:
      max_scope: [chat:write]
  token_ttl: 3600  # 1 hour
`;

const FILES = { 'integrations/github.yaml': GITHUB, 'agents/code-review-agent.yaml': CODE_REVIEW };
const AGENT = 'code-review-agent';
const NOW = '2026-04-01T00:00:00.000Z';

function run(files: Record<string, string>, build: (b: UsageBuilder) => UsageBuilder, thresholds = DEFAULT_THRESHOLDS): SuggestionRun {
  const { policy, files: docs } = policyOf(files);
  const input: EngineInput = { summary: build(new UsageBuilder()).build(), policy, files: docs, thresholds, now: NOW };
  return suggestPolicies(input);
}

/** 90 days of code review: two tokens a day carrying the whole github ceiling, reads used; slack used too. */
const reviewing = (b: UsageBuilder, days = 90): UsageBuilder =>
  b
    .grant({ agent: AGENT, integration: 'github', scopes: ['repo:read', 'pr:read', 'repo:write'], days, perDay: 2, task_type: 'review' })
    .use({ agent: AGENT, integration: 'github', scope: 'repo:read', days, perDay: 3, task_type: 'review' })
    .use({ agent: AGENT, integration: 'github', scope: 'pr:read', days, perDay: 2, task_type: 'review' })
    .grant({ agent: AGENT, integration: 'slack', scopes: ['chat:write'], days, task_type: 'review' })
    .use({ agent: AGENT, integration: 'slack', scope: 'chat:write', days, task_type: 'review' });

const kinds = (r: SuggestionRun): string[] => r.suggestions.map((s) => `${s.kind} ${s.integration} ${s.target}`);
const notes = (r: SuggestionRun, kind: string): string[] => r.agents.flatMap((a) => a.notes.filter((n) => n.kind === kind).map((n) => `${n.integration ?? '*'} ${n.scope ?? '*'}`));

describe('remove_scope: the source document example', () => {
  it('repo:write held 90 days, only reads used → remove it, with its evidence', () => {
    const r = run(FILES, (b) => reviewing(b));
    expect(kinds(r)).toEqual(['remove_scope github repo:write']);
    const s = r.suggestions[0] as Suggestion;
    expect(s).toMatchObject({ agent_id: AGENT, file: 'agents/code-review-agent.yaml', file_sha256: expect.stringMatching(/^[0-9a-f]{64}$/), id: expect.stringMatching(/^sg_[0-9a-f]{24}$/) });
    expect(s.evidence).toMatchObject({
      confidence: 'high',
      sources: ['proxy'],
      days_observed: 90,
      samples: 180,
      tokens_issued: 180,
      scope: {
        scope: 'repo:write',
        granted: 180,
        granted_first_at: '2026-01-01T09:00:00.000Z',
        granted_last_at: '2026-03-31T09:01:00.000Z',
        used: { proxy: 0, resource_server: 0 },
        used_first_at: null,
        days_observed: 90,
        task_types: { review: { granted: 180, used: 0 } },
      },
    });
    expect(s.proposal.edits).toEqual([{ op: 'remove_item', path: ['agent_policy', 'integrations', 'github', 'max_scope'], value: 'repo:write' }]);
    expect(s.proposal.diff).toBe(
      [
        '--- a/agents/code-review-agent.yaml',
        '+++ b/agents/code-review-agent.yaml',
        '@@ -3,7 +3,7 @@',
        '   id: code-review-agent',
        '   integrations:',
        '     github:',
        '-      max_scope: [repo:read, pr:read, repo:write, issues:read]   # repo:write: the old release job',
        '+      max_scope: [repo:read, pr:read, issues:read]   # repo:write: the old release job',
        '       deny_scope: [admin:org]',
        '     slack:',
        '       max_scope: [chat:write]',
        '',
      ].join('\n'),
    );
    const analysis = r.agents[0]?.integrations.find((i) => i.integration === 'github')?.scopes.map((x) => `${x.scope}:${x.verdict}`);
    expect(analysis).toEqual(['admin:org:denied', 'issues:read:not_granted', 'pr:read:used', 'repo:read:used', 'repo:write:unused']);
  });

  it('a scope used once in the window is kept', () => {
    const r = run(FILES, (b) => reviewing(b).use({ agent: AGENT, integration: 'github', scope: 'repo:write', from: 40, days: 1, task_type: 'review' }));
    expect(kinds(r)).toEqual([]);
  });

  it('a scope in deny_scope is ignored, asking for it is reported, never a reason to widen', () => {
    const r = run(FILES, (b) => reviewing(b).ask({ agent: AGENT, integration: 'github', scope: 'admin:org', days: 60, denied: true, task_type: 'review' }));
    expect(kinds(r)).toEqual(['remove_scope github repo:write']);
    expect(notes(r, 'above_ceiling')).toEqual(['github admin:org']);
  });

  it('a scope of max_scope never granted is ignored', () => {
    const r = run(FILES, (b) => reviewing(b));
    expect(kinds(r)).not.toContain('remove_scope github issues:read');
  });

  it.each([
    { note: '20 days of data', days: 20 },
    { note: 'one token a day for 9 days', days: 9 },
  ])('too little data yields nothing: $note', ({ days }) => {
    const r = run(FILES, (b) => reviewing(b, days));
    expect(r.suggestions).toEqual([]);
    expect(notes(r, 'too_little_data')).toContain('github *');
  });

  it('enough days but too few tokens yields nothing', () => {
    const r = run(FILES, (b) =>
      b
        .grant({ agent: AGENT, integration: 'github', scopes: ['repo:read', 'repo:write'], days: 1, perDay: 5 })
        .grant({ agent: AGENT, integration: 'github', scopes: ['repo:read', 'repo:write'], from: 80, days: 1, perDay: 5 })
        .use({ agent: AGENT, integration: 'github', scope: 'repo:read', days: 90 }),
    );
    expect(r.suggestions).toEqual([]);
  });

  it('an integration without any use evidence source yields no removal (introspection is not use)', () => {
    const r = run(FILES, (b) =>
      b
        .grant({ agent: AGENT, integration: 'slack', scopes: ['chat:write'], days: 90, perDay: 2 })
        .grant({ agent: AGENT, integration: 'github', scopes: ['repo:read', 'repo:write'], days: 90, perDay: 2 }),
    );
    expect(r.suggestions).toEqual([]);
    expect(notes(r, 'no_use_evidence')).toEqual(['github *', 'slack *']);
  });

  it('a scope that is the only holder of a used implied scope stays (removing it would take the reads away)', () => {
    const files = { ...FILES, 'agents/code-review-agent.yaml': CODE_REVIEW.replace('[repo:read, pr:read, repo:write, issues:read]', '[pr:read, repo:write]') };
    const r = run(files, (b) => reviewing(b));
    expect(kinds(r)).toEqual([]);
    expect(notes(r, 'implied_use')).toEqual(['github repo:write']);
    expect(r.agents[0]?.integrations[0]?.scopes.find((s) => s.scope === 'repo:write')?.verdict).toBe('implied');
  });

  it('resource servers\' reports count as use; as the only evidence they lower the confidence one step', () => {
    const r = run(FILES, (b) =>
      b
        .grant({ agent: AGENT, integration: 'github', scopes: ['repo:read', 'repo:write'], days: 90, perDay: 2 })
        .use({ agent: AGENT, integration: 'github', scope: 'repo:read', days: 90, source: 'resource_server' }),
    );
    expect(kinds(r)).toEqual(['remove_scope github repo:write']);
    expect(r.suggestions[0]?.evidence).toMatchObject({ sources: ['resource_server'], confidence: 'medium' });
  });

  it.each([
    { note: 'at the thresholds', days: 30, perDay: 1, confidence: 'low' },
    { note: '1.5 × days, 2 × tokens', days: 45, perDay: 1, confidence: 'medium' },
    { note: '2 × days, 5 × tokens', days: 60, perDay: 2, confidence: 'high' },
  ])('confidence $confidence: $note', ({ days, perDay, confidence }) => {
    const r = run(FILES, (b) =>
      b
        .grant({ agent: AGENT, integration: 'github', scopes: ['repo:read', 'repo:write'], days, perDay })
        .use({ agent: AGENT, integration: 'github', scope: 'repo:read', days }),
    );
    expect(r.suggestions.map((s) => s.evidence.confidence)).toEqual([confidence]);
  });

  it('the binding of a removed scope goes with it; a binding that still guards a scope stays, and is reported', () => {
    const agent = `agent_policy:
  id: code-review-agent
  integrations:
    github:
      max_scope: [repo:read, repo:write, pr:read]
      bind:
        repo:write: { resource: repository, context: repo }
        pr:read: { resource: repository, context: repo }
`;
    const r = run({ ...FILES, 'agents/code-review-agent.yaml': agent }, (b) => reviewing(b).grant({ agent: AGENT, integration: 'github', scopes: ['pr:read'], days: 1 }));
    expect(kinds(r)).toEqual(['remove_scope github repo:write']);
    expect(r.suggestions[0]?.proposal.edits).toEqual([
      { op: 'remove_item', path: ['agent_policy', 'integrations', 'github', 'max_scope'], value: 'repo:write' },
      { op: 'remove_key', path: ['agent_policy', 'integrations', 'github', 'bind', 'repo:write'] },
    ]);
    expect(notes(r, 'binding_held')).toEqual(['github pr:read', 'github repo:write']);
  });
});

describe('scopes a role grants', () => {
  const ROLE = `role_policy:
  id: reviewer
  integrations:
    github:
      max_scope: [repo:read, repo:write, pr:read]
`;
  const AGENT_IN_ROLE = `agent_policy:
  id: code-review-agent
  roles: [reviewer]
`;
  it('are never removal targets (the role is shared): a note says which role grants it', () => {
    const r = run({ 'integrations/github.yaml': GITHUB, 'roles/reviewer.yaml': ROLE, 'agents/code-review-agent.yaml': AGENT_IN_ROLE }, (b) => reviewing(b));
    expect(r.suggestions).toEqual([]);
    expect(r.agents[0]?.notes.find((n) => n.kind === 'role_grant')?.message).toContain('role reviewer (roles/reviewer.yaml)');
  });
});

describe('shorten_ttl', () => {
  it('a token_ttl above 4 × the longest use → twice that use, in whole minutes', () => {
    const r = run(FILES, (b) => reviewing(b).span(AGENT, 'github', 290, 150).span(AGENT, 'slack', 100, 90));
    const ttl = r.suggestions.find((s) => s.kind === 'shorten_ttl') as Suggestion;
    expect(ttl).toMatchObject({ integration: '*', target: 'token_ttl' });
    expect(ttl.proposal).toMatchObject({ from_ttl: 3600, to_ttl: 600, edits: [{ op: 'set', path: ['agent_policy', 'token_ttl'], value: 600 }] });
    // The comment stating the old duration states the new one.
    expect(ttl.proposal.diff).toContain('-  token_ttl: 3600  # 1 hour\n+  token_ttl: 600  # 10 min\n');
    expect(ttl.evidence).toMatchObject({ longest_use_seconds: 290, tokens_with_use: 240, tokens_issued: 270, days_observed: 90 });
  });

  it.each([
    { note: 'within 4 × the longest use', longest: 1000, expected: [] },
    { note: 'never below 60 s', longest: 5, expected: [60] },
    { note: 'exactly 4 ×: kept', longest: 900, expected: [] },
  ])('$note', ({ longest, expected }) => {
    const r = run(FILES, (b) => reviewing(b).span(AGENT, 'github', longest, 150).span(AGENT, 'slack', 1, 90));
    expect(r.suggestions.filter((s) => s.kind === 'shorten_ttl').map((s) => s.proposal.to_ttl)).toEqual(expected);
  });

  it('an integration with tokens and no observed use blocks it (its tokens could live their whole TTL)', () => {
    const r = run(FILES, (b) => reviewing(b).span(AGENT, 'github', 60, 150));
    expect(r.suggestions.filter((s) => s.kind === 'shorten_ttl')).toEqual([]);
    expect(notes(r, 'ttl_unobserved')).toEqual(['* *']);
  });

  it('too few tokens with observed use: nothing', () => {
    const r = run(FILES, (b) => reviewing(b).span(AGENT, 'github', 60, 5).span(AGENT, 'slack', 60, 5));
    expect(r.suggestions.filter((s) => s.kind === 'shorten_ttl')).toEqual([]);
  });
});

describe('move_to_task_type', () => {
  const RELEASE = `agent_policy:
  id: code-review-agent
  integrations:
    github:
      max_scope: [repo:read, repo:write, pr:read]
  token_ttl: 3600
`;
  const releasing = (b: UsageBuilder): UsageBuilder =>
    b
      .grant({ agent: AGENT, integration: 'github', scopes: ['repo:read', 'repo:write', 'pr:read'], days: 90, perDay: 2, task_type: 'review' })
      .use({ agent: AGENT, integration: 'github', scope: 'repo:read', days: 90, task_type: 'review' })
      .use({ agent: AGENT, integration: 'github', scope: 'pr:read', days: 90, task_type: 'review' })
      .grant({ agent: AGENT, integration: 'github', scopes: ['repo:read', 'repo:write', 'pr:read'], days: 12, perDay: 1, from: 10, task_type: 'release' })
      .use({ agent: AGENT, integration: 'github', scope: 'repo:write', days: 12, from: 10, task_type: 'release' })
      .use({ agent: AGENT, integration: 'github', scope: 'pr:read', days: 2, from: 10, task_type: 'release' })
      .use({ agent: AGENT, integration: 'github', scope: 'repo:read', days: 12, from: 10, task_type: 'release' });

  it('task types off: turns them on, every type seen keeping all it has today but the moved scope', () => {
    const r = run({ 'integrations/github.yaml': GITHUB, 'agents/a.yaml': RELEASE }, releasing);
    expect(kinds(r)).toEqual(['move_to_task_type github repo:write']);
    const s = r.suggestions[0] as Suggestion;
    expect(s.proposal).toMatchObject({ task_type: 'release', from_task_types: ['review'], sets_per_task_downscope: true });
    const after = editYaml(RELEASE, s.proposal.edits);
    expect(after).toBe(`${RELEASE}  per_task_downscope: true\n  task_types:\n    release:\n      github: [pr:read, repo:read, repo:write]\n    review:\n      github: [pr:read, repo:read]\n`);
    const compiled = buildPolicySet([{ file: 'integrations/github.yaml', text: GITHUB }, { file: 'agents/a.yaml', text: after }]).data.policies.agents[AGENT];
    expect(Object.keys(compiled?.task_types['review']?.['github'] ?? {})).toEqual(['pr:read', 'repo:read']);
  });

  it('task types on: the scope leaves the other types (an inherited type is narrowed in the agent\'s own file)', () => {
    const role = `role_policy:
  id: dev
  integrations:
    github:
      max_scope: [repo:read, repo:write, pr:read]
  task_types:
    review:
      github: [repo:read, repo:write, pr:read]
    release:
      github: [repo:read, repo:write]
`;
    const agent = `agent_policy:
  id: code-review-agent
  roles: [dev]
  per_task_downscope: true
`;
    const r = run({ 'integrations/github.yaml': GITHUB, 'roles/dev.yaml': role, 'agents/a.yaml': agent }, releasing);
    expect(kinds(r)).toEqual(['move_to_task_type github repo:write']);
    expect(r.suggestions[0]?.proposal.edits).toEqual([{ op: 'set', path: ['agent_policy', 'task_types', 'review', 'github'], value: ['pr:read', 'repo:read'] }]);
  });

  it('a type whose tasks never held the scope (their tokens were for another integration) is not taken it from', () => {
    const role = `role_policy:
  id: dev
  integrations:
    github:
      max_scope: [repo:read, repo:write, pr:read]
    slack:
      max_scope: [chat:write]
  task_types:
    review:
      github: [repo:read, repo:write, pr:read]
    release:
      github: [repo:read, repo:write]
    notify:
      github: [repo:write]
      slack: [chat:write]
`;
    const agent = `agent_policy:
  id: code-review-agent
  roles: [dev]
  per_task_downscope: true
`;
    const r = run({ 'integrations/github.yaml': GITHUB, 'roles/dev.yaml': role, 'agents/a.yaml': agent }, (b) =>
      releasing(b)
        .grant({ agent: AGENT, integration: 'slack', scopes: ['chat:write'], days: 30, task_type: 'notify' })
        .use({ agent: AGENT, integration: 'slack', scope: 'chat:write', days: 30, task_type: 'notify' }),
    );
    expect(kinds(r)).toEqual(['move_to_task_type github repo:write']);
    expect(r.suggestions[0]?.proposal).toMatchObject({ task_type: 'release', from_task_types: ['review'] });
    expect(r.suggestions[0]?.proposal.edits).toEqual([{ op: 'set', path: ['agent_policy', 'task_types', 'review', 'github'], value: ['pr:read', 'repo:read'] }]);
  });

  it('tokens of tasks without a type: not suggested (task types would refuse them), and said so', () => {
    const r = run({ 'integrations/github.yaml': GITHUB, 'agents/a.yaml': RELEASE }, (b) =>
      releasing(b).grant({ agent: AGENT, integration: 'github', scopes: ['repo:read'], days: 1 }),
    );
    expect(kinds(r)).toEqual([]);
    expect(notes(r, 'untyped_tasks')).toEqual(['github repo:write']);
  });

  it('a scope used by two task types stays where it is', () => {
    const r = run({ 'integrations/github.yaml': GITHUB, 'agents/a.yaml': RELEASE }, (b) =>
      releasing(b).use({ agent: AGENT, integration: 'github', scope: 'repo:write', days: 1, task_type: 'review' }),
    );
    expect(kinds(r)).toEqual([]);
  });
});

describe('identity', () => {
  it('the id is stable, and the evidence hash ignores counts: a dismissed suggestion does not come back for a few more tokens', () => {
    const a = run(FILES, (b) => reviewing(b)).suggestions[0] as Suggestion;
    const b = run(FILES, (x) => reviewing(x).grant({ agent: AGENT, integration: 'github', scopes: ['repo:write'], days: 3 })).suggestions[0] as Suggestion;
    expect(b.id).toBe(a.id);
    expect(b.evidence.scope?.granted).toBe(183);
    expect(b.evidence_hash).toBe(a.evidence_hash);
  });

  it('the evidence hash changes with the confidence', () => {
    const high = run(FILES, (b) => reviewing(b)).suggestions[0] as Suggestion;
    const low = run(FILES, (b) => reviewing(b, 31)).suggestions[0] as Suggestion;
    expect(low.evidence.confidence).toBe('low');
    expect(low.evidence_hash).not.toBe(high.evidence_hash);
  });
});

describe('never widens (property)', () => {
  const ROLE = `role_policy:
  id: dev
  integrations:
    github:
      max_scope: [repo:read, repo:write, pr:read, pr:write, issues:read]
      deny_scope: [admin:org]
  task_types:
    review:
      github: [repo:read, pr:read, pr:write]
    release:
      github: [repo:read, repo:write]
  token_ttl: 1800
`;
  const POLICIES: Record<string, string> = {
    'integrations/github.yaml': GITHUB,
    'roles/dev.yaml': ROLE,
    'agents/plain.yaml': `agent_policy:
  id: plain
  integrations:
    github:
      max_scope:
        - repo:read
        - repo:write   # writes
        - pr:read
        - pr:write
      deny_scope: [admin:org]
      bind:
        pr:write: { resource: repository, context: repo }
    slack:
      max_scope: [ chat:write, channels:read ]
  token_ttl: 7200
`,
    'agents/typed.yaml': `agent_policy:
  id: typed
  integrations:
    github:
      max_scope: [repo:read, repo:write, pr:read, issues:read]
  per_task_downscope: true
  task_types:
    review:
      github: [repo:read, pr:read, repo:write]
    release:
      github: [repo:read, repo:write]
    triage:
      github: [issues:read]
`,
    'agents/roled.yaml': `agent_policy:
  id: roled
  roles: [dev]
  integrations:
    github:
      max_scope: [repo:read, repo:write, pr:read, pr:write]
  per_task_downscope: true
  token_ttl: 900
`,
    'agents/inherits.yaml': `agent_policy:
  id: inherits
  roles: [dev]
`,
  };
  const AGENTS = ['plain', 'typed', 'roled', 'inherits'];
  const SCOPES: Record<string, string[]> = { github: ['repo:read', 'repo:write', 'pr:read', 'pr:write', 'issues:read', 'admin:org'], slack: ['chat:write', 'channels:read'] };
  const TYPES = ['review', 'release', 'triage', ''];
  const { policy: before } = policyOf(POLICIES);

  const activity = fc.record({
    kind: fc.constantFrom('grant', 'use', 'ask'),
    agent: fc.constantFrom(...AGENTS),
    integration: fc.constantFrom('github', 'slack'),
    scopeIndex: fc.nat(),
    scopeCount: fc.integer({ min: 1, max: 4 }),
    // Tasks without a type are rare (they rule task types out for the agent).
    task_type: fc.oneof({ arbitrary: fc.constantFrom(...TYPES.filter((t) => t !== '')), weight: 12 }, { arbitrary: fc.constant(''), weight: 1 }),
    from: fc.integer({ min: 0, max: 80 }),
    days: fc.integer({ min: 1, max: 90 }),
    perDay: fc.integer({ min: 1, max: 3 }),
    source: fc.constantFrom('proxy' as const, 'resource_server' as const),
  });
  type Activity = typeof activity extends fc.Arbitrary<infer A> ? A : never;
  /** A scope granted to tasks of several types and used by one of them only: what move_to_task_type is about. */
  const specialist = fc
    .record({
      agent: fc.constantFrom(...AGENTS),
      scopeIndex: fc.nat(),
      type: fc.constantFrom('review', 'release', 'triage'),
      others: fc.subarray(['review', 'release', 'triage'], { minLength: 1 }),
      days: fc.integer({ min: 30, max: 90 }),
      source: fc.constantFrom('proxy' as const, 'resource_server' as const),
    })
    .map(({ agent, scopeIndex, type, others, days, source }): Activity[] => {
      const base = { agent, integration: 'github' as const, scopeCount: 3, from: 0, days, perDay: 1, source };
      return [type, ...others.filter((t) => t !== type)].flatMap((t): Activity[] => [
        { ...base, kind: 'grant', scopeIndex, task_type: t },
        { ...base, kind: 'use', scopeIndex: scopeIndex + 1, task_type: t },
        ...(t === type ? [{ ...base, kind: 'use' as const, scopeIndex, task_type: t }] : []),
      ]);
    });
  // Most agent and integration pairs have an observed longest use (a TTL is suggested only when all of an agent's do).
  const span = fc.option(fc.record({ max: fc.integer({ min: 0, max: 5000 }), tokens: fc.integer({ min: 1, max: 200 }) }), { freq: 5 });
  const spans = fc.tuple(...AGENTS.flatMap((agent) => ['github', 'slack'].map((integration) => span.map((s) => (s === null ? null : { agent, integration, ...s })))));

  it('every suggestion, applied to its file, compiles and grants nothing the policy did not grant', () => {
    const seen: Record<string, number> = { remove_scope: 0, move_to_task_type: 0, shorten_ttl: 0 };
    fc.assert(
      fc.property(fc.array(activity, { minLength: 1, maxLength: 25 }), fc.array(specialist, { maxLength: 3 }), spans, fc.constantFrom(10, 30), (random, specialists, spanList, minDays) => {
        const b = new UsageBuilder();
        for (const a of [...random, ...specialists.flat()]) {
          const list = SCOPES[a.integration] as string[];
          const days = Math.min(a.days, 90 - a.from);
          const scope = list[a.scopeIndex % list.length] as string;
          const common = { agent: a.agent, integration: a.integration, from: a.from, days, perDay: a.perDay, task_type: a.task_type };
          if (a.kind === 'grant') b.grant({ ...common, scopes: Array.from({ length: a.scopeCount }, (_, i) => list[(a.scopeIndex + i) % list.length] as string).filter((s, i, all) => all.indexOf(s) === i) });
          else if (a.kind === 'use') b.use({ ...common, scope, source: a.source });
          else b.ask({ ...common, scope, denied: a.scopeIndex % 2 === 0 });
        }
        for (const s of spanList) if (s !== null) b.span(s.agent, s.integration, s.max, s.tokens);
        const { policy, files } = policyOf(POLICIES);
        const result = suggestPolicies({ summary: b.build(), policy, files, thresholds: { ...DEFAULT_THRESHOLDS, min_days: minDays, min_tokens: 5 }, now: NOW });
        for (const s of result.suggestions) {
          seen[s.kind] = (seen[s.kind] ?? 0) + 1;
          const file = s.file as string;
          const text = editYaml(POLICIES[file] as string, s.proposal.edits);
          const after = buildPolicySet(Object.entries({ ...POLICIES, [file]: text }).map(([f, t]) => ({ file: f, text: t })));
          expect(widenings(before, after), `${s.kind} ${s.target} on ${file}`).toEqual([]);
          expect(after.warnings.filter((w) => w.file === file).length, `${s.kind} ${s.target}: no new warning`).toBeLessThanOrEqual(before.warnings.filter((w) => w.file === file).length);
        }
      }),
      { numRuns: 150 },
    );
    // The property is only as good as what it ran on: every kind of suggestion was made and checked.
    expect(seen['remove_scope'], JSON.stringify(seen)).toBeGreaterThan(40);
    expect(seen['move_to_task_type'], JSON.stringify(seen)).toBeGreaterThan(15);
    expect(seen['shorten_ttl'], JSON.stringify(seen)).toBeGreaterThan(20);
  });

  it('the property can fail: a widening is caught', () => {
    const file = 'agents/plain.yaml';
    const text = editYaml(POLICIES[file] as string, [{ op: 'set', path: ['agent_policy', 'token_ttl'], value: 86400 }]);
    const after = buildPolicySet(Object.entries({ ...POLICIES, [file]: text }).map(([f, t]) => ({ file: f, text: t })));
    expect(widenings(before, after)).toEqual(['plain: token_ttl 7200 → 86400']);
  });
});
