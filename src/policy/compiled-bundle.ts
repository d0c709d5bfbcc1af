import { createHash } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { PdpError } from '../errors/pdp-error.js';
import { DECISION_ENTRYPOINT, type OpaBundle } from './bundle-reader.js';
import { parseJsonInPieces } from './json-in-pieces.js';
import { longestTokenTtl } from './policy-compiler.js';
import { SIGNATURES_FILE, signBundleFiles, verifyBundleFiles, type BundleSigningKey, type BundleVerification } from './bundle-signature.js';
import { canonicalJson } from './policy-revision.js';
import type { PolicyData, PolicySet } from './policy-types.js';
import { providerMapsProblem } from './provider-map-check.js';
import { readTarGz, TarFormatError } from './tar-reader.js';
import { readTarGzStreaming } from './tar-stream.js';
import { writeTarGz, type TarFile } from './tar-writer.js';

/**
 * A compiled bundle: the Rego's WASM and the agent policies already compiled, in one OPA bundle, so a replica
 * serves without YAML and without the policy folder (`agent-pdp bundle build`; docs/bundles.md).
 *
 *   /.manifest                      revision `<rego revision>.<policies revision>`, every entrypoint of the Rego
 *                                   bundle's WASM (the decision's and those of any Rego pack built in)
 *   /data.json                      the data document the Rego reads (`{"policies": …}`), canonical JSON: its
 *                                   SHA-256 is the policies revision
 *   /agentpdp_compiled/data.json    what the server needs beside it: format, both revisions, integrations'
 *                                   audiences, compile warnings, the source files' digests, the endpoint maps,
 *                                   the roles each agent names (optional: older bundles lack it), the provider
 *                                   maps (optional; checked field by field when read: provider-map-check.ts)
 *   /policy.wasm                    the Rego, as `opa build -t wasm` compiled it
 *   /rego/…, /packs/…               the Rego sources the WASM was built from (for the record)
 *   /.signatures.json               optional, OPA's format (`bundle-signature.ts`)
 *
 * OPA itself loads it (`opa run -b`, `opa build --verification-key`): `agentpdp_compiled` is then just data.
 */
export const COMPILED_META_ROOT = 'agentpdp_compiled';
export const COMPILED_FORMAT = 'agent-pdp-compiled-bundle-v1';
const META_FILE = `${COMPILED_META_ROOT}/data.json`;
/**
 * Largest compiled bundle unpacked: 100,000 agents are about 55 MB of JSON, and a gzip of a few MB can unpack to
 * gigabytes (checked while unpacking, before any signature can be).
 */
export const MAX_COMPILED_BUNDLE_BYTES = 256 * 1024 * 1024;

interface CompiledMeta {
  format: typeof COMPILED_FORMAT;
  rego_revision: string;
  policies_revision: string;
  integrations: PolicySet['integrations'];
  warnings: PolicySet['warnings'];
  files: PolicySet['files'];
  endpoint_maps: PolicySet['endpointMaps'];
  /** Optional: a bundle built before it was recorded has none. */
  agent_roles?: NonNullable<PolicySet['agentRoles']>;
  /** Optional: a bundle built before provider maps has none (then nothing mints a provider credential). */
  provider_maps?: NonNullable<PolicySet['providerMaps']>;
  /** Optional: a bundle built before it was recorded has none (then its agents are all built at load). */
  longest_token_ttl?: number;
}

export interface CompiledBundle {
  bundle: OpaBundle;
  policySet: PolicySet;
  /** Whether `.signatures.json` was checked (a verification was configured). */
  verified: boolean;
  /** Whether the bundle carries a signature (checked or not: without a verification configured, it is not). */
  signed: boolean;
  /** The data document's JSON text as the bundle holds it (what the evaluator is given, unparsed). */
  dataJson: Buffer;
}

