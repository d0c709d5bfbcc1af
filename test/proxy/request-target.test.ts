import { describe, expect, it } from 'vitest';
import { buildPolicySet, loadPolicyDir } from '../../src/policy/policy-loader.js';
import type { CompiledEndpoint, CompiledEndpointMap } from '../../src/policy/policy-types.js';
import { matchTarget, MAX_RECORD_ID_LENGTH, resolveRecord } from '../../src/proxy/request-target.js';
import { yaml } from '../policy/policy-fixtures.js';

/*
 * The proxy's matcher (issue 17): which endpoint map entry a method and raw path call, and which record the call
 * touches. The maps are compiled by the real policy compiler from the YAML below. Every refusal rule has a row.
 */

const GITHUB = yaml`
  endpoint_map:
    integration: github
    endpoints:
      - { method: GET, path: "/repos/{owner}/{repo}", scope: repo:read, record: { type: repo, id: "{owner}/{repo}" } }
      - { method: GET, path: "/repos/{owner}/{repo}/pulls/{pull_number}", scope: pr:read, record: { type: repo, id: "{owner}/{repo}" } }
      - { method: GET, path: "/repos/{owner}/{repo}/pulls/comments", scope: pr:comments, record: { type: repo, id: "{owner}/{repo}" } }
      - { method: PUT, path: "/repos/{owner}/{repo}/pulls/{pull_number}/merge", scope: repo:write, record: { type: repo, id: "{owner}/{repo}" } }
      - { method: GET, path: "/repos/{owner}/{repo}/contents/{path+}", scope: repo:read, record: { type: repo, id: "{owner}/{repo}" } }
      - { method: GET, path: "/repos/{owner}/{repo}/releases/{release_id}", scope: repo:read, record: { type: repo, id: "{owner}/{repo}" } }
      - { method: GET, path: "/repos/{owner}/{repo}/releases/latest", scope: repo:latest, record: { type: repo, id: "{owner}/{repo}" } }
      - { method: GET, path: "/a/{x}/c", scope: s:xc }
      - { method: GET, path: "/a/b/{y}", scope: s:by }
      - { method: GET, path: "/t/{p}", scope: s:param }
      - { method: GET, path: "/t/{p+}", scope: s:rest }
      - { method: GET, path: "/proto/{__proto__}", scope: s:proto, record: { type: t, id: "{__proto__}" } }
      - { method: GET, path: "/search/{kind}", scope: s:search, record: { type: thing, id: "{kind}/{query.q}" } }
`;

const SLACK = yaml`
  endpoint_map:
    integration: slack
    endpoints:
      - { method: POST, path: /chat.postMessage, scope: chat:write, record: { type: channel, id: "{body.channel}" } }
      - { method: GET, path: /conversations.history, scope: channels:read, record: { type: channel, id: "{query.channel}" } }
      - { method: POST, path: /conversations.create, scope: channels:manage }
`;

const AGENT = yaml`
  agent_policy:
    id: a
    integrations:
      github: { max_scope: [repo:read] }
      slack: { max_scope: [chat:write] }
`;

const set = buildPolicySet([
  { file: 'github.yaml', text: GITHUB },
  { file: 'slack.yaml', text: SLACK },
  { file: 'a.yaml', text: AGENT },
]);
const github = set.endpointMaps['github'] as CompiledEndpointMap;
const slack = set.endpointMaps['slack'] as CompiledEndpointMap;

function matched(map: CompiledEndpointMap, method: string, rawPath: string) {
  const m = matchTarget(map, method, rawPath);
  if (!m.ok) throw new Error(`expected a match, got ${m.code}: ${m.message}`);
  return m;
}

