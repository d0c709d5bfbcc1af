import * as opaWasm from '@open-policy-agent/opa-wasm';
import { PdpError } from '../errors/pdp-error.js';
import { DECISION_ENTRYPOINT, type OpaBundle } from './bundle-reader.js';
import type { Evaluation, EvaluationInputV1, EvaluationResultV1 } from './decision-types.js';
import { checkEvaluationResult } from './result-check.js';
import { compileWithSharedMemory, setDataOffThread, type SdkPolicyState } from './wasm-data-loader.js';

/**
 * The only module that touches `@open-policy-agent/opa-wasm` (with `wasm-data-loader.ts`, which relies on the
 * `LoadedPolicy` fields of the pinned version 1.10.0). The SDK throws strings and plain objects, returns
 * an untyped result set and keeps state in its instance; this wrapper turns all of that into coded errors and a
 * checked `Evaluation`. An empty result set is "undefined", never an allow.
 */
interface LoadedPolicy {
  evaluate(input: unknown, entrypoint?: number | string): unknown;
  setData(data: object | ArrayBuffer): void;
  entrypoints: Record<string, number>;
}
interface OpaWasmModule {
  loadPolicy(
    wasm: Uint8Array | object,
    memory?: number | { initial: number; maximum?: number; shared?: boolean },
    customBuiltins?: Record<string, (...args: unknown[]) => unknown>,
  ): Promise<LoadedPolicy>;
}
const sdk = opaWasm as unknown as OpaWasmModule;

/** Least initial WASM memory, in 64 KiB pages; it grows on demand. */
const MIN_INITIAL_MEMORY_PAGES = 16;
const WASM_PAGE_BYTES = 65_536;
/** 32-bit WASM memory: 4 GiB. Data too large for it fails in setData, as it did before sizing. */
const MAX_MEMORY_PAGES = 65_536;
/**
 * Initial heap bytes per byte of data JSON. OPA's wasm heap grows as `opa_json_parse` builds the data's value
 * tree, and each grow may move the whole memory. After setData the memory holds about 9.6x the JSON's bytes
 * (measured at 1,000 and 20,000 agents), so reserving 10x up front makes setData one pass: at 20,000 agents
 * (9.8 MB of JSON) it took 0.59 s instead of 1.2 s, for 5% more memory.
 */
const HEAP_BYTES_PER_DATA_BYTE = 10;
/**
 * Data this large is set off the event loop (`wasm-data-loader.ts`): OPA's `setData` takes about 55 ms per MB of JSON
 * on this 2-core VM (0.8 s of the 3.1 s at 100,000 agents is the parse; the rest is the first touch of the 530 MB
 * heap it builds), so 1 MB (some 1,900 agents) is the most set in-process. Off-thread, the memory is shared and
 * declared with the 4 GiB maximum a 32-bit memory has anyway: data too large for it fails in the same way.
 */
export const OFF_THREAD_DATA_BYTES = 1024 * 1024;

export interface EvaluatorRevisions {
  /** `.manifest` revision of the bundle: a content hash of the Rego sources. */
  bundle: string;
  /** Content hash of the compiled YAML agent policies. */
  policies: string;
}

export class WasmEvaluator {
  readonly revisions: EvaluatorRevisions;
  /** `<bundle>.<policies>`: what every decision records as its policy revision. */
  readonly revision: string;
  readonly #policy: LoadedPolicy;
  readonly #entrypoint: number;
  #view: Buffer | undefined;

  private constructor(policy: LoadedPolicy, entrypoint: number, revisions: EvaluatorRevisions) {
    this.#policy = policy;
    this.#entrypoint = entrypoint;
    this.revisions = Object.freeze({ ...revisions });
    this.revision = `${revisions.bundle}.${revisions.policies}`;
  }

