import { readFile, realpath, stat } from 'node:fs/promises';
import { PdpError, type ErrorDetail } from '../errors/pdp-error.js';
import { acceptedInsecure, INSECURE_HINT, octalMode, writableAncestors, writableByOthers } from './file-permissions.js';
import { readTarGz, TarFormatError } from './tar-reader.js';

/** The entrypoint every agent-pdp bundle must export. */
export const DECISION_ENTRYPOINT = 'agentpdp/decision';

/** An OPA bundle built by `make bundle` (`opa build -t wasm`), read and checked, nothing evaluated yet. */
export interface OpaBundle {
  readonly path: string;
  readonly revision: string;
  readonly entrypoints: readonly string[];
  readonly wasm: Buffer;
  /** `/data.json` of the bundle: static data shipped with the Rego (agent policies come from YAML instead). */
  readonly data: Readonly<Record<string, unknown>>;
}

interface ManifestWasm {
  entrypoint: string;
  module: string;
}

export async function readBundleFile(path: string): Promise<OpaBundle> {
  let gz: Buffer;
  try {
    gz = await readFile(path);
  } catch (cause) {
    throw new PdpError('bundle_missing', `cannot read the policy bundle at ${path}: run 'make bundle'`, { cause });
  }
  return parseBundle(gz, path);
}

/**
 * The bundle decides as much as the policy files do: one that group or others may write, or that sits in a folder
 * (or below one) they may write without the sticky bit, is refused with `bundle_invalid`; with `allowInsecure` the
 * problems are returned as warnings instead. A bundle that cannot be found is left to {@link readBundleFile}.
 */
export async function checkBundlePermissions(path: string, allowInsecure: boolean): Promise<ErrorDetail[]> {
  const real = await realpath(path).catch(() => undefined);
  const stats = real === undefined ? undefined : await stat(real).catch(() => undefined);
  if (real === undefined || stats === undefined) return [];
  const problems: ErrorDetail[] = [];
  if (await writableByOthers(real, stats)) {
    problems.push({ path: '', file: path, message: `policy bundle writable by group or others (mode ${octalMode(stats.mode)}): ${INSECURE_HINT}` });
  }
  for (const above of await writableAncestors(real)) problems.push({ path: '', file: above.path, message: `${above.message}; ${INSECURE_HINT}` });
  if (problems.length === 0) return [];
  if (allowInsecure) return problems.map(acceptedInsecure);
  throw new PdpError('bundle_invalid', `policy bundle ${path} is refused: ${problems[0]?.message ?? ''}`, { details: problems });
}

export function parseBundle(gz: Buffer, path = '<memory>'): OpaBundle {
  const invalid = (message: string, cause?: unknown): PdpError =>
    new PdpError('bundle_invalid', `policy bundle ${path}: ${message}`, { cause });
  let files: Map<string, Buffer>;
  try {
    files = new Map(readTarGz(gz).map((e) => [e.path, e.content]));
  } catch (cause) {
    throw invalid(cause instanceof TarFormatError ? cause.message : 'unreadable archive', cause);
  }
  const manifest = parseJson(files.get('.manifest'), '.manifest', invalid);
  const revision = manifest['revision'];
  if (typeof revision !== 'string' || revision === '') throw invalid('.manifest has no revision');
  const wasmEntries = manifest['wasm'];
  if (!Array.isArray(wasmEntries) || wasmEntries.length === 0) throw invalid('.manifest lists no wasm module');
  const modules = new Set<string>();
  const entrypoints: string[] = [];
  for (const entry of wasmEntries as ManifestWasm[]) {
    if (typeof entry?.entrypoint !== 'string' || typeof entry.module !== 'string') {
      throw invalid('.manifest wasm entry is malformed');
    }
    entrypoints.push(entry.entrypoint);
    modules.add(entry.module.replace(/^\/+/, ''));
  }
  if (!entrypoints.includes(DECISION_ENTRYPOINT)) {
    throw invalid(`entrypoint ${DECISION_ENTRYPOINT} is missing (has: ${entrypoints.join(', ')})`);
  }
  if (modules.size !== 1) throw invalid('expected exactly one wasm module');
  const [modulePath] = [...modules];
  const wasm = files.get(modulePath ?? '');
  if (!wasm) throw invalid(`wasm module ${modulePath} is not in the archive`);
  const data = parseJson(files.get('data.json'), 'data.json', invalid);
  return Object.freeze({ path, revision, entrypoints: Object.freeze(entrypoints), wasm, data: Object.freeze(data) });
}

function parseJson(
  buf: Buffer | undefined,
  name: string,
  invalid: (message: string, cause?: unknown) => PdpError,
): Record<string, unknown> {
  if (!buf) throw invalid(`${name} is missing`);
  let value: unknown;
  try {
    value = JSON.parse(buf.toString('utf8'));
  } catch (cause) {
    throw invalid(`${name} is not JSON`, cause);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`${name} is not an object`);
  return value as Record<string, unknown>;
}
