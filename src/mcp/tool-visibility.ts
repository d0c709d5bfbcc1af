/**
 * Which tools `tools/list` shows an agent: those whose static scopes the agent's policy could grant on the tool's
 * integration for its task (`POST /v1/grantable-scopes`, one question per agent and task whatever the number of
 * tools, answered from the compiled policy without a decision). The answers are cached per agent and task for
 * `cacheMs` and dropped as soon as a newer policy revision is seen (in an answer, or in a denial the guard got).
 *
 * A convenience for the model, not the enforcement: a listed tool can still be denied (record bindings, extension
 * rules, a task completed since), and a hidden one is refused anyway if called.
 */
import type { PdpClient } from '../pep/index.js';
import type { CompiledMapping } from './tool-mapping.js';

export interface ToolVisibilityOptions {
  /** How long an answer is reused, in milliseconds. Default 10000. */
  cacheMs?: number;
  /** List a tool whose scopes an approver could grant (break-glass). Default true. */
  includeRequestable?: boolean;
}

interface Entry {
  at: number;
  revision: string;
  /** integration → scopes that can be had (granted, or requested when that counts). */
  possible: Promise<ReadonlyMap<string, ReadonlySet<string>>>;
}

const MAX_ENTRIES = 10_000;

export class ToolVisibility {
  readonly #pdp: PdpClient;
  readonly #cacheMs: number;
  readonly #includeRequestable: boolean;
  readonly #entries = new Map<string, Entry>();
  #revision: string | null = null;

  constructor(pdp: PdpClient, options: ToolVisibilityOptions) {
    const cacheMs = options.cacheMs ?? 10_000;
    if (!Number.isInteger(cacheMs) || cacheMs < 0) throw new TypeError('agent-pdp/mcp: "listFilter.cacheMs" must be a non-negative integer');
    this.#pdp = pdp;
    this.#cacheMs = cacheMs;
    this.#includeRequestable = options.includeRequestable ?? true;
  }

  /** The mapped tools the agent could be allowed on this task. Rejects when the PDP cannot answer. */
  async visible(agentId: string, taskId: string, mappings: ReadonlyMap<string, CompiledMapping>): Promise<Set<string>> {
    const possible = await this.#possible(agentId, taskId);
    const shown = new Set<string>();
    for (const [tool, m] of mappings) {
      const scopes = possible.get(m.declared.integration);
      if (m.staticScopes === null || (scopes !== undefined && m.staticScopes.every((s) => scopes.has(s)))) shown.add(tool);
    }
    return shown;
  }

  /** A policy revision seen elsewhere (a decision): answers of another revision are stale. */
  sawRevision(revision: string): void {
    if (this.#revision !== revision) {
      this.#revision = revision;
      for (const [key, entry] of this.#entries) if (entry.revision !== revision) this.#entries.delete(key);
    }
  }

  #possible(agentId: string, taskId: string): Promise<ReadonlyMap<string, ReadonlySet<string>>> {
    const key = JSON.stringify([agentId, taskId]);
    const now = Date.now();
    const cached = this.#entries.get(key);
    if (cached !== undefined && now - cached.at < this.#cacheMs) return cached.possible;
    const entry: Entry = { at: now, revision: this.#revision ?? '', possible: Promise.resolve(new Map()) };
    entry.possible = this.#ask(agentId, taskId, entry);
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    if (this.#entries.size > MAX_ENTRIES) this.#entries.delete(this.#entries.keys().next().value as string);
    entry.possible.then(
      () => undefined,
      () => this.#entries.get(key) === entry && this.#entries.delete(key), // a failure is not cached
    );
    return entry.possible;
  }

  async #ask(agentId: string, taskId: string, entry: Entry): Promise<ReadonlyMap<string, ReadonlySet<string>>> {
    const answer = await this.#pdp.grantableScopes({ agent_id: agentId, task: { id: taskId } });
    entry.revision = answer.policy_revision;
    this.sawRevision(answer.policy_revision);
    const possible = new Map<string, ReadonlySet<string>>();
    if (answer.task_denial !== null) return possible;
    for (const [integration, sets] of Object.entries(answer.integrations)) {
      possible.set(integration, new Set(this.#includeRequestable ? [...sets.grantable, ...sets.requestable] : sets.grantable));
    }
    return possible;
  }
}