  /**
   * Instantiates the bundle's module and sets its data: the bundle's own `data.json` merged with the compiled
   * agent policies (which live under `policies`; the bundle may not define that root).
   *
   * `dataJson`: the JSON text of `{...bundle.data, ...policyData}` when the caller already holds it (a compiled
   * bundle's data.json): set as it is, sparing a stringify of the whole document (about 1 s at 100,000 agents).
   *
   * Data of {@link OFF_THREAD_DATA_BYTES} or more is parsed by OPA in a worker thread, into the policy's memory shared
   * with it (`wasm-data-loader.ts`), so a server loading it keeps answering; `offThread` forces either way (tests).
   */
  static async create(
    bundle: OpaBundle,
    policyData: Readonly<Record<string, unknown>>,
    policiesRevision: string,
    dataJson?: Uint8Array,
    options: { offThread?: boolean } = {},
  ): Promise<WasmEvaluator> {
    for (const root of Object.keys(policyData)) {
      if (root in bundle.data) {
        throw new PdpError('bundle_invalid', `bundle data.json defines "${root}", which the agent policies own`);
      }
    }
    let policy: LoadedPolicy;
    try {
      const data = dataJson ?? new TextEncoder().encode(JSON.stringify({ ...bundle.data, ...policyData }));
      const wanted = Math.ceil((data.byteLength * HEAP_BYTES_PER_DATA_BYTE) / WASM_PAGE_BYTES);
      const pages = Math.min(MAX_MEMORY_PAGES, Math.max(MIN_INITIAL_MEMORY_PAGES, wanted));
      if (options.offThread ?? data.byteLength >= OFF_THREAD_DATA_BYTES) {
        const module = await compileWithSharedMemory(bundle.wasm, MAX_MEMORY_PAGES);
        policy = await sdk.loadPolicy(module, { initial: pages, maximum: MAX_MEMORY_PAGES, shared: true });
        await setDataOffThread(policy as unknown as SdkPolicyState, module, data);
      } else {
        policy = await sdk.loadPolicy(bundle.wasm, { initial: pages });
        // setData takes an ArrayBuffer as JSON bytes: exactly the encoded bytes, never a larger backing store.
        policy.setData(data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data.buffer : new Uint8Array(data).buffer);
      }
    } catch (cause) {
      throw new PdpError('bundle_invalid', `cannot load the wasm module of ${bundle.path}: ${describe(cause)}`, { cause });
    }
    const entrypoint = policy.entrypoints[DECISION_ENTRYPOINT];
    if (entrypoint === undefined) {
      throw new PdpError('bundle_invalid', `the wasm module does not export ${DECISION_ENTRYPOINT}`);
    }
    return new WasmEvaluator(policy, entrypoint, { bundle: bundle.revision, policies: policiesRevision });
  }