describe('matchTarget: non-canonical paths are refused (path_not_canonical, 400) before any entry is tried', () => {
  it.each([
    { note: 'the traversal of the issue', path: '/repos/a/b/../../orgs/x' },
    { note: 'a .. segment at the end', path: '/repos/a/b/..' },
    { note: 'a . segment', path: '/repos/a/b/./pulls/1' },
    { note: '%2e%2e', path: '/repos/a/b/%2e%2e/%2e%2e/orgs/x' },
    { note: '%2E%2E', path: '/repos/a/b/%2E%2E/%2E%2E/orgs/x' },
    { note: '.%2e', path: '/repos/a/b/.%2e/x' },
    { note: '%2e alone', path: '/repos/a/b/%2e/pulls/1' },
    { note: 'an encoded slash %2F', path: '/repos/a%2Fb/c/pulls/1' },
    { note: 'an encoded slash %2f', path: '/repos/a/b/contents/x%2f..%2f..%2forgs' },
    { note: 'an encoded backslash %5C', path: '/repos/a/b%5C..%5Cx' },
    { note: 'an encoded backslash %5c', path: '/repos/a/b%5cc' },
    { note: 'a raw backslash', path: '/repos/a/b\\..\\..\\orgs\\x' },
    { note: 'a leading //', path: '//repos/a/b' },
    { note: 'an empty segment', path: '/repos/a//b' },
    { note: 'a trailing /', path: '/repos/a/b/' },
    { note: 'a raw NUL', path: '/repos/a/b\u0000' },
    { note: 'a raw tab', path: '/repos/a\t/b' },
    { note: 'a raw DEL', path: '/repos/a\u007f/b' },
    { note: 'an encoded NUL', path: '/repos/a/b%00' },
    { note: 'an encoded newline', path: '/repos/a/b%0A' },
    { note: 'a lone %', path: '/repos/a/b%' },
    { note: 'a % with one hex digit', path: '/repos/a/b%4' },
    { note: 'a % with no hex digits', path: '/repos/a/b%G1' },
    { note: 'percent-encoding that is not UTF-8', path: '/repos/a/b%C3%28' },
    { note: 'a lone continuation byte', path: '/repos/a/b%FF' },
    { note: 'a needlessly encoded letter', path: '/repos/a/b/pull%73/1' },
    { note: 'a needlessly encoded ~', path: '/repos/a/%7Eb' },
    { note: 'double encoding of /', path: '/repos/a/b/contents/x%252F..%252Fy' },
    { note: 'double encoding of .', path: '/repos/a/%252e%252e' },
    { note: 'a raw space', path: '/repos/a b/c' },
    { note: 'a raw quote', path: '/repos/a"/b' },
    { note: 'a raw brace', path: '/repos/{a}/b' },
    { note: 'a raw #', path: '/repos/a#/b' },
    { note: 'raw non-ASCII', path: '/repos/é/b' },
    { note: 'no leading /', path: 'repos/a/b' },
    { note: 'the empty path', path: '' },
  ])('$note: $path', ({ path }) => {
    expect(matchTarget(github, 'GET', path)).toMatchObject({ ok: false, status: 400, code: 'path_not_canonical', field: 'path' });
  });
});

describe('matchTarget: unmapped calls are refused (endpoint_not_mapped, 403)', () => {
  it.each([
    { note: 'GraphQL', method: 'POST', path: '/graphql' },
    { note: 'a path of no entry', method: 'GET', path: '/orgs/x' },
    { note: 'a mapped path with another method', method: 'DELETE', path: '/repos/a/b' },
    { note: 'HEAD is not GET', method: 'HEAD', path: '/repos/a/b' },
    { note: 'a method in lower case', method: 'get', path: '/repos/a/b' },
    { note: 'one segment too many', method: 'GET', path: '/repos/a/b/pulls/1/x' },
    { note: 'one segment too few', method: 'GET', path: '/repos/a' },
    { note: 'the root', method: 'GET', path: '/' },
    { note: 'a literal in another case', method: 'GET', path: '/REPOS/a/b' },
    { note: 'a rest param needs a segment', method: 'GET', path: '/repos/a/b/contents' },
  ])('$note: $method $path', ({ method, path }) => {
    expect(matchTarget(github, method, path)).toMatchObject({ ok: false, status: 403, code: 'endpoint_not_mapped', field: 'path' });
  });
});

