/*
 * Editing one policy file the way a person would: only the lines of the change move, every other byte (comments,
 * blank lines, quoting, flow or block style, indentation) stays as it was.
 *
 * The `yaml` Document API says what the edit means (`seq.delete`, `doc.deleteIn`, `doc.setIn` on the parsed file);
 * its `toString()` would re-print the whole file (`[ a, b ]` spacing, one space before comments), so the text is
 * changed at the source ranges of the nodes concerned instead, and the result is checked: parsed again, it must
 * hold exactly what the Document API's edit holds. Anything the splice cannot do faithfully (a flow map to grow,
 * aliases) is refused as an {@link EditError}, never guessed.
 */
import { isMap, isScalar, isSeq, parseDocument, stringify, visit, type Document, type Node, type Pair, type YAMLMap, type YAMLSeq } from 'yaml';

/** A value an edit writes: a scalar, a list of scalars (written in flow style), or a map (written in block style). */
export type YamlValue = string | number | boolean | readonly string[] | { readonly [key: string]: YamlValue };

/** One edit of a policy file; paths are map keys from the document's root (`['agent_policy', 'token_ttl']`). */
export type YamlEdit =
  /** Remove the item equal to `value` from the list at `path`. */
  | { op: 'remove_item'; path: string[]; value: string }
  /** Remove the key at `path` (its last segment) from its map. */
  | { op: 'remove_key'; path: string[] }
  /**
   * Set the value at `path`, creating the missing maps on the way. `durationComment`: when the value is a scalar
   * followed on its line by a comment that reads as a duration (`token_ttl: 3600  # 1 hour`), that comment becomes
   * this text, so it does not go on describing the old value.
   */
  | { op: 'set'; path: string[]; value: YamlValue; durationComment?: string };

/** An edit that cannot be made to this text faithfully (or names what is not there). */
export class EditError extends Error {
  override readonly name = 'EditError';
}

/** `text` with `edits` made in order. Throws {@link EditError}; never returns a text that means anything else. */
export function editYaml(text: string, edits: readonly YamlEdit[]): string {
  let out = text;
  for (const edit of edits) out = editOnce(out, edit);
  const expected = parse(text);
  for (const edit of edits) editDocument(expected, edit);
  if (sortedJson(parse(out).toJS()) !== sortedJson(expected.toJS())) {
    throw new EditError('the edited text does not read back as the edit: not written');
  }
  return out;
}

/** The edit, made with the Document API: what the text must mean afterwards. */
function editDocument(doc: Document, edit: YamlEdit): void {
  if (edit.op === 'remove_item') {
    const seq = doc.getIn(edit.path, true);
    if (!isSeq(seq)) throw new EditError(`${edit.path.join('.')} is not a list`);
    seq.delete(indexOf(seq, edit.value, edit.path));
  } else if (edit.op === 'remove_key') {
    if (!doc.hasIn(edit.path)) throw new EditError(`${edit.path.join('.')} is not there`);
    doc.deleteIn(edit.path);
  } else {
    doc.setIn(edit.path, doc.createNode(edit.value));
  }
}

function editOnce(text: string, edit: YamlEdit): string {
  const doc = parse(text);
  if (edit.op === 'remove_item') return removeItem(text, doc, edit.path, edit.value);
  if (edit.op === 'remove_key') return removeKey(text, doc, edit.path);
  return setValue(text, doc, edit.path, edit.value, edit.durationComment);
}

function parse(text: string): Document {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) throw new EditError(`the file is not valid YAML: ${doc.errors[0]?.message.split('\n', 1)[0] ?? ''}`);
  let alias = false;
  visit(doc, { Alias: () => ((alias = true), visit.BREAK) });
  if (alias) throw new EditError('the file uses YAML aliases: edit it by hand');
  return doc;
}

// ---- the three edits, as splices of the text ---------------------------------------------------------------------

function removeItem(text: string, doc: Document, path: readonly string[], value: string): string {
  const seq = doc.getIn(path, true);
  if (!isSeq(seq)) throw new EditError(`${path.join('.')} is not a list`);
  const items = seq.items as Node[];
  const i = indexOf(seq, value, path);
  const item = rangeOf(items[i]);
  if (items.length === 1) return replaceValue(text, doc, path, '[]');
  if (seq.flow) {
    // `[a, b, c]`: the item and the separator before it (after it, for the first), nothing else.
    return i > 0 ? splice(text, rangeOf(items[i - 1])[1], item[1], '') : splice(text, item[0], rangeOf(items[i + 1])[0], '');
  }
  const start = lineStart(text, item[0]);
  if (!/^[ \t]*-[ \t]+$/.test(text.slice(start, item[0]))) throw new EditError(`${path.join('.')}: a list item shares its line with something else`);
  return splice(text, start, lineEndAfter(text, item[1]), '');
}

