import type { CompiledEndpoint, CompiledEndpointMap, IdPart } from '../policy/policy-types.js';
import { resourceSchema } from '../wire/decision-v1.js';
import type { ResourceRef } from '../wire/evaluation-v1.js';

/*
 * What a proxied call is: which endpoint map entry a method and raw path match (so which scope the call needs),
 * and which record it touches. Pure functions, no I/O. The rule throughout: refuse whatever two parsers could read
 * two ways, so the upstream acts on exactly what was checked (docs/policy-authoring.md, "Endpoint maps").
 *
 * - A path is matched only in canonical form: no `.`/`..` segment (raw or percent-encoded), no encoded `/` or `\`,
 *   no raw `\`, no empty segment, no control character, valid percent-encoding (UTF-8), no needlessly encoded
 *   letter, digit or `-._~`, no double encoding (`%25XX`). The path forwarded is then the path received.
 * - Literal segments are compared with the raw segment; params are percent-decoded (a decoded param never holds `/`).
 * - A record field read from the query or the body must appear exactly once (also across both: Slack reads either),
 *   and the body it is read from is forwarded as re-serialized from what was parsed.
 */

export type TargetRefusalCode = 'path_not_canonical' | 'endpoint_not_mapped' | 'ambiguous_request' | 'record_missing' | 'body_unreadable';

export type TargetRefusal = { ok: false; status: 400 | 403 | 413; code: TargetRefusalCode; message: string; field?: string };

export type TargetMatch = { ok: true; endpoint: CompiledEndpoint; params: Record<string, string>; upstreamPath: string };

export type RecordResolution = {
  ok: true;
  record: ResourceRef | null;
  /** The body to forward instead of the one received (re-serialized from what was parsed), when the record read it. */
  forwardBody?: Buffer;
  /** The query to forward instead of the one received (re-serialized likewise), when the record read query or body. */
  forwardQuery?: string;
};

/**
 * Field names an upstream reads one way only. Parsers differ on anything else: PHP/Hack-style ones strip leading
 * spaces, cut at NUL and fold `name[]` into `name`; Rack-style ones split on `;`. So when a record is read from the
 * query or the body, every name in them must be plain.
 */
const PLAIN_FIELD = /^[A-Za-z0-9_]+$/;

/** Control and format characters (bidi overrides, NUL): a record id holding one reads differently to people and tools. */
const UNSEEN = /[\p{Cc}\p{Cf}]/u;

/** The longest record id: as `ResourceRef.id` on the wire, so a token can be bound to any id resolved here. */
export const MAX_RECORD_ID_LENGTH: number = resourceSchema.properties.id.maxLength;

/**
 * The entry of `map` that `method` and `rawPath` call. `rawPath`: the path after the `/<integration>` prefix, as
 * received (percent-encoded), without the query. Literal segments win over params and params over `{name+}`, at
 * the first segment where candidates differ. `upstreamPath` is `rawPath` itself (checked canonical).
 */
export function matchTarget(map: CompiledEndpointMap, method: string, rawPath: string): TargetMatch | TargetRefusal {
  const path = canonicalSegments(rawPath);
  if (!path.ok) return path;
  const root = treeOf(map).get(method);
  const endpoint = root === undefined ? undefined : walk(root, path.raw, 0);
  if (endpoint !== undefined) return { ok: true, endpoint, params: paramsOf(endpoint, path.decoded), upstreamPath: rawPath };
  return refuse(403, 'endpoint_not_mapped', `no entry of the ${map.integration} endpoint map matches ${method} on this path`, 'path');
}

/**
 * The record `endpoint` names for this call: its id template filled from the matched `params`, the query
 * (`rawQuery`, without `?`) and the body (only when the record reads it: form-urlencoded or a JSON object).
 * `forwardBody` is set when the body was read: the bytes to forward instead of those received.
 */
