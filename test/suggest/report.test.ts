import { describe, expect, it } from 'vitest';
import type { SuggestionRecord, UsageSummary } from '../../src/store/index.js';
import { suggestPolicies } from '../../src/suggest/engine.js';
import { htmlReport } from '../../src/suggest/report-html.js';
import { jsonReport } from '../../src/suggest/report-json.js';
import { markdownReport } from '../../src/suggest/report-markdown.js';
import type { ReportInput } from '../../src/suggest/report-model.js';
import { DEFAULT_THRESHOLDS, type Suggestion } from '../../src/suggest/suggestion-types.js';
import type { UsageSeries } from '../../src/suggest/usage-series.js';
import { policyOf, UsageBuilder } from './usage-builder.js';

/**
 * The three reports of a run: JSON for machines, Markdown for a ticket, one self-contained HTML file. Names come
 * from policy files and the store, so a hostile one must come out as text, never as markup or a fetch.
 */

const GITHUB = `integration:
  id: github
  implies:
    repo:write: [repo:read]
`;
const AGENT = `agent_policy:
  id: code-review-agent
  integrations:
    github:
      max_scope: [repo:read, pr:read, repo:write]
    google:
      max_scope: [https://www.googleapis.com/auth/calendar.readonly, https://www.googleapis.com/auth/calendar]
  token_ttl: 3600
`;
const NOW = '2026-04-01T00:00:00.000Z';

function runReport(): ReportInput {
  const { policy, files } = policyOf({ 'integrations/github.yaml': GITHUB, 'agents/code-review-agent.yaml': AGENT });
  const builder = new UsageBuilder()
    .grant({ agent: 'code-review-agent', integration: 'github', scopes: ['repo:read', 'pr:read', 'repo:write'], days: 90, perDay: 2, task_type: 'review' })
    .use({ agent: 'code-review-agent', integration: 'github', scope: 'repo:read', days: 90, task_type: 'review' })
    .use({ agent: 'code-review-agent', integration: 'github', scope: 'pr:read', days: 90, task_type: 'review' })
    .grant({ agent: 'code-review-agent', integration: 'google', scopes: ['https://www.googleapis.com/auth/calendar.readonly', 'https://www.googleapis.com/auth/calendar'], days: 90 })
    .use({ agent: 'code-review-agent', integration: 'google', scope: 'https://www.googleapis.com/auth/calendar.readonly', days: 90, source: 'resource_server' });
  const summary = builder.build();
  const run = suggestPolicies({ summary, policy, files, thresholds: DEFAULT_THRESHOLDS, now: NOW });
  const { suggestions, ...analysis } = run;
  return { generated_at: NOW, suggestions: suggestions.map((s) => stored(s)), run: analysis, series: seriesOf(summary) };
}

const stored = (s: Suggestion, extra: Partial<SuggestionRecord> = {}): SuggestionRecord => ({
  ...s,
  status: 'open',
  created_at: NOW,
  updated_at: NOW,
  decided_by: null,
  decided_at: null,
  ...extra,
});

/** Three buckets of the same window (enough for the chart's shape). */
function seriesOf(summary: UsageSummary): UsageSeries {
  return [0, 1, 2].map((i) => ({ since: `2026-0${i + 1}-01T00:00:00.000Z`, until: `2026-0${i + 2}-01T00:00:00.000Z`, summary }));
}

const HOSTILE = '<script>alert(1)</script>';
const ATTR = '"><img src=x onerror=alert(1)>';

