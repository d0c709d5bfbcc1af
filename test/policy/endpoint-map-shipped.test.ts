import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadPolicyDir } from '../../src/policy/policy-loader.js';
import type { CompiledEndpointMap, PolicySet } from '../../src/policy/policy-types.js';
import { matchTarget } from '../../src/proxy/request-target.js';
import { CLI, ensureBuilt } from '../audit-e2e/cli.js';

/*
 * The endpoint maps shipped in policies/proxy/ (issue 17): at least 40 GitHub REST endpoints over repos, contents,
 * pulls, issues, comments and Actions runs, each bound to its repository; Slack's conversations.*, chat.* and
 * users.*, with the channel as the record wherever a call names one. GraphQL is not mapped.
 */

let set: PolicySet;
let github: CompiledEndpointMap;
let slack: CompiledEndpointMap;
beforeAll(async () => {
  set = await loadPolicyDir('policies');
  github = set.endpointMaps['github'] as CompiledEndpointMap;
  slack = set.endpointMaps['slack'] as CompiledEndpointMap;
});

/** The scopes list of a shipped integration file, which the set was loaded from. */
async function scopesOf(s: PolicySet, file: string): Promise<string[]> {
  expect(s.files.map((f) => f.path)).toContain(file);
  return (parse(await readFile(`policies/${file}`, 'utf8')) as { integration: { scopes: string[] } }).integration.scopes;
}

describe('policies/proxy/github.yaml', () => {
  it('maps at least 40 endpoints, every one on a repository record {owner}/{repo}, with the integration’s scopes', async () => {
    expect(github.endpoints.length).toBeGreaterThanOrEqual(40);
    const known = new Set(await scopesOf(set, 'integrations/github.yaml'));
    for (const e of github.endpoints) {
      expect(e.path, e.path).toMatch(/^\/repos\/\{owner\}\/\{repo\}(\/|$)/);
      expect(e.record, e.path).toEqual({ type: 'repo', id: [{ from: 'path', name: 'owner' }, { text: '/' }, { from: 'path', name: 'repo' }] });
      expect(known.has(e.scope), `${e.method} ${e.path}: ${e.scope}`).toBe(true);
    }
  });

  it.each([
    { method: 'GET', path: '/repos/o/r', scope: 'repo:read' },
    { method: 'GET', path: '/repos/o/r/contents/src/main.ts', scope: 'repo:read' },
    { method: 'PUT', path: '/repos/o/r/contents/src/main.ts', scope: 'repo:write' },
    { method: 'GET', path: '/repos/o/r/branches/main', scope: 'repo:read' },
    { method: 'PUT', path: '/repos/o/r/contents/.github/workflows/ci.yml', scope: 'workflows:write' },
    { method: 'DELETE', path: '/repos/o/r/contents/.github/workflows/ci.yml', scope: 'workflows:write' },
    { method: 'GET', path: '/repos/o/r/contents/.github/workflows/ci.yml', scope: 'repo:read' },
    { method: 'GET', path: '/repos/o/r/pulls', scope: 'pr:read' },
    { method: 'GET', path: '/repos/o/r/pulls/7', scope: 'pr:read' },
    { method: 'POST', path: '/repos/o/r/pulls', scope: 'pr:write' },
    { method: 'GET', path: '/repos/o/r/pulls/7/files', scope: 'pr:read' },
    { method: 'GET', path: '/repos/o/r/pulls/7/reviews', scope: 'pr:read' },
    { method: 'POST', path: '/repos/o/r/pulls/7/reviews', scope: 'pr:write' },
    { method: 'PUT', path: '/repos/o/r/pulls/7/merge', scope: 'repo:write' },
    { method: 'GET', path: '/repos/o/r/pulls/comments', scope: 'pr:read' },
    { method: 'GET', path: '/repos/o/r/issues/3', scope: 'issues:read' },
    { method: 'POST', path: '/repos/o/r/issues/3/comments', scope: 'issues:write' },
    { method: 'GET', path: '/repos/o/r/issues/comments/99', scope: 'issues:read' },
    { method: 'GET', path: '/repos/o/r/actions/runs', scope: 'repo:read' },
    { method: 'GET', path: '/repos/o/r/actions/runs/5', scope: 'repo:read' },
    { method: 'POST', path: '/repos/o/r/actions/runs/5/rerun', scope: 'repo:write' },
    { method: 'POST', path: '/repos/o/r/actions/runs/5/cancel', scope: 'repo:write' },
    { method: 'GET', path: '/repos/o/r/actions/runs/5/logs', scope: 'repo:read' },
  ])('$method $path needs $scope', ({ method, path, scope }) => {
    const m = matchTarget(github, method, path);
    expect(m.ok && m.endpoint.scope).toBe(scope);
  });

  it.each([
    { note: 'GraphQL', method: 'POST', path: '/graphql' },
    { note: 'organisation administration', method: 'PATCH', path: '/orgs/o' },
    { note: 'deleting a repository', method: 'DELETE', path: '/repos/o/r' },
    { note: 'the traversal of the issue', method: 'GET', path: '/repos/a/b/../../orgs/x' },
    { note: 'branch protection (an admin read)', method: 'GET', path: '/repos/o/r/branches/main/protection' },
  ])('refuses $note', ({ method, path }) => {
    expect(matchTarget(github, method, path).ok).toBe(false);
  });
});