export function resolveRecord(
  endpoint: CompiledEndpoint,
  params: Record<string, string>,
  rawQuery: string,
  body: { contentType: string | undefined; bytes: Buffer } | undefined,
): RecordResolution | TargetRefusal {
  const record = endpoint.record;
  if (record === null) return { ok: true, record: null };
  let query: Fields | undefined;
  let forwardQuery: string | undefined;
  if (endpoint.readsQuery.length > 0 || endpoint.readsBody.length > 0) {
    if (/[;#]/.test(rawQuery)) return refuse(400, 'ambiguous_request', 'the query holds `;` or `#`, which upstreams split differently', 'query');
    const parsed = parseUrlEncoded(rawQuery);
    if (parsed === null) return refuse(400, 'ambiguous_request', 'the query is not valid percent-encoded UTF-8', 'query');
    const odd = parsed.pairs.find(([name]) => !PLAIN_FIELD.test(name));
    if (odd !== undefined) return refuse(400, 'ambiguous_request', 'a query field name is not plain (letters, digits, _): upstreams read such names differently', 'query');
    query = parsed.fields;
    forwardQuery = new URLSearchParams(parsed.pairs).toString();
  }
  let read: { fields: Fields; forward: Buffer } | undefined;
  if (endpoint.readsBody.length > 0) {
    if (body === undefined || body.bytes.length === 0) {
      const field = `body.${endpoint.readsBody[0] ?? ''}`;
      return refuse(400, 'record_missing', `the record is read from ${field}, and the request has no body`, field);
    }
    const parsed = readBody(body.contentType, body.bytes);
    if (!parsed.ok) return parsed;
    if ([...parsed.fields.keys()].some((name) => !PLAIN_FIELD.test(name))) {
      return refuse(400, 'ambiguous_request', 'a body field name is not plain (letters, digits, _): upstreams read such names differently', 'body');
    }
    read = parsed;
  }
  let id = '';
  for (const part of record.id) {
    const value = partValue(part, params, query, read?.fields);
    if (typeof value !== 'string') return value;
    if (!('text' in part) && UNSEEN.test(value)) {
      return refuse(400, 'ambiguous_request', 'the record id holds a control or format character', part.from === 'path' ? 'path' : `${part.from}.${part.name}`);
    }
    id += value;
  }
  if (id.length > MAX_RECORD_ID_LENGTH) {
    return refuse(400, 'record_missing', `the record id would be longer than ${MAX_RECORD_ID_LENGTH} characters: no record has such an id`);
  }
  if (UNSEEN.test(id)) return refuse(400, 'ambiguous_request', 'the record id holds a control or format character');
  return {
    ok: true,
    record: { type: record.type, id },
    ...(read === undefined ? {} : { forwardBody: read.forward }),
    ...(forwardQuery === undefined ? {} : { forwardQuery }),
  };
}

// ---- paths ------------------------------------------------------------------------------------------------------

/** Characters a path may hold unencoded: RFC 3986 pchar, and `[ ] ^ |`, which WHATWG URL clients send as they are. */
const RAW_OK = asciiTable("A-Za-z0-9-._~!$&'()*+,;=:@[]^|");
/** Characters that are never percent-encoded in a canonical path. */
const UNRESERVED = asciiTable('A-Za-z0-9-._~');

type Segments = { ok: true; raw: string[]; decoded: string[] };

function canonicalSegments(rawPath: string): Segments | TargetRefusal {
  const notCanonical = (why: string): TargetRefusal => refuse(400, 'path_not_canonical', `the path is not canonical: ${why}`, 'path');
  if (!rawPath.startsWith('/')) return notCanonical('it does not start with /');
  if (rawPath === '/') return { ok: true, raw: [], decoded: [] };
  const raw = rawPath.slice(1).split('/');
  const bad = (i: number, why: string): TargetRefusal => notCanonical(`segment ${i + 1} ${why}`);
  const decoded: string[] = new Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const segment = raw[i] as string;
    if (segment === '') return bad(i, 'is empty (// or a trailing /)');
    const encoded = segment.includes('%');
    const dots = encoded ? segment.replace(/%2e/gi, '.') : segment;
    if (dots === '.' || dots === '..') return bad(i, 'is a dot segment (. or .., raw or percent-encoded)');
    for (let j = 0; j < segment.length; j++) {
      const code = segment.charCodeAt(j);
      if (code === 0x25 /* % */) {
        const byte = hexByte(segment, j + 1);
        if (byte < 0) return bad(i, 'holds a % that starts no percent-encoding');
        if (byte === 0x2f || byte === 0x5c) return bad(i, 'holds an encoded / or \\ (%2F, %5C)');
        if (byte < 0x20 || byte === 0x7f) return bad(i, 'holds an encoded control character');
        if (UNRESERVED[byte] === 1) return bad(i, 'percent-encodes a letter, digit or -._~');
        if (byte === 0x25 && hexByte(segment, j + 3) >= 0) return bad(i, 'is percent-encoded twice (%25XX)');
        j += 2;
        continue;
      }
      if (code < 0x20 || code === 0x7f) return bad(i, 'holds a control character');
      if (code === 0x5c /* \\ */) return bad(i, 'holds a backslash');
      if (code >= 0x80 || RAW_OK[code] !== 1) return bad(i, 'holds a character that must be percent-encoded');
    }
    if (!encoded) decoded[i] = segment;
    else {
      try {
        decoded[i] = decodeURIComponent(segment);
      } catch {
        return bad(i, 'holds percent-encoding that is not UTF-8');
      }
    }
  }
  return { ok: true, raw, decoded };
}

/** The byte `%XX` at `at` encodes (two hex digits), or -1. */
function hexByte(text: string, at: number): number {
  if (at + 2 > text.length) return -1;
  const hi = hexDigit(text.charCodeAt(at));
  const lo = hexDigit(text.charCodeAt(at + 1));
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

function hexDigit(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x37;
  if (code >= 0x61 && code <= 0x66) return code - 0x57;
  return -1;
}

/** 1 at the ASCII codes of `spec` (characters and `a-z` ranges; a `-` at the edges or after a range is itself). */
function asciiTable(spec: string): Uint8Array {
  const table = new Uint8Array(128);
  for (let i = 0; i < spec.length; i++) {
    const from = spec.charCodeAt(i);
    if (spec[i + 1] === '-' && i + 2 < spec.length) {
      for (let c = from; c <= spec.charCodeAt(i + 2); c++) table[c] = 1;
      i += 2;
    } else table[from] = 1;
  }
  return table;
}

/*
 * The map as one tree per method, built once per (frozen) map: a node per template prefix, its children by literal
 * segment, one param child (whatever the param's name) and the entries whose last segment is a rest param. A path
 * is matched in one walk that tries, at each segment, the literal child, then the param child, then a rest param:
 * the first entry reached is the one the rule "literal over param over {name+}, at the first segment where
 * candidates differ" picks (two entries of one shape are refused by the compiler, so there are no ties).
 */
interface Node {
  literals: Map<string, Node> | undefined;
  param: Node | undefined;
  /** The entry whose template ends with a rest param here (it takes this segment and every one after). */
  rest: CompiledEndpoint | undefined;
  /** The entry whose template ends here. */
  end: CompiledEndpoint | undefined;
}

const trees = new WeakMap<CompiledEndpointMap, Map<string, Node>>();

function treeOf(map: CompiledEndpointMap): Map<string, Node> {
  let tree = trees.get(map);
  if (tree === undefined) {
    tree = new Map();
    for (const endpoint of map.endpoints) {
      let root = tree.get(endpoint.method);
      if (root === undefined) tree.set(endpoint.method, (root = newNode()));
      insert(root, endpoint);
    }
    trees.set(map, tree);
  }
  return tree;
}

function newNode(): Node {
  return { literals: undefined, param: undefined, rest: undefined, end: undefined };
}

/** Adds `endpoint`; the first of two entries of one shape keeps its place (the compiler refuses the second). */
function insert(root: Node, endpoint: CompiledEndpoint): void {
  let node = root;
  for (const s of endpoint.segments) {
    if ('literal' in s) {
      node.literals ??= new Map();
      let next = node.literals.get(s.literal);
      if (next === undefined) node.literals.set(s.literal, (next = newNode()));
      node = next;
    } else if (s.rest) {
      node.rest ??= endpoint;
      return;
    } else node = node.param ??= newNode();
  }
  node.end ??= endpoint;
}

function walk(node: Node, raw: readonly string[], i: number): CompiledEndpoint | undefined {
  if (i === raw.length) return node.end;
  const literal = node.literals?.get(raw[i] as string);
  const viaLiteral = literal === undefined ? undefined : walk(literal, raw, i + 1);
  if (viaLiteral !== undefined) return viaLiteral;
  const viaParam = node.param === undefined ? undefined : walk(node.param, raw, i + 1);
  return viaParam ?? node.rest;
}

/** The params of the matched `endpoint`, percent-decoded (a rest param: its segments joined with `/`). */
function paramsOf(endpoint: CompiledEndpoint, decoded: readonly string[]): Record<string, string> {
  const params: Record<string, string> = Object.create(null) as Record<string, string>;
  const segments = endpoint.segments;
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i] as CompiledEndpoint['segments'][number];
    if ('literal' in s) continue;
    if (s.rest) {
      params[s.param] = decoded.slice(i).join('/');
      break;
    }
    params[s.param] = decoded[i] as string;
  }
  return params;
}

