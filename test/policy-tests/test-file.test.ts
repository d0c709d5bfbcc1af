import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compareAnswer, type Answer } from '../../src/policy-test/expectations.js';
import { caseInput, parseTestFile, type PolicyTestSuite } from '../../src/policy-test/index.js';
import { evaluationTime } from '../../src/pdp/evaluation-input.js';
import { ID_PATTERN, SCOPE_PATTERN } from '../../src/wire/decision-v1.js';
import { findAll, parseXml, XmlError } from './xml-document.js';

/** The test-file format in this process: defaults, located errors, and how expectations compare. */

const suite = (text: string): PolicyTestSuite => {
  const parsed = parseTestFile(text, 't.yaml');
  expect(parsed.errors).toEqual([]);
  return parsed.suite as PolicyTestSuite;
};
const errors = (text: string): string[] => parseTestFile(text, 't.yaml').errors.map((e) => `${e.file}:${e.line}:${e.column} ${e.path}: ${e.message}`);

/** When the run started: the time of every case that gives none. */
const RUN = new Date('2026-01-07T08:00:00Z');

const DEFAULTS = `suite: s
defaults:
  agent_id: support-resolver
  caller_id: support-middleware
  integration: crm
  task: { id: t-1, type: complaint_resolution, context: { customer_id: "1234" } }
  resource: { type: customer, id: "1234" }
  ttl_seconds: 300
cases:
`;

describe('a case is its suite’s defaults with its own request on top', () => {
  it.each([
    { note: 'no request: the defaults as they are', request: '', want: { type: 'complaint_resolution', context: { customer_id: '1234' }, resource: { type: 'customer', id: '1234' }, ttl: 300 } },
    { note: 'task fields replace one by one: a new type keeps the context', request: 'task: { type: triage }', want: { type: 'triage', context: { customer_id: '1234' }, resource: { type: 'customer', id: '1234' }, ttl: 300 } },
    { note: 'a context replaces the whole context', request: 'task: { context: { suspended: true } }', want: { type: 'complaint_resolution', context: { suspended: true }, resource: { type: 'customer', id: '1234' }, ttl: 300 } },
    { note: 'null drops a default type, resource and ttl', request: 'task: { type: null }, resource: null, ttl_seconds: null', want: { type: undefined, context: { customer_id: '1234' }, resource: undefined, ttl: undefined } },
  ])('$note', ({ request, want }) => {
    const [c] = suite(`${DEFAULTS}  - name: one\n    request: { scopes: [tickets:read], ${request} }\n    expect: { outcome: allow }\n`).cases;
    const input = caseInput(c as NonNullable<typeof c>, RUN);
    expect(input.task).toEqual({ id: 't-1', ...(want.type !== undefined ? { type: want.type } : {}), context: want.context, registered: true });
    expect(input.resource).toEqual(want.resource);
    expect(input.ttl_seconds).toEqual(want.ttl);
    expect(input).toMatchObject({ agent_id: 'support-resolver', caller_id: 'support-middleware', integration: 'crm', scopes: ['tickets:read'] });
  });

  it.each([
    { note: 'no now: the run’s time, as the server reads its clock once per decision', defaults: '', request: '', want: '2026-01-07T08:00:00.000Z' },
    { note: 'a now in defaults', defaults: 'now: 2026-01-05T10:30:00Z', request: '', want: '2026-01-05T10:30:00.000Z' },
    { note: 'the case’s now over the defaults’, with an offset', defaults: 'now: 2026-01-05T10:30:00Z', request: ', now: "2026-01-05T23:30:00-02:00"', want: '2026-01-06T01:30:00.000Z' },
  ])('input.time: $note', ({ defaults, request, want }) => {
    const s = suite(`suite: s\ndefaults: { agent_id: a, integration: i, ${defaults} }\ncases:\n  - name: one\n    request: { scopes: [x]${request} }\n    expect: { outcome: deny }\n`);
    expect(caseInput(s.cases[0] as NonNullable<(typeof s.cases)[0]>, RUN).time).toEqual(evaluationTime(new Date(want)));
  });

  it('without defaults, the caller and task id are policy-test and the context is empty', () => {
    const s = suite('suite: s\ncases:\n  - name: one\n    request: { agent_id: a, integration: i, scopes: [x, x] }\n    expect: { outcome: deny }\n');
    expect(caseInput(s.cases[0] as NonNullable<(typeof s.cases)[0]>, RUN)).toEqual({
      agent_id: 'a',
      caller_id: 'policy-test',
      task: { id: 'policy-test', context: {}, registered: true },
      integration: 'i',
      scopes: ['x'],
      time: evaluationTime(RUN),
    });
    expect(s.cases[0]?.line).toBe(3);
    expect(s.line).toBe(1);
  });
});

