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
        const end = valueEnd(bytes, i);
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
   * Objects (by path) whose members are not parsed here: each member is an enumerable getter that parses its value
   * on its first read (`leaf` applied then) and returns that same value after. Only their extent is found now, so a
   * member that is not JSON throws its SyntaxError when it is read, not here: a caller defers only bytes whose
   * syntax something else checks. The document of 100,000 agents is then found in a fifth of the time, and no
   * agent is built before it is asked for.
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