describe('matchTarget: matches', () => {
  it.each([
    { note: 'params', method: 'GET', path: '/repos/octo-org/octo-repo/pulls/42', template: '/repos/{owner}/{repo}/pulls/{pull_number}', params: { owner: 'octo-org', repo: 'octo-repo', pull_number: '42' } },
    { note: 'a literal wins over a param (comments is not a pull number)', method: 'GET', path: '/repos/o/r/pulls/comments', template: '/repos/{owner}/{repo}/pulls/comments', params: { owner: 'o', repo: 'r' } },
    { note: 'a literal wins over a param declared before it', method: 'GET', path: '/repos/o/r/releases/latest', template: '/repos/{owner}/{repo}/releases/latest', params: { owner: 'o', repo: 'r' } },
    { note: 'the param where the literal does not match', method: 'GET', path: '/repos/o/r/releases/7', template: '/repos/{owner}/{repo}/releases/{release_id}', params: { owner: 'o', repo: 'r', release_id: '7' } },
    { note: 'the first segment where templates differ decides', method: 'GET', path: '/a/b/c', template: '/a/b/{y}', params: { y: 'c' } },
    { note: 'the param template elsewhere', method: 'GET', path: '/a/z/c', template: '/a/{x}/c', params: { x: 'z' } },
    { note: 'a param wins over a rest param', method: 'GET', path: '/t/one', template: '/t/{p}', params: { p: 'one' } },
    { note: 'a rest param takes several segments', method: 'GET', path: '/t/one/two', template: '/t/{p+}', params: { p: 'one/two' } },
    { note: 'a rest param: a file path', method: 'GET', path: '/repos/o/r/contents/docs/guide/README.md', template: '/repos/{owner}/{repo}/contents/{path+}', params: { owner: 'o', repo: 'r', path: 'docs/guide/README.md' } },
    { note: 'params are percent-decoded', method: 'GET', path: '/repos/my%40org/r%C3%A9po/contents/a%20b/c%25d.txt', template: '/repos/{owner}/{repo}/contents/{path+}', params: { owner: 'my@org', repo: 'répo', path: 'a b/c%d.txt' } },
    { note: 'raw sub-delims, : @ and the characters URL clients leave raw', method: 'GET', path: "/repos/a:b@c/!$&'()*+,;=[]^|~", template: '/repos/{owner}/{repo}', params: { owner: 'a:b@c', repo: "!$&'()*+,;=[]^|~" } },
    { note: 'a dotted name is not a dot segment', method: 'GET', path: '/repos/o/.github', template: '/repos/{owner}/{repo}', params: { owner: 'o', repo: '.github' } },
  ])('$note: $method $path', ({ method, path, template, params }) => {
    const m = matched(github, method, path);
    expect(m.endpoint.path).toBe(template);
    expect({ ...m.params }).toEqual(params);
    expect(m.upstreamPath).toBe(path);
  });

  it('a Slack method is a literal path', () => {
    const m = matched(slack, 'POST', '/chat.postMessage');
    expect(m.endpoint.scope).toBe('chat:write');
    expect(m.upstreamPath).toBe('/chat.postMessage');
  });

  it('params have no prototype: a param named __proto__ is an own value', () => {
    const m = matched(github, 'GET', '/proto/x');
    expect(Object.getPrototypeOf(m.params)).toBeNull();
    expect(Object.hasOwn(m.params, '__proto__')).toBe(true);
    expect(resolveRecord(m.endpoint, m.params, '', undefined)).toEqual({ ok: true, record: { type: 't', id: 'x' } });
  });
});

const endpoint = (map: CompiledEndpointMap, method: string, path: string): CompiledEndpoint =>
  map.endpoints.find((e) => e.method === method && e.path === path) as CompiledEndpoint;
