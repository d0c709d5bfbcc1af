import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { PdpError, type ErrorDetail } from '../errors/pdp-error.js';
import { byLocation } from './compile-diagnostics.js';
import { compilePolicies, compileSteps, type CompileResult } from './policy-compiler.js';
import { parsePolicyFile } from './policy-document.js';
import { policyRevision } from './policy-revision.js';
import type { PolicyDocument, PolicySet } from './policy-types.js';

/** Where policy files live unless the config says otherwise. */
export const DEFAULT_POLICY_DIR = 'policies';

const POLICY_FILE = /\.ya?ml$/;
const READ_CONCURRENCY = 64;
/** Files parsed between two turns of the event loop (about 25 ms of work). */
const PARSE_CHUNK = 50;

/** One policy file's text, named by its path relative to the policy directory (`/`-separated). */
export interface PolicySource {
  file: string;
  text: string;
}

/**
 * Reads every `*.yaml` / `*.yml` under `dir` (recursively; names starting with `.` are skipped), then
 * {@link buildPolicySet}. Throws `PdpError('policy_invalid')` listing every problem; nothing is half-loaded.
 */
export async function loadPolicyDir(dir: string = DEFAULT_POLICY_DIR): Promise<PolicySet> {
  const root = resolve(dir);
  return buildPolicySetYielding(await readPolicySources(root), root);
}

/** Every policy file's text. policy_invalid naming the directory or the file that could not be read. */
async function readPolicySources(root: string): Promise<PolicySource[]> {
  let file = '';
  try {
    const files = await listPolicyFiles(root);
    const sources: PolicySource[] = [];
    // READ_CONCURRENCY reads in flight: read one at a time, 5,000 agent files spent a quarter of their load time waiting.
    for (let i = 0; i < files.length; i += READ_CONCURRENCY) {
      const chunk = files.slice(i, i + READ_CONCURRENCY);
      const texts = await Promise.all(
        chunk.map((name) =>
          readFile(join(root, name), 'utf8').catch((cause: unknown) => {
            file = name;
            throw cause;
          }),
        ),
      );
      chunk.forEach((name, k) => sources.push({ file: name, text: texts[k] as string }));
    }
    return sources;
  } catch (cause) {
    const message = (cause as Error).message;
    throw new PdpError('policy_invalid', `cannot read the policy directory ${root}: ${message}`, {
      cause,
      details: [{ path: '', file: file === '' ? root : file, message }],
    });
  }
}

/** Parses, validates and compiles policy texts; `label` names the set in the error message. Deeply frozen. */
export function buildPolicySet(sources: readonly PolicySource[], label = '<memory>'): PolicySet {
  const parsed = emptyParse();
  parseInto(parsed, sources);
  return compileParsed(parsed, sources, label, compilePolicies(parsed.documents));
}

/**
 * {@link buildPolicySet}, yielding to the event loop after every PARSE_CHUNK files parsed and at every pause of
 * {@link compileSteps}, so a server reloading a large set keeps answering meanwhile (YAML parsing alone is about
 * 0.5 ms per agent file: 100,000 agents held the event loop for 80 s). Hashing the revision and freezing the set
 * are one synchronous step after that.
 */
export async function buildPolicySetYielding(sources: readonly PolicySource[], label = '<memory>'): Promise<PolicySet> {
  const parsed = emptyParse();
  for (let i = 0; i < sources.length; i += PARSE_CHUNK) {
    parseInto(parsed, sources.slice(i, i + PARSE_CHUNK));
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
}

const emptyParse = (): ParsedSources => ({ errors: [], warnings: [], documents: [] });

function parseInto(into: ParsedSources, sources: readonly PolicySource[]): void {
  for (const { file, text } of sources) {
    const parsed = parsePolicyFile(text, file);
    into.errors.push(...parsed.errors);
    into.warnings.push(...parsed.warnings);
    if (parsed.document !== undefined) into.documents.push(parsed.document);
  }
}

function compileParsed({ errors, warnings }: ParsedSources, sources: readonly PolicySource[], label: string, compiled: CompileResult): PolicySet {
  const files = sources.map((s) => s.file).sort();
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
  });
}

async function listPolicyFiles(root: string, prefix = ''): Promise<string[]> {
  const entries = await readdir(join(root, prefix), { withFileTypes: true });
  const found: string[] = [];
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const rel = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) found.push(...(await listPolicyFiles(root, rel)));
    else if ((entry.isFile() || entry.isSymbolicLink()) && POLICY_FILE.test(entry.name)) found.push(rel);
  }
  return found.sort();
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
