import { spawnSync } from 'node:child_process';
import { chmod, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { isPdpError, type ErrorDetail, type PdpError } from '../../src/errors/pdp-error.js';
import { PolicyEngine } from '../../src/pdp/policy-engine.js';
import { buildPolicySet } from '../../src/policy/policy-loader.js';
import { CLI, ensureBuilt } from '../audit-e2e/cli.js';
import { policyDir, SEED_POLICY, yaml } from './policy-fixtures.js';

/*
 * Endpoint maps (issue 17), policy side: the `endpoint_map` kind's schema, its compile errors with file and line,
 * the compiled `PolicySet.endpointMaps`, its absence from the Rego data document (and the revision), and reloads.
 */

const GITHUB = yaml`
  integration:
    id: github
    scopes: [repo:read, repo:write, pr:read, pr:write, issues:read, admin:org, delete_repo]
`;

const MAP = yaml`
  endpoint_map:
    integration: github
    description: a few endpoints
    endpoints:
      - method: GET
        path: /repos/{owner}/{repo}/pulls/{pull_number}
        scope: pr:read
        record: { type: repo, id: "{owner}/{repo}" }
      - method: GET
        path: /repos/{owner}/{repo}/contents/{path+}
        scope: repo:read
        record: { type: repo, id: "{owner}/{repo}" }
      - method: POST
        path: /chat.postMessage
        scope: repo:write
        record: { type: channel, id: "c-{body.channel}" }
      - method: GET
        path: /search/{kind}
        scope: repo:read
        record: { type: thing, id: "{kind}/{query.q}" }
      - method: GET
        path: /meta
        scope: repo:read
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

describe('endpoint maps compile into PolicySet.endpointMaps', () => {
  it('compiles templates, records and the fields a record reads; entries keep their file order', () => {
    const set = build({ 'github.yaml': GITHUB, 'proxy/github.yaml': MAP, 'a.yaml': SEED_POLICY });
    const map = set.endpointMaps['github'];
    expect(map?.integration).toBe('github');
    expect(map?.endpoints).toEqual([
      {
        method: 'GET',
        path: '/repos/{owner}/{repo}/pulls/{pull_number}',
        segments: [{ literal: 'repos' }, { param: 'owner', rest: false }, { param: 'repo', rest: false }, { literal: 'pulls' }, { param: 'pull_number', rest: false }],
        scope: 'pr:read',
        record: { type: 'repo', id: [{ from: 'path', name: 'owner' }, { text: '/' }, { from: 'path', name: 'repo' }] },
        readsQuery: [],
        readsBody: [],
      },
      {
        method: 'GET',
        path: '/repos/{owner}/{repo}/contents/{path+}',
        segments: [{ literal: 'repos' }, { param: 'owner', rest: false }, { param: 'repo', rest: false }, { literal: 'contents' }, { param: 'path', rest: true }],
        scope: 'repo:read',
        record: { type: 'repo', id: [{ from: 'path', name: 'owner' }, { text: '/' }, { from: 'path', name: 'repo' }] },
        readsQuery: [],
        readsBody: [],
      },
      {
        method: 'POST',
        path: '/chat.postMessage',
        segments: [{ literal: 'chat.postMessage' }],
        scope: 'repo:write',
        record: { type: 'channel', id: [{ text: 'c-' }, { from: 'body', name: 'channel' }] },
        readsQuery: [],
        readsBody: ['channel'],
      },
      {
        method: 'GET',
        path: '/search/{kind}',
        segments: [{ literal: 'search' }, { param: 'kind', rest: false }],
        scope: 'repo:read',
        record: { type: 'thing', id: [{ from: 'path', name: 'kind' }, { text: '/' }, { from: 'query', name: 'q' }] },
        readsQuery: ['q'],
        readsBody: [],
      },
      { method: 'GET', path: '/meta', segments: [{ literal: 'meta' }], scope: 'repo:read', record: null, readsQuery: [], readsBody: [] },
    ]);
    expect(Object.isFrozen(map?.endpoints[0]?.segments)).toBe(true);
  });

  it('is {} without maps', () => {
    expect(build({ 'a.yaml': SEED_POLICY }).endpointMaps).toEqual({});
  });

  it('stays out of the Rego data document: same data and revision with or without the map, the map file still listed', () => {
    const without = build({ 'github.yaml': GITHUB, 'a.yaml': SEED_POLICY });
    const withMap = build({ 'github.yaml': GITHUB, 'a.yaml': SEED_POLICY, 'proxy/github.yaml': MAP });
    const changed = build({ 'github.yaml': GITHUB, 'a.yaml': SEED_POLICY, 'proxy/github.yaml': MAP.replace('scope: pr:read', 'scope: pr:write') });
    expect(withMap.data).toEqual(without.data);
    expect(withMap.revision).toBe(without.revision);
    expect(changed.revision).toBe(without.revision);
    expect(changed.endpointMaps['github']?.endpoints[0]?.scope).toBe('pr:write');
    expect(withMap.files.map((f) => f.path)).toEqual(['a.yaml', 'github.yaml', 'proxy/github.yaml']);
    expect(changed.files.find((f) => f.path === 'proxy/github.yaml')?.sha256).not.toBe(withMap.files.find((f) => f.path === 'proxy/github.yaml')?.sha256);
  });

  it('accepts a map for an integration without an integration file that an agent names (its scopes unchecked)', () => {
    const set = build({ 'a.yaml': SEED_POLICY, 'proxy/github.yaml': MAP.replace('scope: pr:read', 'scope: anything:at-all') });
    expect(set.endpointMaps['github']?.endpoints[0]?.scope).toBe('anything:at-all');
  });

  it('keeps literal and param templates of one shape apart when their literals differ', () => {
    const map = yaml`
      endpoint_map:
        integration: github
        endpoints:
          - { method: GET, path: "/a/{x}/c", scope: repo:read }
          - { method: GET, path: "/a/b/{y}", scope: repo:read }
          - { method: GET, path: "/a/{x}/{y+}", scope: repo:read }
          - { method: POST, path: "/a/{x}/c", scope: repo:write }
    `;
    expect(build({ 'github.yaml': GITHUB, 'm.yaml': map }).endpointMaps['github']?.endpoints).toHaveLength(4);
  });
});

describe('endpoint map errors carry file and line', () => {
  const entry = (fields: string): string => yaml`
    endpoint_map:
      integration: github
      endpoints:
        - { method: GET, path: "/repos/{owner}/{repo}", scope: repo:read }
        - ${fields}
  `;
  it.each([
    {
      note: 'a scope the integration does not list',
      map: entry('{ method: GET, path: "/x", scope: repo:raed }'),
      want: 'm.yaml:5 endpoint_map.endpoints[1].scope: "repo:raed" is not a scope of integration github (see the scopes list in github.yaml)',
    },
    {
      note: 'two entries of one method and path shape (params renamed)',
      map: entry('{ method: GET, path: "/repos/{a}/{b}", scope: repo:read }'),
      want: 'm.yaml:5 endpoint_map.endpoints[1].path: GET /repos/{a}/{b} matches the same requests as endpoints[0] (m.yaml:4): the same method and path shape (params renamed are the same shape)',
    },
    {
      note: 'a rest param that is not last',
      map: entry('{ method: GET, path: "/c/{path+}/raw", scope: repo:read }'),
      want: 'm.yaml:5 endpoint_map.endpoints[1].path: invalid path template: segment 2 ("{path+}"): {path+} takes the rest of the path, so it must be the last segment',
    },
    {
      note: 'a record naming a path param the path does not have',
      map: entry('{ method: GET, path: "/repos/{owner}/{name}/x", scope: repo:read, record: { type: repo, id: "{owner}/{repo}" } }'),
      want: 'm.yaml:5 endpoint_map.endpoints[1].record.id: {repo} is not a param of this entry\'s path ({owner}, {name})',
    },
    {
      note: 'an empty segment',
      map: entry('{ method: GET, path: "/a//b", scope: repo:read }'),
      want: expect.stringMatching(/^m\.yaml:5 endpoint_map\.endpoints\[1\]\.path: invalid path template: segment 2 \(""\): empty segments/),
    },
    {
      note: 'a trailing slash',
      map: entry('{ method: GET, path: "/a/", scope: repo:read }'),
      want: expect.stringMatching(/^m\.yaml:5 .*segment 2 \(""\): empty segments/),
    },
    {
      note: 'a param inside a segment',
      map: entry('{ method: GET, path: "/a/v{n}", scope: repo:read }'),
      want: expect.stringMatching(/^m\.yaml:5 .*segment 2 \("v\{n\}"\): a param is a whole segment/),
    },
    {
      note: 'percent-encoding in a literal',
      map: entry('{ method: GET, path: "/a%2Fb", scope: repo:read }'),
      want: expect.stringMatching(/^m\.yaml:5 .*segment 1 \("a%2Fb"\): a literal segment holds .* \(no percent-encoding\)$/),
    },
    {
      note: 'a dot segment',
      map: entry('{ method: GET, path: "/a/../b", scope: repo:read }'),
      want: expect.stringMatching(/^m\.yaml:5 .*segment 2 \("\.\."\): \. and \.\. are never matched/),
    },
    {
      note: 'a bad param name',
      map: entry('{ method: GET, path: "/a/{1x}", scope: repo:read }'),
      want: expect.stringMatching(/^m\.yaml:5 .*segment 2 \("\{1x\}"\): a param name is/),
    },
    {
      note: 'a param twice',
      map: entry('{ method: GET, path: "/a/{x}/{x}", scope: repo:read }'),
      want: 'm.yaml:5 endpoint_map.endpoints[1].path: invalid path template: segment 3 ("{x}"): param {x} appears twice',
    },
    {
      note: 'an unclosed placeholder in the record id',
      map: entry('{ method: GET, path: "/a/{x}", scope: repo:read, record: { type: t, id: "{x" } }'),
      want: 'm.yaml:5 endpoint_map.endpoints[1].record.id: invalid record id template: the { at character 1 is never closed',
    },
    {
      note: 'a stray } in the record id',
      map: entry('{ method: GET, path: "/a/{x}", scope: repo:read, record: { type: t, id: "{x}}" } }'),
      want: 'm.yaml:5 endpoint_map.endpoints[1].record.id: invalid record id template: a } at character 4 closes nothing',
    },
    {
      note: 'a record id naming nothing',
      map: entry('{ method: GET, path: "/a/{x}", scope: repo:read, record: { type: t, id: "fixed" } }'),
      want: expect.stringMatching(/^m\.yaml:5 .*record\.id: invalid record id template: names no \{param\}.*every call would name the same record$/),
    },
    {
      note: 'a rest param written with its +',
      map: entry('{ method: GET, path: "/a/{p+}", scope: repo:read, record: { type: t, id: "{p+}" } }'),
      want: "m.yaml:5 endpoint_map.endpoints[1].record.id: invalid record id template: write {p}, not {p+}: the record reads the param's value",
    },
    {
      note: 'a field of neither query nor body',
      map: entry('{ method: GET, path: "/a", scope: repo:read, record: { type: t, id: "{header.x}" } }'),
      want: 'm.yaml:5 endpoint_map.endpoints[1].record.id: invalid record id template: {header.x}: a field is read from query or body ({query.x}, {body.x})',
    },
    {
      note: 'two placeholders that could split two ways',
      map: entry('{ method: POST, path: "/a", scope: repo:read, record: { type: t, id: "{body.channel}/{body.ts}" } }'),
      want: expect.stringMatching(/^m\.yaml:5 .*record\.id: invalid record id template: \{body\.channel\} is followed by another placeholder/),
    },
    {
      note: 'adjacent path params',
      map: entry('{ method: GET, path: "/a/{x}/{y}", scope: repo:read, record: { type: t, id: "{x}{y}" } }'),
      want: expect.stringMatching(/^m\.yaml:5 .*\{x\} is followed by another placeholder/),
    },
    {
      note: 'a body read on GET',
      map: entry('{ method: GET, path: "/chat.get", scope: repo:read, record: { type: channel, id: "{body.channel}" } }'),
      want: 'm.yaml:5 endpoint_map.endpoints[1].record.id: {body.channel}: a GET request has no body to read; use {query.channel}',
    },
  ])('$note', ({ map, want }) => {
    const err = refusal({ 'github.yaml': GITHUB, 'm.yaml': map });
    expect(err.code).toBe('policy_invalid');
    expect(err.details.map(at)).toEqual([want]);
  });

  it('two maps for one integration: the second names the first', () => {
    const err = refusal({ 'github.yaml': GITHUB, 'proxy/a.yaml': MAP, 'proxy/b.yaml': MAP });
    expect(err.details.map(at)).toEqual(['proxy/b.yaml:2 endpoint_map.integration: a second endpoint map for integration github: the first is proxy/a.yaml:2']);
  });

  it('a map for an integration nobody declares or names', () => {
    const err = refusal({ 'github.yaml': GITHUB, 'm.yaml': MAP.replace('integration: github', 'integration: githb') });
    expect(err.details.map(at)).toEqual(['m.yaml:2 endpoint_map.integration: integration "githb" has no integration file and no agent names it: is it misspelt?']);
  });

  it.each([
    {
      note: 'a lower-case method',
      map: 'endpoint_map:\n  integration: github\n  endpoints:\n    - { method: get, path: /x, scope: repo:read }\n',
      want: 'm.yaml:4 endpoint_map.endpoints[0].method: "get" is not one of: GET, HEAD, POST, PUT, PATCH, DELETE',
    },
    {
      note: 'an unknown key',
      map: 'endpoint_map:\n  integration: github\n  endpoints:\n    - { method: GET, path: /x, scopes: repo:read }\n',
      want: 'm.yaml:4 endpoint_map.endpoints[0].scopes: unknown key "scopes"; expected one of: method, path, scope, record',
      also: ['m.yaml:4 endpoint_map.endpoints[0]: missing required key "scope"'],
    },
    {
      note: 'a missing scope',
      map: 'endpoint_map:\n  integration: github\n  endpoints:\n    - { method: GET, path: /x }\n',
      want: 'm.yaml:4 endpoint_map.endpoints[0]: missing required key "scope"',
    },
    {
      note: 'a path without its leading /',
      map: 'endpoint_map:\n  integration: github\n  endpoints:\n    - { method: GET, path: x/y, scope: repo:read }\n',
      want: expect.stringMatching(/^m\.yaml:4 endpoint_map\.endpoints\[0\]\.path: "x\/y" is not a valid value/),
    },
    {
      note: 'a record without an id',
      map: 'endpoint_map:\n  integration: github\n  endpoints:\n    - { method: GET, path: /x, scope: repo:read, record: { type: repo } }\n',
      want: 'm.yaml:4 endpoint_map.endpoints[0].record: missing required key "id"',
    },
    {
      note: 'no endpoints',
      map: 'endpoint_map:\n  integration: github\n  endpoints: []\n',
      want: 'm.yaml:3 endpoint_map.endpoints: must list at least one',
    },
    {
      note: 'a record id over 256 characters',
      map: `endpoint_map:\n  integration: github\n  endpoints:\n    - { method: GET, path: "/x/{a}", scope: repo:read, record: { type: t, id: "{a}${'x'.repeat(254)}" } }\n`,
      want: 'm.yaml:4 endpoint_map.endpoints[0].record.id: must be at most 256 characters',
    },
    {
      note: 'a map beside another kind in one file',
      map: 'endpoint_map:\n  integration: github\n  endpoints:\n    - { method: GET, path: /x, scope: repo:read }\nintegration:\n  id: x\n',
      want: expect.stringMatching(/^m\.yaml:1 : a policy file holds exactly one of: agent_policy, role_policy, integration, endpoint_map, provider_map$/),
    },
  ] as { note: string; map: string; want: unknown; also?: string[] }[])('schema: $note', ({ map, want, also = [] }) => {
    const err = refusal({ 'github.yaml': GITHUB, 'm.yaml': map });
    expect(err.details.map(at)).toEqual([...also, want]);
  });
});

describe('agent-pdp policy check (the built binary) reports map errors with file and line', () => {
  beforeAll(() => ensureBuilt(), 120_000);

  it('text and JSON', async () => {
    const bad = MAP.replace('scope: pr:read', 'scope: pr:raed');
    const dir = await policyDir({ 'integrations/github.yaml': GITHUB, 'proxy/github.yaml': bad, 'agents/a.yaml': SEED_POLICY });
    const text = spawnSync(process.execPath, [CLI, 'policy', 'check', dir], { encoding: 'utf8' });
    expect(text.status).toBe(1);
    expect(text.stderr).toContain('proxy/github.yaml:7:14 endpoint_map.endpoints[0].scope: "pr:raed" is not a scope of integration github');
    const json = spawnSync(process.execPath, [CLI, 'policy', 'check', dir, '--format', 'json'], { encoding: 'utf8' });
    expect(json.status).toBe(1);
    const report = JSON.parse(json.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({
      version: 1,
      ok: false,
      strict: false,
      error: { code: expect.any(String), message: expect.any(String) },
      files: [],
      agents: [],
      warnings: [],
      errors: [{ file: 'proxy/github.yaml', line: 7, column: 14, path: 'endpoint_map.endpoints[0].scope' }],
    });
    expect(report).not.toHaveProperty('revision');
  });
});

describe('reloads', () => {
  it('a map-only change reloads the maps under the same revision; a broken map keeps the previous set serving', async () => {
    const dir = await policyDir({ 'policies/integrations/github.yaml': GITHUB, 'policies/proxy/github.yaml': MAP, 'policies/agents/a.yaml': SEED_POLICY });
    const engine = new PolicyEngine({ bundlePath: resolve('opa-bundle/bundle.tar.gz'), policyDir: join(dir, 'policies') });
    const first = await engine.reload();
    expect(first.policySet.endpointMaps['github']?.endpoints[0]?.scope).toBe('pr:read');

    const mapFile = join(dir, 'policies/proxy/github.yaml');
    await writeFile(mapFile, MAP.replace('scope: pr:read', 'scope: pr:write'));
    await chmod(mapFile, 0o644);
    const second = await engine.reload();
    expect(second.policySet.endpointMaps['github']?.endpoints[0]?.scope).toBe('pr:write');
    expect(second.revision).toBe(first.revision);
    expect(second.policySet.files).not.toEqual(first.policySet.files);

    await writeFile(mapFile, MAP.replace('{path+}', '{path+}/raw'));
    const err = await engine.reload().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isPdpError(err) && err.details.map(at)).toEqual([
      'proxy/github.yaml:10 endpoint_map.endpoints[1].path: invalid path template: segment 5 ("{path+}"): {path+} takes the rest of the path, so it must be the last segment',
    ]);
    expect(engine.active?.policySet.endpointMaps['github']?.endpoints[0]?.scope).toBe('pr:write');
    expect(engine.refusal?.first_error).toMatch(/^proxy\/github\.yaml:10:13 endpoint_map\.endpoints\[1\]\.path: /);
  });
});