function removeKey(text: string, doc: Document, path: readonly string[]): string {
  const parentPath = path.slice(0, -1);
  const map = parentPath.length === 0 ? doc.contents : doc.getIn(parentPath, true);
  if (!isMap(map)) throw new EditError(`${parentPath.join('.')} is not a map`);
  const pairs = map.items as Array<Pair<Node, Node | null>>;
  const i = pairs.findIndex((p) => keyOf(p) === path[path.length - 1]);
  const pair = pairs[i];
  if (pair === undefined) throw new EditError(`${path.join('.')} is not there`);
  if (pairs.length === 1) {
    if (parentPath.length === 0) throw new EditError('the file would be empty');
    return replaceValue(text, doc, parentPath, '{}');
  }
  const start = rangeOf(pair.key)[0];
  const end = pair.value === null ? rangeOf(pair.key)[1] : rangeOf(pair.value)[1];
  if (map.flow) {
    return i > 0 ? splice(text, pairEnd(pairs[i - 1]), end, '') : splice(text, start, rangeOf((pairs[i + 1] as Pair<Node, Node | null>).key)[0], '');
  }
  const from = lineStart(text, start);
  if (text.slice(from, start).trim() !== '') throw new EditError(`${path.join('.')}: the key shares its line with something else`);
  return splice(text, from, lineEndAfter(text, end), '');
}

/** A line comment that states a duration (`# 1 hour`, `# 30 min`, `# 90 s`, `# 2 days, for the batch`). */
const DURATION_COMMENT = /^([ \t]+#[ \t]*)\d+(?:\.\d+)?[ \t]*(?:s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?)\b[^\n]*/i;

function setValue(text: string, doc: Document, path: readonly string[], value: YamlValue, durationComment?: string): string {
  const node = doc.getIn(path, true) as Node | undefined;
  if (node !== undefined && node !== null) {
    if (isPlainObject(value)) {
      // A whole map: the pair is written again, in block style, where it was.
      const pair = pairAt(doc, path);
      const from = lineStart(text, rangeOf(pair.key)[0]);
      const indent = rangeOf(pair.key)[0] - from;
      return splice(text, from, lineEndAfter(text, rangeOf(node)[1]), blockPair(path[path.length - 1] as string, value, indent, indentStep(text, doc), flowPadding(text, doc)));
    }
    const inline = inlineValue(value, isSeq(node) && node.flow ? text[rangeOf(node)[0] + 1] === ' ' : flowPadding(text, doc));
    if (isScalar(node) || ((isSeq(node) || isMap(node)) && node.flow)) {
      const [start, end] = rangeOf(node);
      const comment = durationComment === undefined || !isScalar(node) ? null : DURATION_COMMENT.exec(text.slice(end, lineEndAfter(text, end)));
      if (comment !== null) return splice(text, start, end + comment[0].length, `${inline}${comment[1] as string}${durationComment as string}`);
      return splice(text, start, end, inline);
    }
    return replaceValue(text, doc, path, inline);
  }
  // Missing: the deepest map on the way gets the rest of the path as one new block pair at its end.
  let depth = path.length - 1;
  while (depth > 0 && !doc.hasIn(path.slice(0, depth))) depth--;
  const parent = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
  if (!isMap(parent) || parent.flow || parent.items.length === 0) throw new EditError(`${path.slice(0, depth).join('.') || 'the document'} is not a block map to add ${path[depth] ?? ''} to`);
  let rest: YamlValue = value;
  for (let i = path.length - 1; i > depth; i--) rest = { [path[i] as string]: rest };
  const firstKey = rangeOf((parent.items[0] as Pair<Node, Node | null>).key)[0];
  const indent = firstKey - lineStart(text, firstKey);
  const at = rangeOf(parent)[1];
  const lead = at > 0 && text[at - 1] !== '\n' ? '\n' : '';
  return splice(text, at, at, lead + blockPair(path[depth] as string, rest, indent, indentStep(text, doc), flowPadding(text, doc)));
}

/** The value of the pair at `path` replaced by `inline` on the key's line (`key: []`), whatever its style was. */
function replaceValue(text: string, doc: Document, path: readonly string[], inline: string): string {
  const pair = pairAt(doc, path);
  const keyEnd = rangeOf(pair.key)[1];
  const valueEnd = pair.value === null ? keyEnd : rangeOf(pair.value)[1];
  const colon = text.indexOf(':', keyEnd);
  if (colon < 0) throw new EditError(`${path.join('.')}: no ':' after the key`);
  if (text.slice(keyEnd, colon).trim() !== '') throw new EditError(`${path.join('.')}: unexpected text between the key and ':'`);
  // The same line's end if the value was on it (a comment after it stays), else the end of the value's last line.
  const sameLine = !text.slice(colon, valueEnd).includes('\n');
  return sameLine ? splice(text, colon + 1, valueEnd, ` ${inline}`) : splice(text, colon + 1, lineEndAfter(text, valueEnd), ` ${inline}\n`);
}

// ---- rendering -------------------------------------------------------------------------------------------------

function blockPair(key: string, value: YamlValue, indent: number, step: number, padded: boolean): string {
  const pad = ' '.repeat(indent);
  if (!isPlainObject(value)) return `${pad}${scalar(key)}: ${inlineValue(value, padded)}\n`;
  const children = Object.entries(value).map(([k, v]) => blockPair(k, v, indent + step, step, padded));
  return children.length === 0 ? `${pad}${scalar(key)}: {}\n` : `${pad}${scalar(key)}:\n${children.join('')}`;
}

function inlineValue(value: YamlValue, padded: boolean): string {
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    const inner = value.map((v) => scalar(v)).join(', ');
    return padded ? `[ ${inner} ]` : `[${inner}]`;
  }
  if (isPlainObject(value)) throw new EditError('a map is written in block style');
  return scalar(value as string | number | boolean);
}

