import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseJsonInPieces } from '../../src/policy/json-in-pieces.js';
import { readTarGz, TarFormatError } from '../../src/policy/tar-reader.js';
import { GunzipFailed, readTarGzStreaming } from '../../src/policy/tar-stream.js';
import { writeTarGz } from '../../src/policy/tar-writer.js';

/** The pieces of a large document's load (`json-in-pieces.ts`, `tar-stream.ts`) give what the one-call versions give. */
describe('JSON parsed in pieces', () => {
  const documents = [
    '{"policies":{"agents":{"a":{"ttl":1,"s":["x","y"]},"b":{"n":null,"t":true,"f":false}},"integrations":{}}}',
    ' \n\t{ "policies" : { "agents" : { "é\\u00e9\\"q\\\\" : { "k" : [ 1.5e3 , -0 , "}]{[" ] } } , "other" : 2 } } \r\n',
    '{"__proto__":{"polluted":true},"policies":{"__proto__":{"agents":1},"agents":{"__proto__":{"x":1},"constructor":{}}}}',
    '{"a":{"b":{"c":1,"c":2,"d":{}}},"a":{"b":{"z":[]}},"10":1,"2":{"1":{"0":0}}}',
    '[1,{"a":2}]',
    '"just a string"',
    '  42 ',
    '{}',
    '{"a":{}}',
  ];
  it.each(documents)('%s', async (text) => {
    const parsed = await parseJsonInPieces(Buffer.from(text));
    const expected: unknown = JSON.parse(text);
    expect(shape(parsed)).toEqual(shape(expected));
    expect(JSON.stringify(parsed)).toBe(JSON.stringify(expected));
  });

  it.each([
    '',
    '{',
    '{"a":1,}',
    '{"a" 1}',
    '{"a":1} x',
    '{"a":{"b":[}]}}',
    '{"a":{"b":1}',
    '{"a":{"b":tru}}',
    "{'a':1}",
    '{"a":1}}',
  ])('refuses %j as JSON.parse does', async (text) => {
    expect(() => JSON.parse(text)).toThrow(SyntaxError);
    await expect(parseJsonInPieces(Buffer.from(text))).rejects.toThrow(SyntaxError);
  });

  it('calls its hooks on every leaf and every walked object, keys in document order', async () => {
    const leaves: unknown[] = [];
    const walked: string[] = [];
    await parseJsonInPieces(Buffer.from('{"p":{"b":{"x":1},"a":{"y":2},"b":3}}'), {
      walkDepth: 2,
      leaf: (v) => leaves.push(v),
      walked: (path, _v, keys) => walked.push(`${path.join('.')}:${keys.join(',')}`),
    });
    expect(leaves).toEqual([{ x: 1 }, { y: 2 }, 3]);
    expect(walked).toEqual(['p:b,a,b', ':p']);
  });

  describe('deferred members', () => {
    const agents = (path: readonly string[]): boolean => path.join('.') === 'policies.agents';

    it.each(documents.filter((t) => t.trimStart().startsWith('{')))('%s reads back as JSON.parse gives it', async (text) => {
      const parsed = await parseJsonInPieces(Buffer.from(text), { deferred: agents });
      expect(JSON.stringify(parsed)).toBe(JSON.stringify(JSON.parse(text)));
    });

    it('parses a member on its first read only (the leaf hook then), and gives the same value after', async () => {
      const leaves: unknown[] = [];
      const text = '{"policies":{"agents":{"b":{"x":[1]},"a":{"y":2},"b":{"x":[3]}},"integrations":{"g":{}}}}';
      const parsed = (await parseJsonInPieces(Buffer.from(text), { deferred: agents, leaf: (v) => leaves.push(v) })) as {
        policies: { agents: Record<string, unknown> };
      };
      expect(leaves).toEqual([{}]); // integrations.g: the only member parsed
      const map = parsed.policies.agents;
      expect(Object.keys(map)).toEqual(['b', 'a']); // document order, the last of a duplicate key
      expect(Object.hasOwn(map, 'a') && !Object.hasOwn(map, 'c')).toBe(true);
      expect(leaves).toHaveLength(1); // keys and presence read nothing
      const b = map['b'];
      expect(b).toEqual({ x: [3] });
      expect(map['b']).toBe(b);
      expect(leaves).toEqual([{}, { x: [3] }]);
      expect(Object.getOwnPropertyDescriptor(map, 'a')?.get).toBeTypeOf('function');
    });

    // What OPA's WASM parser takes and JSON.parse refuses, among others: a deferred member is checked as JSON.parse
    // checks it, at load, though it is built later.
    const values = [
      '{"y":tru}', '[1 2]', '[1,]', '{"a":1,}', '{1:2}', '1.', '1.e5', '01', '-', '+1', '.5', '1e', '1e+', '"\\u12"', '"\\x"',
      '"a\u0001"', '"tab\there"', 'nul', 'truex', '[', '{"a"}', '{"a":}', '[,1]', '"\\ud800"', '-0', '0.5e-3', '1E+2',
      '"é\\/\\"\\b\\f\\n\\r\\t\\u00e9"', ' [ 1 , { "a" : [ ] } , "x" , null , true , false ] ', '{"a":{"b":{"c":[[[]]]}}}', '"\u007f"', '123456789012345678901234567890',
    ];
    it.each(values)('a deferred %j: refused at load exactly when JSON.parse refuses it, and read back as it reads it', async (value) => {
      const text = `{"policies":{"agents":{"a":${value},"b":{}}}}`;
      let expected: unknown;
      let valid = true;
      try {
        expected = (JSON.parse(text) as { policies: { agents: Record<string, unknown> } }).policies.agents['a'];
      } catch {
        valid = false;
      }
      const parsing = parseJsonInPieces(Buffer.from(text), { deferred: agents });
      if (!valid) return expect(parsing).rejects.toThrow(SyntaxError);
      const parsed = (await parsing) as { policies: { agents: Record<string, unknown> } };
      expect(parsed.policies.agents['a']).toEqual(expected);
    });

    it('agrees with JSON.parse on 3,000 documents with one byte changed', async () => {
      const base = Buffer.from('{"policies":{"agents":{"a":{"ttl":-1.5e3,"s":["x\\"y","\\u00e9"],"n":null,"t":true,"f":false,"o":{}},"b":[0,{"k":[]}]}}}');
      const alphabet = Buffer.from('{}[],:"\\-+.eE0123456789tfnulrsa \t\n\u0001');
      let seed = 17;
      const random = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2147483648) % n);
      for (let k = 0; k < 3000; k++) {
        const bytes = Buffer.from(base);
        bytes[22 + random(bytes.length - 26)] = alphabet[random(alphabet.length)] as number;
        let expected: unknown;
        let valid = true;
        try {
          expected = JSON.parse(bytes.toString('utf8'));
        } catch {
          valid = false;
        }
        let got: unknown;
        let accepted = true;
        try {
          got = JSON.parse(JSON.stringify(await parseJsonInPieces(bytes, { deferred: agents })));
        } catch {
          accepted = false;
        }
        expect(accepted, bytes.toString('utf8')).toBe(valid);
        if (valid) expect(got).toEqual(JSON.parse(JSON.stringify(expected)));
      }
    });
  });
});

