/**
 * `agent-pdp suggest | suggest apply | suggest dismiss`: policy suggestions from the usage aggregates
 * (docs/suggestions.md), on the store and policy folder a config names. Like `access-requests`, no HTTP and no API
 * key: whoever can read the config, open the store and write the policy folder acts, and names who they are with
 * `--as` (the audit event's caller_id).
 *
 * `suggest` folds the trail into the aggregates (rollupUsage), reads the window, runs the engine on the policy folder
 * as the server loads it, saves the suggestions (a dismissed one stays dismissed while its evidence holds; an open
 * one this run no longer makes on the same terms is withdrawn: src/suggest/suggestion-run.ts) and prints or writes
 * the report. `apply` checks the suggestion still holds on the evidence up to now, rewrites the agent's
 * file (refused when it changed since), records
 * `policy.suggestion.applied`, and leaves the reload to the server's watcher. `dismiss` records
 * `policy.suggestion.dismissed`. Both are src/suggest/suggestion-actions.ts, the code the server's
 * `POST /v1/suggestions/{id}/apply | dismiss` run too; this file only reads the options and prints.
 *
 * Exit codes: 0 done, 1 refused or could not run, 2 usage.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { SUGGESTION_NOTE_MAX } from '../audit/index.js';
import { loadConfigFile } from '../config/config-loader.js';
import type { PdpConfig } from '../config/config-types.js';
import { PdpError } from '../errors/pdp-error.js';
import type { PolicyLoadOptions } from '../policy/policy-loader.js';
import type { Store } from '../store/index.js';
import { openConfiguredStore } from './configured-store.js';
import { UsageError } from './usage-error.js';
import {
  loadPolicyFolder,
  renderReport,
  REPORT_FORMATS,
  runSuggestions,
  SuggestionActions,
  SuggestionNotRecorded,
  thresholdsOf,
  usageSeries,
  type AppliedSuggestion,
  type ApplyResult,
  type ReportFormat,
  type SuggestionThresholds,
} from '../suggest/index.js';
import type { Command } from './commands.js';

type Values = Parameters<Command['run']>[0];

const str = (v: string | boolean | undefined): string | undefined => (typeof v === 'string' ? v : undefined);

/** Who acts when `--as` names no one: recorded as the event's caller_id. */
const CLI_ACTOR = 'agent-pdp-cli';
const ACTOR = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;
const DAY_MS = 86_400_000;

const config = { config: { type: 'string', short: 'c' } } as const;

