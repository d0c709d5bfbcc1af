import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { PdpError } from '../../src/errors/pdp-error.js';
import { parseBundle, readBundleFile } from '../../src/policy/bundle-reader.js';
import type { EvaluationInputV1 } from '../../src/policy/decision-types.js';
import { loadPolicyDir } from '../../src/policy/policy-loader.js';
import type { PolicySet } from '../../src/policy/policy-types.js';
import { WasmEvaluator } from '../../src/policy/wasm-evaluator.js';
import { opaEvalDecisions } from '../support/opa-cli.js';

const BUNDLE = 'opa-bundle/bundle.tar.gz';

function input(agent_id: string, integration: string, scopes: string[], extra: Partial<EvaluationInputV1> = {}): EvaluationInputV1 {
  return { agent_id, caller_id: 'test-pep', task: { id: 't1', context: {}, registered: true }, integration, scopes, ...extra };
}
const task = (type: string, context: Record<string, unknown> = {}) => ({ id: 't1', type, context, registered: true });

/** The same inputs through the committed bundle (WASM, in-process) and through `opa eval` on rego/. */
const CASES: Array<{ note: string; input: EvaluationInputV1; outcome: string }> = [
  { note: 'seed: read within the ceiling', input: input('code-review-agent', 'github', ['repo:read', 'pr:read']), outcome: 'allow' },
  { note: 'seed: deny_scope refuses the whole request', input: input('code-review-agent', 'github', ['repo:read', 'repo:write']), outcome: 'deny' },
  { note: 'seed: issues:write capped to issues:read', input: input('code-review-agent', 'github', ['issues:write']), outcome: 'allow' },
  { note: 'seed: slack admin denied', input: input('code-review-agent', 'slack', ['chat:write', 'admin']), outcome: 'deny' },
  { note: 'seed: ttl is the smaller of policy and request', input: input('code-review-agent', 'slack', ['chat:write'], { ttl_seconds: 120 }), outcome: 'allow' },
  { note: 'seed: unknown integration', input: input('code-review-agent', 'crm', ['tickets:read']), outcome: 'deny' },
  {
    note: 'crm: ticket for the task customer',
    input: input('support-resolver', 'crm', ['tickets:write'], { task: task('complaint_resolution', { customer_id: '1234' }), resource: { type: 'customer', id: '1234' }, ttl_seconds: 300 }),
    outcome: 'allow',
  },
  {
    note: 'crm: ticket for another customer',
    input: input('support-resolver', 'crm', ['tickets:write'], { task: task('complaint_resolution', { customer_id: '1234' }), resource: { type: 'customer', id: '5678' } }),
    outcome: 'deny',
  },
  {
    note: 'crm: numeric context matches string resource id',
    input: input('support-resolver', 'crm', ['tickets:write'], { task: task('complaint_resolution', { customer_id: 1234 }), resource: { type: 'customer', id: '1234' } }),
    outcome: 'allow',
  },
  {
    note: 'crm: bound scope without a resource',
    input: input('support-resolver', 'crm', ['tickets:write'], { task: task('complaint_resolution', { customer_id: '1234' }) }),
    outcome: 'deny',
  },
  {
    note: 'crm: triage task caps write to read',
    input: input('support-resolver', 'crm', ['tickets:write'], { task: task('triage', { customer_id: '1234' }), resource: { type: 'customer', id: '1234' } }),
    outcome: 'allow',
  },
  { note: 'crm: undeclared task type', input: input('support-resolver', 'crm', ['tickets:read'], { task: task('refund') }), outcome: 'deny' },
  { note: 'crm: tickets:delete is denied', input: input('support-resolver', 'crm', ['tickets:delete'], { task: task('complaint_resolution') }), outcome: 'deny' },
  {
    note: 'mailbox: read the team mailbox',
    input: input('mailbox-summarizer', 'mail', ['mail:read'], { task: task('summarize', { mailbox: 'support-team' }), resource: { type: 'mailbox', id: 'support-team' } }),
    outcome: 'allow',
  },
  {
    note: 'mailbox: another mailbox',
    input: input('mailbox-summarizer', 'mail', ['mail:read'], { task: task('summarize', { mailbox: 'support-team' }), resource: { type: 'mailbox', id: 'ceo' } }),
    outcome: 'deny',
  },
  { note: 'mailbox: sending mail', input: input('mailbox-summarizer', 'mail', ['mail:send'], { task: task('summarize', { mailbox: 'support-team' }) }), outcome: 'deny' },
  {
    note: 'workflow: select on customer_feedback',
    input: input('feedback-workflow', 'database', ['select:customer_feedback'], { task: task('feedback_read', { table: 'customer_feedback' }), resource: { type: 'table', id: 'customer_feedback' } }),
    outcome: 'allow',
  },
  {
    note: 'workflow: translation scope in the read step',
    input: input('feedback-workflow', 'translation', ['translate'], { task: task('feedback_read', { table: 'customer_feedback' }) }),
    outcome: 'deny',
  },
  { note: 'unknown agent', input: input('nobody', 'github', ['repo:read']), outcome: 'deny' },
  {
    note: 'text beyond ASCII in the input (2-, 3- and 4-byte UTF-8, a NUL)',
    input: input('code-review-agent', 'github', ['repo:read'], { task: { id: 't1-é', context: { note: 'é 漢字 😀 \u0000 end' }, registered: true } }),
    outcome: 'allow',
  },
  { note: 'a scope name beyond ASCII', input: input('code-review-agent', 'github', ['repo:read', 'répo:😀']), outcome: 'allow' },
  { note: 'extension: suspended task', input: input('code-review-agent', 'github', ['repo:read'], { task: { id: 't1', context: { suspended: true }, registered: true } }), outcome: 'deny' },
];