describe('policies/proxy/slack.yaml', () => {
  it('covers conversations.*, chat.* and users.*, with the integration’s scopes', async () => {
    const known = new Set(await scopesOf(set, 'integrations/slack.yaml'));
    const families = new Map<string, number>();
    for (const e of slack.endpoints) {
      expect(e.path, e.path).toMatch(/^\/(conversations|chat|users)\.[A-Za-z.]+$/);
      const family = e.path.slice(1, e.path.indexOf('.'));
      families.set(family, (families.get(family) ?? 0) + 1);
      expect(known.has(e.scope), `${e.method} ${e.path}: ${e.scope}`).toBe(true);
    }
    expect(families.get('conversations')).toBeGreaterThanOrEqual(10);
    expect(families.get('chat')).toBeGreaterThanOrEqual(8);
    expect(families.get('users')).toBeGreaterThanOrEqual(6);
    for (const name of ['conversations.history', 'conversations.info', 'chat.postMessage', 'chat.update', 'chat.delete', 'users.list', 'users.info']) {
      expect(slack.endpoints.some((e) => e.path === `/${name}`), name).toBe(true);
    }
  });

  it('names the channel as the record: the body on POST, the query on GET; users.* name none', () => {
    for (const e of slack.endpoints) {
      const channel = { type: 'channel', id: [{ from: e.method === 'POST' ? 'body' : 'query', name: 'channel' }] };
      if (e.path.startsWith('/users.') || e.path === '/conversations.list' || e.path === '/conversations.create') expect(e.record, e.path).toBeNull();
      else expect(e.record, `${e.method} ${e.path}`).toEqual(channel);
    }
  });

  it('writes are POST only; reads are GET and POST', () => {
    const methods = (path: string): string[] => slack.endpoints.filter((e) => e.path === path).map((e) => e.method).sort();
    expect(methods('/chat.postMessage')).toEqual(['POST']);
    expect(methods('/conversations.archive')).toEqual(['POST']);
    expect(methods('/conversations.history')).toEqual(['GET', 'POST']);
    expect(methods('/users.info')).toEqual(['GET', 'POST']);
  });
});

describe('the shipped policies', () => {
  beforeAll(() => ensureBuilt(), 120_000);

  it('check clean with the maps (policy check --strict), the maps’ files listed', () => {
    const res = spawnSync(process.execPath, [CLI, 'policy', 'check', 'policies', '--strict', '--format', 'json'], { encoding: 'utf8' });
    expect(res.status).toBe(0);
    const files = (JSON.parse(res.stdout) as { files: { path: string }[] }).files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(['proxy/github.yaml', 'proxy/slack.yaml']));
  });

  it('pass their policy tests (policy test)', () => {
    const res = spawnSync(process.execPath, [CLI, 'policy', 'test', 'policies'], { encoding: 'utf8' });
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
  });
});