const postMessage = endpoint(slack, 'POST', '/chat.postMessage');
const history = endpoint(slack, 'GET', '/conversations.history');
const search = endpoint(github, 'GET', '/search/{kind}');
const json = (text: string, contentType = 'application/json') => ({ contentType, bytes: Buffer.from(text, 'utf8') });
const form = (text: string, contentType = 'application/x-www-form-urlencoded') => ({ contentType, bytes: Buffer.from(text, 'utf8') });

describe('resolveRecord: records from the path', () => {
  it('fills the template from the decoded params and reads no body', () => {
    const m = matched(github, 'GET', '/repos/octo-org/octo.repo');
    expect(resolveRecord(m.endpoint, m.params, 'x=1&x=2', json('[]'))).toEqual({ ok: true, record: { type: 'repo', id: 'octo-org/octo.repo' } });
  });

  it('an entry without a record names none, whatever the query and body hold', () => {
    const create = endpoint(slack, 'POST', '/conversations.create');
    expect(resolveRecord(create, {}, 'channel=a&channel=b', form('channel=x'))).toEqual({ ok: true, record: null });
  });

  it('an id longer than a record id can be is refused', () => {
    const m = matched(github, 'GET', `/repos/${'o'.repeat(MAX_RECORD_ID_LENGTH)}/r`);
    expect(resolveRecord(m.endpoint, m.params, '', undefined)).toMatchObject({ ok: false, status: 400, code: 'record_missing' });
    expect(MAX_RECORD_ID_LENGTH).toBe(256);
  });
});

describe('resolveRecord: records from the query', () => {
  it.each([
    { note: 'a field', query: 'channel=C1&limit=10', id: 'C1', forward: 'channel=C1&limit=10' },
    { note: '+ and %20 are spaces', query: 'channel=a+b%20c', id: 'a b c', forward: 'channel=a+b+c' },
    { note: 'an encoded name', query: 'chan%6Eel=C1', id: 'C1', forward: 'channel=C1' },
    { note: 'other fields may repeat', query: 'x=1&channel=C1&x=2', id: 'C1', forward: 'x=1&channel=C1&x=2' },
    { note: 'empty pairs are skipped', query: '&&channel=C1&', id: 'C1', forward: 'channel=C1' },
  ])('$note: ?$query (forwarded re-serialized: ?$forward)', ({ query, id, forward }) => {
    expect(resolveRecord(history, {}, query, undefined)).toEqual({ ok: true, record: { type: 'channel', id }, forwardQuery: forward });
  });

  // Names parsers read differently (PHP/Hack strip leading spaces, cut at NUL, fold name[]; Rack splits on `;`):
  // the upstream could read another channel than the one checked.
  it.each([
    { note: 'a leading space', query: 'channel=C1&+channel=C2' },
    { note: 'a NUL in a name', query: 'channel=C1&channel%00x=C2' },
    { note: 'brackets', query: 'channel=C1&channel%5B%5D=C2' },
    { note: 'a semicolon', query: 'x=1;channel=C2&channel=C1' },
    { note: 'a fragment', query: 'channel=C1#x' },
    { note: 'a dash in a name', query: 'channel=C1&chan-nel=C2' },
  ])('refuses $note: ?$query → ambiguous_request', ({ query }) => {
    expect(resolveRecord(history, {}, query, undefined)).toMatchObject({ ok: false, status: 400, code: 'ambiguous_request', field: 'query' });
  });

  it('refuses a record id holding a control or format character (a bidi override, NUL), naming the field', () => {
    for (const id of ['C1%E2%80%AE', 'C%00x', 'C1%0A']) {
      expect(resolveRecord(history, {}, `channel=${id}`, undefined)).toMatchObject({ ok: false, code: 'ambiguous_request', field: 'query.channel' });
    }
  });

  it.each([
    { note: 'a duplicate', query: 'channel=C1&channel=C2', code: 'ambiguous_request', field: 'query.channel' },
    { note: 'a duplicate spelt another way', query: 'chan%6Eel=C1&channel=C2', code: 'ambiguous_request', field: 'query.channel' },
    { note: 'a duplicate without a value', query: 'channel=C1&channel', code: 'ambiguous_request', field: 'query.channel' },
    { note: 'bad percent-encoding anywhere', query: 'channel=C1&x=%ZZ', code: 'ambiguous_request', field: 'query' },
    { note: 'percent-encoding that is not UTF-8', query: 'channel=%FF', code: 'ambiguous_request', field: 'query' },
    { note: 'absent', query: 'limit=10', code: 'record_missing', field: 'query.channel' },
    { note: 'no query', query: '', code: 'record_missing', field: 'query.channel' },
    { note: 'empty', query: 'channel=', code: 'record_missing', field: 'query.channel' },
  ])('$note: ?$query → $code', ({ query, code, field }) => {
    expect(resolveRecord(history, {}, query, undefined)).toMatchObject({ ok: false, status: 400, code, field });
  });

  it('a path param and a query field in one id', () => {
    const m = matched(github, 'GET', '/search/issues');
    expect(resolveRecord(search, m.params, 'q=a%2Fb', undefined)).toEqual({ ok: true, record: { type: 'thing', id: 'issues/a/b' }, forwardQuery: 'q=a%2Fb' });
  });
});

