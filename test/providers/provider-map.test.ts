/**
 * Provider maps (`provider_map:`, docs/providers.md), policy side: the schema, compile errors with file and line,
 * the compiled `PolicySet.providerMaps` (outside the Rego data document, so the revision is unchanged), and the
 * templates' fill rules that keep a record id from widening an ARN.
 */
import { describe, expect, it } from 'vitest';
import { isPdpError, type PdpError } from '../../src/errors/pdp-error.js';
import { buildPolicySet } from '../../src/policy/policy-loader.js';
import { longestSessionPolicyChars, parseMapTemplate, placeholderBoundaryProblem } from '../../src/policy/provider-map-compiler.js';
import { sessionPolicy } from '../../src/providers/aws-sts.js';
import { fillTemplate, TemplateRefused } from '../../src/providers/map-templates.js';
import { providerConfigProblems } from '../../src/providers/provider-minter.js';
import { stsName } from '../../src/providers/provider-limits.js';

const INTEGRATION = `integration:
  id: s3-reports
  scopes: [reports:read, reports:write]
`;
const MAP = `provider_map:
  integration: s3-reports
  kind: aws
  scopes:
    reports:read:
      - actions: [s3:ListBucket, s3:GetObject]
        resources: ["arn:aws:s3:::acme/customers/{record.id}/*"]
        conditions: { StringEquals: { "aws:RequestedRegion": ["{task.region}"] } }
    reports:write:
      - actions: [s3:PutObject]
        resources: ["arn:aws:s3:::acme/customers/{record.id}/*"]
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

describe('provider_map documents', () => {
  it('compile into PolicySet.providerMaps, outside the data document and the revision', () => {
    const withMap = build({ 'integrations/s3.yaml': INTEGRATION, 'providers/s3.yaml': MAP });
    const without = build({ 'integrations/s3.yaml': INTEGRATION });
    expect(withMap.revision).toBe(without.revision);
    expect(JSON.stringify(withMap.data)).not.toContain('s3:GetObject');
    const map = withMap.providerMaps?.['s3-reports'];
    if (map?.kind !== 'aws') throw new Error('expected an aws map');
    expect(map.scopes['reports:read']?.[0]?.actions).toEqual(['s3:GetObject', 's3:ListBucket']);
    expect(withMap.files.map((f) => f.path)).toContain('providers/s3.yaml');
  });

  it('refuses an unmapped scope, a scope the integration lacks, a bad template and a second map, each with file and line', () => {
    const unmapped = MAP.replace(/    reports:write:\n.*\n.*\n/, '');
    const err = refusal({
      'integrations/s3.yaml': INTEGRATION,
      'providers/a.yaml': unmapped,
      'providers/b.yaml': MAP.replace('{record.id}/*"]\n        conditions', '{record.name}/*"]\n        conditions').replace('reports:write:', 'reports:delete:'),
    });
    const details = err.details.map((d) => `${d.file}:${d.line} ${d.message}`);
    expect(details).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^providers\/a\.yaml:4 scope "reports:write" of integration s3-reports .* is not mapped/),
        expect.stringMatching(/^providers\/b\.yaml:2 a second provider map for integration s3-reports: the first is providers\/a\.yaml:2/),
      ]),
    );
    // The second map is reported as a duplicate only; its own errors show when it stands alone.
    const alone = refusal({ 'integrations/s3.yaml': INTEGRATION, 'providers/b.yaml': MAP.replace('{record.id}/*"]\n        conditions', '{record.name}/*"]\n        conditions').replace('reports:write:', 'reports:delete:') });
    const own = alone.details.map((d) => `${d.file}:${d.line} ${d.message}`);
    expect(own).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^providers\/b\.yaml:7 invalid template: \{record\.name\} is not/),
        expect.stringMatching(/^providers\/b\.yaml:\d+ "reports:delete" is not a scope of integration s3-reports/),
        expect.stringMatching(/scope "reports:write" of integration s3-reports .* is not mapped/),
      ]),
    );
  });

  it('refuses a map for an integration without a scopes list, and an unknown kind (schema)', () => {
    expect(refusal({ 'providers/s3.yaml': MAP }).details.map((d) => d.message)).toEqual(
      expect.arrayContaining([expect.stringContaining('has no integration file listing its scopes')]),
    );
    expect(refusal({ 'integrations/s3.yaml': INTEGRATION, 'providers/s3.yaml': MAP.replace('kind: aws', 'kind: github') }).details[0]?.file).toBe('providers/s3.yaml');
  });
});

describe('an agent whose token_ttl is below its provider minimum', () => {
  it('is warned about, with file and line', () => {
    const agent = (ttl: number) =>
      `agent_policy:\n  id: a\n  integrations:\n    s3-reports:\n      max_scope: [reports:read]\n      bind:\n        reports:read: { resource: customer, context: customer_id }\n  token_ttl: ${ttl}\n`;
    const short = build({ 'integrations/s3.yaml': INTEGRATION, 'providers/s3.yaml': MAP, 'agents/a.yaml': agent(300) });
    expect(short.warnings.map((w) => `${w.file}:${w.line} ${w.message}`)).toEqual([
      'agents/a.yaml:8 token_ttl 300 s is below the 900 s a aws credential for s3-reports lives at least: its redeems will be refused (provider_ttl_too_short)',
    ]);
    expect(build({ 'integrations/s3.yaml': INTEGRATION, 'providers/s3.yaml': MAP, 'agents/a.yaml': agent(900) }).warnings).toEqual([]);
  });
});

describe('the config\'s providers against the policy in force (logged at every load)', () => {
  it('names a provider without a map, one of another kind, one for an unknown integration, and a map without a provider', () => {
    const set = build({ 'integrations/s3.yaml': INTEGRATION, 'providers/s3.yaml': MAP, 'integrations/crm.yaml': 'integration:\n  id: crm\n  scopes: [tickets:read]\n' });
    const aws = { kind: 'aws' as const, role_arn: 'arn:aws:iam::123456789012:role/r', region: 'eu-west-1' };
    const problems = providerConfigProblems(
      [
        { integration: 'crm', ...aws },
        { integration: 's3-reports', kind: 'google_workspace' },
        { integration: 'nowhere', ...aws },
      ] as never,
      set,
    );
    expect(problems).toEqual([
      'providers[0] (integration crm, kind aws): the policy has no provider_map for crm: every redeem of it fails (provider_failed)',
      'providers[1] (integration s3-reports, kind google_workspace): the provider_map of s3-reports is of kind aws: every redeem of it fails (provider_failed)',
      'providers[2] (integration nowhere, kind aws): the policy has no integration nowhere',
      'providers[2] (integration nowhere, kind aws): the policy has no provider_map for nowhere: every redeem of it fails (provider_failed)',
    ]);
    expect(providerConfigProblems([], set)).toEqual(["provider_map for s3-reports: no providers[] entry names it, so its tokens are agent-pdp's only (no aws credential is minted)"]);
    expect(providerConfigProblems([{ integration: 's3-reports', ...aws }] as never, set)).toEqual([]);
  });
});

describe('a scope mapped with {record.*} that the agent does not bind to a record', () => {
  it('is warned about, with file and line: its credential would reach whatever record the agent names', () => {
    const agent = (bind: string) => `agent_policy:\n  id: a\n  integrations:\n    s3-reports:\n      max_scope: [reports:read, reports:write]\n${bind}  token_ttl: 900\n`;
    const unbound = build({ 'integrations/s3.yaml': INTEGRATION, 'providers/s3.yaml': MAP, 'agents/a.yaml': agent('      bind:\n        reports:read: { resource: customer, context: customer_id }\n') });
    expect(unbound.warnings.map((w) => `${w.file}:${w.line} ${w.path}: ${w.message}`)).toEqual([
      'agents/a.yaml:5 agent_policy.integrations.s3-reports: reports:write is mapped with {record.*} by the provider map of s3-reports but not bound to a record here: its credential reaches whatever record the agent names (bind it to the task\'s record with bind:)',
    ]);
    const both = '      bind:\n        reports:read: { resource: customer, context: customer_id }\n        reports:write: { resource: customer, context: customer_id }\n';
    expect(build({ 'integrations/s3.yaml': INTEGRATION, 'providers/s3.yaml': MAP, 'agents/a.yaml': agent(both) }).warnings).toEqual([]);
  });
});

describe('templates', () => {
  it('parse {record.id}, {record.type} and {task.<key>} only', () => {
    expect(parseMapTemplate('a/{record.id}/{task.customer_id}')).toEqual([{ text: 'a/' }, { from: 'record', name: 'id' }, { text: '/' }, { from: 'task', name: 'customer_id' }]);
    expect(parseMapTemplate('{record}')).toMatch(/is not/);
    expect(parseMapTemplate('a}b')).toMatch(/unbalanced/);
  });

  it('never put in a value that could widen the pattern, nor a missing one', () => {
    const parts = parseMapTemplate('arn:aws:s3:::acme/customers/{record.id}/*') as Exclude<ReturnType<typeof parseMapTemplate>, string>;
    expect(fillTemplate(parts, { record: { type: 'customer', id: '1234' }, context: null })).toBe('arn:aws:s3:::acme/customers/1234/*');
    for (const id of ['*', '12?', '1/2', '${aws:username}', '', 'a'.repeat(129), 'ü']) {
      expect(() => fillTemplate(parts, { record: { type: 'customer', id }, context: null })).toThrow(TemplateRefused);
    }
    expect(() => fillTemplate(parts, { record: null, context: null })).toThrow(/has no value/);
    const task = parseMapTemplate('{task.n}') as Exclude<ReturnType<typeof parseMapTemplate>, string>;
    expect(fillTemplate(task, { record: null, context: { n: 42 } })).toBe('42');
    expect(() => fillTemplate(task, { record: null, context: { n: true } })).toThrow(TemplateRefused);
  });

  it('the session policy has the granted scopes only, in scope order, conditions filled', () => {
    const set = build({ 'integrations/s3.yaml': INTEGRATION, 'providers/s3.yaml': MAP });
    const map = set.providerMaps!['s3-reports']!;
    if (map.kind !== 'aws') throw new Error('expected an aws map');
    const values = { record: { type: 'customer', id: '77' }, context: { region: 'eu-west-1' } };
    expect(sessionPolicy(map, { scopes: ['reports:read'], values })).toEqual({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: ['s3:GetObject', 's3:ListBucket'], Resource: ['arn:aws:s3:::acme/customers/77/*'], Condition: { StringEquals: { 'aws:RequestedRegion': ['eu-west-1'] } } },
      ],
    });
    expect(sessionPolicy(map, { scopes: ['reports:write', 'reports:read'], values }).Statement.map((s) => s.Action)).toEqual([['s3:GetObject', 's3:ListBucket'], ['s3:PutObject']]);
    expect(() => sessionPolicy(map, { scopes: ['reports:admin'], values })).toThrow(/no statement/);
  });
});

describe('maps that can exceed what the provider takes are warned about, with file and line', () => {
  const bigMap = (statements: number) =>
    `provider_map:\n  integration: s3-reports\n  kind: aws\n  scopes:\n    reports:read:\n` +
    Array.from({ length: statements }, (_, i) => `      - actions: [s3:GetObject]\n        resources: ["arn:aws:s3:::acme-${i}/customers/{record.id}/*"]\n`).join('') +
    `    reports:write:\n      - actions: [s3:PutObject]\n        resources: ["arn:aws:s3:::acme/customers/{record.id}/*"]\n`;

  it('an AWS map whose session policy for all its scopes, values at their longest, passes 2048 characters', () => {
    const warned = build({ 'integrations/s3.yaml': INTEGRATION, 'providers/s3.yaml': bigMap(9) });
    expect(warned.warnings.map((w) => `${w.file}:${w.line} ${w.message}`)).toEqual([
      expect.stringMatching(/^providers\/s3\.yaml:4 the session policy of all these scopes together, each template value at its longest \(128 characters\), is \d+ characters: STS takes at most 2048/),
    ]);
    expect(build({ 'integrations/s3.yaml': INTEGRATION, 'providers/s3.yaml': bigMap(8) }).warnings).toEqual([]);
    expect(build({ 'integrations/s3.yaml': INTEGRATION, 'providers/s3.yaml': MAP }).warnings).toEqual([]);
  });

  it('the bound the warning computes is the length of the policy the minter would send with 128-character values', () => {
    for (const text of [MAP, bigMap(3), bigMap(9)]) {
      const map = build({ 'integrations/s3.yaml': INTEGRATION, 'providers/s3.yaml': text }).providerMaps!['s3-reports']!;
      if (map.kind !== 'aws') throw new Error('expected an aws map');
      const longest = 'x'.repeat(128);
      const policy = sessionPolicy(map, { scopes: Object.keys(map.scopes), values: { record: { type: longest, id: longest }, context: { region: longest } } });
      expect(longestSessionPolicyChars(map)).toBe(JSON.stringify(policy).length);
    }
  });

  it('a GCS map whose scopes together have more than 10 access boundary rules', () => {
    const gcs = (rules: number) =>
      `provider_map:\n  integration: files\n  kind: gcp_storage\n  scopes:\n    files:read:\n` +
      Array.from({ length: rules - 1 }, (_, i) => `      - { bucket: bucket-${i}, role: roles/storage.objectViewer }\n`).join('') +
      `    files:write:\n      - { bucket: bucket-w, role: roles/storage.objectCreator, object_prefix: "customers/{record.id}/" }\n`;
    const integration = 'integration:\n  id: files\n  scopes: [files:read, files:write]\n';
    expect(build({ 'integrations/files.yaml': integration, 'providers/files.yaml': gcs(11) }).warnings.map((w) => `${w.file}:${w.line} ${w.message}`)).toEqual([
      'providers/files.yaml:4 all these scopes together map to 11 access boundary rules: Google STS takes at most 10, so a grant of many of them is refused before Google is called (provider_failed)',
    ]);
    expect(build({ 'integrations/files.yaml': integration, 'providers/files.yaml': gcs(10) }).warnings).toEqual([]);
  });
});

describe('stsName: RoleSessionName and SourceIdentity in a form STS takes, never shared by two values', () => {
  const STS_TAKES = /^[\w+=,.@-]{2,64}$/;
  it.each([
    { note: 'an agent id STS takes is itself', value: 'reporting-agent', same: true },
    { note: '64 characters is itself', value: 'a'.repeat(64), same: true },
    { note: 'one character is derived', value: 'r', same: false },
    { note: '65 characters is derived', value: 'a'.repeat(65), same: false },
    { note: 'a character STS refuses is derived', value: 'team/agent', same: false },
    { note: 'a value with + is derived (a derived one has +)', value: 'a+b', same: false },
  ])('$note', ({ value, same }) => {
    const name = stsName(value);
    expect(name).toMatch(STS_TAKES);
    expect(name === value).toBe(same);
    expect(stsName(value)).toBe(name);
    if (!same) expect(name).toMatch(/\+[0-9a-f]{32}$/);
  });

  it('two agents sharing their first 64 characters get two identities (cutting gave them one)', () => {
    const prefix = `reporting-${'x'.repeat(54)}`;
    const a = stsName(`${prefix}-eu`);
    const b = stsName(`${prefix}-us`);
    expect(a).not.toBe(b);
    expect(a.startsWith('reporting-')).toBe(true);
    // A derived name is never an agent id used as is: agent ids have no +.
    expect(stsName(a)).not.toBe(a);
  });
});

describe('a placeholder ends where a value cannot go on: the end, / or :', () => {
  const awsMap = (resource: string, condition = 'customers/{record.id}/*') =>
    `provider_map:\n  integration: s3-reports\n  kind: aws\n  scopes:\n    reports:read:\n      - actions: [s3:GetObject]\n        resources: ["${resource}"]\n        conditions: { StringLike: { "s3:prefix": ["${condition}"] } }\n    reports:write:\n      - actions: [s3:PutObject]\n        resources: ["arn:aws:s3:::acme/{record.id}/*"]\n`;
  const gcsMap = (prefix: string) =>
    `provider_map:\n  integration: files\n  kind: gcp_storage\n  scopes:\n    files:read:\n      - { bucket: acme-files, role: roles/storage.objectViewer, object_prefix: "${prefix}" }\n`;
  const files = (map: string): Record<string, string> =>
    map.includes('gcp_storage') ? { 'integrations/files.yaml': 'integration:\n  id: files\n  scopes: [files:read]\n', 'providers/files.yaml': map } : { 'integrations/s3.yaml': INTEGRATION, 'providers/s3.yaml': map };

  it.each([
    { note: 'resource: {record.id}* (acme would match acme-evil/…)', map: awsMap('arn:aws:s3:::bucket/{record.id}*'), line: 7, after: '"\\*"' },
    { note: 'resource: {record.id}? ', map: awsMap('arn:aws:s3:::bucket/{record.id}?/x'), line: 7, after: '"\\?"' },
    { note: 'resource: a letter after the placeholder', map: awsMap('arn:aws:s3:::bucket/{record.id}x/*'), line: 7, after: '"x"' },
    { note: 'resource: a - after the placeholder', map: awsMap('arn:aws:s3:::bucket/{record.id}-reports/*'), line: 7, after: '"-"' },
    { note: 'resource: a . after the placeholder', map: awsMap('arn:aws:s3:::bucket/{record.id}.csv'), line: 7, after: '"\\."' },
    { note: 'resource: two placeholders side by side', map: awsMap('arn:aws:s3:::bucket/{record.type}{record.id}/*'), line: 7, after: '\\{record\\.id\\}' },
    { note: 'condition value: {record.id}*', map: awsMap('arn:aws:s3:::bucket/{record.id}/*', 'customers/{record.id}*'), line: 8, after: '"\\*"' },
    { note: 'GCS object prefix: {record.id}- then /', map: gcsMap('customers/{record.id}-x/'), line: 6, after: '"-"' },
  ])('refused with file and line: $note', ({ map, line, after }) => {
    const details = refusal(files(map)).details.map((d) => `${d.file}:${d.line} ${d.message}`);
    expect(details).toEqual([expect.stringMatching(new RegExp(`^providers/(s3|files)\\.yaml:${line} invalid template: \\{record\\.(id|type)\\} is followed by ${after}: a value could be continued there`))]);
  });

  it.each([
    { note: 'a / then *', map: awsMap('arn:aws:s3:::bucket/{record.id}/*') },
    { note: 'the end of the text', map: awsMap('arn:aws:s3:::bucket/{record.id}', '{record.id}') },
    { note: 'a : (an ARN field)', map: awsMap('arn:aws:dynamodb:{record.type}:123456789012:table/{record.id}') },
    { note: 'a GCS prefix ending in /', map: gcsMap('customers/{record.id}/') },
  ])('accepted: $note', ({ map }) => {
    expect(() => build(files(map))).not.toThrow();
  });

  it('placeholderBoundaryProblem, the rule on a parsed template', () => {
    expect(placeholderBoundaryProblem(parseMapTemplate('a/{record.id}*') as Exclude<ReturnType<typeof parseMapTemplate>, string>)).toMatch(/is followed by "\*"/);
    expect(placeholderBoundaryProblem(parseMapTemplate('a/{record.id}/*') as Exclude<ReturnType<typeof parseMapTemplate>, string>)).toBeNull();
  });
});
