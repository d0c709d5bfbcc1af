/**
 * The body of a notification, rendered at delivery time from the access request as stored: the generic JSON
 * document, a Slack incoming-webhook message (Block Kit) and a PagerDuty Events API v2 trigger. Each carries the
 * same facts (agent, task, integration, scopes, record, reason, requested duration, policy revision) and the same
 * links: the review page (with its approval-link token) and the approve / deny API endpoints.
 *
 * Text that a PEP chose (the reason above all) is escaped for Slack's mrkdwn (`&`, `<`, `>`), so a reason cannot
 * mention `@channel`, forge a link or break out of its field; every text is cut to the receiver's limits.
 */
import type { WebhookFormat } from '../config/config-types.js';
import { shownToApprover, type AccessRequestV1 } from '../wire/access-request-v1.js';

/** The event every notification is about (`X-AgentPDP-Event`, generic `type`). */
export const SUBMITTED_EVENT = 'access_request.submitted';

/** The access request as the store keeps it; only the fields below are ever rendered (an allowlist). */
export type NotifiedRequest = Omit<AccessRequestV1, 'status_endpoint' | 'result'>;

export interface DeliveryLinks {
  /** The confirmation page: shows the request; approving from it needs the approver's API key. */
  review: string;
  /** `POST` with an approver's API key. */
  approve_api: string;
  /** `POST` with an approver's API key. */
  deny_api: string;
  /** `GET`: the request's current state. */
  status_api: string;
}

export interface RenderInput {
  format: WebhookFormat;
  request: NotifiedRequest;
  delivery_id: string;
  /** The approver group this delivery is for. */
  approver_group: string;
  links: DeliveryLinks;
  /** `public_url`: PagerDuty's `source`, the host the links point at. */
  public_url: string;
  /** PagerDuty only: the integration's routing key. Required for that format. */
  routing_key?: string | null;
}

/** The links of a request, the review page carrying `token` (ApprovalLinks.issue). */
export function deliveryLinks(publicUrl: string, requestId: string, token: string): DeliveryLinks {
  const base = `${publicUrl.replace(/\/+$/, '')}/v1/access-requests/${encodeURIComponent(requestId)}`;
  return {
    review: `${base}/review?t=${encodeURIComponent(token)}`,
    approve_api: `${base}/approve`,
    deny_api: `${base}/deny`,
    status_api: base,
  };
}

/** The JSON body for `input.format`. */
export function renderDelivery(input: RenderInput): string {
  switch (input.format) {
    case 'generic':
      return JSON.stringify(genericBody(input));
    case 'slack':
      return JSON.stringify(slackBody(input));
    case 'pagerduty':
      return JSON.stringify(pagerDutyBody(input));
    default:
      throw new TypeError(`unknown webhook format ${JSON.stringify(input.format as string)}`);
  }
}

/** `{type, delivery_id, approver_group, access_request, links}`; `access_request` is the wire shape (no result). */
export function genericBody(input: RenderInput): Record<string, unknown> {
  const r = input.request;
  return {
    type: SUBMITTED_EVENT,
    delivery_id: input.delivery_id,
    approver_group: input.approver_group,
    access_request: {
      id: r.id,
      status: r.status,
      status_endpoint: input.links.status_api,
      expires_at: r.expires_at,
      decision_id: r.decision_id,
      requested_by: r.requested_by,
      agent_id: r.agent_id,
      task_id: r.task_id,
      integration: r.integration,
      resource: r.resource === null ? null : { type: r.resource.type, id: r.resource.id },
      scopes: [...r.scopes],
      reason: r.reason,
      duration_seconds: r.duration_seconds,
      max_duration_seconds: r.max_duration_seconds,
      approver_groups: [...r.approver_groups],
      policy_revision: r.policy_revision,
      created_at: r.created_at,
    },
    links: { review: input.links.review, approve_api: input.links.approve_api, deny_api: input.links.deny_api },
  };
}