describe('resolveRecord: records from the body, forwarded as re-serialized', () => {
  it.each([
    { note: 'a form', body: form('channel=C1&text=hi+there'), forward: 'channel=C1&text=hi+there' },
    { note: 'a form, re-encoded, pair order kept', body: form('text=a%20b%21&channel=C1&x=1&x=2'), forward: 'text=a+b%21&channel=C1&x=1&x=2' },
    { note: 'a form with charset=utf-8', body: form('channel=C1', 'application/x-www-form-urlencoded; charset=UTF-8'), forward: 'channel=C1' },
    { note: 'JSON', body: json('{"channel":"C1","text":"hi"}'), forward: '{"channel":"C1","text":"hi"}' },
    { note: 'JSON, whitespace and escapes normalised', body: json('{ "text" : "h\\u0069",\n "channel": "C1" }'), forward: '{"text":"hi","channel":"C1"}' },
    { note: 'JSON with a BOM', body: { contentType: 'application/json', bytes: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"channel":"C1"}')]) }, forward: '{"channel":"C1"}' },
    { note: 'JSON with charset and upper-case media type', body: json('{"channel":"C1"}', 'Application/JSON; charset="utf-8"'), forward: '{"channel":"C1"}' },
    { note: 'JSON: nested channel fields do not count', body: json('{"blocks":[{"channel":"C9"}],"meta":{"channel":"C8"},"channel":"C1"}'), forward: '{"blocks":[{"channel":"C9"}],"meta":{"channel":"C8"},"channel":"C1"}' },
    { note: 'JSON: a key "channel" inside a string value does not count', body: json('{"text":"\\"channel\\":\\"C9\\"","channel":"C1"}'), forward: '{"text":"\\"channel\\":\\"C9\\"","channel":"C1"}' },
    { note: 'JSON: a number names its decimal form', body: json('{"channel":1234}'), forward: '{"channel":1234}', id: '1234' },
  ])('$note', ({ body, forward, id = 'C1' }) => {
    const r = resolveRecord(postMessage, {}, '', body);
    expect(r).toMatchObject({ ok: true, record: { type: 'channel', id } });
    expect(r.ok && r.forwardBody?.toString('utf8')).toBe(forward);
  });

  it.each([
    { note: 'no body', body: undefined, code: 'record_missing', field: 'body.channel' },
    { note: 'an empty body', body: json(''), code: 'record_missing', field: 'body.channel' },
    { note: 'a form without the field', body: form('text=hi'), code: 'record_missing', field: 'body.channel' },
    { note: 'a form with it empty', body: form('channel=&text=hi'), code: 'record_missing', field: 'body.channel' },
    { note: 'a form with it twice', body: form('channel=C1&text=hi&channel=C2'), code: 'ambiguous_request', field: 'body.channel' },
    { note: 'a form with it twice, one encoded', body: form('channel=C1&%63hannel=C2'), code: 'ambiguous_request', field: 'body.channel' },
    { note: 'a form with bad percent-encoding', body: form('channel=C1&text=%E0%A4'), code: 'body_unreadable', field: 'body' },
    { note: 'JSON with it twice', body: json('{"channel":"C1","text":"x","channel":"C2"}'), code: 'ambiguous_request', field: 'body.channel' },
    { note: 'JSON with it twice, one escaped', body: json('{"chan\\u006eel":"C1","channel":"C2"}'), code: 'ambiguous_request', field: 'body.channel' },
    { note: 'JSON without it', body: json('{"text":"x"}'), code: 'record_missing', field: 'body.channel' },
    { note: 'JSON null', body: json('{"channel":null}'), code: 'record_missing', field: 'body.channel' },
    { note: 'JSON true', body: json('{"channel":true}'), code: 'record_missing', field: 'body.channel' },
    { note: 'JSON object value', body: json('{"channel":{"id":"C1"}}'), code: 'record_missing', field: 'body.channel' },
    { note: 'JSON list value', body: json('{"channel":["C1"]}'), code: 'record_missing', field: 'body.channel' },
    { note: 'a JSON list', body: json('[{"channel":"C1"}]'), code: 'body_unreadable', field: 'body' },
    { note: 'a JSON string', body: json('"C1"'), code: 'body_unreadable', field: 'body' },
    { note: 'JSON null document', body: json('null'), code: 'body_unreadable', field: 'body' },
    { note: 'invalid JSON', body: json('{"channel":"C1",}'), code: 'body_unreadable', field: 'body' },
    { note: 'JSON that is not UTF-8', body: { contentType: 'application/json', bytes: Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]) }, code: 'body_unreadable', field: 'body' },
    { note: 'JSON in another charset', body: json('{"channel":"C1"}', 'application/json; charset=iso-8859-1'), code: 'body_unreadable', field: 'body' },
    { note: 'a number re-serialization would change', body: json('{"channel":"C1","n":12345678901234567890}'), code: 'body_unreadable', field: 'body' },
    { note: 'multipart', body: { contentType: 'multipart/form-data; boundary=x', bytes: Buffer.from('--x\r\nContent-Disposition: form-data; name="channel"\r\n\r\nC1\r\n--x--') }, code: 'body_unreadable', field: 'body' },
    { note: 'text/plain', body: json('channel=C1', 'text/plain'), code: 'body_unreadable', field: 'body' },
    { note: 'no Content-Type', body: { contentType: undefined, bytes: Buffer.from('channel=C1') }, code: 'body_unreadable', field: 'body' },
    { note: 'application/json-seq is not JSON', body: json('{"channel":"C1"}', 'application/json-seq'), code: 'body_unreadable', field: 'body' },
  ])('$note → $code', ({ body, code, field }) => {
    expect(resolveRecord(postMessage, {}, '', body)).toMatchObject({ ok: false, status: 400, code, field });
  });

  it('a body field that the query names too is ambiguous (Slack reads either)', () => {
    expect(resolveRecord(postMessage, {}, 'channel=C2', form('channel=C1'))).toMatchObject({ ok: false, code: 'ambiguous_request', field: 'body.channel' });
    expect(resolveRecord(postMessage, {}, 'chan%6eel=C2', json('{"channel":"C1"}'))).toMatchObject({ ok: false, code: 'ambiguous_request', field: 'body.channel' });
    expect(resolveRecord(postMessage, {}, 'text=x', form('channel=C1'))).toMatchObject({ ok: true, record: { id: 'C1' } });
  });

  it('a body read for its record refuses a query that is not valid percent-encoding', () => {
    expect(resolveRecord(postMessage, {}, 'x=%', form('channel=C1'))).toMatchObject({ ok: false, code: 'ambiguous_request', field: 'query' });
  });
});

