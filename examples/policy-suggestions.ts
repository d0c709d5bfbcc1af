/**
 * The last step of `make demo`: policy suggestions (docs/suggestions.md) from the traffic the demo itself just
 * made. `agent-pdp suggest` folds the trail into its usage aggregates and compares, per agent and integration, the
 * scopes its tokens carried with the scopes it was seen using (calls the enforcement proxy forwarded, resource
 * servers' usage reports), and prints one line per suggestion, its evidence, and the YAML diff of the first
 * (`agent-pdp suggest apply ID --dry-run`, nothing written).
 *
 * The thresholds are lowered on purpose: by default nothing is suggested on less than 30 days and 20 tokens of
 * evidence (`suggestions.min_days`, `suggestions.min_tokens`), and the demo's trail is a few seconds and a handful
 * of tokens old. `--min-days 1 --min-tokens 1` lets this run speak; never use such thresholds on a real trail.
 */
import type { SuggestionReportV1 } from '../src/suggest/report-json.js';

export interface SuggestionsStepOptions {
  /** Runs `agent-pdp <args>` against the PDP's config and store; resolves with its stdout. */
  runCli: (args: readonly string[]) => Promise<string>;
  log: (line: string) => void;
}

export interface SuggestionsStepResult {
  /** `<agent> <kind> <integration> <target>: <summary>` per suggestion, as printed. */
  suggestions: string[];
  lines: string[];
}

export const title = '8. policy suggestions from the demo\'s own traffic (agent-pdp suggest)';

/** The demo's thresholds: one day, one token (see the module comment). */
export const DEMO_THRESHOLDS = ['--since', '1d', '--min-days', '1', '--min-tokens', '1'] as const;

export async function run(options: SuggestionsStepOptions): Promise<SuggestionsStepResult> {
  const lines: string[] = [];
  const print = (line: string): void => {
    lines.push(line);
    options.log(line);
  };
  print(`== ${title}`);
  print('  thresholds lowered for the demo: its trail is seconds old, with a few tokens; by default nothing is suggested');
  print('  on less than 30 days and 20 tokens (suggestions.min_days, suggestions.min_tokens)');
  print(`  $ agent-pdp suggest ${DEMO_THRESHOLDS.join(' ')} --format json`);
  const report = JSON.parse(await options.runCli(['suggest', ...DEMO_THRESHOLDS, '--format', 'json'])) as SuggestionReportV1;
  const suggestions: string[] = [];
  for (const s of report.suggestions) {
    const proposal = s.proposal as { summary?: string };
    const evidence = s.evidence as { confidence?: string; sources?: string[]; samples?: number };
    const line = `${s.agent_id} ${s.kind} ${s.integration} ${s.target}: ${proposal.summary ?? ''}`;
    suggestions.push(line);
    print(`  suggest ${s.id}  ${line}`);
    const tokens = evidence.samples === undefined ? '? tokens' : evidence.samples === 1 ? '1 token' : `${evidence.samples} tokens`;
    print(`          confidence ${evidence.confidence ?? '?'}, ${tokens}, use evidence from ${(evidence.sources ?? []).join(', ') || 'none'}`);
  }
  if (report.suggestions.length === 0) print('  (no suggestion: nothing the demo granted went unused where use is observed)');
  const first = report.suggestions[0];
  if (first !== undefined) {
    print(`  $ agent-pdp suggest apply ${first.id} --dry-run`);
    const diff = await options.runCli(['suggest', 'apply', first.id, '--dry-run']);
    for (const l of diff.trimEnd().split('\n')) print(`    ${l}`);
  }
  return { suggestions, lines };
}