/** The compiled bundle of `policySet` with the Rego of `rego`, optionally signed. */
export async function buildCompiledBundle(policySet: PolicySet, rego: OpaBundle, regoSources: readonly TarFile[], signing?: BundleSigningKey): Promise<Buffer> {
  const roots = Object.keys(rego.data);
  if (roots.length > 0) {
    throw new PdpError('bundle_invalid', `the Rego bundle's data.json defines "${roots[0]}": a compiled bundle holds only the policies' data`);
  }
  // The revision is the SHA-256 of exactly this text (policy-revision.ts): a reader checks the bytes against it.
  const dataJson = Buffer.from(canonicalJson(policySet.data), 'utf8');
  const meta: CompiledMeta = {
    format: COMPILED_FORMAT,
    rego_revision: rego.revision,
    policies_revision: policySet.revision,
    integrations: policySet.integrations,
    warnings: policySet.warnings,
    files: policySet.files,
    endpoint_maps: policySet.endpointMaps,
    ...(policySet.agentRoles === undefined ? {} : { agent_roles: policySet.agentRoles }),
    // From the data itself, not a field of the set beside it that a caller could have left stale.
    longest_token_ttl: longestTokenTtl(policySet.data),
    ...(policySet.providerMaps === undefined || Object.keys(policySet.providerMaps).length === 0 ? {} : { provider_maps: policySet.providerMaps }),
  };
  const manifest = {
    revision: `${rego.revision}.${policySet.revision}`,
    roots: [''],
    // Every entrypoint of the Rego bundle's WASM: Rego packs built into it stay reachable (docs/bundles.md).
    wasm: rego.entrypoints.map((entrypoint) => ({ entrypoint, module: '/policy.wasm' })),
    rego_version: 1,
    metadata: { agent_pdp: { format: COMPILED_FORMAT, agents: policySet.agents.length } },
  };
  const files = new Map<string, Buffer>([
    ['.manifest', Buffer.from(JSON.stringify(manifest), 'utf8')],
    ['data.json', dataJson],
    [META_FILE, Buffer.from(JSON.stringify(meta), 'utf8')],
    ['policy.wasm', rego.wasm],
  ]);
  for (const source of regoSources) {
    if (source.path.endsWith('.rego') && !files.has(source.path)) files.set(source.path, source.content);
  }
  if (signing !== undefined) files.set(SIGNATURES_FILE, Buffer.from(await signBundleFiles(files, signing), 'utf8'));
  const ordered: TarFile[] = [...files].map(([path, content]) => ({ path, content }));
  return writeTarGz(ordered);
}

/** Whether the archive's files are a compiled bundle (it has the meta document). */
export function isCompiledBundle(files: ReadonlyMap<string, Buffer>): boolean {
  return files.has(META_FILE);
}

/** Reads the files of a (gzipped) bundle; `bundle_invalid` if it is not a well-formed archive. */
export function bundleFiles(gz: Buffer, path: string, maxBytes = MAX_COMPILED_BUNDLE_BYTES): Map<string, Buffer> {
  try {
    return new Map(readTarGz(gz, maxBytes).map((e) => [e.path, e.content]));
  } catch (cause) {
    throw new PdpError('bundle_invalid', `policy bundle ${path}: ${cause instanceof TarFormatError ? cause.message : 'unreadable archive'}`, { cause });
  }
}

/**
 * {@link bundleFiles}, unpacked as a stream on libuv's thread pool (`tar-stream.ts`): a server loading a bundle keeps
 * answering meanwhile (the gunzip of a large bundle held the event loop for a second, and a gzip bomb up to the limit
 * for many; then the inflated archive and the copy of data.json out of it, 0.8 s at 100,000 agents).
 */
export async function bundleFilesAsync(gz: Buffer, path: string, maxBytes = MAX_COMPILED_BUNDLE_BYTES): Promise<Map<string, Buffer>> {
  try {
    return new Map((await readTarGzStreaming(gz, maxBytes)).map((e) => [e.path, e.content]));
  } catch (cause) {
    if (cause instanceof TarFormatError) throw new PdpError('bundle_invalid', `policy bundle ${path}: ${cause.message}`, { cause });
    throw new PdpError('bundle_invalid', `policy bundle ${path}: not a gzip stream, or larger than ${maxBytes} bytes unpacked`, { cause });
  }
}

/** A compiled bundle whose signature, format, manifest and data digest are checked, its data document not yet parsed. */
export interface OpenedCompiledBundle {
  path: string;
  bundle: OpaBundle;
  meta: CompiledMeta;
  verified: boolean;
  signed: boolean;
  /** data.json as the bundle holds it: its SHA-256 is the policies revision. */
  dataJson: Buffer;
}

/**
 * A compiled bundle, checked: its signature when `verification` is given (every file signed, none missing), its
 * format, the data document against the policies revision it claims (SHA-256 of the exact bytes: a hand-edited
 * data.json is refused even unsigned), then the policy set rebuilt without YAML, deeply frozen, every record
 * without a prototype (as the compiler builds them).
 */
export async function readCompiledBundle(files: ReadonlyMap<string, Buffer>, path: string, verification?: BundleVerification): Promise<CompiledBundle> {
  return compiledPolicySet(await openCompiledBundle(files, path, verification));
}

/**
 * The checks of {@link readCompiledBundle} before the data document is parsed: a caller can start the WASM
 * evaluator on the verified bytes while {@link compiledPolicySet} parses them (the two take seconds each at 100,000
 * agents, and run side by side on two cores).
 */
