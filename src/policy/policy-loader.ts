import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { PdpError, type ErrorDetail } from '../errors/pdp-error.js';
import { byLocation } from './compile-diagnostics.js';
import { compilePolicies, compileSteps, longestTokenTtl, type CompileResult } from './policy-compiler.js';
import { parsePolicyFile } from './policy-document.js';
import { readPolicyFiles, tooLarge } from './policy-files.js';
import { policyRevision } from './policy-revision.js';
import type { PolicyDocument, PolicySet, PolicySource } from './policy-types.js';
import { DEFAULT_MAX_ENTRIES } from './yaml-source.js';

export type { PolicySource } from './policy-types.js';

/** Where policy files live unless the config says otherwise. */
export const DEFAULT_POLICY_DIR = 'policies';

/** Bounds on what one policy file may hold, checked before it is parsed (size) or built (entries). */
export interface PolicyLimits {
  /** Largest policy file, in bytes. Default 1 MiB: parsing one that large holds the event loop about 0.5 s. */
  maxFileBytes?: number;
  /** Map entries plus list items in one file, counted at every depth. Default 10,000. */
  maxEntriesPerFile?: number;
}

export interface PolicyLoadOptions extends PolicyLimits {
  /**
   * Load files and folders that group or others may write (and folders above the directory they may write
   * without the sticky bit), with a warning for each, instead of refusing the set. Default false.
   */
  allowInsecurePermissions?: boolean;
}

export const DEFAULT_MAX_FILE_BYTES = 1024 * 1024;

/** Files parsed between two turns of the event loop (about 25 ms of work), unless PARSE_CHUNK_BYTES come first. */
const PARSE_CHUNK = 50;
/** Bytes of YAML parsed between two turns of the event loop (about 0.1 s of work). */
const PARSE_CHUNK_BYTES = 256 * 1024;

/**
 * Reads every policy file under `dir` (`policy-files.ts`: which files, symbolic links, permissions, size), then
 * {@link buildPolicySet}. Throws `PdpError('policy_invalid')` listing every problem; nothing is half-loaded.
 * Insecure permissions accepted with `allowInsecurePermissions` are among the set's `warnings`.
 */
export async function loadPolicyDir(dir: string = DEFAULT_POLICY_DIR, options: PolicyLoadOptions = {}): Promise<PolicySet> {
  const root = resolve(dir);
  const { sources, warnings } = await readPolicyFiles(root, {
    maxFileBytes: options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES,
    allowInsecurePermissions: options.allowInsecurePermissions ?? false,
  });
  return buildPolicySetYielding(sources, root, options, warnings);
}

/**
 * Parses, validates and compiles policy texts; `label` names the set in the error message. Deeply frozen. The
 * limits apply as they do to files (a text over `maxFileBytes` in UTF-8 is refused unparsed).
 */
export function buildPolicySet(sources: readonly PolicySource[], label = '<memory>', limits: PolicyLimits = {}): PolicySet {
  const parsed = emptyParse(limits);
  parseInto(parsed, sources);
  return compileParsed(parsed, sources, label, compilePolicies(parsed.documents));
}

/**
 * {@link buildPolicySet}, yielding to the event loop after every PARSE_CHUNK files or PARSE_CHUNK_BYTES of YAML
 * parsed, whichever comes first, and at every pause of {@link compileSteps}, so a server reloading a large set
 * keeps answering meanwhile (YAML parsing alone is about 0.5 ms per agent file: 100,000 agents held the event loop
 * for 80 s; one file is parsed in one piece, which `maxFileBytes` bounds). Hashing the revision and freezing the
 * set are one synchronous step after that. `warnings` (from reading the files) join the set's warnings.
 */
export async function buildPolicySetYielding(
  sources: readonly PolicySource[],
  label = '<memory>',
  limits: PolicyLimits = {},
  warnings: readonly ErrorDetail[] = [],
): Promise<PolicySet> {
  const parsed = emptyParse(limits);
  parsed.warnings.push(...warnings);
  for (let i = 0; i < sources.length; ) {
    let end = i;
    for (let bytes = 0; end < sources.length && end - i < PARSE_CHUNK && bytes < PARSE_CHUNK_BYTES; end++) {
      bytes += (sources[end] as PolicySource).text.length;
    }
    parseInto(parsed, sources.slice(i, end));
    i = end;
    await turnOfTheEventLoop();
  }
  const steps = compileSteps(parsed.documents);
  let step = steps.next();
  while (step.done !== true) {
    await turnOfTheEventLoop();
    step = steps.next();
  }
  return compileParsed(parsed, sources, label, step.value);
}

const turnOfTheEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface ParsedSources {
  errors: ErrorDetail[];
  warnings: ErrorDetail[];
  documents: PolicyDocument[];
  maxFileBytes: number;
  maxEntries: number;
}

const emptyParse = (limits: PolicyLimits): ParsedSources => ({
  errors: [],
  warnings: [],
  documents: [],
  maxFileBytes: limits.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES,
  maxEntries: limits.maxEntriesPerFile ?? DEFAULT_MAX_ENTRIES,
});

function parseInto(into: ParsedSources, sources: readonly PolicySource[]): void {
  for (const { file, text } of sources) {
    // Files over the limit never get here (policy-files.ts); in-memory texts are held to the same rule.
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > into.maxFileBytes) {
      into.errors.push({ path: '', file, line: 1, column: 1, message: tooLarge(bytes, into.maxFileBytes) });
      continue;
    }
    const parsed = parsePolicyFile(text, file, into.maxEntries);
    into.errors.push(...parsed.errors);
    into.warnings.push(...parsed.warnings);
    if (parsed.document !== undefined) into.documents.push(parsed.document);
  }
}

function compileParsed({ errors, warnings }: ParsedSources, sources: readonly PolicySource[], label: string, compiled: CompileResult): PolicySet {
  const files = sources
    .map((s) => ({ path: s.file, sha256: s.sha256 ?? createHash('sha256').update(s.text, 'utf8').digest('hex') }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  if (files.length === 0) errors.push({ path: '', message: `no policy files (*.yaml, *.yml) under ${label}` });
  errors.push(...compiled.errors);
  warnings.push(...compiled.warnings);
  if (errors.length > 0) {
    errors.sort(byLocation);
    const first = errors[0];
    const count = errors.length === 1 ? '1 error' : `${errors.length} errors`;
    const message = `policies under ${label} are invalid (${count}; first: ${first === undefined ? '' : describe(first, label)})`;
    throw new PdpError('policy_invalid', message, { details: errors });
  }
  return deepFreeze({
    revision: policyRevision(compiled.data),
    data: compiled.data,
    agents: Object.keys(compiled.data.policies.agents).sort(),
    integrations: compiled.integrations,
    warnings: warnings.sort(byLocation),
    files,
    endpointMaps: compiled.endpointMaps,
    providerMaps: compiled.providerMaps,
    agentRoles: compiled.agentRoles,
    longestTokenTtl: longestTokenTtl(compiled.data),
  });
}

/** `file:line:column path message`, the way compilers print a diagnostic. */
function describe(detail: ErrorDetail, label: string): string {
  const at = `${detail.file ?? label}${detail.line === undefined ? '' : `:${detail.line}:${detail.column ?? 1}`}`;
  return [at, detail.path, detail.message].filter((part) => part !== '').join(' ');
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
