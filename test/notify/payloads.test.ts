/** The three body formats: what each carries, and that a PEP-chosen reason cannot format a Slack message. */
import { describe, expect, it } from 'vitest';
import { deliveryLinks, formatDuration, renderDelivery } from '../../src/notify/index.js';
import type { NotifiedRequest, RenderInput } from '../../src/notify/index.js';

const REQUEST: NotifiedRequest = {
  id: 'ar-1',
  status: 'pending',
  expires_at: '2026-01-01T01:00:00.000Z',
  decision_id: 'dec-1',
  requested_by: 'support-middleware',
  agent_id: 'support-resolver',
  task_id: 'task-1',
  integration: 'github',
  resource: { type: 'customer', id: '1234' },
  scopes: ['repo:write', 'repo:admin'],
  reason: 'hotfix for INC-42',
  duration_seconds: 5400,
  max_duration_seconds: 7200,
  approver_groups: ['platform-oncall'],
  policy_revision: 'rev-7',
  created_at: '2026-01-01T00:00:00.000Z',
  decided_at: null,
  decided_by: null,
  note: null,
  approved_until: null,
  ended_at: null,
  ended_reason: null,
};

const links = deliveryLinks('https://pdp.example.com/', 'ar-1', 'tok.mac');
const input = (overrides: Partial<RenderInput> = {}): RenderInput => ({
  format: 'generic',
  request: REQUEST,
  delivery_id: 'dl-1',
  approver_group: 'platform-oncall',
  links,
  public_url: 'https://pdp.example.com/',
  routing_key: null,
  ...overrides,
});
const render = (overrides: Partial<RenderInput> = {}) => JSON.parse(renderDelivery(input(overrides))) as Record<string, any>;

describe('links', () => {
  it('point at the review page with its token and at the API endpoints', () => {
    expect(links).toEqual({
      review: 'https://pdp.example.com/v1/access-requests/ar-1/review?t=tok.mac',
      approve_api: 'https://pdp.example.com/v1/access-requests/ar-1/approve',
      deny_api: 'https://pdp.example.com/v1/access-requests/ar-1/deny',
      status_api: 'https://pdp.example.com/v1/access-requests/ar-1',
    });
    expect(deliveryLinks('http://h', 'a/b', 't').approve_api).toBe('http://h/v1/access-requests/a%2Fb/approve');
  });
});

describe('generic', () => {
  it('is the event, the delivery id, the request in its wire shape (no idempotency facts) and the links', () => {
    const stored = { ...REQUEST, idempotency_key: 'secret-key', request_hash: 'h', trace_id: 't' };
    const body = render({ request: stored });
    expect(body).toEqual({
      type: 'access_request.submitted',
      delivery_id: 'dl-1',
      approver_group: 'platform-oncall',
      access_request: {
        id: 'ar-1',
        status: 'pending',
        status_endpoint: links.status_api,
        expires_at: REQUEST.expires_at,
        decision_id: 'dec-1',
        requested_by: 'support-middleware',
        agent_id: 'support-resolver',
        task_id: 'task-1',
        integration: 'github',
        resource: { type: 'customer', id: '1234' },
        scopes: ['repo:write', 'repo:admin'],
        reason: 'hotfix for INC-42',
        duration_seconds: 5400,
        max_duration_seconds: 7200,
        approver_groups: ['platform-oncall'],
        policy_revision: 'rev-7',
        created_at: REQUEST.created_at,
      },
      links: { review: links.review, approve_api: links.approve_api, deny_api: links.deny_api },
    });
  });
});