/** A stored list with hostile values everywhere a report shows one. */
function hostileInput(): ReportInput {
  const at = NOW;
  const record: SuggestionRecord = {
    id: `sg_${ATTR}`,
    agent_id: HOSTILE,
    integration: `gh${ATTR}`,
    kind: 'remove_scope',
    target: `repo:${HOSTILE}`,
    proposal: { summary: `remove ${HOSTILE}`, edits: [], diff: `--- a/x\n+++ b/x\n@@ -1 +1 @@\n-</pre>${HOSTILE}\n+\`\`\`\n` },
    evidence: { confidence: `high${ATTR}`, reasons: [`because ${HOSTILE}`, '[link](javascript:alert(1))'] },
    evidence_hash: 'h',
    file: `agents/${ATTR}.yaml`,
    file_sha256: null,
    status: 'dismissed',
    created_at: at,
    updated_at: at,
    decided_by: `ops${ATTR}`,
    decided_at: at,
  };
  const row = { agent_id: HOSTILE, integration: 'gh', scope: `s${HOSTILE}`, task_type: '', record_type: '', n: 3, first_at: at, last_at: at, days: 1 };
  const summary: UsageSummary = {
    since: at,
    until: at,
    first_day: '2026-04-01',
    last_day: '2026-04-01',
    seq: 1,
    rows: [
      { ...row, source: 'granted' },
      { ...row, source: 'proxy', n: 1 },
    ],
    spans: [],
    issued: [],
  };
  return {
    generated_at: at,
    suggestions: [record],
    run: {
      generated_at: at,
      since: at,
      until: at,
      first_day: `2026${HOSTILE}`,
      last_day: '2026-04-01',
      thresholds: DEFAULT_THRESHOLDS,
      policy_revision: ATTR,
      agents: [
        {
          agent_id: HOSTILE,
          file: `agents/${HOSTILE}.yaml`,
          token_ttl: 60,
          per_task_downscope: false,
          integrations: [
            {
              integration: `gh${HOSTILE}`,
              sources: ['proxy'],
              tokens_issued: 3,
              longest_use_seconds: null,
              scopes: [
                {
                  scope: `s${ATTR}`,
                  origin: 'own',
                  verdict: 'unused',
                  evidence: {
                    scope: `s${ATTR}`,
                    granted: 3,
                    granted_first_at: at,
                    granted_last_at: at,
                    used: { proxy: 0, resource_server: 0 },
                    used_first_at: null,
                    used_last_at: null,
                    requested: 0,
                    denied: 0,
                    days_observed: 1,
                    task_types: {},
                  },
                },
              ],
            },
          ],
          notes: [{ kind: 'role_grant', integration: HOSTILE, scope: null, message: `note ${HOSTILE}` }],
        },
      ],
    },
    series: [{ since: at, until: at, summary }],
  };
}

