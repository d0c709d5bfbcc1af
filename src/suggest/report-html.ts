/*
 * The HTML report (`--format html`): one self-contained file to open, mail or attach. One section per agent: a chart
 * of granted vs used per scope over the window (when the usage over time is given), each suggestion with its
 * evidence and YAML diff, the scope-by-scope table and the notes. Inline CSS, inline SVG, no script, no link, no
 * image or font to fetch, and a Content-Security-Policy that forbids any of it anyway. Every value is escaped.
 */
import { agentSections, KIND_TITLES, statusCounts, type ReportInput, type SuggestionView } from './report-model.js';
import type { AgentAnalysis, IntegrationAnalysis } from './suggestion-types.js';
import { chartRows, esc, svgChart } from './svg-chart.js';

/** The policy the file states for itself (and the HTTP route sends as a header). */
export const HTML_REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; form-action 'none'";

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1100px;padding:24px;color:#1f2328;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;padding-top:16px;border-top:1px solid #d0d7de}
h3{font-size:15px;margin:16px 0 6px}.meta{color:#57606a}code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f6f8fa;padding:1px 4px;border-radius:4px}
.card{border:1px solid #d0d7de;border-radius:6px;padding:10px 14px;margin:10px 0}.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;margin-left:6px}
.high{background:#dafbe1}.medium{background:#fff8c5}.low{background:#ffebe9}.open{background:#ddf4ff}.applied{background:#dafbe1}.dismissed{background:#eaeef2}.withdrawn{background:#eaeef2}
pre.diff{background:#f6f8fa;padding:8px;overflow:auto;font:12px ui-monospace,SFMono-Regular,Menlo,monospace;border-radius:6px}
pre.diff .add{background:#dafbe1;display:block}pre.diff .del{background:#ffebe9;display:block}pre.diff .hunk{color:#8250df;display:block}
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left}th{background:#f6f8fa}
td.n{text-align:right;font-variant-numeric:tabular-nums}.unused{color:#cf222e}.used{color:#1a7f37}
svg.chart{display:block;margin:8px 0;max-width:100%;height:auto}svg .label,svg .max,svg .axis-label{font:11px ui-monospace,Menlo,monospace;fill:#57606a}
svg rect.granted{fill:#9ecbff}svg polyline.used{fill:none;stroke:#1a7f37;stroke-width:1.5}svg circle.used{fill:#1a7f37}svg .axis{stroke:#d0d7de}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px;vertical-align:middle}
`;

export function htmlReport(input: ReportInput): string {
  const run = input.run;
  const counts = statusCounts(input.suggestions);
  const body: string[] = [`<h1>Policy suggestions</h1>`];
  const meta = [`generated ${input.generated_at}`];
  if (run !== undefined) {
    const t = run.thresholds;
    meta.push(`window ${run.first_day} to ${run.last_day}`, `policy revision ${run.policy_revision}`, `thresholds: ${t.min_days} days, ${t.min_tokens} tokens, TTL factor ${t.ttl_factor}`);
  }
  body.push(`<p class="meta">${meta.map(esc).join(' · ')}</p>`);
  body.push(`<p>${counts.open} open, ${counts.applied} applied, ${counts.dismissed} dismissed${counts.withdrawn > 0 ? `, ${counts.withdrawn} withdrawn (no longer supported by the evidence)` : ''}. A suggestion only ever narrows a policy, and nothing changes until someone applies it (<code>agent-pdp suggest apply ID</code>).</p>`);
  const sections = agentSections(input);
  if (sections.length === 0) body.push('<p>Nothing to report.</p>');
  for (const section of sections) {
    const file = section.analysis?.file ?? section.suggestions[0]?.record.file ?? null;
    body.push(`<section><h2>${esc(section.agent_id)}${file === null ? '' : ` <code>${esc(file)}</code>`}</h2>`);
    if (input.series !== undefined) {
      const chart = svgChart(chartRows(input.series, section.agent_id), input.series, `${section.agent_id}: tokens that carried each scope (bars) and its uses (line) over the window`);
      if (chart !== '') body.push(`<p class="legend meta">per scope:<span style="background:#9ecbff"></span>tokens that carried it<span style="background:#1a7f37"></span>uses with evidence (proxy calls, resource server reports)</p>`, chart);
    }
    if (section.suggestions.length === 0) body.push('<p>No suggestion.</p>');
    for (const view of section.suggestions) body.push(card(view));
    if (section.analysis !== null) body.push(...analysis(section.analysis));
    body.push('</section>');
  }
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${esc(HTML_REPORT_CSP)}">`,
    '<meta name="referrer" content="no-referrer">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>Policy suggestions ${esc(input.generated_at.slice(0, 10))}</title>`,
    `<style>${STYLE}</style></head><body>`,
    ...body,
    '</body></html>',
    '',
  ].join('\n');
}

function card(view: SuggestionView): string {
  const r = view.record;
  const badges = [
    view.confidence === null ? '' : `<span class="badge ${view.confidence}">${esc(view.confidence)} confidence</span>`,
    `<span class="badge ${esc(r.status)}">${esc(r.status)}${r.decided_by === null ? '' : ` by ${esc(r.decided_by)}`}</span>`,
  ].join('');
  const parts = [
    `<div class="card"><h3>${esc(KIND_TITLES[r.kind] ?? r.kind)}: <code>${esc(r.target)}</code>${r.integration === '*' ? '' : ` on <code>${esc(r.integration)}</code>`}${badges}</h3>`,
    `<p>${esc(view.summary)}</p>`,
  ];
  if (view.reasons.length > 0) parts.push(`<ul>${view.reasons.map((reason) => `<li>${esc(reason)}</li>`).join('')}</ul>`);
  parts.push(`<p class="meta">id <code>${esc(r.id)}</code>${r.status === 'open' ? ` · <code>agent-pdp suggest apply ${esc(r.id)} --config FILE</code> · <code>agent-pdp suggest dismiss ${esc(r.id)} --config FILE</code>` : ''}</p>`);
  if (view.diff !== '') parts.push(`<pre class="diff">${diffLines(view.diff)}</pre>`);
  parts.push('</div>');
  return parts.join('\n');
}

function diffLines(diff: string): string {
  return diff
    .replace(/\n$/, '')
    .split('\n')
    .map((line) => {
      const cls = line.startsWith('@@') ? 'hunk' : line.startsWith('+') && !line.startsWith('+++') ? 'add' : line.startsWith('-') && !line.startsWith('---') ? 'del' : '';
      return cls === '' ? `${esc(line)}\n` : `<span class="${cls}">${esc(line)}</span>`;
    })
    .join('');
}

function analysis(agent: AgentAnalysis): string[] {
  const out: string[] = [];
  const rows = agent.integrations.flatMap((i) => integrationRows(i));
  if (rows.length > 0) {
    out.push('<h3>Every scope in the window</h3>');
    out.push(
      '<table><thead><tr><th>integration</th><th>scope</th><th>ceiling</th><th>verdict</th><th>tokens</th><th>proxy uses</th><th>reported uses</th><th>asked</th><th>refused</th><th>first token</th><th>last token</th><th>days</th></tr></thead><tbody>',
      ...rows,
      '</tbody></table>',
    );
  }
  if (agent.notes.length > 0) {
    out.push('<h3>Seen, not suggested</h3>', `<ul>${agent.notes.map((n) => `<li>${n.integration === null ? '' : `<code>${esc(n.integration)}</code>: `}${esc(n.message)}</li>`).join('')}</ul>`);
  }
  return out;
}

function integrationRows(i: IntegrationAnalysis): string[] {
  return i.scopes.map((s) => {
    const e = s.evidence;
    const cells = [
      `<td><code>${esc(i.integration)}</code></td>`,
      `<td><code>${esc(s.scope)}</code></td>`,
      `<td>${esc(s.origin)}</td>`,
      `<td class="${s.verdict === 'unused' ? 'unused' : s.verdict === 'used' ? 'used' : ''}">${esc(s.verdict.replace('_', ' '))}</td>`,
      ...[e.granted, e.used.proxy, e.used.resource_server, e.requested, e.denied].map((n) => `<td class="n">${n}</td>`),
      `<td>${esc(e.granted_first_at?.slice(0, 10) ?? '-')}</td>`,
      `<td>${esc(e.granted_last_at?.slice(0, 10) ?? '-')}</td>`,
      `<td class="n">${e.days_observed}</td>`,
    ];
    return `<tr>${cells.join('')}</tr>`;
  });
}