/*
 * The matcher walks a tree of the map's segments once. Its answers are those of the rule as first written: the
 * entries of the method sorted most specific first (literal over param over {name+}, at the first segment where
 * two differ), the first that matches wins. Every path built from every template of the shipped maps and of the
 * maps above (each param filled with a value, a value that is a sibling's literal, and several segments for a rest
 * param), with every method of the map, gets the same entry and params from both.
 */
describe('matchTarget: one walk of the tree gives what entry-by-entry matching gives', () => {
  function reference(map: CompiledEndpointMap, method: string, rawPath: string): { template: string; params: Record<string, string> } | null {
    const raw = rawPath === '/' ? [] : rawPath.slice(1).split('/');
    const rank = (e: CompiledEndpoint, i: number): number => {
      const s = e.segments[i];
      return s === undefined ? -1 : 'literal' in s ? 2 : s.rest ? 0 : 1;
    };
    const sorted = map.endpoints
      .filter((e) => e.method === method)
      .sort((a, b) => {
        for (let i = 0; i < Math.max(a.segments.length, b.segments.length); i++) {
          const d = rank(b, i) - rank(a, i);
          if (d !== 0) return d;
        }
        return 0;
      });
    for (const e of sorted) {
      const params = Object.create(null) as Record<string, string>;
      let ok = true;
      let rest = false;
      for (const [i, s] of e.segments.entries()) {
        if (i >= raw.length) {
          ok = false;
          break;
        }
        if ('literal' in s) {
          if (raw[i] !== s.literal) ok = false;
        } else if (s.rest) {
          params[s.param] = raw.slice(i).map((x) => decodeURIComponent(x)).join('/');
          rest = true;
          break;
        } else params[s.param] = decodeURIComponent(raw[i] as string);
        if (!ok) break;
      }
      if (ok && (rest || e.segments.length === raw.length)) return { template: e.path, params: { ...params } };
    }
    return null;
  }

  function paths(map: CompiledEndpointMap): string[] {
    const literals = [...new Set(map.endpoints.flatMap((e) => e.segments.flatMap((s) => ('literal' in s ? [s.literal] : []))))];
    const fills = ['v1', 'x%20y', ...literals.slice(0, 40)];
    const out = new Set<string>(['/']);
    for (const e of map.endpoints) {
      for (const fill of fills) {
        for (const rest of [[fill], [fill, 'b'], ['a', fill, 'c']]) {
          const segs = e.segments.flatMap((s) => ('literal' in s ? [s.literal] : s.rest ? rest : [fill]));
          out.add(`/${segs.join('/')}`);
          out.add(`/${segs.slice(0, -1).join('/')}`);
          out.add(`/${[...segs, fill].join('/')}`);
        }
      }
    }
    return [...out].filter((p) => p === '/' || !p.includes('//'));
  }

  it('over the shipped maps and the maps of this file', async () => {
    const shipped = await loadPolicyDir('policies');
    const maps = [github, slack, ...Object.values(shipped.endpointMaps)];
    let compared = 0;
    let found = 0;
    for (const map of maps) {
      const methods = [...new Set(map.endpoints.map((e) => e.method)), 'PATCH'];
      for (const path of paths(map)) {
        for (const method of methods) {
          const m = matchTarget(map, method, path);
          const want = reference(map, method, path);
          const got = m.ok ? { template: m.endpoint.path, params: { ...m.params } } : null;
          expect({ method, path, match: got }).toEqual({ method, path, match: want });
          compared++;
          if (want !== null) found++;
        }
      }
    }
    expect(found).toBeGreaterThan(1000); // the comparison is not vacuous
    expect(compared).toBeGreaterThan(found);
  });
});
