/**
 * The per-tool mapping: what a `tools/call` of one MCP tool needs from the PDP, derived from the call's arguments.
 * Declared next to the tool, checked when the guard is created (a bad declaration throws there, not on the first
 * call), and applied to each call's raw arguments before the server has looked at them: a mapping that cannot
 * read the arguments refuses the call (`MappingFailed`), it never guesses.
 */
import { ID_PATTERN, SCOPE_PATTERN } from '../wire/decision-v1.js';
import type { ResourceRef } from '../wire/evaluation-v1.js';

/** The arguments of a `tools/call` as the client sent them (`params.arguments`; `{}` when absent). */
export type ToolArguments = Readonly<Record<string, unknown>>;

/**
 * Where a call's record id comes from: the argument at `id` (a name, or a dotted path into nested objects such as
 * `customer.id`), which must be a non-empty string of at most 256 characters or a safe integer.
 */
export interface RecordFromArgument {
  /** The record's type, as record bindings name it (`customer`). */
  type: string;
  /** The argument holding its id. */
  id: string;
}

export interface McpToolMapping {
  /** The integration (tool API) the tool uses, e.g. `crm`. */
  integration: string;
  /**
   * The scopes a call needs, all of them (a grant of fewer refuses the call), or a function of the arguments. A
   * function must return a non-empty list; if it throws, the call is refused.
   */
  scopes: readonly string[] | ((args: ToolArguments) => readonly string[]);
  /**
   * The record the call touches: `{ type, id: '<argument>' }`, or a function of the arguments returning
   * `{ type, id }` or `undefined` (no record). Default: none.
   */
  record?: RecordFromArgument | ((args: ToolArguments) => ResourceRef | undefined);
  /**
   * For `tools/list` when `scopes` is a function: the scopes a call needs at least, so the filter can tell whether
   * the agent could ever call it. Without it such a tool is always listed.
   */
  listScopes?: readonly string[];
  /** Token lifetime to ask for, in seconds (the policy's `token_ttl` caps it). Default: the policy's. */
  ttlSeconds?: number;
}

/** What one call asks the PDP for. */
export interface MappedCall {
  integration: string;
  /** Sorted, unique. */
  scopes: string[];
  resource: ResourceRef | undefined;
  ttlSeconds: number | undefined;
}

/** The mapping could not turn the call's arguments into a request: the call is refused. `path` names the argument. */
export class MappingFailed extends Error {
  override readonly name = 'MappingFailed';
  constructor(
    message: string,
    /** The argument (dotted path) at fault, when one is. */
    readonly path: string | null,
  ) {
    super(message);
  }
}

const ID = new RegExp(ID_PATTERN);
const SCOPE = new RegExp(SCOPE_PATTERN);
const MAX_RECORD_ID = 256;
const MAX_SCOPES = 32;

/** A checked, frozen mapping. */
export interface CompiledMapping {
  readonly tool: string;
  readonly declared: McpToolMapping;
  /** Static scopes, sorted (the declared list, or `listScopes`); null when only a function knows them. */
  readonly staticScopes: readonly string[] | null;
  map(args: ToolArguments): MappedCall;
}