describe('an invalid test file: every problem, each with file:line:column', () => {
  it.each([
    { note: 'an unknown key', text: 'suite: s\ncases:\n  - name: a\n    request: { agent_id: a, integration: i, scope: [x] }\n    expect: { outcome: allow }\n', want: ['t.yaml:4:45 cases[0].request.scope: unknown key "scope"; expected one of: agent_id, caller_id, now, task, integration, scopes, resource, ttl_seconds'] },
    { note: 'a case that expects nothing', text: 'suite: s\ncases:\n  - name: a\n    expect: {}\n', want: ['t.yaml:4:5 cases[0].expect: expects nothing: give at least one of outcome, granted_scopes, denied_scopes, reasons, token_ttl_seconds'] },
    { note: 'an outcome that does not exist', text: 'suite: s\ncases:\n  - name: a\n    expect: { outcome: allowed }\n', want: ['t.yaml:4:24 cases[0].expect.outcome: "allowed" is not one of: allow, deny, undefined'] },
    { note: 'a denied-scope reason that does not exist', text: 'suite: s\ncases:\n  - name: a\n    expect: { denied_scopes: [{ scope: x, reason: nope }] }\n', want: ['t.yaml:4:51 cases[0].expect.denied_scopes[0].reason: "nope" is not one of: deny_scope, capped, above_ceiling, task_type, record_binding, approval_required'] },
    { note: 'a scope outside the grammar', text: 'suite: s\ncases:\n  - name: a\n    request: { agent_id: a, integration: i, scopes: ["a b"] }\n    expect: { outcome: deny }\n', want: [`t.yaml:4:54 cases[0].request.scopes[0]: "a b" is not a valid scope (must match ${SCOPE_PATTERN})`] },
    { note: 'a request field neither the case nor the defaults give', text: 'suite: s\ndefaults: { agent_id: a }\ncases:\n  - name: a\n    request: { scopes: [x] }\n    expect: { outcome: deny }\n', want: ["t.yaml:5:5 cases[0].request: no integration: give it in the case's request or under defaults"] },
    { note: 'two cases of one name', text: 'suite: s\ndefaults: { agent_id: a, integration: i, scopes: [x] }\ncases:\n  - name: a\n    expect: { outcome: deny }\n  - name: a\n    expect: { outcome: deny }\n', want: ['t.yaml:6:11 cases[1].name: duplicate case name (same as cases[0])'] },
    { note: 'a request the wire refuses (a lone surrogate)', text: 'suite: s\ncases:\n  - name: a\n    request: { agent_id: a, integration: i, scopes: [x], task: { context: { k: "\\ud800" } } }\n    expect: { outcome: deny }\n', want: ['t.yaml:4:5 cases[0].request: the request is not a valid decision request: task.context.k must be well-formed Unicode (a lone surrogate is not)'] },
    { note: 'a now that is not RFC 3339', text: 'suite: s\ndefaults: { now: "5 Jan 2026" }\ncases:\n  - name: a\n    expect: { outcome: deny }\n', want: [expect.stringMatching(/^t\.yaml:2:18 defaults\.now: "5 Jan 2026" is not a valid value \(must match /)] },
    { note: 'a now that is no date', text: 'suite: s\ndefaults: { agent_id: a, integration: i, scopes: [x] }\ncases:\n  - name: a\n    request: { now: 2026-13-45T10:00:00Z }\n    expect: { outcome: deny }\n', want: ['t.yaml:5:21 cases[0].request.now: "2026-13-45T10:00:00Z" is not a date and time'] },
    { note: 'no cases', text: 'suite: s\ncases: []\n', want: ['t.yaml:2:8 cases: must have at least 1 item'] },
    { note: 'an empty file', text: '# nothing\n', want: ['t.yaml:1:1 : the file is empty; expected a test suite (suite, cases)'] },
    { note: 'YAML that does not parse', text: 'suite: s\ncases: [\n', want: [expect.stringMatching(/^t\.yaml:3:1 : /)] },
  ])('$note', ({ text, want }) => {
    expect(errors(text)).toEqual(want);
  });
});

it('the schema file’s id and scope patterns are the wire’s (editors check test files with the same grammar)', () => {
  const schema = JSON.parse(readFileSync('schemas/policy-test.schema.json', 'utf8')) as {
    definitions: { id: { pattern: string }; scope: { pattern: string }; task: { properties: { type: { pattern: string } } } };
  };
  expect([schema.definitions.id.pattern, schema.definitions.task.properties.type.pattern, schema.definitions.scope.pattern]).toEqual([ID_PATTERN, ID_PATTERN, SCOPE_PATTERN]);
});

describe('expectations: the fields given, exactly; lists as sets', () => {
  const actual: Answer = {
    outcome: 'allow',
    granted_scopes: ['issues:read', 'pr:read'],
    denied_scopes: [{ scope: 'issues:write', reason: 'capped', granted_instead: ['issues:read'] }],
    reasons: ['allowed', 'scopes_capped'],
    token_ttl_seconds: 3600,
  };
  it.each([
    { note: 'a subset of fields, lists in another order', expected: { granted_scopes: ['pr:read', 'issues:read'], reasons: ['scopes_capped', 'allowed'] }, fields: [] },
    { note: 'a missing granted scope', expected: { granted_scopes: ['pr:read'] }, fields: ['granted_scopes'] },
    { note: 'granted_instead is part of the entry', expected: { denied_scopes: [{ scope: 'issues:write', reason: 'capped' as const }] }, fields: ['denied_scopes'] },
    { note: 'an empty list is exact too', expected: { denied_scopes: [] }, fields: ['denied_scopes'] },
    { note: 'scalars', expected: { outcome: 'deny' as const, token_ttl_seconds: 60 }, fields: ['outcome', 'token_ttl_seconds'] },
  ])('$note', ({ expected, fields }) => {
    expect(compareAnswer(expected, actual).map((m) => m.field)).toEqual(fields);
  });

  it('a diff says - expected, + actual, item by item', () => {
    const [m] = compareAnswer({ reasons: ['allowed', 'deny_scope'] }, actual);
    expect(m?.diff).toEqual(['  allowed', '- deny_scope', '+ scopes_capped']);
  });
});

describe('the XML reader the JUnit test relies on', () => {
  it('reads a well-formed document', () => {
    const root = parseXml('<?xml version="1.0" encoding="UTF-8"?>\n<a n="1 &amp; 2"><b x=\'y\'/><b>t &lt;&#10;</b></a>\n');
    expect(root.attributes).toEqual({ n: '1 & 2' });
    expect(findAll(root, 'b').map((b) => b.text)).toEqual(['', 't <\n']);
  });
  it.each(['<a><b></a>', '<a>x & y</a>', '<a x="1" x="2"/>', '<a/><b/>', '<a x=1/>', '<a>', 'text', '<a>1 > 0</a>'])('refuses %s', (text) => {
    expect(() => parseXml(text)).toThrow(XmlError);
  });
});
