import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * `JSON.parse` of a large document without holding the event loop: the objects near the root are walked member by
 * member (each member's value parsed by `JSON.parse` on its own bytes), and the walk yields to the event loop every
 * few milliseconds. One JSON.parse of a compiled bundle's 55 MB data document (100,000 agents) held a reloading
 * server for 1.2 s; here no step is longer than one agent's entry.
 *
 * The result is what `JSON.parse(bytes.toString('utf8'))` gives: the same values, the same key order, the last of
 * duplicate keys, `__proto__` as an own key; text that is not JSON throws a SyntaxError. The hooks of
 * {@link PieceOptions} let a caller freeze the result as it is built, spread over the same turns, and leave the
 * members of chosen objects unparsed until they are first read (`deferred`).
 */
export async function parseJsonInPieces(bytes: Buffer, options: PieceOptions = {}): Promise<unknown> {
  const walkDepth = options.walkDepth ?? DEFAULT_WALK_DEPTH;
  const leaf = options.leaf ?? ((): void => undefined);
  const walked = options.walked ?? ((): void => undefined);
  const deferred = options.deferred ?? ((): boolean => false);
  let lastYield = performance.now();
  const parseWhole = (start: number, end: number): unknown => {
    const value: unknown = JSON.parse(bytes.toString('utf8', start, end));
    leaf(value);
    return value;
  };
  /** A getter parsing bytes [start, end) on its first call (`leaf` then applies), the same value after. */
  const deferredValue = (start: number, end: number): (() => unknown) => {
    let parsed = false;
    let value: unknown;
    return () => {
      if (!parsed) {
        value = parseWhole(start, end);
        parsed = true;
      }
      return value;
    };
  };
  const walk = async (start: number, path: readonly string[]): Promise<[unknown, number]> => {
    const out: Record<string, unknown> = {};
    const keys: string[] = [];
    const done = (end: number): [unknown, number] => {
      walked(path, out, keys);
      return [out, end];
    };
    const lazy = deferred(path);
    let i = skipSpace(bytes, start + 1);
    if (bytes[i] === CLOSE_BRACE) return done(i + 1);
    for (;;) {
      if (bytes[i] !== QUOTE) throw notJson(i);
      const keyEnd = stringEnd(bytes, i);
      const key = JSON.parse(bytes.toString('utf8', i, keyEnd)) as string;
      keys.push(key);
      i = skipSpace(bytes, keyEnd);
      if (bytes[i] !== COLON) throw notJson(i);
      i = skipSpace(bytes, i + 1);
      if (lazy) {
        // Checked here as JSON.parse would check it, without building it: a bundle that is not JSON is refused at load.
        const end = checkedValueEnd(bytes, i);
        Object.defineProperty(out, key, { get: deferredValue(i, end), enumerable: true, configurable: true });
        i = end;
      } else {
        let value: unknown;
        if (bytes[i] === OPEN_BRACE && path.length + 1 < walkDepth) {
          [value, i] = await walk(i, [...path, key]);
        } else {
          const end = valueEnd(bytes, i);
          value = parseWhole(i, end);
          i = end;
        }
        // Not `out[key] = value`: a `__proto__` key must stay an own property, as JSON.parse makes it.
        Object.defineProperty(out, key, { value, writable: true, enumerable: true, configurable: true });
      }
      if (performance.now() - lastYield > YIELD_EVERY_MS) {
        await nextTurn();
        lastYield = performance.now();
      }
      i = skipSpace(bytes, i);
      if (bytes[i] === COMMA) {
        i = skipSpace(bytes, i + 1);
        continue;
      }
      if (bytes[i] === CLOSE_BRACE) return done(i + 1);
      throw notJson(i);
    }
  };
  const start = skipSpace(bytes, 0);
  let value: unknown;
  let end: number;
  if (bytes[start] === OPEN_BRACE && walkDepth > 0) {
    [value, end] = await walk(start, []);
  } else {
    end = valueEnd(bytes, start);
    value = parseWhole(start, end);
  }
  if (skipSpace(bytes, end) !== bytes.length) throw notJson(end);
  return value;
}

export interface PieceOptions {
  /** How deep objects are walked member by member (the root is depth 0); below, values are parsed whole. */
  walkDepth?: number;
  /** Called on every value parsed whole. */
  leaf?: (value: unknown) => void;
  /**
   * Called on every walked object once its members are set, with its path and its keys in document order
   * (duplicates included): a caller can give it another prototype or freeze it before its parent holds it.
   */
  walked?: (path: readonly string[], value: Record<string, unknown>, keys: readonly string[]) => void;
  /**
   * Objects (by path) whose members are not built here: each member's bytes are checked against JSON's grammar (a
   * SyntaxError here, as JSON.parse would throw), and the member is an enumerable getter that parses them on its
   * first read (`leaf` applied then) and returns that same value after. The getters keep `bytes`. A document of
   * 100,000 agents is then read in a fraction of the time, and no agent is built before it is asked for.
   */
  deferred?: (path: readonly string[]) => boolean;
}

/** Root, `policies`, `agents`: each agent's entry is then one piece (about 550 bytes). */
const DEFAULT_WALK_DEPTH = 3;
const YIELD_EVERY_MS = 8;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

function notJson(at: number): SyntaxError {
  return new SyntaxError(`not JSON at byte ${at}`);
}

function skipSpace(bytes: Buffer, from: number): number {
  let i = from;
  for (;;) {
    const c = bytes[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
}

/** The index after the string literal starting at `from` (its opening quote). UTF-8 never puts `"` or `\` inside a multi-byte character. */
function stringEnd(bytes: Buffer, from: number): number {
  let i = from + 1;
  for (;;) {
    const quote = bytes.indexOf(QUOTE, i);
    if (quote === -1) throw notJson(from);
    let slashes = 0;
    while (bytes[quote - 1 - slashes] === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return quote + 1;
    i = quote + 1;
  }
}

/**
 * The index after the value starting at `from`, checked against JSON's grammar (RFC 8259) as JSON.parse checks it:
 * structure, string escapes and control characters, numbers, literals. Nothing is built. Bytes that are not UTF-8 are
 * not refused here, as JSON.parse of their decoding (with U+FFFD) does not refuse them.
 */
function checkedValueEnd(bytes: Buffer, from: number): number {
  // An explicit stack of open containers: no recursion, whatever the nesting.
  const open: number[] = [];
  let i = from;
  for (;;) {
    // A value at i.
    i = skipSpace(bytes, i);
    const c = bytes[i];
    if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      open.push(c);
      i = skipSpace(bytes, i + 1);
      if (bytes[i] === (c === OPEN_BRACE ? CLOSE_BRACE : CLOSE_BRACKET)) {
        open.pop();
        i++;
      } else {
        if (c === OPEN_BRACE) i = checkedKey(bytes, i);
        continue;
      }
    } else if (c === QUOTE) {
      i = checkedStringEnd(bytes, i);
    } else if (c === 0x74 /* t */) {
      i = literalEnd(bytes, i, TRUE);
    } else if (c === 0x66 /* f */) {
      i = literalEnd(bytes, i, FALSE);
    } else if (c === 0x6e /* n */) {
      i = literalEnd(bytes, i, NULL);
    } else {
      i = numberEnd(bytes, i);
    }
    // After a value: the end, a comma (another member or item), or closing brackets.
    for (;;) {
      if (open.length === 0) return i;
      i = skipSpace(bytes, i);
      const top = open[open.length - 1];
      if (bytes[i] === COMMA) {
        i = skipSpace(bytes, i + 1);
        if (top === OPEN_BRACE) i = checkedKey(bytes, i);
        break;
      }
      if (bytes[i] !== (top === OPEN_BRACE ? CLOSE_BRACE : CLOSE_BRACKET)) throw notJson(i);
      open.pop();
      i++;
    }
  }
}

/** A member's key and its colon, from the key's opening quote; the index of its value (spaces skipped after). */
function checkedKey(bytes: Buffer, from: number): number {
  if (bytes[from] !== QUOTE) throw notJson(from);
  const i = skipSpace(bytes, checkedStringEnd(bytes, from));
  if (bytes[i] !== COLON) throw notJson(i);
  return i + 1;
}

/** The index after the string starting at `from`: escapes as JSON has them, no control character inside. */
function checkedStringEnd(bytes: Buffer, from: number): number {
  let i = from + 1;
  for (;;) {
    const c = bytes[i];
    if (c === undefined || c < 0x20) throw notJson(i);
    if (c === QUOTE) return i + 1;
    if (c === BACKSLASH) {
      const e = bytes[i + 1];
      if (e === 0x75 /* u */) {
        for (let k = 2; k < 6; k++) if (!isHex(bytes[i + k])) throw notJson(i);
        i += 6;
        continue;
      }
      if (e === undefined || !SIMPLE_ESCAPES.has(e)) throw notJson(i);
      i += 2;
      continue;
    }
    i++;
  }
}

const SIMPLE_ESCAPES = new Set([0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74]);
const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const NULL = Buffer.from('null');

function isHex(c: number | undefined): boolean {
  return c !== undefined && ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66));
}

function isDigit(c: number | undefined): boolean {
  return c !== undefined && c >= 0x30 && c <= 0x39;
}

function literalEnd(bytes: Buffer, from: number, literal: Buffer): number {
  for (let k = 0; k < literal.length; k++) if (bytes[from + k] !== literal[k]) throw notJson(from);
  return from + literal.length;
}

/** `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?` */
function numberEnd(bytes: Buffer, from: number): number {
  let i = from;
  if (bytes[i] === 0x2d /* - */) i++;
  if (bytes[i] === 0x30 /* 0 */) i++;
  else if (isDigit(bytes[i])) while (isDigit(bytes[i])) i++;
  else throw notJson(from);
  if (bytes[i] === 0x2e /* . */) {
    i++;
    if (!isDigit(bytes[i])) throw notJson(i);
    while (isDigit(bytes[i])) i++;
  }
  if (bytes[i] === 0x65 || bytes[i] === 0x45 /* e E */) {
    i++;
    if (bytes[i] === 0x2b || bytes[i] === 0x2d) i++;
    if (!isDigit(bytes[i])) throw notJson(i);
    while (isDigit(bytes[i])) i++;
  }
  return i;
}

/**
 * The index after the value starting at `from`: brackets counted outside strings. Only the extent is found here; the
 * value's own JSON.parse checks its syntax.
 */
function valueEnd(bytes: Buffer, from: number): number {
  const first = bytes[from];
  if (first === QUOTE) return stringEnd(bytes, from);
  if (first !== OPEN_BRACE && first !== OPEN_BRACKET) {
    let i = from;
    for (;;) {
      const c = bytes[i];
      if (c === undefined || c === COMMA || c === CLOSE_BRACE || c === CLOSE_BRACKET || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) break;
      i++;
    }
    if (i === from) throw notJson(from);
    return i;
  }
  let depth = 0;
  let i = from;
  for (;;) {
    const c = bytes[i];
    if (c === undefined) throw notJson(from);
    if (c === QUOTE) {
      i = stringEnd(bytes, i);
      continue;
    }
    if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
    else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
      if (depth === 0) return i + 1;
    }
    i++;
  }
}
