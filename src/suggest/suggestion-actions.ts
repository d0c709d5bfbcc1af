/*
 * Deciding a stored suggestion: apply it to its agent's policy file, or dismiss it. The one place that does it, for
 * `agent-pdp suggest apply | dismiss` and for `POST /v1/suggestions/{id}/apply | dismiss` alike, so the two cannot
 * drift apart.
 *
 * Apply, in order, each step refusing with the file untouched:
 * 1. the suggestion must be open (`not_found`; `suggestion_stale` when withdrawn; `suggestion_decided`);
 * 2. the evidence up to now must still suggest the same edits (recheck.ts: `suggestion_stale` otherwise);
 * 3. apply.ts checks the file is the one the suggestion was made on, edits it, compiles the folder with the change
 *    and (not on a dry run) replaces the file;
 * 4. the suggestion is recorded applied with its `policy.suggestion.applied` event, in one store transaction whose
 *    `status = 'open'` guard answers `suggestion_decided` to a second decision. Should that fail after the file was
 *    written, `SuggestionNotRecorded` says so (the file stays rewritten).
 *
 * Decisions through one `SuggestionActions` run one at a time: two applies of the same suggestion in one process
 * never both write (the second finds it decided); across processes, apply.ts's SHA-256 check of the file right
 * before the rename and the store's guard refuse the second.
 * Reloading the server's policy is not done here: the server's route does it after a real apply, the CLI leaves it
 * to the server's watcher (or SIGHUP).
 */
import { policySuggestionAppliedEvent, policySuggestionDismissedEvent } from '../audit/index.js';
import { isPdpError, PdpError } from '../errors/pdp-error.js';
import type { PolicyLoadOptions } from '../policy/policy-loader.js';
import type { Store, SuggestionRecord } from '../store/index.js';
import { applySuggestion, type ApplyResult } from './apply.js';
import { loadPolicyFolder } from './policy-folder.js';
import { recheckSuggestion } from './recheck.js';
import type { SuggestionThresholds } from './suggestion-types.js';

export interface SuggestionActionsOptions {
  store: Pick<Store, 'getSuggestion' | 'decideSuggestion' | 'rollupUsage' | 'usageSummary'>;
  /** The policy folder (config `policy.agents`). */
  policyDir: string;
  /** How the folder is loaded: the server's settings (config `policy`). */
  load: PolicyLoadOptions;
  /** For a suggestion that does not record its own (the config's `suggestions`). */
  thresholds: SuggestionThresholds;
  now: () => Date;
}

export interface ApplyRequest {
  /** Who applies it: the audit event's caller_id, the suggestion's decided_by. */
  by: string;
  note: string | null;
  /** Compute and check the change, write and record nothing. */
  dryRun: boolean;
}

export interface DismissRequest {
  by: string;
  note: string | null;
}

export interface AppliedSuggestion extends ApplyResult {
  /** As stored after the decision (a dry run: as it was, open). */
  suggestion: SuggestionRecord;
}

/**
 * The file was rewritten, but the suggestion's status and audit event were not recorded (`cause` says why: another
 * process decided it meanwhile, the store failed). A PdpError with the cause's code (`internal` for a cause that is
 * none), so an HTTP caller gets the cause's status and this message; the CLI prints its own lines and the cause.
 */
export class SuggestionNotRecorded extends PdpError {
  readonly result: ApplyResult;

  constructor(result: ApplyResult, cause: unknown) {
    const known = isPdpError(cause) ? cause : undefined;
    super(
      known?.code ?? 'internal',
      `${result.file} was rewritten, but the suggestion's status and audit event were not recorded${known === undefined ? '' : ` (${known.message})`}; the server loads the file at its next reload`,
      { cause },
    );
    this.result = result;
  }
}

export class SuggestionActions {
  readonly #o: SuggestionActionsOptions;
  /** The decision in progress: the next waits for it. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: SuggestionActionsOptions) {
    this.#o = options;
  }

  /** Applies an open suggestion that the evidence up to now still supports (or, a dry run, shows what it would do). */
  apply(id: string, request: ApplyRequest): Promise<AppliedSuggestion> {
    return this.#serial(async () => {
      const { store, policyDir, load, thresholds, now } = this.#o;
      const suggestion = await openSuggestion(store, id);
      // Only what the evidence up to now still supports: the same edits, suggested again.
      const folder = await loadPolicyFolder(policyDir, load);
      await recheckSuggestion(suggestion, { store, folder, now: now(), thresholds });
      const result = await applySuggestion(suggestion, policyDir, { dryRun: request.dryRun, load });
      if (request.dryRun) return { ...result, suggestion };
      const at = now().toISOString();
      const event = policySuggestionAppliedEvent(
        at,
        { agent_id: suggestion.agent_id, caller_id: request.by },
        {
          suggestion_id: suggestion.id,
          integration: suggestion.integration,
          kind: suggestion.kind,
          target: suggestion.target,
          file: result.file,
          file_sha256_before: result.sha256_before,
          file_sha256_after: result.sha256_after,
          note: request.note,
        },
      );
      try {
        const decided = await store.decideSuggestion({ id, status: 'applied', by: request.by, at, event });
        return { ...result, suggestion: decided };
      } catch (error) {
        throw new SuggestionNotRecorded(result, error);
      }
    });
  }

  /** Dismisses an open suggestion: it comes back only when its evidence changes. */
  dismiss(id: string, request: DismissRequest): Promise<SuggestionRecord> {
    return this.#serial(async () => {
      const { store, now } = this.#o;
      const suggestion = await openSuggestion(store, id);
      const at = now().toISOString();
      const event = policySuggestionDismissedEvent(
        at,
        { agent_id: suggestion.agent_id, caller_id: request.by },
        { suggestion_id: id, integration: suggestion.integration, kind: suggestion.kind, target: suggestion.target, note: request.note },
      );
      return store.decideSuggestion({ id, status: 'dismissed', by: request.by, at, event });
    });
  }

  #serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(work, work);
    this.#queue = next.catch(() => undefined);
    return next;
  }
}

/** The suggestion, if it is open: `not_found`, `suggestion_stale` (withdrawn) or `suggestion_decided` otherwise. */
export async function openSuggestion(store: Pick<Store, 'getSuggestion'>, id: string): Promise<SuggestionRecord> {
  const suggestion = await store.getSuggestion(id);
  if (suggestion === undefined) throw new PdpError('not_found', `there is no suggestion ${id} (agent-pdp suggest lists them)`);
  if (suggestion.status === 'withdrawn') {
    throw new PdpError('suggestion_stale', `suggestion ${id} was withdrawn at ${suggestion.updated_at}: a later run on the same terms no longer made it (agent-pdp suggest lists what holds now)`);
  }
  if (suggestion.status !== 'open') {
    throw new PdpError('suggestion_decided', `suggestion ${id} was ${suggestion.status} by ${suggestion.decided_by ?? '?'} at ${suggestion.decided_at ?? '?'}`);
  }
  return suggestion;
}