export const SUGGEST_COMMANDS: Command[] = [
  {
    name: 'suggest',
    summary:
      'policy suggestions from the usage in the trail: --config FILE [--since 90d|TIME] [--agent ID] [--format md|json|html] [--out FILE] [--min-days N] [--min-tokens N] [--ttl-factor N]; saves them (suggest apply / dismiss) and withdraws open ones it no longer makes on the same terms',
    options: {
      ...config,
      since: { type: 'string' },
      agent: { type: 'string' },
      format: { type: 'string' },
      out: { type: 'string', short: 'o' },
      'min-days': { type: 'string' },
      'min-tokens': { type: 'string' },
      'ttl-factor': { type: 'string' },
    },
    async run(values, positionals) {
      if (positionals.length > 0) throw new UsageError('usage: agent-pdp suggest --config FILE [--since 90d] [--agent ID] [--format md|json|html] [--out FILE]');
      const format = formatOf(str(values['format']));
      const agent = str(values['agent']);
      return withStore(values, { needsFolder: true }, async (store, cfg) => {
        const now = new Date();
        const until = now.toISOString();
        const since = sinceOf(str(values['since']), now, cfg.suggestions.window_days);
        const thresholds = thresholdsFrom(values, cfg);
        const folder = await loadPolicyFolder(cfg.policy.agents, loadOptions(cfg));
        // Rolled up, suggested, saved; open suggestions a run on the same terms no longer makes are withdrawn.
        const { analysis, suggestions, summary, saved } = await runSuggestions({ store, folder, thresholds, since, until, ...(agent === undefined ? {} : { agent }) });
        const window = { since, until, ...(agent === undefined ? {} : { agent_id: agent }) };
        const series = format === 'html' ? await usageSeries(store, window) : undefined;
        const body = renderReport(format, { generated_at: until, suggestions, run: analysis, ...(series === undefined ? {} : { series }) });
        const out = str(values['out']);
        if (out === undefined) process.stdout.write(body);
        else {
          await mkdir(dirname(resolve(out)), { recursive: true });
          await writeFile(out, body);
        }
        const open = suggestions.filter((s) => s.status === 'open').length;
        const withdrawn = saved.withdrawn.length === 0 ? '' : `; withdrawn (no longer supported on the same terms): ${saved.withdrawn.join(', ')}`;
        process.stderr.write(
          `${suggestions.length === 1 ? '1 suggestion' : `${suggestions.length} suggestions`} (${open} open) from ${summary.first_day} to ${summary.last_day}${out === undefined ? '' : `, report in ${out}`}${withdrawn}\n`,
        );
        return 0;
      });
    },
  },
  {
    name: 'suggest apply',
    summary: "apply an open suggestion to its agent's policy file: apply ID --config FILE [--dry-run] [--as NAME] [--note TEXT]; refused if the file changed since",
    options: { ...config, 'dry-run': { type: 'boolean' }, as: { type: 'string' }, note: { type: 'string' } },
    async run(values, positionals) {
      const id = oneId(positionals, 'apply');
      const by = actorOf(values);
      const note = noteOf(values);
      const dryRun = values['dry-run'] === true;
      return withStore(values, { needsFolder: true }, async (store, cfg) => {
        let result: AppliedSuggestion;
        try {
          result = await actionsOf(store, cfg).apply(id, { by, note, dryRun });
        } catch (error) {
          if (!(error instanceof SuggestionNotRecorded)) throw error;
          printApplied(error.result);
          process.stderr.write(`agent-pdp: ${error.result.file} was rewritten, but the suggestion's status and audit event were not recorded:\n`);
          throw error.cause;
        }
        printApplied(result);
        if (dryRun) {
          process.stderr.write(`dry run: ${result.file} not written (policy check passes with the change; revision ${result.revision_before} → ${result.revision_after})\n`);
          return 0;
        }
        const reload = cfg.policy.watch ? `the server's watcher loads it within ${cfg.policy.watch_interval_ms} ms` : 'reload the server (SIGHUP or POST /v1/admin/reload) to load it';
        process.stderr.write(`applied ${id} as ${by}: ${result.file} rewritten (revision ${result.revision_before} → ${result.revision_after}); ${reload}\n`);
        return 0;
      });
    },
  },
  {
    name: 'suggest dismiss',
    summary: 'dismiss an open suggestion: dismiss ID --config FILE [--as NAME] [--note TEXT]; it comes back only when its evidence changes',
    options: { ...config, as: { type: 'string' }, note: { type: 'string' } },
    async run(values, positionals) {
      const id = oneId(positionals, 'dismiss');
      const by = actorOf(values);
      const note = noteOf(values);
      return withStore(values, { needsFolder: false }, async (store, cfg) => {
        await actionsOf(store, cfg).dismiss(id, { by, note });
        process.stderr.write(`dismissed ${id} as ${by}: it comes back only if its evidence changes\n`);
        return 0;
      });
    },
  },
];

/** The diff on stdout, the change's new compile warnings on stderr. */
function printApplied(result: ApplyResult): void {
  process.stdout.write(result.diff);
  for (const w of result.new_warnings) process.stderr.write(`warning: ${w.file ?? ''}${w.line ? `:${w.line}` : ''} ${w.path}: ${w.message}\n`);
}

/** Apply and dismiss as the server's routes do them (src/suggest/suggestion-actions.ts), on the config's store and folder. */
function actionsOf(store: Store, config: PdpConfig): SuggestionActions {
  return new SuggestionActions({ store, policyDir: config.policy.agents, load: loadOptions(config), thresholds: thresholdsOf(config.suggestions), now: () => new Date() });
}