describe('WASM evaluator on the committed bundle and the shipped policies', () => {
  let evaluator: WasmEvaluator;
  let policies: PolicySet;
  beforeAll(async () => {
    policies = await loadPolicyDir('test/fixtures/policies');
    evaluator = await WasmEvaluator.create(await readBundleFile(BUNDLE), policies.data, policies.revision);
  });

  it.each(CASES)('$note → $outcome', ({ input: i, outcome }) => {
    expect(evaluator.evaluate(i).outcome).toBe(outcome);
  });

  it('gives exactly the answers opa eval gives on rego/ for every case', () => {
    const oracle = opaEvalDecisions(policies.data, CASES.map((c) => c.input));
    const ours = CASES.map((c) => {
      const { defined: _defined, ...result } = evaluator.evaluate(c.input);
      return result;
    });
    expect(ours).toEqual(oracle);
  });

  it('an input larger than the module memory grows it, and the evaluations after it answer as before', () => {
    const small = input('code-review-agent', 'github', ['repo:read', 'pr:read']);
    const before = evaluator.evaluate(small);
    const large = input('code-review-agent', 'github', ['repo:read', 'pr:read'], { task: { id: 't1', context: { blob: '漢'.repeat(3_000_000) }, registered: true } });
    expect(evaluator.evaluate(large)).toEqual(before);
    expect(evaluator.evaluate(small)).toEqual(before);
  });

  it('reports the bundle and policy revisions it evaluates', () => {
    expect(evaluator.revision).toBe(`${evaluator.revisions.bundle}.${policies.revision}`);
    expect(evaluator.revisions.bundle).toMatch(/^[0-9a-f]{16}$/);
  });

  it('caps and explains: issues:write becomes issues:read', () => {
    const result = evaluator.evaluate(input('code-review-agent', 'github', ['issues:write']));
    expect(result.granted_scopes).toEqual(['issues:read']);
    expect(result.denied_scopes).toEqual([{ scope: 'issues:write', reason: 'capped', granted_instead: ['issues:read'] }]);
    expect(result.reasons.map((r) => r.code)).toEqual(['allowed', 'scopes_capped']);
  });
});

describe('bundle reader refuses what it cannot trust', () => {
  it.each([
    { note: 'not gzip', bytes: Buffer.from('plain text'), message: /not a gzip stream/ },
    { note: 'an empty archive', bytes: gzipSync(Buffer.alloc(1024)), message: /\.manifest is missing/ },
    { note: 'a corrupt tar header', bytes: gzipSync(Buffer.alloc(512, 7)), message: /non-octal|bad header checksum/ },
  ])('$note', ({ bytes, message }) => {
    expect(() => parseBundle(bytes)).toThrow(message);
    try {
      parseBundle(bytes);
    } catch (err) {
      expect((err as PdpError).code).toBe('bundle_invalid');
    }
  });

  it('a missing file is bundle_missing', async () => {
    await expect(readBundleFile('/nonexistent/bundle.tar.gz')).rejects.toMatchObject({ code: 'bundle_missing' });
  });

  it('reads the committed bundle: one module, the decision entrypoint, empty data', () => {
    const bundle = parseBundle(readFileSync(BUNDLE), BUNDLE);
    expect(bundle.entrypoints).toContain('agentpdp/decision');
    expect(bundle.data).toEqual({});
    expect(bundle.wasm.subarray(0, 4)).toEqual(Buffer.from([0, 0x61, 0x73, 0x6d]));
  });
});
