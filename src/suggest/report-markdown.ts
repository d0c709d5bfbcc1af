/*
 * The Markdown summary (`--format md`): what a ticket needs. Per agent, each suggestion with its confidence, its
 * evidence in sentences, the commands that apply or dismiss it and its diff; then the notes. Names are shown as
 * code spans, free text has Markdown's punctuation escaped, and a diff is fenced with more backticks than it holds:
 * nothing in a policy file or an id can turn into markup.
 */
import { agentSections, KIND_TITLES, statusCounts, type ReportInput, type SuggestionView } from './report-model.js';

export function markdownReport(input: ReportInput): string {
  const out: string[] = [];
  const run = input.run;
  const counts = statusCounts(input.suggestions);
  out.push(`# Policy suggestions, ${text(input.generated_at.slice(0, 10))}`, '');
  if (run !== undefined) {
    const t = run.thresholds;
    out.push(
      `Window ${text(run.first_day)} to ${text(run.last_day)}; policy revision ${code(run.policy_revision)}; thresholds: ${t.min_days} days, ${t.min_tokens} tokens, TTL factor ${t.ttl_factor}.`,
      '',
    );
  }
  out.push(`${counts.open} open, ${counts.applied} applied, ${counts.dismissed} dismissed${counts.withdrawn > 0 ? `, ${counts.withdrawn} withdrawn (no longer supported by the evidence)` : ''}. Suggestions only ever narrow a policy; nothing changes until someone applies one.`, '');
  const sections = agentSections(input);
  if (sections.length === 0) out.push('Nothing to report.', '');
  for (const section of sections) {
    const file = section.analysis?.file ?? section.suggestions[0]?.record.file ?? null;
    out.push(`## ${code(section.agent_id)}${file === null ? '' : ` (${code(file)})`}`, '');
    if (section.suggestions.length === 0) out.push('No suggestion.', '');
    for (const view of section.suggestions) out.push(...suggestion(view));
    const notes = section.analysis?.notes ?? [];
    if (notes.length > 0) {
      out.push('Seen, not suggested:', '');
      for (const note of notes) out.push(`- ${note.integration === null ? '' : `${code(note.integration)}: `}${text(note.message)}`);
      out.push('');
    }
  }
  return `${out.join('\n').trimEnd()}\n`;
}

function suggestion(view: SuggestionView): string[] {
  const r = view.record;
  const title = KIND_TITLES[r.kind] ?? r.kind;
  const lines = [
    `### ${text(title)}: ${code(r.target)}${r.integration === '*' ? '' : ` on ${code(r.integration)}`}`,
    '',
    `${text(view.summary)}.`,
    '',
    `- id ${code(r.id)}, ${text(r.status)}${r.decided_by === null ? '' : ` by ${code(r.decided_by)} at ${text(r.decided_at ?? '')}`}; confidence ${text(view.confidence ?? 'unknown')}`,
    ...view.reasons.map((reason) => `- ${text(reason)}`),
  ];
  if (r.status === 'open') lines.push(`- apply: ${code(`agent-pdp suggest apply ${r.id} --config FILE`)}; dismiss: ${code(`agent-pdp suggest dismiss ${r.id} --config FILE`)}`);
  lines.push('');
  if (view.diff !== '') {
    const fence = '`'.repeat(Math.max(3, longestRun(view.diff, '`') + 1));
    lines.push(`${fence}diff`, view.diff.trimEnd(), fence, '');
  }
  return lines;
}

/** A code span that holds `value` whatever backticks it contains. */
function code(value: string): string {
  const ticks = '`'.repeat(longestRun(value, '`') + 1);
  const pad = value.startsWith('`') || value.endsWith('`') ? ' ' : '';
  return `${ticks}${pad}${oneLine(value)}${pad}${ticks}`;
}

/**
 * Free text on one line, with what Markdown reads as markup escaped: emphasis, code, links and images, HTML, tables,
 * strike-through anywhere; a heading, list or quote marker at its start.
 */
function text(value: string): string {
  const escaped = oneLine(value).replace(/[\\`*_[\]<>|~&]/g, (c) => `\\${c}`);
  return /^([#+\-=>]|\d+[.)])/.test(escaped) ? `\\${escaped}` : escaped;
}

const oneLine = (value: string): string => value.replace(/[\r\n]+/g, ' ');

function longestRun(value: string, char: string): number {
  let longest = 0;
  let run = 0;
  for (const c of value) {
    run = c === char ? run + 1 : 0;
    longest = Math.max(longest, run);
  }
  return longest;
}