/** The facts every format shows, as label → plain text, in this order. */
export function requestFacts(r: NotifiedRequest): [label: string, value: string][] {
  const facts: [label: string, value: string][] = [
    ['Agent', r.agent_id],
    ['Task', r.task_id],
    ['Integration', r.integration],
    ['Scopes', r.scopes.join(', ')],
    ['Record', r.resource === null ? 'none' : `${r.resource.type} ${r.resource.id}`],
    ['Reason', r.reason ?? '(none given)'],
    ['Requested duration', formatDuration(r.duration_seconds)],
    ['Policy revision', r.policy_revision],
  ];
  return facts.map(([label, value]) => [label, shownToApprover(value)]);
}

/** Slack incoming-webhook message: header, the facts as section fields, the review button, request id and expiry. */
export function slackBody(input: RenderInput): Record<string, unknown> {
  const r = input.request;
  const title = shownToApprover(`Access request: ${r.agent_id} asks for ${r.scopes.join(', ')} on ${r.integration}`);
  return {
    text: cut(slackEscape(title), 3000),
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: cut(title, 150), emoji: false } },
      {
        type: 'section',
        fields: requestFacts(r).map(([label, value]) => ({ type: 'mrkdwn', text: cut(`*${label}*\n${slackEscape(value)}`, 2000) })),
      },
      {
        type: 'actions',
        elements: [
          {
            type: 'button',
            action_id: 'agentpdp_review',
            style: 'primary',
            text: { type: 'plain_text', text: 'Review and decide', emoji: false },
            url: input.links.review,
          },
        ],
      },
      {
        type: 'context',
        elements: [
          {
            type: 'mrkdwn',
            text: cut(
              slackEscape(`Request ${r.id} for approver group ${input.approver_group} · pending until ${r.expires_at} · approving needs your approver API key`),
              3000,
            ),
          },
        ],
      },
    ],
  };
}

/** PagerDuty Events API v2 `trigger`; dedup_key is the request id, so every delivery of one request is one alert. */
export function pagerDutyBody(input: RenderInput): Record<string, unknown> {
  const r = input.request;
  if (typeof input.routing_key !== 'string' || input.routing_key === '') throw new TypeError('a pagerduty delivery needs a routing key');
  const details: Record<string, string> = { access_request_id: r.id, approver_group: input.approver_group, expires_at: r.expires_at };
  for (const [label, value] of requestFacts(r)) details[label.toLowerCase().replace(/ /g, '_')] = value;
  return {
    routing_key: input.routing_key,
    event_action: 'trigger',
    dedup_key: r.id,
    payload: {
      summary: cut(shownToApprover(`Access request ${r.id}: ${r.agent_id} asks for ${r.scopes.join(', ')} on ${r.integration} (task ${r.task_id})`), 1024),
      source: sourceOf(input.public_url),
      severity: 'warning',
      timestamp: r.created_at,
      component: r.integration,
      group: input.approver_group,
      class: 'access_request',
      custom_details: details,
    },
    client: 'agent-pdp',
    client_url: input.links.review,
    links: [
      { href: input.links.review, text: 'Review and decide' },
      { href: input.links.approve_api, text: 'Approve (API, POST with an approver key)' },
      { href: input.links.deny_api, text: 'Deny (API, POST with an approver key)' },
    ],
  };
}

/** `3600` → `1 h`, `5400` → `1 h 30 min`, `90` → `1 min 30 s`. */
export function formatDuration(seconds: number): string {
  const parts: string[] = [];
  let rest = Math.max(0, Math.floor(seconds));
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['min', 60], ['s', 1]] as const) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0) parts.push(`${n} ${unit}`);
  }
  return parts.length === 0 ? '0 s' : parts.join(' ');
}

/** Slack mrkdwn control characters as its documented entities. */
export function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function sourceOf(publicUrl: string): string {
  try {
    return new URL(publicUrl).host || 'agent-pdp';
  } catch {
    return 'agent-pdp';
  }
}

/** At most `max` UTF-16 units, with an ellipsis when cut, and never half an entity or surrogate pair. */
function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  if (/[\uD800-\uDBFF]/.test(text.charAt(end - 1))) end -= 1;
  const amp = text.lastIndexOf('&', end);
  if (amp !== -1 && amp > end - 5 && text.indexOf(';', amp) >= end) end = amp;
  return `${text.slice(0, end)}…`;
}
