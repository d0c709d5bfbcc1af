/*
 * The policy folder as the suggestion engine and `apply` need it: the compiled set (loaded exactly as the server and
 * `policy check` load it: the same files, permission checks, limits, parser and compiler) and, beside it, each
 * agent's and role's source document with its file's text and SHA-256, which suggestions edit and pin.
 */
import { resolve } from 'node:path';
import type { ErrorDetail } from '../errors/pdp-error.js';
import { parsePolicyFile } from '../policy/policy-document.js';
import { readPolicyFiles } from '../policy/policy-files.js';
import { buildPolicySetYielding, DEFAULT_MAX_FILE_BYTES, type PolicyLoadOptions } from '../policy/policy-loader.js';
import type { AgentPolicySource, PolicySet, PolicySource, RolePolicySource } from '../policy/policy-types.js';
import { sha256 } from './suggestion-identity.js';

/** One agent's policy file: its path (relative to the folder), its text, the SHA-256 of its bytes, its document. */
export interface AgentFile {
  file: string;
  text: string;
  sha256: string;
  body: AgentPolicySource;
}

export interface RoleFile {
  file: string;
  body: RolePolicySource;
}

/** The agents' and roles' source documents of a policy folder, by id. */
export interface PolicyFiles {
  agents: ReadonlyMap<string, AgentFile>;
  roles: ReadonlyMap<string, RoleFile>;
}

export interface PolicyFolder extends PolicyFiles {
  /** Absolute. */
  dir: string;
  set: PolicySet;
  sources: readonly PolicySource[];
}

export interface LoadFolderOptions extends PolicyLoadOptions {
  /** Load the folder as if this file (relative to it, one that exists) held this text instead. */
  override?: { file: string; text: string };
}

/**
 * Loads the folder as `loadPolicyDir` does (throws `policy_invalid` with every problem), optionally with one file's
 * text replaced in memory: what the folder would be once that text is written.
 */
export async function loadPolicyFolder(dir: string, options: LoadFolderOptions = {}): Promise<PolicyFolder> {
  const root = resolve(dir);
  const read = await readPolicyFiles(root, {
    maxFileBytes: options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES,
    allowInsecurePermissions: options.allowInsecurePermissions ?? false,
  });
  const sources = read.sources.map((s) => (options.override !== undefined && s.file === options.override.file ? { file: s.file, text: options.override.text } : s));
  const set = await buildPolicySetYielding(sources, root, options, read.warnings as ErrorDetail[]);
  return { dir: root, set, sources, ...policyFilesOf(sources) };
}

/** The agent and role documents among `sources` (files that do not parse are left out: the set would be refused). */
export function policyFilesOf(sources: readonly PolicySource[]): PolicyFiles {
  const agents = new Map<string, AgentFile>();
  const roles = new Map<string, RoleFile>();
  for (const source of sources) {
    const { document } = parsePolicyFile(source.text, source.file);
    if (document?.kind === 'agent_policy') {
      const body = document.body as AgentPolicySource;
      agents.set(body.id, { file: source.file, text: source.text, sha256: source.sha256 ?? sha256(source.text), body });
    } else if (document?.kind === 'role_policy') {
      roles.set((document.body as RolePolicySource).id, { file: source.file, body: document.body as RolePolicySource });
    }
  }
  return { agents, roles };
}