/** Opens the store the config names (never creating one), runs `body`, and closes it whatever happens. */
async function withStore(values: Values, options: { needsFolder: boolean }, body: (store: Store, config: PdpConfig) => Promise<number>): Promise<number> {
  const configPath = str(values['config']) ?? process.env['AGENT_PDP_CONFIG'];
  if (!configPath) throw new PdpError('config_invalid', 'no config: pass --config FILE (or set AGENT_PDP_CONFIG)');
  const { config } = loadConfigFile(configPath, { nodeEnv: process.env['NODE_ENV'], webhookSecrets: false });
  // Suggestions are made on, and applied to, the YAML folder: a config serving a compiled bundle has none (its
  // `policy.agents` would silently be read from the default folder beside it).
  if (options.needsFolder && (config.policy.compiled !== null || config.policy.service !== null)) {
    throw new PdpError('invalid_request', `${configPath} serves a compiled bundle (policy.compiled or policy.service), not a policy folder: run agent-pdp suggest with the config of the box that holds the YAML (policy.agents)`);
  }
  const store = await openConfiguredStore(config);
  try {
    return await body(store, config);
  } finally {
    await store.close();
  }
}

/** The policy folder's load settings, as the server uses them. */
function loadOptions(config: PdpConfig): PolicyLoadOptions {
  const { allow_insecure_permissions, max_file_bytes, max_entries_per_file } = config.policy;
  return { allowInsecurePermissions: allow_insecure_permissions, maxFileBytes: max_file_bytes, maxEntriesPerFile: max_entries_per_file };
}

function formatOf(value: string | undefined): ReportFormat {
  if (value === undefined) return 'md';
  if (!(REPORT_FORMATS as readonly string[]).includes(value)) throw new UsageError(`--format must be one of ${REPORT_FORMATS.join(', ')}`);
  return value as ReportFormat;
}

/**
 * `--since 90d` (days back from now) or a time (RFC 3339 or a date); the config's window_days when absent. The
 * evidence is counted in whole UTC days (the usage aggregates are daily), so the window starts at the start of the
 * day this names: what the report's `window.since` then says is what was counted.
 */
export function sinceOf(value: string | undefined, now: Date, windowDays: number): string {
  const dayStart = (ms: number): string => new Date(Math.floor(ms / DAY_MS) * DAY_MS).toISOString();
  if (value === undefined) return dayStart(now.getTime() - windowDays * DAY_MS);
  const days = /^([0-9]{1,4})d$/.exec(value);
  const when = days !== null ? now.getTime() - Number(days[1]) * DAY_MS : /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : Number.NaN;
  // A date that does not exist (2026-02-30) is not moved to the next month.
  const realDate = days !== null || (!Number.isNaN(when) && new Date(when).toISOString().slice(0, 10) === value.slice(0, 10));
  if (Number.isNaN(when) || !realDate || when >= now.getTime() || (days !== null && Number(days[1]) === 0)) {
    throw new UsageError('--since must be a number of days (90d) or a time before now (2026-01-01, 2026-01-01T00:00:00Z)');
  }
  return dayStart(when);
}

function thresholdsFrom(values: Values, config: PdpConfig): SuggestionThresholds {
  const number = (name: string, min: number, max: number, integer: boolean): number | undefined => {
    const text = str(values[name]);
    if (text === undefined) return undefined;
    const n = Number(text);
    if (text.trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
    }
    return n;
  };
  return {
    ...thresholdsOf(config.suggestions),
    min_days: number('min-days', 1, 3650, true) ?? config.suggestions.min_days,
    min_tokens: number('min-tokens', 1, 1_000_000_000, true) ?? config.suggestions.min_tokens,
    ttl_factor: number('ttl-factor', 2, 1000, false) ?? config.suggestions.ttl_factor,
  };
}

function oneId(positionals: string[], verb: string): string {
  if (positionals.length !== 1 || positionals[0] === '') {
    throw new UsageError(`usage: agent-pdp suggest ${verb} ID --config FILE${verb === 'apply' ? ' [--dry-run]' : ''} [--as NAME] [--note TEXT]`);
  }
  return positionals[0] as string;
}

function actorOf(values: Values): string {
  const as = str(values['as']) ?? CLI_ACTOR;
  if (!ACTOR.test(as)) throw new UsageError('--as must be a name of letters, digits and . _ : @ - (at most 128)');
  return as;
}

function noteOf(values: Values): string | null {
  const note = str(values['note']);
  if (note === undefined) return null;
  if (note.length > SUGGESTION_NOTE_MAX) throw new UsageError(`--note must be at most ${SUGGESTION_NOTE_MAX} characters`);
  return note;
}