/** Checks one tool's declaration; throws a `TypeError` naming the tool and the field. */
export function compileMapping(tool: string, m: McpToolMapping): CompiledMapping {
  const fail = (field: string, message: string): never => {
    throw new TypeError(`agent-pdp/mcp: tool "${tool}": ${field} ${message}`);
  };
  if (typeof m !== 'object' || m === null) fail('mapping', 'must be { integration, scopes, record? }');
  if (typeof m.integration !== 'string' || !ID.test(m.integration)) fail('integration', 'must be an integration id');
  if (typeof m.scopes !== 'function') checkScopes(m.scopes, (msg) => fail('scopes', msg));
  if (m.listScopes !== undefined) checkScopes(m.listScopes, (msg) => fail('listScopes', msg));
  const record = m.record;
  if (record !== undefined && typeof record !== 'function') {
    if (typeof record !== 'object' || record === null) fail('record', 'must be { type, id } or a function of the arguments');
    if (typeof record.type !== 'string' || !ID.test(record.type)) fail('record.type', 'must be a record type id');
    if (typeof record.id !== 'string' || !/^[^.]+(\.[^.]+)*$/.test(record.id)) fail('record.id', 'must name an argument (a dotted path for a nested one)');
  }
  if (m.ttlSeconds !== undefined && (!Number.isInteger(m.ttlSeconds) || m.ttlSeconds < 1 || m.ttlSeconds > 86400)) {
    fail('ttlSeconds', 'must be an integer from 1 to 86400');
  }
  const declared = Object.freeze({ ...m });
  const staticScopes = typeof m.scopes === 'function' ? (m.listScopes === undefined ? null : sorted(m.listScopes)) : sorted(m.scopes);
  return Object.freeze({
    tool,
    declared,
    staticScopes,
    map(args: ToolArguments): MappedCall {
      return {
        integration: m.integration,
        scopes: typeof m.scopes === 'function' ? derivedScopes(m.scopes, args) : sorted(m.scopes),
        resource: recordOf(record, args),
        ttlSeconds: m.ttlSeconds,
      };
    },
  });
}

function checkScopes(scopes: unknown, fail: (message: string) => never): void {
  if (!Array.isArray(scopes) || scopes.length === 0 || scopes.length > MAX_SCOPES) fail(`must be a list of 1 to ${MAX_SCOPES} scopes`);
  for (const s of scopes as unknown[]) {
    if (typeof s !== 'string' || !SCOPE.test(s)) fail(`holds ${JSON.stringify(s)}, which is not a scope`);
  }
}

function derivedScopes(derive: (args: ToolArguments) => readonly string[], args: ToolArguments): string[] {
  let scopes: readonly string[];
  try {
    scopes = derive(args);
  } catch (err) {
    throw new MappingFailed(`the scopes could not be derived from the arguments${authorsMessage(err)}`, err instanceof MappingFailed ? err.path : null);
  }
  checkScopes(scopes, (message) => {
    throw new MappingFailed(`the derived scopes ${message}`, null);
  });
  return sorted(scopes);
}

function recordOf(record: McpToolMapping['record'], args: ToolArguments): ResourceRef | undefined {
  if (record === undefined) return undefined;
  if (typeof record === 'function') {
    let ref: ResourceRef | undefined;
    try {
      ref = record(args);
    } catch (err) {
      throw new MappingFailed(`the record could not be derived from the arguments${authorsMessage(err)}`, err instanceof MappingFailed ? err.path : null);
    }
    if (ref === undefined) return undefined;
    if (typeof ref !== 'object' || ref === null || typeof ref.type !== 'string' || !ID.test(ref.type)) {
      throw new MappingFailed('the derived record has no valid type', null);
    }
    return { type: ref.type, id: recordId(ref.id, 'record.id') };
  }
  return { type: record.type, id: recordId(argumentAt(args, record.id), record.id) };
}

/** The value at a dotted path of plain (own, non-prototype) properties; undefined when any step is missing. */
function argumentAt(args: ToolArguments, path: string): unknown {
  let value: unknown = args;
  for (const key of path.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/** A record id is exact text: a non-empty string (≤ 256), or a safe integer in its decimal form. Nothing else. */
function recordId(value: unknown, path: string): string {
  if (typeof value === 'string' && value !== '' && value.length <= MAX_RECORD_ID) return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  const what = value === undefined ? 'is missing' : typeof value === 'string' ? `must be 1 to ${MAX_RECORD_ID} characters` : `must be a string or an integer, not ${value === null ? 'null' : typeof value}`;
  throw new MappingFailed(`argument ${path} ${what}`, path);
}

function sorted(scopes: readonly string[]): string[] {
  return [...new Set(scopes)].sort();
}

/**
 * What a mapping function's failure tells the client: the message of a `MappingFailed` it threw on purpose (written
 * for the model); of anything else, nothing (an internal error's text is not for the client).
 */
function authorsMessage(err: unknown): string {
  return err instanceof MappingFailed ? `: ${err.message}` : '';
}
