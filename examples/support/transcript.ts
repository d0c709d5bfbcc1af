/**
 * The readable record an example prints: one line per step, each with a kind, so tests can assert which calls
 * were allowed and which were denied without parsing prose.
 */
import type { PermissionDenied, ToolGrant } from '../../src/pep/index.js';

/**
 * `allow`/`deny`: the PDP's decision. `refused`: a tool API refused a token. `stop`: a workflow halted. `audit`: an
 * event of the audit trail, as the CLI exported it.
 */
export type EntryKind = 'allow' | 'deny' | 'refused' | 'ok' | 'stop' | 'info' | 'audit';

export interface TranscriptEntry {
  kind: EntryKind;
  text: string;
}

export interface Transcript {
  title: string;
  entries: TranscriptEntry[];
  /** The printed lines, title first. */
  lines: string[];
}

/** API keys of the three callers an example plays: the agent's PEP, the orchestrator, the tool APIs. */
export interface ExampleKeys {
  pep: string;
  orchestrator: string;
  resource: string;
}

export interface ExampleOptions {
  /** Base URL of a running PDP, e.g. `http://127.0.0.1:8181`. */
  pdpUrl: string;
  keys: ExampleKeys;
  /** Receives each transcript line as it happens. */
  log: (line: string) => void;
}

const LABELS: Record<EntryKind, string> = { allow: 'ALLOW', deny: 'DENY', refused: 'REFUSED', ok: 'ok', stop: 'STOP', info: '', audit: 'AUDIT' };

export class TranscriptWriter {
  readonly #title: string;
  readonly #log: (line: string) => void;
  readonly #entries: TranscriptEntry[] = [];
  readonly #lines: string[] = [];

  constructor(title: string, log: (line: string) => void) {
    this.#title = title;
    this.#log = log;
    this.#emit(`== ${title}`);
  }

  add(kind: EntryKind, text: string): void {
    this.#entries.push({ kind, text });
    this.#emit(`  ${LABELS[kind].padEnd(8)}${text}`);
  }

  /** An allowed call: what it was for, the decision and what the token carries. */
  allowed(what: string, grant: ToolGrant): void {
    const seconds = Math.max(0, Math.round((grant.expiresAt.getTime() - Date.now()) / 1000));
    this.add('allow', `${what}: decision ${grant.decisionId}, token [${grant.scopes.join(' ')}] for ${seconds} s`);
  }

  /** A denied call: what it was for, the decision and the policy's reasons. */
  denied(what: string, err: PermissionDenied): void {
    const why = err.reasons.map((r) => `${r.code} (${r.message})`).join('; ') || `outcome ${err.outcome}`;
    const partial = err.outcome === 'allow' ? ` granted only [${err.grantedScopes.join(' ')}];` : '';
    this.add('deny', `${what}: decision ${err.decisionId}:${partial} ${why}`);
  }

  done(): Transcript {
    return { title: this.#title, entries: [...this.#entries], lines: [...this.#lines] };
  }

  #emit(line: string): void {
    this.#lines.push(line);
    this.#log(line);
  }
}

/** `1 token`, `2 tokens`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