// ---- query and body fields --------------------------------------------------------------------------------------

/** Field name → every value it was given, in order. JSON values as parsed. */
type Fields = Map<string, unknown[]>;

function partValue(part: IdPart, params: Record<string, string>, query: Fields | undefined, body: Fields | undefined): string | TargetRefusal {
  if ('text' in part) return part.text;
  if (part.from === 'path') {
    const value = Object.hasOwn(params, part.name) ? params[part.name] : undefined;
    return value ?? refuse(400, 'record_missing', `the path has no {${part.name}}`, 'path');
  }
  const field = `${part.from}.${part.name}`;
  const values = (part.from === 'query' ? query : body)?.get(part.name) ?? [];
  if (part.from === 'body' && (query?.get(part.name)?.length ?? 0) > 0) {
    return refuse(400, 'ambiguous_request', `${part.name} is in both the query and the body: send it once`, field);
  }
  if (values.length > 1) return refuse(400, 'ambiguous_request', `${field} appears ${values.length} times: the record must be named once`, field);
  const value = values[0];
  if (value === undefined || value === null || value === '') return refuse(400, 'record_missing', `the record is read from ${field}, which is absent or empty`, field);
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  return refuse(400, 'record_missing', `${field} is not a string or a number, so it names no record`, field);
}

