/**
 * The body of a policy-suggestions notification (the scheduled suggestion run's new suggestions, docs/suggestions.md
 * "Schedule"), rendered at delivery time from the suggestions as stored (a retry shows their current status): the
 * generic JSON document and a Slack incoming-webhook message. No PagerDuty form: a suggestion is not an incident
 * (the config refuses a schedule that would notify a group only a PagerDuty webhook serves).
 *
 * Only the fields below are rendered (an allowlist): ids, agent, integration, kind, target, the engine's summary,
 * confidence and sample counts, the policy file's name. Never the diff or the evidence's sentences in Slack (they are
 * in the report the links point at); every text for Slack is escaped for mrkdwn and cut to its limits.
 */
import type { WebhookFormat } from '../config/config-types.js';
import type { NotificationRecord, SuggestionRecord } from '../store/index.js';
import { slackEscape } from './payloads.js';

/** The event of a suggestions notification (`X-AgentPDP-Event`, generic `type`). */
export const SUGGESTIONS_EVENT = 'policy.suggestions.new';
/** Most suggestions a Slack message lists (Block Kit allows 50 blocks); the rest are counted. */
const SLACK_MAX = 20;

export interface SuggestionRenderInput {
  format: WebhookFormat;
  notification: NotificationRecord;
  /** The notification's suggestions as stored now (one that no longer exists is left out). */
  suggestions: readonly SuggestionRecord[];
  delivery_id: string;
  /** The group this delivery is for (config `suggestions.schedule.notify`). */
  group: string;
  public_url: string;
}

/** One suggestion as a notification shows it. */
export interface NotifiedSuggestion {
  id: string;
  agent_id: string;
  integration: string;
  kind: string;
  target: string;
  /** Now: `open`, or what happened since (applied, dismissed, withdrawn). */
  status: string;
  summary: string | null;
  confidence: string | null;
  samples: number | null;
  days_observed: number | null;
  sources: string[];
  file: string | null;
  /** The commands an operator runs where the policy folder and the store are (`--config` to add). */
  apply: string;
  dismiss: string;
}

export interface SuggestionLinks {
  /** `GET` with an auditor or admin key: the open suggestions as JSON (`format=md|html` for a report). */
  list_api: string;
  report_html: string;
}

export function suggestionLinks(publicUrl: string): SuggestionLinks {
  const base = `${publicUrl.replace(/\/+$/, '')}/v1/suggestions?status=open`;
  return { list_api: base, report_html: `${base}&format=html` };
}

export function notifiedSuggestion(s: SuggestionRecord): NotifiedSuggestion {
  const proposal = (s.proposal ?? {}) as { summary?: unknown };
  const evidence = (s.evidence ?? {}) as { confidence?: unknown; samples?: unknown; days_observed?: unknown; sources?: unknown };
  return {
    id: s.id,
    agent_id: s.agent_id,
    integration: s.integration,
    kind: s.kind,
    target: s.target,
    status: s.status,
    summary: typeof proposal.summary === 'string' ? proposal.summary : null,
    confidence: typeof evidence.confidence === 'string' ? evidence.confidence : null,
    samples: typeof evidence.samples === 'number' ? evidence.samples : null,
    days_observed: typeof evidence.days_observed === 'number' ? evidence.days_observed : null,
    sources: Array.isArray(evidence.sources) ? evidence.sources.filter((x): x is string => typeof x === 'string') : [],
    file: s.file,
    apply: `agent-pdp suggest apply ${s.id}`,
    dismiss: `agent-pdp suggest dismiss ${s.id}`,
  };
}

/** The JSON body for `input.format`. */
export function renderSuggestionDelivery(input: SuggestionRenderInput): string {
  switch (input.format) {
    case 'generic':
      return JSON.stringify(genericSuggestionBody(input));
    case 'slack':
      return JSON.stringify(slackSuggestionBody(input));
    default:
      throw new TypeError(`suggestion notifications have no ${JSON.stringify(input.format as string)} form`);
  }
}

/** `{type, delivery_id, group, notification_id, created_at, suggestions, links}`. */
export function genericSuggestionBody(input: SuggestionRenderInput): Record<string, unknown> {
  return {
    type: SUGGESTIONS_EVENT,
    delivery_id: input.delivery_id,
    group: input.group,
    notification_id: input.notification.id,
    created_at: input.notification.created_at,
    suggestions: input.suggestions.map(notifiedSuggestion),
    links: suggestionLinks(input.public_url),
  };
}

export function slackSuggestionBody(input: SuggestionRenderInput): Record<string, unknown> {
  const listed = input.suggestions.slice(0, SLACK_MAX).map(notifiedSuggestion);
  const count = input.suggestions.length;
  const links = suggestionLinks(input.public_url);
  const title = `${count} new policy suggestion${count === 1 ? '' : 's'} (narrower policies, from observed use)`;
  const blocks: Array<Record<string, unknown>> = [{ type: 'header', text: { type: 'plain_text', text: cut(title, 150) } }];
  for (const s of listed) {
    const facts = [s.confidence === null ? null : `confidence ${s.confidence}`, s.samples === null ? null : `${s.samples} tokens`, s.days_observed === null ? null : `${s.days_observed} days`, s.status === 'open' ? null : `now ${s.status}`]
      .filter((x): x is string => x !== null)
      .join(' · ');
    const text = `*${slackEscape(s.agent_id)}* · ${slackEscape(s.kind)} ${slackEscape(s.integration)} \`${slackEscape(s.target)}\`\n${slackEscape(s.summary ?? '')}\n${slackEscape(facts)} · \`${slackEscape(s.apply)}\``;
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: cut(text, 3000) } });
  }
  const more = count > listed.length ? `${count - listed.length} more in the report · ` : '';
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: cut(slackEscape(`${more}group ${input.group} · report: ${links.report_html} (auditor or admin key)`), 3000) }] });
  return { text: cut(slackEscape(title), 3000), blocks };
}

/** At most `max` UTF-16 units, with an ellipsis when cut, never half an entity or surrogate pair. */
function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  if (/[\uD800-\uDBFF]/.test(text.charAt(end - 1))) end -= 1;
  const amp = text.lastIndexOf('&', end);
  if (amp !== -1 && amp > end - 5 && text.indexOf(';', amp) >= end) end = amp;
  return `${text.slice(0, end)}…`;
}
