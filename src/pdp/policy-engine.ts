import { readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { formatErrorDetail, PdpError, type ErrorDetail } from '../errors/pdp-error.js';
import { checkBundlePermissions, readBundleFile, type OpaBundle } from '../policy/bundle-reader.js';
import type { Evaluation, EvaluationInputV1 } from '../policy/decision-types.js';
import type { BundleVerification } from '../policy/bundle-signature.js';
import { bundleFilesAsync, compiledPolicySet, openCompiledBundle } from '../policy/compiled-bundle.js';
import { loadPolicyDir, type PolicyLoadOptions } from '../policy/policy-loader.js';
import type { PolicySet } from '../policy/policy-types.js';
import { WasmEvaluator } from '../policy/wasm-evaluator.js';

/** The policy in force: one bundle, one agent-policy set, one evaluator. Replaced whole, never edited. */
export interface ActivePolicy {
  readonly evaluator: WasmEvaluator;
  readonly bundle: OpaBundle;
  readonly policySet: PolicySet;
  readonly revision: string;
  readonly loadedAt: Date;
}

/** The newest refusal of the files on disk, while the last good policy keeps serving; cleared by a load. */
export interface PolicyRefusal {
  readonly code: string;
  readonly message: string;
  /** The first error in a policy file, as `file:line path: message` (file relative to the policy folder); else null. */
  readonly first_error: string | null;
  /** When the files on disk were first refused (a later refusal of other broken files keeps this time). */
  readonly since: Date;
}

export interface ReloadListener {
  loaded(active: ActivePolicy, previous: ActivePolicy | undefined): void;
  refused(error: PdpError, current: ActivePolicy | undefined): void;
}

/** A compiled bundle served instead of the bundle and the policy folder (`policy.compiled`). */
export interface CompiledPolicySource {
  path: string;
  /** Read at every load (key files may be replaced): the signature the bundle must carry; undefined: none checked. */
  verification?: () => Promise<BundleVerification | undefined>;
  /** Files whose change reloads too (the verification keys). */
  alsoWatch?: readonly string[];
}

export interface PolicyEngineOptions {
  bundlePath: string;
  policyDir: string;
  /** Serve this compiled bundle; `bundlePath` and `policyDir` are then not read. */
  compiled?: CompiledPolicySource;
  /**
   * Size and entry limits of policy files, and whether group/other-writable policy files, folders and bundle are
   * loaded with a warning instead of refused (`policy/policy-loader.ts`). Default: the loader's limits, refused.
   */
  load?: PolicyLoadOptions;
  listener?: ReloadListener;
  now?: () => Date;
}

/** Agents test-evaluated before a new set goes live: enough to catch a broken module, cheap at 100k agents. */
const PROBE_AGENTS = 16;

/**
 * Loads, validates and test-evaluates a bundle and an agent-policy set, then swaps them in atomically. A set
 * that fails any step is refused and the previous one keeps serving. Reloads are serialised.
 */
export class PolicyEngine {
  #active: ActivePolicy | undefined;
  #refusal: PolicyRefusal | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #signature = '';
  #timer: NodeJS.Timeout | undefined;
  readonly #opts: PolicyEngineOptions;

  constructor(opts: PolicyEngineOptions) {
    this.#opts = opts;
  }

  get active(): ActivePolicy | undefined {
    return this.#active;
  }

  /** Set while the files on disk are refused (the active policy, if any, is an older one); else undefined. */
  get refusal(): PolicyRefusal | undefined {
    return this.#refusal;
  }

  /** Evaluates on the active policy. No policy loaded is a 503, never a decision. */
  evaluate(input: EvaluationInputV1): { evaluation: Evaluation; active: ActivePolicy } {
    const active = this.#active;
    if (!active) throw new PdpError('bundle_missing', 'no policy is loaded');
    return { evaluation: active.evaluator.evaluate(input), active };
  }

  /** Evaluates any entrypoint of the active bundle with a raw input (OPA's data API, Rego packs). No policy: 503. */
  evaluateEntrypoint(entrypoint: string, input: unknown): { defined: boolean; result?: unknown; active: ActivePolicy } {
    const active = this.#active;
    if (!active) throw new PdpError('bundle_missing', 'no policy is loaded');
    return Object.assign(active.evaluator.evaluateEntrypoint(entrypoint, input), { active });
  }

  /** Loads the current files. Resolves with the new policy, or rejects (the old one stays in force). */
  reload(): Promise<ActivePolicy> {
    const run = this.#queue.then(() => this.#load());
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Loads the compiled bundle at `candidate` (a download next to the compiled path) and, only once it is in force,
   * renames it over the compiled path, so the file a restart loads is always the last good bundle. A refused
   * candidate is deleted and the policy in force stays. Serialised with reloads.
   */
  adopt(candidate: string): Promise<ActivePolicy> {
    const compiled = this.#opts.compiled;
    if (compiled === undefined) return Promise.reject(new PdpError('internal', 'adopt() needs a compiled policy source'));
    const run = this.#queue.then(() =>
      this.#load(candidate, async () => {
        await rename(candidate, compiled.path);
      }).catch(async (err: unknown) => {
        await rm(candidate, { force: true });
        throw err;
      }),
    );
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Polls the bundle and the policy folder; reloads when their files change. */
  watch(intervalMs: number): void {
    this.stopWatching();
    // One tick at a time: a tick that fired while the previous one's reload was still running saw the old
    // signature and reloaded (or refused) the same files a second time.
    let ticking = false;
    const tick = async (): Promise<void> => {
      if (ticking) return;
      ticking = true;
      try {
        const signature = await this.#fileSignature().catch(() => '');
        if (signature !== '' && signature !== this.#signature) await this.reload().catch(() => undefined);
      } finally {
        ticking = false;
      }
    };
    this.#timer = setInterval(() => void tick(), intervalMs);
    this.#timer.unref();
  }

  stopWatching(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #load(candidate?: string, adopted?: () => Promise<void>): Promise<ActivePolicy> {
    const previous = this.#active;
    try {
      // Taken before reading: a change made while this load runs is seen by the next tick.
      const signature = candidate === undefined ? await this.#fileSignature() : '';
      const { bundle, policySet, evaluating } = await this.#read(candidate);
      const evaluator = await (evaluating ?? WasmEvaluator.create(bundle, policySet.data as unknown as Record<string, unknown>, policySet.revision));
      probe(evaluator, policySet);
      await adopted?.();
      const active: ActivePolicy = Object.freeze({
        evaluator,
        bundle,
        policySet,
        revision: evaluator.revision,
        loadedAt: (this.#opts.now ?? (() => new Date()))(),
      });
      this.#active = active;
      this.#refusal = undefined;
      this.#signature = candidate === undefined ? signature : await this.#fileSignature();
      this.#opts.listener?.loaded(active, previous);
      return active;
    } catch (cause) {
      // A failure outside the policy files' own checks (the folder missing or unreadable) says what failed, with the
      // file system's words (the path included: this message reaches the log, the policy.refused event and the
      // operator, not an unauthenticated caller).
      const error =
        cause instanceof PdpError
          ? cause
          : new PdpError('policy_invalid', `policy reload failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
      // Remember what was refused, so the watcher does not retry the same broken files every tick.
      this.#signature = await this.#fileSignature().catch(() => this.#signature);
      const first = error.details[0];
      this.#refusal = Object.freeze({
        code: error.code,
        message: error.message,
        // Only an error in a policy file (relative path, the author's words): a system-level refusal (permissions,
        // the bundle) may name absolute paths, which stay in the log and the policy.refused event.
        first_error: first?.file === undefined ? null : formatErrorDetail(first),
        since: this.#refusal?.since ?? (this.#opts.now ?? (() => new Date()))(),
      });
      this.#opts.listener?.refused(error, previous);
      throw error;
    }
  }

  /**
   * The bundle and the policy set to load: from the files, or from the compiled bundle. A compiled bundle's evaluator
   * is started on its checked data.json bytes while the policy set is parsed from them: OPA's parse (in a worker
   * thread) and ours (in pieces on this one) run side by side, and neither holds the event loop for long.
   */
  async #read(candidate?: string): Promise<{ bundle: OpaBundle; policySet: PolicySet; evaluating?: Promise<WasmEvaluator> }> {
    const load = this.#opts.load ?? {};
    const source = this.#opts.compiled;
    const compiled = source === undefined ? undefined : { ...source, path: candidate ?? source.path };
    if (compiled !== undefined) {
      const [permissions, gz, verification] = await Promise.all([
        checkBundlePermissions(compiled.path, load.allowInsecurePermissions ?? false),
        readFile(compiled.path).catch((cause: unknown) => {
          throw new PdpError('bundle_missing', `cannot read the compiled bundle at ${compiled.path}: build it with 'agent-pdp bundle build'`, { cause });
        }),
        compiled.verification?.(),
      ]);
      const opened = await openCompiledBundle(await bundleFilesAsync(gz, compiled.path), compiled.path, verification);
      // The compiled bundle's data is exactly data.json (its own data is empty, checked by the digest and the parse).
      const evaluating = WasmEvaluator.create(opened.bundle, {}, opened.meta.policies_revision, opened.dataJson);
      // Handled now, awaited by #load: a refusal while the policy set is parsed must not be an unhandled rejection,
      // and when the policy set is refused, that refusal is the one reported.
      evaluating.catch(() => undefined);
      // Agents are built as requests name them (their bytes are checked now).
      const read = await compiledPolicySet(opened, { lazyAgents: true });
      const unchecked: ErrorDetail[] = read.signed && !read.verified
        ? [{ path: '', file: compiled.path, message: 'the compiled bundle is signed, but policy.verification is not set: its signature was not checked' }]
        : [];
      return { bundle: read.bundle, policySet: withWarnings(read.policySet, [...permissions, ...unchecked]), evaluating };
    }
    const [bundleWarnings, bundle, loaded] = await Promise.all([
      checkBundlePermissions(this.#opts.bundlePath, load.allowInsecurePermissions ?? false),
      readBundleFile(this.#opts.bundlePath),
      loadPolicyDir(this.#opts.policyDir, load),
    ]);
    // The bundle's accepted insecure permissions are reported with the policy set's own warnings.
    return { bundle, policySet: withWarnings(loaded, bundleWarnings) };
  }

  /**
   * What the watcher compares: time, size and mode of the bundle, of every policy file (a symbolic link by its
   * target) and of every folder, so that fixing a refused set's permissions (`chmod go-w`) reloads it too.
   */
  async #fileSignature(): Promise<string> {
    const part = async (path: string): Promise<string> => {
      const s = await stat(path).catch(() => undefined);
      return `${path}:${s?.mtimeMs ?? 0}:${s?.size ?? 0}:${s?.mode ?? 0}`;
    };
    const compiled = this.#opts.compiled;
    if (compiled !== undefined) return (await Promise.all([compiled.path, ...(compiled.alsoWatch ?? [])].map(part))).sort().join('\n');
    const parts = [await part(this.#opts.bundlePath), await part(this.#opts.policyDir)];
    const entries = await readdir(this.#opts.policyDir, { recursive: true, withFileTypes: true });
    for (const entry of entries) {
      // Hidden files and folders (`.tests/`, editors' swap files) are not policy: the loader skips them, so must this.
      if (relative(this.#opts.policyDir, join(entry.parentPath, entry.name)).split(sep).some((part) => part.startsWith('.'))) continue;
      const policyFile = (entry.isFile() || entry.isSymbolicLink()) && /\.ya?ml$/.test(entry.name);
      if (policyFile || entry.isDirectory()) parts.push(await part(join(entry.parentPath, entry.name)));
    }
    return parts.sort().join('\n');
  }
}

function withWarnings(set: PolicySet, warnings: readonly ErrorDetail[]): PolicySet {
  return warnings.length === 0 ? set : Object.freeze({ ...set, warnings: Object.freeze([...warnings, ...set.warnings]) });
}

/** A new set must decide: an unknown agent is a defined deny, and sampled agents evaluate without error. */
function probe(evaluator: WasmEvaluator, policySet: PolicySet): void {
  const base = { caller_id: 'agent-pdp-probe', task: { id: 'probe', context: {}, registered: false }, scopes: ['probe'] };
  const unknown = evaluator.evaluate({ ...base, agent_id: '\u0000agent-pdp-probe', integration: 'probe' });
  if (!unknown.defined || unknown.outcome !== 'deny') {
    throw new PdpError('policy_invalid', 'test evaluation failed: an unknown agent was not denied');
  }
  const data = policySet.data as unknown as { policies: { agents: Record<string, { integrations: object }> } };
  for (const agentId of policySet.agents.slice(0, PROBE_AGENTS)) {
    const integration = Object.keys(data.policies.agents[agentId]?.integrations ?? {})[0] ?? 'probe';
    const result = evaluator.evaluate({ ...base, agent_id: agentId, integration });
    if (!result.defined) {
      throw new PdpError('policy_invalid', `test evaluation failed: no decision for agent ${agentId}`);
    }
  }
}