/** `a=1&b=x+y` → its pairs in order, and fields; `+` is a space; `null` on percent-encoding that is invalid or not UTF-8. */
function parseUrlEncoded(text: string): { pairs: [string, string][]; fields: Fields } | null {
  const pairs: [string, string][] = [];
  const fields: Fields = new Map();
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = formDecode(eq < 0 ? pair : pair.slice(0, eq));
    const value = formDecode(eq < 0 ? '' : pair.slice(eq + 1));
    if (name === null || value === null) return null;
    pairs.push([name, value]);
    fields.set(name, [...(fields.get(name) ?? []), value]);
  }
  return { pairs, fields };
}

function formDecode(text: string): string | null {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return null;
  }
}

type BodyRead = { ok: true; fields: Fields; forward: Buffer };

function readBody(contentType: string | undefined, bytes: Buffer): BodyRead | TargetRefusal {
  const unreadable = (why: string): TargetRefusal => refuse(400, 'body_unreadable', `the body cannot be read for its record: ${why}`, 'body');
  const [media = '', ...params] = (contentType ?? '').split(';').map((p) => p.trim());
  const charset = params.map((p) => /^charset\s*=\s*"?([^"]*)"?$/i.exec(p)?.[1]).find((c) => c !== undefined);
  if (charset !== undefined && charset.toLowerCase() !== 'utf-8') return unreadable(`charset ${charset}; only utf-8 is read`);
  const type = media.toLowerCase();
  if (type === 'application/x-www-form-urlencoded') {
    const text = utf8(bytes);
    const form = text === null ? null : parseUrlEncoded(text);
    if (form === null) return unreadable('the form is not valid percent-encoded UTF-8');
    return { ok: true, fields: form.fields, forward: Buffer.from(new URLSearchParams(form.pairs).toString(), 'utf8') };
  }
  if (type === 'application/json') {
    const text = utf8(bytes);
    if (text === null) return unreadable('the JSON is not UTF-8');
    let unsafe = false;
    let value: unknown;
    try {
      value = JSON.parse(text, (_key, v: unknown) => {
        if (typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v)) unsafe = true;
        return v;
      });
    } catch {
      return unreadable('it is not valid JSON');
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return unreadable('the JSON is not an object');
    if (unsafe) return unreadable('a number beyond ±2^53 would change when the body is re-serialized');
    const fields: Fields = new Map();
    for (const key of topLevelKeys(text)) fields.set(key, [...(fields.get(key) ?? []), (value as Record<string, unknown>)[key]]);
    return { ok: true, fields, forward: Buffer.from(JSON.stringify(value), 'utf8') };
  }
  return unreadable(media === '' ? 'no Content-Type' : `Content-Type ${media.slice(0, 64)}; a record is read from a form (application/x-www-form-urlencoded) or a JSON object (application/json) only`);
}

/** Strict UTF-8 (a BOM is dropped), or `null`. */
function utf8(bytes: Buffer): string | null {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

/**
 * The keys of a JSON object's top level as written, repeats included (JSON.parse keeps the last of two, another
 * parser may keep the first). `text` is known to be valid JSON holding an object.
 */
function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) keys.push(JSON.parse(text.slice(i, end + 1)) as string);
      expectKey = false;
      i = end;
    } else if (c === '{' || c === '[') {
      depth++;
      expectKey = depth === 1;
    } else if (c === '}' || c === ']') depth--;
    else if (c === ',' && depth === 1) expectKey = true;
  }
  return keys;
}

function refuse(status: 400 | 403, code: TargetRefusalCode, message: string, field?: string): TargetRefusal {
  return field === undefined ? { ok: false, status, code, message } : { ok: false, status, code, message, field };
}