describe('slack', () => {
  it('is a Block Kit message: header, the facts, a button to the review page, and a fallback text', () => {
    const body = render({ format: 'slack' });
    expect(body.text).toContain('support-resolver asks for repo:write, repo:admin on github');
    expect(body.blocks.map((b: { type: string }) => b.type)).toEqual(['header', 'section', 'actions', 'context']);
    expect(body.blocks[0].text).toEqual({ type: 'plain_text', text: 'Access request: support-resolver asks for repo:write, repo:admin on github', emoji: false });
    expect(body.blocks[1].fields.map((f: { text: string }) => f.text)).toEqual([
      '*Agent*\nsupport-resolver',
      '*Task*\ntask-1',
      '*Integration*\ngithub',
      '*Scopes*\nrepo:write, repo:admin',
      '*Record*\ncustomer 1234',
      '*Reason*\nhotfix for INC-42',
      '*Requested duration*\n1 h 30 min',
      '*Policy revision*\nrev-7',
    ]);
    expect(body.blocks[2].elements).toEqual([expect.objectContaining({ type: 'button', url: links.review })]);
    expect(body.blocks[3].elements[0].text).toContain('ar-1');
  });

  it('escapes a reason that tries to ping the channel or forge a link, and cuts long texts to the limits', () => {
    const reason = '<!channel> please approve <https://evil.example|the runbook> & hurry';
    const body = render({ format: 'slack', request: { ...REQUEST, reason } });
    const field = body.blocks[1].fields[5].text as string;
    expect(field).toBe('*Reason*\n&lt;!channel&gt; please approve &lt;https://evil.example|the runbook&gt; &amp; hurry');
    const long = render({ format: 'slack', request: { ...REQUEST, reason: '<'.repeat(1000), scopes: Array.from({ length: 40 }, (_, i) => `scope:${i}`) } });
    expect((long.blocks[0].text.text as string).length).toBeLessThanOrEqual(150);
    expect((long.blocks[1].fields[5].text as string).length).toBeLessThanOrEqual(2000);
    expect(long.blocks[1].fields[5].text).not.toMatch(/&(?:l|lt)?…$/); // never half an entity
  });

  it('spells out bidirectional controls in what the PEP chose, so a reason or record reads in the order it was written', () => {
    const body = render({ format: 'slack', request: { ...REQUEST, reason: 'fix \u202Eexe.txt\u202C now', resource: { type: 'customer', id: '12\u206634' } } });
    expect(body.blocks[1].fields[5].text).toBe('*Reason*\nfix [U+202E]exe.txt[U+202C] now');
    expect(body.blocks[1].fields[4].text).toBe('*Record*\ncustomer 12[U+2066]34');
    const pd = render({ format: 'pagerduty', routing_key: 'rk', request: { ...REQUEST, reason: 'a\u202Eb' } });
    expect(pd.payload.custom_details.reason).toBe('a[U+202E]b');
    expect(JSON.stringify(pd)).not.toContain('\u202E');
  });

  it('shows "none" for a request without a record and without a reason', () => {
    const body = render({ format: 'slack', request: { ...REQUEST, resource: null, reason: null } });
    expect(body.blocks[1].fields[4].text).toBe('*Record*\nnone');
    expect(body.blocks[1].fields[5].text).toBe('*Reason*\n(none given)');
  });
});

describe('pagerduty', () => {
  it('is an Events API v2 trigger deduplicated on the request id, with the facts and links', () => {
    const body = render({ format: 'pagerduty', routing_key: 'R0UTINGKEY0000000000000000000000' });
    expect(body).toMatchObject({
      routing_key: 'R0UTINGKEY0000000000000000000000',
      event_action: 'trigger',
      dedup_key: 'ar-1',
      payload: {
        severity: 'warning',
        source: 'pdp.example.com',
        timestamp: REQUEST.created_at,
        custom_details: {
          access_request_id: 'ar-1',
          agent: 'support-resolver',
          task: 'task-1',
          integration: 'github',
          scopes: 'repo:write, repo:admin',
          record: 'customer 1234',
          reason: 'hotfix for INC-42',
          requested_duration: '1 h 30 min',
          policy_revision: 'rev-7',
        },
      },
    });
    expect(body.payload.summary).toBe('Access request ar-1: support-resolver asks for repo:write, repo:admin on github (task task-1)');
    expect(body.links).toEqual([
      { href: links.review, text: 'Review and decide' },
      { href: links.approve_api, text: expect.stringContaining('Approve') },
      { href: links.deny_api, text: expect.stringContaining('Deny') },
    ]);
  });

  it('needs a routing key', () => {
    expect(() => renderDelivery(input({ format: 'pagerduty', routing_key: null }))).toThrow(TypeError);
  });
});

it.each([
  { seconds: 0, text: '0 s' },
  { seconds: 90, text: '1 min 30 s' },
  { seconds: 3600, text: '1 h' },
  { seconds: 90_061, text: '1 d 1 h 1 min 1 s' },
])('formatDuration($seconds) is $text', ({ seconds, text }) => {
  expect(formatDuration(seconds)).toBe(text);
});