/** A scalar as the `yaml` package writes it, quoted when a plain one would read as something else. */
function scalar(value: string | number | boolean): string {
  return stringify(value, { lineWidth: 0 }).trimEnd();
}

// ---- reading the source -----------------------------------------------------------------------------------------

function indexOf(seq: YAMLSeq, value: string, path: readonly string[]): number {
  const i = (seq.items as unknown[]).findIndex((item) => isScalar(item) && String(item.value) === value);
  if (i < 0) throw new EditError(`${path.join('.')} does not list ${value}`);
  return i;
}

function pairAt(doc: Document, path: readonly string[]): Pair<Node, Node | null> {
  const parentPath = path.slice(0, -1);
  const map = parentPath.length === 0 ? doc.contents : doc.getIn(parentPath, true);
  if (!isMap(map)) throw new EditError(`${parentPath.join('.')} is not a map`);
  const pair = (map as YAMLMap<Node, Node | null>).items.find((p) => keyOf(p) === path[path.length - 1]);
  if (pair === undefined) throw new EditError(`${path.join('.')} is not there`);
  return pair;
}

function keyOf(pair: Pair<unknown, unknown>): string | undefined {
  return isScalar(pair.key) ? String(pair.key.value) : undefined;
}

function rangeOf(node: unknown): [number, number] {
  const range = (node as Node | null | undefined)?.range;
  if (range === undefined || range === null) throw new EditError('a node without a source position');
  return [range[0], range[1]];
}

function pairEnd(pair: Pair<Node, Node | null> | undefined): number {
  if (pair === undefined) throw new EditError('no such pair');
  return pair.value === null ? rangeOf(pair.key)[1] : rangeOf(pair.value)[1];
}

const lineStart = (text: string, at: number): number => text.lastIndexOf('\n', at - 1) + 1;

/** Just past the newline that ends the line `end` is on (a block node's range already ends past one). */
function lineEndAfter(text: string, end: number): number {
  if (end > 0 && text[end - 1] === '\n') return end;
  const newline = text.indexOf('\n', end);
  return newline < 0 ? text.length : newline + 1;
}

const splice = (text: string, from: number, to: number, insert: string): string => text.slice(0, from) + insert + text.slice(to);

/** Spaces per nesting level, as the file uses them (2 when it does not say). */
function indentStep(text: string, doc: Document): number {
  const root = doc.contents;
  if (!isMap(root)) return 2;
  for (const pair of root.items as Array<Pair<Node, Node | null>>) {
    if (isMap(pair.value) && !pair.value.flow && pair.value.items.length > 0) {
      const key = rangeOf((pair.value.items[0] as Pair<Node, Node | null>).key)[0];
      const step = key - lineStart(text, key) - (rangeOf(pair.key)[0] - lineStart(text, rangeOf(pair.key)[0]));
      if (step > 0) return step;
    }
  }
  return 2;
}

/** Whether the file writes flow lists `[ a, b ]` (padded) or `[a, b]`: as its first non-empty one does. */
function flowPadding(text: string, doc: Document): boolean {
  let padded = false;
  visit(doc, {
    Seq(_key, seq) {
      if (!seq.flow || seq.items.length === 0 || seq.range === undefined || seq.range === null) return undefined;
      padded = text[seq.range[0] + 1] === ' ';
      return visit.BREAK;
    },
  });
  return padded;
}

function isPlainObject(value: unknown): value is { readonly [key: string]: YamlValue } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** JSON with sorted keys: two documents mean the same when these are equal. */
function sortedJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    isPlainObject(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}