describe('tar.gz unpacked as a stream', () => {
  const files = [
    { path: 'a.txt', content: Buffer.from('hello') },
    { path: 'empty', content: Buffer.alloc(0) },
    { path: 'dir/exactly-a-block', content: Buffer.alloc(512, 1) },
    { path: 'big.bin', content: Buffer.alloc(3 * 1024 * 1024 + 17, 7) },
  ];
  it('reads the same files as readTarGz, from our writer and from opa build', async () => {
    for (const gz of [writeTarGz(files), readFileSync('opa-bundle/bundle.tar.gz')]) {
      const summary = (entries: { path: string; content: Buffer }[]) => entries.map((e) => `${e.path} ${e.content.length} ${createHash('sha256').update(e.content).digest('hex')}`);
      expect(summary(await readTarGzStreaming(gz, 64 * 1024 * 1024))).toEqual(summary(readTarGz(gz)));
    }
  });

  it('refuses as readTarGz does: not gzip, over the limit, a bad header, a truncated entry', async () => {
    const gz = writeTarGz(files);
    await expect(readTarGzStreaming(Buffer.from('plain text'), 1e6)).rejects.toBeInstanceOf(GunzipFailed);
    await expect(readTarGzStreaming(gz, 1024 * 1024)).rejects.toBeInstanceOf(GunzipFailed);
    const corrupt = gzipSync(Buffer.alloc(512, 7));
    const message = (f: () => unknown): string => {
      try {
        f();
      } catch (err) {
        return (err as Error).message;
      }
      return 'no error';
    };
    await expect(readTarGzStreaming(corrupt, 1e6)).rejects.toThrow(message(() => readTarGz(corrupt)));
    // Cut inside big.bin, whose header is the fourth (at 2560).
    const tar = gzipSync(gunzipSync(gz).subarray(0, 3072 + 1000));
    expect(() => readTarGz(tar)).toThrow(TarFormatError);
    const streamed = readTarGzStreaming(tar, 1e6);
    await expect(streamed).rejects.toBeInstanceOf(TarFormatError);
    await expect(streamed).rejects.toThrow(message(() => readTarGz(tar)));
  });
});

/** What a value is made of, prototypes and own keys in order included (`toStrictEqual` misreads an own `constructor` key). */
function shape(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  const proto = Object.getPrototypeOf(value) as unknown;
  return {
    proto: proto === Object.prototype ? 'Object' : proto === Array.prototype ? 'Array' : String(proto),
    own: Reflect.ownKeys(value).map((key) => {
      const d = Object.getOwnPropertyDescriptor(value, key) as PropertyDescriptor;
      return [String(key), d.enumerable, d.writable, d.configurable, shape(d.value)];
    }),
  };
}