export async function openCompiledBundle(files: ReadonlyMap<string, Buffer>, path: string, verification?: BundleVerification): Promise<OpenedCompiledBundle> {
  const invalid = invalidIn(path);
  if (verification !== undefined) await verifyBundleFiles(files, verification);
  const meta = parseObject(files.get(META_FILE), META_FILE, invalid) as Partial<CompiledMeta>;
  if (meta.format !== COMPILED_FORMAT) throw invalid(`unknown format ${JSON.stringify(meta.format)} (expected ${COMPILED_FORMAT})`);
  for (const key of ['rego_revision', 'policies_revision'] as const) {
    if (typeof meta[key] !== 'string' || meta[key] === '') throw invalid(`${META_FILE} has no ${key}`);
  }
  if (!isRecord(meta.integrations) || !Array.isArray(meta.warnings) || !Array.isArray(meta.files) || !isRecord(meta.endpoint_maps)) {
    throw invalid(`${META_FILE} is missing integrations, warnings, files or endpoint_maps`);
  }
  if (meta.agent_roles !== undefined && (!isRecord(meta.agent_roles) || !Object.values(meta.agent_roles).every((r) => Array.isArray(r) && r.every((id) => typeof id === 'string')))) {
    throw invalid(`${META_FILE} has malformed agent_roles`);
  }
  if (meta.provider_maps !== undefined) {
    // They decide what a minted provider credential reaches: held to what the compiler writes, field by field.
    const problem = providerMapsProblem(meta.provider_maps);
    if (problem !== null) throw invalid(`${META_FILE} has malformed provider_maps: ${problem}`);
  }
  if (meta.longest_token_ttl !== undefined && !(Number.isSafeInteger(meta.longest_token_ttl) && meta.longest_token_ttl >= 0)) {
    throw invalid(`${META_FILE} has a malformed longest_token_ttl`);
  }
  const regoRevision = meta.rego_revision as string;
  const policiesRevision = meta.policies_revision as string;
  const manifest = parseObject(files.get('.manifest'), '.manifest', invalid);
  const revision = `${regoRevision}.${policiesRevision}`;
  if (manifest['revision'] !== revision) throw invalid(`.manifest revision ${JSON.stringify(manifest['revision'])} is not ${revision}`);
  const wasm = files.get('policy.wasm');
  if (wasm === undefined) throw invalid('policy.wasm is missing');
  const dataJson = files.get('data.json');
  if (dataJson === undefined) throw invalid('data.json is missing');
  const digest = (await sha256InPieces(dataJson)).slice(0, 16);
  if (digest !== policiesRevision) throw invalid(`data.json does not match the policies revision ${policiesRevision} (edited after it was built?)`);
  const bundle: OpaBundle = Object.freeze({
    path,
    revision: regoRevision,
    entrypoints: Object.freeze(manifestEntrypoints(manifest, invalid)),
    wasm,
    data: Object.freeze({}),
  });
  return { path, bundle, meta: meta as CompiledMeta, verified: verification !== undefined, signed: files.has(SIGNATURES_FILE), dataJson };
}

/**
 * The policy set of an opened compiled bundle. The data document is parsed and frozen agent by agent, yielding to
 * the event loop between pieces (`json-in-pieces.ts`): a server reloading a bundle of 100,000 agents keeps answering.
 *
 * `lazyAgents`: each agent's entry is checked against JSON's grammar here (refused as JSON.parse would refuse it) but
 * built (parsed, frozen) only when it is first read: a server starts on 100,000 agents without building any. The
 * set then keeps data.json's bytes (the getters read them). A bundle built before `longest_token_ttl` was recorded
 * is read whole, so that the check of the agents' TTLs against the issuer's cap reads built agents.
 */
