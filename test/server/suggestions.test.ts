import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { policySuggestionDismissedEvent } from '../../src/audit/index.js';
import type { SuggestionRecord } from '../../src/store/index.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';

/**
 * GET /v1/suggestions: the stored suggestions (never recomputed by the server), for auditors and admins, as JSON,
 * Markdown or a self-contained HTML report; filtered by agent and status. A real PDP on loopback, its real store.
 */

let t: TestPdp;

function suggestion(id: string, agent: string, target: string): SuggestionRecord {
  const at = t.clock.now.toISOString();
  return {
    id,
    agent_id: agent,
    integration: 'github',
    kind: 'remove_scope',
    target,
    proposal: { summary: `remove ${target} from ${agent}'s github max_scope`, edits: [], diff: `--- a/x.yaml\n+++ b/x.yaml\n@@ -1 +1 @@\n-a: [${target}]\n+a: []\n` },
    evidence: { confidence: 'high', reasons: [`${target} never used`] },
    evidence_hash: `hash-${id}`,
    file: `agents/${agent}.yaml`,
    file_sha256: '0'.repeat(64),
    status: 'open',
    created_at: at,
    updated_at: at,
    decided_by: null,
    decided_at: null,
  };
}

beforeAll(async () => {
  t = await startTestPdp();
  await t.pdp.store.saveSuggestions([
    suggestion('sg_a', 'code-review-agent', 'repo:write'),
    suggestion('sg_b', 'code-review-agent', 'issues:read'),
    suggestion('sg_c', 'support-resolver', 'tickets:write'),
  ]);
  const at = t.clock.now.toISOString();
  const event = policySuggestionDismissedEvent(at, { agent_id: 'code-review-agent', caller_id: 'ops' }, { suggestion_id: 'sg_b', integration: 'github', kind: 'remove_scope', target: 'issues:read', note: null });
  await t.pdp.store.decideSuggestion({ id: 'sg_b', status: 'dismissed', by: 'ops', at, event });
});
afterAll(async () => t.close());

const get = (query: string, key: string = KEYS.auditor) => request(t.url).get(`/v1/suggestions${query}`).set(auth(key));

describe('role gate', () => {
  it.each([
    { note: 'auditor', key: KEYS.auditor, status: 200 },
    { note: 'admin', key: KEYS.admin, status: 200 },
    { note: 'pep', key: KEYS.pep, status: 403, code: 'forbidden_role' },
    { note: 'orchestrator', key: KEYS.orchestrator, status: 403, code: 'forbidden_role' },
    { note: 'approver', key: KEYS.approver, status: 403, code: 'forbidden_role' },
    { note: 'resource server', key: KEYS.resource, status: 403, code: 'forbidden_role' },
    { note: 'an unknown key', key: 'nobody', status: 401, code: 'unauthenticated' },
  ])('$note → $status', async ({ key, status, code }) => {
    const res = await get('', key);
    expect(res.status).toBe(status);
    if (code !== undefined) expect(res.body.error.code).toBe(code);
  });
});

describe('formats', () => {
  it('JSON by default: SuggestionReportV1 of the stored records, statuses as decided', async () => {
    const res = await get('').expect(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toMatchObject({ version: 1, window: null, thresholds: null, policy_revision: null, agents: [] });
    expect(res.body.suggestions.map((s: SuggestionRecord) => `${s.id} ${s.status}`)).toEqual(['sg_b dismissed', 'sg_a open', 'sg_c open']);
    expect(res.body.suggestions[0]).toMatchObject({ decided_by: 'ops', proposal: { summary: "remove issues:read from code-review-agent's github max_scope" } });
  });

  it('Markdown: the ticket summary', async () => {
    const res = await get('?format=md&agent=code-review-agent').expect(200);
    expect(res.headers['content-type']).toBe('text/markdown; charset=utf-8');
    expect(res.text).toContain('## `code-review-agent` (`agents/code-review-agent.yaml`)');
    expect(res.text).toContain('1 open, 0 applied, 1 dismissed');
    expect(res.text).not.toContain('support-resolver');
  });

  it('HTML: one self-contained page, with a CSP that forbids fetching or running anything', async () => {
    const res = await get('?format=html').expect(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['content-security-policy']).toContain("default-src 'none'");
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.text).toContain('<meta http-equiv="Content-Security-Policy"');
    expect(res.text.match(/<section>/g)).toHaveLength(2);
    expect(res.text).not.toMatch(/<script|\s(src|href)=/i);
  });
});

describe('filters', () => {
  it.each([
    { query: '?status=open', ids: ['sg_a', 'sg_c'] },
    { query: '?status=dismissed', ids: ['sg_b'] },
    { query: '?status=applied', ids: [] },
    { query: '?agent=support-resolver', ids: ['sg_c'] },
    { query: '?agent=code-review-agent&status=open', ids: ['sg_a'] },
    { query: '?agent=nobody', ids: [] },
  ])('$query', async ({ query, ids }) => {
    const res = await get(query).expect(200);
    expect(res.body.suggestions.map((s: SuggestionRecord) => s.id)).toEqual(ids);
  });

  it.each([
    { note: 'an unknown format', query: '?format=pdf' },
    { note: 'an unknown status', query: '?status=closed' },
    { note: 'a repeated parameter', query: '?status=open&status=dismissed' },
    { note: 'an agent that is no id', query: '?agent=%3Cscript%3E' },
  ])('$note → 400 invalid_request', async ({ query }) => {
    const res = await get(query).expect(400);
    expect(res.body.error.code).toBe('invalid_request');
  });
});