  /** Every entrypoint the module exports (`agentpdp/decision` and those of any Rego pack built in), sorted. */
  get entrypoints(): string[] {
    return Object.keys(this.#policy.entrypoints).sort();
  }

  /**
   * Evaluates any entrypoint of the bundle with a raw input, as OPA's data API does: the rule's value, or
   * `defined: false` when the rule is undefined for that input. Nothing is checked about the value: an entrypoint
   * other than the agent decision has no contract with us beyond being JSON. An unknown entrypoint is
   * `entrypoint_not_found`.
   */
  evaluateEntrypoint(entrypoint: string, input: unknown): { defined: boolean; result?: unknown } {
    const id = Object.hasOwn(this.#policy.entrypoints, entrypoint) ? this.#policy.entrypoints[entrypoint] : undefined;
    if (id === undefined) throw new PdpError('entrypoint_not_found', `the policy bundle has no entrypoint ${entrypoint}`, { details: [{ path: 'path', message: 'not an entrypoint of the bundle' }] });
    let resultSet: unknown;
    try {
      resultSet = this.#policy.evaluate(input, id);
    } catch (cause) {
      throw new PdpError('evaluation_failed', `policy evaluation failed: ${describe(cause)}`, { cause });
    }
    if (!Array.isArray(resultSet)) throw new PdpError('evaluation_failed', 'policy evaluation returned no result set');
    if (resultSet.length > 1) throw new PdpError('evaluation_failed', `policy evaluation returned ${resultSet.length} results, expected one`);
    const result = (resultSet[0] as { result?: unknown } | undefined)?.result;
    return result === undefined ? { defined: false } : { defined: true, result };
  }

  /** Synchronous, like the SDK: one evaluation at a time per instance, which one event loop guarantees. */
  evaluate(input: EvaluationInputV1): Evaluation {
    let resultSet: unknown;
    try {
      resultSet = this.#evaluateObject(input, this.#entrypoint);
    } catch (cause) {
      throw new PdpError('evaluation_failed', `policy evaluation failed: ${describe(cause)}`, { cause });
    }
    if (!Array.isArray(resultSet)) {
      throw new PdpError('evaluation_failed', 'policy evaluation returned no result set');
    }
    if (resultSet.length === 0) return undefinedEvaluation();
    if (resultSet.length > 1) {
      throw new PdpError('evaluation_failed', `policy evaluation returned ${resultSet.length} results, expected one`);
    }
    const result = (resultSet[0] as { result?: unknown } | undefined)?.result;
    if (result === undefined) return undefinedEvaluation();
    const checked: EvaluationResultV1 = checkEvaluationResult(result);
    return Object.assign(checked, { defined: true as const });
  }

  /**
   * The SDK's `evaluate` for an object input (ABI 1.2 and later: one `opa_eval` call), with the JSON going into and
   * out of the module's memory without the copies the SDK makes: the input text is written straight into the memory
   * (the SDK encodes it into a new array first, then copies that), and the result's end is found by a native search
   * (the SDK walks it byte by byte in JavaScript). The same call, addresses and heap pointer as the SDK's; a module
   * with an older ABI goes through the SDK.
   */
  #evaluateObject(input: object, entrypoint: number): unknown {
    const state = this.#policy as unknown as SdkPolicyState & { minorVersion: number };
    if (!(state.minorVersion >= 2)) return this.#policy.evaluate(input, entrypoint);
    const text = JSON.stringify(input);
    const at = state.dataHeapPtr;
    // At most 3 bytes of UTF-8 for each UTF-16 unit of the text.
    const short = at + text.length * 3 - state.mem.buffer.byteLength;
    if (short > 0) state.mem.grow(Math.ceil(short / WASM_PAGE_BYTES));
    const length = this.#memory(state).write(text, at, 'utf8');
    const exports = state.wasmInstance.exports as { opa_eval(...args: number[]): number };
    const resultAt = exports.opa_eval(0, entrypoint, state.dataAddr, at, length, at + length, 0);
    // The evaluation may have grown the memory: the view is taken again.
    const memory = this.#memory(state);
    const end = memory.indexOf(0, resultAt);
    if (end < 0) throw new Error('the result in the module memory is not terminated');
    return JSON.parse(memory.toString('utf8', resultAt, end));
  }

  /** A Buffer over the module's whole memory, made again only when the memory grew (a new ArrayBuffer). */
  #memory(state: SdkPolicyState): Buffer {
    const buffer = state.mem.buffer;
    if (this.#view === undefined || this.#view.buffer !== buffer || this.#view.byteLength !== buffer.byteLength) this.#view = Buffer.from(buffer);
    return this.#view;
  }
}

function undefinedEvaluation(): Evaluation {
  return {
    defined: false,
    outcome: 'undefined',
    granted_scopes: [],
    denied_scopes: [],
    reasons: [{ code: 'undefined', message: 'the policy produced no decision for this input' }],
    token_ttl_seconds: 0,
    elevated_scopes: [],
  };
}

/** The SDK throws strings (opa_abort) and `{ message }` objects; neither is an Error. */
function describe(thrown: unknown): string {
  if (typeof thrown === 'string') return thrown;
  if (thrown instanceof Error) return thrown.message;
  if (typeof thrown === 'object' && thrown !== null && 'message' in thrown) return String(thrown.message);
  return String(thrown);
}
