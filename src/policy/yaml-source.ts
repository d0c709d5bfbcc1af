import {
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  visit,
  type Document,
  type Node,
  type YAMLError,
} from 'yaml';
import type { ErrorDetail } from '../errors/pdp-error.js';
import type { PathSegment, SourceLocation } from './policy-types.js';

/** One YAML file parsed into plain data, with a way back from a field path to its line and column. */
export interface YamlSource {
  /** Plain JSON-like data; `undefined` when the text has syntax errors. */
  value: unknown;
  /** Syntax errors (the file is unusable) with file, line and column. */
  errors: ErrorDetail[];
  /** Parser warnings (an unknown tag, ...): the file is still usable. */
  warnings: ErrorDetail[];
  locate(path: readonly PathSegment[], key?: boolean): SourceLocation;
}

/** Aliases may not expand a small file into a huge value (the `yaml` package's count of resolved aliases). */
const MAX_ALIAS_COUNT = 100;

/** Default of {@link parseYamlSource}'s `maxEntries`. */
export const DEFAULT_MAX_ENTRIES = 10_000;

/**
 * `maxEntries` bounds the map entries plus list items of the document, counted at every depth before anything
 * is built from them (an alias counts once; expanding aliases is bounded separately). Default
 * {@link DEFAULT_MAX_ENTRIES}.
 */
export function parseYamlSource(text: string, file: string, maxEntries = DEFAULT_MAX_ENTRIES): YamlSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number): SourceLocation => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const detail = (e: YAMLError): ErrorDetail => ({ file, ...at(e.pos[0]), path: '', message: describe(e, text) });
  const errors = doc.errors.map(detail);
  const warnings = doc.warnings.map(detail);
  const locate = (path: readonly PathSegment[], key = false): SourceLocation => at(offsetOf(doc, path, key));
  if (errors.length > 0) return { value: undefined, errors, warnings, locate };
  const entries = countEntries(doc, maxEntries);
  if (entries > maxEntries) {
    const message = `holds more than ${maxEntries} map entries and list items (policy.max_entries_per_file): not loaded`;
    return { value: undefined, errors: [{ file, line: 1, column: 1, path: '', message }], warnings, locate };
  }
  try {
    return { value: doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }), errors, warnings, locate };
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause);
    return { value: undefined, errors: [{ file, line: 1, column: 1, path: '', message }], warnings, locate };
  }
}

/** Map entries plus list items at every depth; stops counting once past `max`. */
function countEntries(doc: Document, max: number): number {
  let count = 0;
  visit(doc, {
    Collection(_key, node) {
      count += node.items.length;
      return count > max ? visit.BREAK : undefined;
    },
  });
  return count;
}

/** Start offset of the node at `path` (or of its key), else of the deepest ancestor found; 0 for an empty file. */
function offsetOf(doc: Document, path: readonly PathSegment[], key: boolean): number {
  let node: unknown = doc.contents;
  let offset = startOf(node) ?? 0;
  for (const [i, segment] of path.entries()) {
    if (isAlias(node)) node = node.resolve(doc);
    let keyNode: unknown;
    let next: unknown;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && String(isScalar(p.key) ? p.key.value : p.key) === String(segment));
      keyNode = pair?.key;
      next = pair?.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      next = node.items[segment];
    }
    const last = i === path.length - 1;
    const target = last && key && keyNode !== undefined ? keyNode : next;
    const found = startOf(target) ?? startOf(keyNode);
    if (found === undefined) break;
    offset = found;
    node = next;
  }
  return offset;
}

function startOf(node: unknown): number | undefined {
  return (node as Node | undefined)?.range?.[0];
}

function describe(e: YAMLError, text: string): string {
  if (e.code === 'MULTIPLE_DOCS') return 'a policy file holds one YAML document: split this file where it says ---';
  if (e.code === 'DUPLICATE_KEY') {
    // The error is at the repeated key: name it (its text up to the `:` that ends it, at most 128 characters).
    const key = (/^("[^"\n]*"|'[^'\n]*'|[^:\n]*)/.exec(text.slice(e.pos[0], e.pos[0] + 130))?.[1] ?? '').trim().slice(0, 128);
    return key === '' ? 'a key appears twice in one map (YAML map keys must be unique)' : `key ${JSON.stringify(key)} appears twice in one map (YAML map keys must be unique)`;
  }
  return e.message.split('\n', 1)[0] ?? e.message;
}
