import type { IdPart, TemplateSegment } from './policy-types.js';

/*
 * The two template grammars of an endpoint map entry (docs/policy-authoring.md, "Endpoint maps"):
 *
 * - a path template: `/`-separated non-empty segments, each a literal (RFC 3986 path characters, no
 *   percent-encoding, not `.` or `..`) or a whole-segment param `{name}`; `{name+}`, last only, takes the rest of
 *   the path (one segment or more);
 * - a record id template: text and `{param}` (a path param), `{query.field}`, `{body.field}`.
 *
 * Both parsers are pure and return either the parsed template or one author-readable error.
 */

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** A param or field name. */
const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** A query or body field name. */
const FIELD = /^[A-Za-z0-9_-]{1,128}$/;
/** RFC 3986 pchar without pct-encoded: what a literal segment may hold, so it equals the canonical request segment. */
const LITERAL = /^[A-Za-z0-9\-._~!$&'()*+,;=:@]+$/;

/** `/repos/{owner}/{repo}/contents/{path+}` → its segments, or why it is not a path template. */
export function parsePathTemplate(path: string): Parsed<TemplateSegment[]> {
  if (!path.startsWith('/')) return fail('a path template starts with /');
  const segments: TemplateSegment[] = [];
  const names = new Set<string>();
  const parts = path.slice(1).split('/');
  for (const [i, part] of parts.entries()) {
    const at = `segment ${i + 1} (${JSON.stringify(part)})`;
    if (part === '') return fail(`${at}: empty segments (// or a trailing /) never match: every segment of a request must be non-empty`);
    if (part.startsWith('{') && part.endsWith('}')) {
      const rest = part.endsWith('+}');
      const name = part.slice(1, rest ? -2 : -1);
      if (!NAME.test(name)) return fail(`${at}: a param name is a letter or _ then letters, digits or _ (at most 64)`);
      if (names.has(name)) return fail(`${at}: param {${name}} appears twice`);
      if (rest && i !== parts.length - 1) return fail(`${at}: {${name}+} takes the rest of the path, so it must be the last segment`);
      names.add(name);
      segments.push({ param: name, rest });
      continue;
    }
    if (part.includes('{') || part.includes('}')) return fail(`${at}: a param is a whole segment ({name}); braces cannot appear inside a literal`);
    if (part === '.' || part === '..') return fail(`${at}: . and .. are never matched (requests holding them are refused)`);
    if (!LITERAL.test(part)) {
      return fail(`${at}: a literal segment holds letters, digits and - . _ ~ ! $ & ' ( ) * + , ; = : @ only (no percent-encoding)`);
    }
    segments.push({ literal: part });
  }
  return { ok: true, value: segments };
}

/**
 * `{owner}/{repo}` → its parts, or why it is not a record id template. Every placeholder but the last must be a
 * path param (never `{name+}`'s) followed by `/`: a decoded path param never holds a `/`, so two different calls
 * never give one id (`{a}{b}` would: "xy" + "z" and "x" + "yz"). `restParams` are the path's `{name+}` params.
 */
export function parseIdTemplate(id: string, restParams: ReadonlySet<string>): Parsed<IdPart[]> {
  const parts: IdPart[] = [];
  let text = '';
  for (let i = 0; i < id.length; ) {
    const c = id[i] as string;
    if (c === '}') return fail(`a } at character ${i + 1} closes nothing`);
    if (c !== '{') {
      text += c;
      i++;
      continue;
    }
    const end = id.indexOf('}', i);
    if (end < 0) return fail(`the { at character ${i + 1} is never closed`);
    const inner = id.slice(i + 1, end);
    const part = placeholder(inner);
    if (!part.ok) return part;
    if (text !== '') parts.push({ text });
    text = '';
    parts.push(part.value);
    i = end + 1;
  }
  if (text !== '') parts.push({ text });
  const fields = parts.filter((p): p is Extract<IdPart, { from: string }> => 'from' in p);
  if (fields.length === 0) return fail('names no {param}, {query.field} or {body.field}: every call would name the same record');
  for (const [i, part] of parts.entries()) {
    if (!('from' in part) || part === fields[fields.length - 1]) continue;
    const next = parts[i + 1];
    const separated = next !== undefined && 'text' in next && next.text.startsWith('/');
    if (part.from !== 'path' || restParams.has(part.name) || !separated) {
      return fail(
        `{${label(part)}} is followed by another placeholder: only a path param (not a {name+} one) followed by / may ` +
          'come before another, or two different calls could name the same record',
      );
    }
  }
  return { ok: true, value: parts };
}

/** How a placeholder is written: `owner`, `query.channel`, `body.channel`. */
export function label(part: Extract<IdPart, { from: string }>): string {
  return part.from === 'path' ? part.name : `${part.from}.${part.name}`;
}

function placeholder(inner: string): Parsed<IdPart> {
  const dot = inner.indexOf('.');
  if (dot < 0) {
    if (inner.endsWith('+')) return fail(`write {${inner.slice(0, -1)}}, not {${inner}}: the record reads the param's value`);
    if (!NAME.test(inner)) return fail(`{${inner}} is not a path param name, {query.field} or {body.field}`);
    return { ok: true, value: { from: 'path', name: inner } };
  }
  const from = inner.slice(0, dot);
  const name = inner.slice(dot + 1);
  if (from !== 'query' && from !== 'body') return fail(`{${inner}}: a field is read from query or body ({query.${name}}, {body.${name}})`);
  if (!FIELD.test(name)) return fail(`{${inner}}: a field name holds letters, digits, _ and - only (at most 128)`);
  return { ok: true, value: { from, name } };
}

/** Two templates of one method with the same shape match the same requests: params renamed count as the same. */
export function pathShape(segments: readonly TemplateSegment[]): string {
  return segments.map((s) => ('literal' in s ? `=${s.literal}` : s.rest ? '{+}' : '{}')).join('/');
}

function fail(error: string): { ok: false; error: string } {
  return { ok: false, error };
}
