import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CanonicalJsonError, MAX_DEPTH, RawJson, canonicalJson, sortKeys } from '../../src/audit/index.js';

describe('canonicalJson', () => {
  it.each([
    { note: 'keys sorted, no whitespace', value: { b: 1, a: [true, null], c: { z: 'x', y: 'w' } }, json: '{"a":[true,null],"b":1,"c":{"y":"w","z":"x"}}' },
    { note: 'keys sorted by UTF-16 code units', value: { é: 1, z: 2, Z: 3, '10': 4, '9': 5 }, json: '{"10":4,"9":5,"Z":3,"z":2,"é":1}' },
    { note: 'numbers in shortest form, -0 is 0', value: [1.0, -0, 1e21, 0.1, 100, -1.5e-7], json: '[1,0,1e+21,0.1,100,-1.5e-7]' },
    { note: 'control characters escaped, unicode kept', value: 'a"b\\c\n\u0001é€😀', json: '"a\\"b\\\\c\\n\\u0001é€😀"' },
    { note: 'undefined properties omitted', value: { a: undefined, b: 2 }, json: '{"b":2}' },
    { note: 'null-prototype objects', value: Object.assign(Object.create(null) as object, { b: 1, a: 2 }), json: '{"a":2,"b":1}' },
    { note: 'a "__proto__" own key stays a key', value: JSON.parse('{"__proto__":{"x":1},"a":0}') as unknown, json: '{"__proto__":{"x":1},"a":0}' },
    { note: 'RawJson emitted verbatim', value: { b: new RawJson('{"x":1}'), a: 1 }, json: '{"a":1,"b":{"x":1}}' },
  ])('$note', ({ value, json }) => {
    expect(canonicalJson(value)).toBe(json);
  });

  it('matches the RFC 8785 sample (section 3.2.2)', () => {
    const input =
      '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],' +
      '"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}';
    expect(canonicalJson(JSON.parse(input))).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  const deep: Record<string, unknown> = {};
  let cursor = deep;
  for (let i = 0; i < MAX_DEPTH + 1; i++) cursor = (cursor['n'] = {}) as Record<string, unknown>;
  const cyclic: Record<string, unknown> = {};
  cyclic['self'] = cyclic;

  it.each([
    { note: 'NaN', value: { a: [1, Number.NaN] }, path: '$.a[1]' },
    { note: 'Infinity', value: { a: Number.POSITIVE_INFINITY }, path: '$.a' },
    { note: 'undefined in an array', value: { list: [1, undefined] }, path: '$.list[1]' },
    { note: 'bigint', value: { n: 1n }, path: '$.n' },
    { note: 'function', value: { f: () => 1 }, path: '$.f' },
    { note: 'Date (no toJSON)', value: { at: new Date(0) }, path: '$.at' },
    { note: 'Map', value: [new Map()], path: '$[0]' },
    { note: 'lone surrogate in a value', value: { s: 'a\ud800b' }, path: '$.s' },
    { note: 'lone surrogate in a key', value: { 'k\udc00': 1 }, path: '$["k\\udc00"]' },
    { note: 'undefined at the top', value: undefined, path: '$' },
    { note: 'too deep', value: deep, path: '$' + '.n'.repeat(MAX_DEPTH) },
    { note: 'a cycle', value: cyclic, path: '$' + '.self'.repeat(MAX_DEPTH) },
  ])('refuses $note and says where', ({ value, path }) => {
    expect(() => canonicalJson(value)).toThrow(CanonicalJsonError);
    try {
      canonicalJson(value);
    } catch (error) {
      expect((error as CanonicalJsonError).path).toBe(path);
    }
  });

  it('round-trips any JSON value and does not depend on key order', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const json = canonicalJson(value);
        const parsed: unknown = JSON.parse(json);
        expect(parsed).toEqual(JSON.parse(JSON.stringify(value)));
        expect(canonicalJson(parsed)).toBe(json);
        expect(canonicalJson(reverseKeys(value))).toBe(json);
      }),
    );
  });
});

describe('canonicalJson of frozen values (their texts are kept)', () => {
  const deepFreeze = <T>(value: T): T => {
    if (typeof value === 'object' && value !== null) {
      for (const member of Object.values(value)) deepFreeze(member);
      Object.freeze(value);
    }
    return value;
  };

  it('gives a deeply frozen value the same text as an unfrozen copy, however often it is encoded and wherever', () => {
    const context = deepFreeze({ repo: 'acme/api', n: [3, 1, { b: 'x"y', a: null }] });
    const copy: unknown = JSON.parse(JSON.stringify(context));
    const want = canonicalJson(copy);
    expect(canonicalJson(context)).toBe(want);
    expect(canonicalJson(context)).toBe(want);
    expect(canonicalJson({ task: { context }, z: context })).toBe(canonicalJson({ task: { context: copy }, z: copy }));
  });

  it('does not keep the text of a frozen value with an unfrozen container inside: a change inside shows', () => {
    const inner = { count: 1 };
    const outer = Object.freeze({ inner });
    expect(canonicalJson(outer)).toBe('{"inner":{"count":1}}');
    inner.count = 2;
    expect(canonicalJson(outer)).toBe('{"inner":{"count":2}}');
  });

  it('still refuses a kept value placed where it would nest deeper than the limit', () => {
    const leaf = deepFreeze({ a: { b: 1 } });
    expect(canonicalJson(leaf)).toBe('{"a":{"b":1}}');
    // Two containers in the kept value: at MAX_DEPTH - 2 it fits, one level further it does not.
    let fits: unknown = leaf;
    for (let i = 0; i < MAX_DEPTH - 2; i++) fits = { n: fits };
    expect(() => canonicalJson(fits)).not.toThrow();
    const tooDeep = { n: fits };
    expect(() => canonicalJson(tooDeep)).toThrow(CanonicalJsonError);
  });

  it('refuses a frozen value with no encoding every time, with its path', () => {
    const bad = Object.freeze({ s: 'a\ud800b' });
    for (let i = 0; i < 2; i++) expect(() => canonicalJson({ x: bad })).toThrow(/\$\.x\.s/);
  });
});

describe('sortKeys', () => {
  it('orders keys as the built-in sort does (UTF-16 code units), short lists and long, in place', () => {
    const keyChar = fc.constantFrom('a', 'B', 'z', '0', '9', '_', 'é', '€', '\uD83D\uDE00', '\uFFFF', '\u0000');
    fc.assert(
      fc.property(fc.array(fc.string({ unit: keyChar, maxLength: 4 }), { maxLength: 48 }), (keys) => {
        const mine = [...keys];
        expect(sortKeys(mine)).toBe(mine);
        expect(mine).toEqual([...keys].sort());
      }),
      { numRuns: 500 },
    );
  });
});

function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).reverse()) {
    Object.defineProperty(out, key, { value: reverseKeys((value as Record<string, unknown>)[key]), enumerable: true, writable: true, configurable: true });
  }
  return out;
}