export async function compiledPolicySet(opened: OpenedCompiledBundle, options: { lazyAgents?: boolean } = {}): Promise<CompiledBundle> {
  const lazyAgents = options.lazyAgents === true && opened.meta.longest_token_ttl !== undefined;
  const invalid = invalidIn(opened.path);
  const { meta, dataJson } = opened;
  let parsed: unknown;
  let agentIds: readonly string[] = [];
  try {
    parsed = await parseJsonInPieces(dataJson, {
      leaf: frozenRecord,
      deferred: (path) => lazyAgents && path.length === 2 && path[0] === 'policies' && path[1] === 'agents',
      // Each walked object is complete and its members frozen: freeze it now, so the last step walks none of the
      // 100,000 agents again (that walk and Object.keys of the map held the event loop for 0.3 s).
      walked: (path, value, keys) => {
        if (path.length === 2 && path[0] === 'policies' && (path[1] === 'agents' || path[1] === 'integrations')) {
          // The maps keyed by names a request carries (agent, integration) have no prototype, as the compiler's have:
          // a bare `map[name]` with `constructor` or `__proto__` then finds nothing. One object each, not the millions
          // inside.
          Object.setPrototypeOf(value, null);
          if (path[1] === 'agents') agentIds = keys;
        }
        Object.freeze(value);
      },
    });
  } catch (cause) {
    throw invalid('data.json is not JSON', cause);
  }
  if (!isRecord(parsed)) throw invalid('data.json is not an object');
  const data = parsed;
  const policies = data['policies'] as { agents?: unknown; integrations?: unknown } | undefined;
  if (!isRecord(policies) || !isRecord(policies.agents) || !isRecord(policies.integrations) || Object.keys(data).length !== 1) {
    throw invalid('data.json must hold exactly {"policies": {"agents": …, "integrations": …}}');
  }
  for (const map of [meta.integrations, meta.endpoint_maps, meta.agent_roles, meta.provider_maps]) if (map !== undefined) Object.setPrototypeOf(map, null);
  const policySet = frozenRecord({
    revision: meta.policies_revision,
    data: data as unknown as PolicyData,
    // The keys in document order, sorted; a duplicate key (which JSON.parse keeps once) listed once.
    agents: [...agentIds].sort().filter((id, i, sorted) => i === 0 || sorted[i - 1] !== id),
    integrations: meta.integrations,
    warnings: meta.warnings,
    files: meta.files,
    endpointMaps: meta.endpoint_maps,
    ...(meta.agent_roles === undefined ? {} : { agentRoles: meta.agent_roles }),
    // A bundle without provider maps (none in its folder, or built before them) has none: nothing mints.
    providerMaps: meta.provider_maps ?? Object.create(null),
    ...(meta.longest_token_ttl === undefined ? {} : { longestTokenTtl: meta.longest_token_ttl }),
  }) as PolicySet;
  return { bundle: opened.bundle, policySet, verified: opened.verified, signed: opened.signed, dataJson };
}

/**
 * The entrypoints the manifest lists for /policy.wasm, the agent decision's among them. Only a list: what the module
 * exports is what the evaluator can call (an edited manifest of an unsigned bundle adds nothing callable).
 */
function manifestEntrypoints(manifest: Record<string, unknown>, invalid: (message: string) => PdpError): string[] {
  const wasm = manifest['wasm'];
  if (!Array.isArray(wasm)) throw invalid('.manifest lists no wasm module');
  const entrypoints: string[] = [];
  for (const entry of wasm as unknown[]) {
    const { entrypoint, module } = (isRecord(entry) ? entry : {}) as { entrypoint?: unknown; module?: unknown };
    if (typeof entrypoint !== 'string' || module !== '/policy.wasm') throw invalid('.manifest wasm entry is malformed (an entrypoint of /policy.wasm expected)');
    if (!entrypoints.includes(entrypoint)) entrypoints.push(entrypoint);
  }
  if (!entrypoints.includes(DECISION_ENTRYPOINT)) throw invalid(`.manifest does not list the entrypoint ${DECISION_ENTRYPOINT}`);
  return entrypoints;
}

/**
 * SHA-256 (hex) of `bytes`, a megabyte per event-loop turn: one update over 55 MB held a reloading server for 0.2 s,
 * and WebCrypto's digest, though hashed on the thread pool, first copies its input (as long, on this VM's fresh
 * pages).
 */
async function sha256InPieces(bytes: Buffer): Promise<string> {
  const hash = createHash('sha256');
  for (let offset = 0; offset < bytes.length; offset += HASH_SLICE_BYTES) {
    if (offset > 0) await nextTurn();
    hash.update(bytes.subarray(offset, offset + HASH_SLICE_BYTES));
  }
  return hash.digest('hex');
}

const HASH_SLICE_BYTES = 1024 * 1024;

function invalidIn(path: string): (message: string, cause?: unknown) => PdpError {
  return (message, cause) => new PdpError('bundle_invalid', `compiled bundle ${path}: ${message}`, { cause });
}

function parseObject(buf: Buffer | undefined, name: string, invalid: (message: string, cause?: unknown) => PdpError): Record<string, unknown> {
  if (buf === undefined) throw invalid(`${name} is missing`);
  let value: unknown;
  try {
    value = JSON.parse(buf.toString('utf8'));
  } catch (cause) {
    throw invalid(`${name} is not JSON`, cause);
  }
  if (!isRecord(value)) throw invalid(`${name} is not an object`);
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Deeply frozen; a frozen object is taken as frozen all the way down (the data's pieces are frozen as they are parsed,
 * and nothing else here is frozen shallowly). Below the name-keyed maps (which have no prototype), these records keep `Object.prototype`
 * (JSON.parse gives them one; removing it from 1.7 million objects took longer than parsing them): lookups by a name
 * inside an agent go through `ownValue`, `Object.hasOwn` or a `Map`, never `record[name]` alone.
 */
function frozenRecord<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const child of Object.values(value as object)) frozenRecord(child);
    Object.freeze(value);
  }
  return value;
}