describe('HTML', () => {
  it('is one self-contained file: inline CSS and SVG, a CSP, nothing to fetch, no script', () => {
    const html = htmlReport(runReport());
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;; style-src &#39;unsafe-inline&#39;; img-src &#39;none&#39;; base-uri &#39;none&#39;; form-action &#39;none&#39;">`);
    expect(html).not.toMatch(/<(script|link|img|iframe|object|embed|image|use|foreignObject)\b/i);
    expect(html).not.toMatch(/\s(href|src|srcset|action|xlink:href|formaction)\s*=/i);
    expect(html).not.toMatch(/url\(|@import/i);
    // The Google scopes are URLs: shown as text, never inside an attribute.
    expect(html).toContain('https://www.googleapis.com/auth/calendar');
    expect(html).not.toMatch(/=\s*"[^"]*(https?:|\/\/)/i);
  });

  it('has one section per agent with its chart, the suggestion, its diff and the scope table', () => {
    const html = htmlReport(runReport());
    expect(html.match(/<section>/g)).toHaveLength(1);
    expect(html).toContain('<h2>code-review-agent <code>agents/code-review-agent.yaml</code></h2>');
    expect(html).toContain('<svg class="chart"');
    expect(html).toContain('github repo:write<title>github repo:write</title>');
    expect(html.match(/<rect class="granted"/g)?.length).toBeGreaterThan(3);
    expect(html).toContain('<polyline class="used"');
    expect(html).toContain('remove a scope: <code>repo:write</code> on <code>github</code>');
    expect(html).toContain('<span class="del">-      max_scope: [repo:read, pr:read, repo:write]</span><span class="add">+      max_scope: [repo:read, pr:read]</span>');
    expect(html).toContain('<td><code>github</code></td><td><code>repo:write</code></td><td>own</td><td class="unused">unused</td>');
  });

  it('escapes hostile agent, scope, file and note values everywhere, chart included', () => {
    const html = htmlReport(hostileInput());
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<img');
    expect(html).not.toContain('</pre><');
    expect(html).not.toMatch(/<[^>]*\sonerror=/);
    expect(html).toContain('&#60;script&#62;alert(1)&#60;/script&#62;');
    expect(html).toContain('&#34;&#62;&#60;img src=x onerror=alert(1)&#62;');
    // The chart's labels too.
    expect(html).toMatch(/<text class="label"[^>]*>gh s&#60;script&#62;/);
  });
});

describe('Markdown', () => {
  it('a ticket-ready summary: per agent, each suggestion with its evidence, commands and diff', () => {
    const md = markdownReport(runReport());
    expect(md).toContain('# Policy suggestions, 2026\\-04\\-01'.replace(/\\-/g, '-'));
    expect(md).toContain('## `code-review-agent` (`agents/code-review-agent.yaml`)');
    expect(md).toContain('### remove a scope: `repo:write` on `github`');
    expect(md).toMatch(/- id `sg_[0-9a-f]{24}`, open; confidence high/);
    expect(md).toMatch(/- apply: `agent-pdp suggest apply sg_[0-9a-f]{24} --config FILE`/);
    expect(md).toContain('```diff\n--- a/agents/code-review-agent.yaml\n');
    expect(md).toContain('Seen, not suggested:');
  });

  it('hostile values stay text: no HTML, no link, a diff cannot close its fence', () => {
    const md = markdownReport(hostileInput());
    // Outside code (fenced blocks, code spans: shown verbatim, never rendered), no `<` is left unescaped.
    const prose = md.replace(/^(`{3,})[^\n]*\n[\s\S]*?\n\1$/gm, '').replace(/(`+)[\s\S]*?\1/g, '');
    expect(prose).not.toMatch(/(^|[^\\])</);
    expect(md).not.toMatch(/(^|[^\\])\[link\]\(/);
    expect(md).toContain('\\<script\\>');
    expect(md).toContain('````diff\n');
    expect(md).toContain('\n````\n');
  });
});

describe('JSON', () => {
  it('SuggestionReportV1: the window, thresholds, revision, the stored records and the analysis', () => {
    const input = runReport();
    const report = JSON.parse(jsonReport(input)) as Record<string, unknown>;
    expect(report).toMatchObject({
      version: 1,
      generated_at: NOW,
      window: { since: '2026-01-01T00:00:00.000Z', until: '2026-04-01T00:00:00.000Z', first_day: '2026-01-01', last_day: '2026-03-31' },
      thresholds: DEFAULT_THRESHOLDS,
      policy_revision: expect.stringMatching(/^[0-9a-f]{16}$/),
    });
    expect(report['suggestions']).toEqual(JSON.parse(JSON.stringify(input.suggestions)));
    expect((report['suggestions'] as Array<{ integration: string; kind: string; target: string }>).map((s) => `${s.integration} ${s.kind} ${s.target}`)).toEqual([
      'github remove_scope repo:write',
      'google remove_scope https://www.googleapis.com/auth/calendar',
    ]);
    expect((report['agents'] as Array<{ agent_id: string }>).map((a) => a.agent_id)).toEqual(['code-review-agent']);
  });

  it('a stored list (the HTTP route) has no window, thresholds or analysis', () => {
    const report = JSON.parse(jsonReport({ generated_at: NOW, suggestions: [] })) as Record<string, unknown>;
    expect(report).toEqual({ version: 1, generated_at: NOW, window: null, thresholds: null, policy_revision: null, suggestions: [], agents: [] });
  });
});
