import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { PdpError, type ErrorDetail } from '../errors/pdp-error.js';

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });

/** A lone UTF-16 surrogate: JSON can spell it (`"\ud800"`), but it is not text, and neither WASM nor the audit log takes it. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Compiles a JSON Schema once; the returned function throws a 400 naming every offending field. */
export function bodyValidator<T>(schema: object): (body: unknown) => T {
  const validate: ValidateFunction = ajv.compile(schema);
  return (body) => {
    if (body === undefined) {
      throw new PdpError('invalid_request', 'a JSON body is required', { details: [{ path: '(body)', message: 'missing' }] });
    }
    const details = validate(body) ? jsonValueProblems(body) : dedupe((validate.errors ?? []).map(toDetail));
    if (details.length > 0) {
      throw new PdpError('invalid_request', `invalid request: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`, {
        details,
      });
    }
    return body as T;
  };
}

function toDetail(e: ErrorObject): ErrorDetail {
  const base = e.instancePath.replace(/^\//, '').replace(/\/(\d+)(?=\/|$)/g, '[$1]').replace(/\//g, '.');
  const join = (key: string): string => (base ? `${base}.${key}` : key);
  // A bad key (propertyNames) is reported on the key itself, not on the object that holds it.
  if (e.propertyName !== undefined) return { path: join(e.propertyName), message: `field name ${e.message ?? e.keyword}` };
  switch (e.keyword) {
    case 'additionalProperties':
      return { path: join((e.params as { additionalProperty: string }).additionalProperty), message: 'unknown field' };
    case 'required':
      return { path: join((e.params as { missingProperty: string }).missingProperty), message: 'is required' };
    case 'propertyNames':
      return { path: join((e.params as { propertyName: string }).propertyName), message: 'is not a valid field name' };
    default:
      return { path: base || '(body)', message: e.message ?? e.keyword };
  }
}

/**
 * How deep a JSON body may nest: the audit trail's canonical JSON refuses deeper data (audit/canonical-json.ts,
 * MAX_DEPTH), so a deeper body could never be recorded; refused when it is read, before anything walks it.
 */
export const BODY_MAX_DEPTH = 128;

/**
 * What no JSON body may hold, whatever its route (the body reader asks this of every JSON body it parses, and
 * `bodyValidator` of what it is given): nesting deeper than BODY_MAX_DEPTH, and lone surrogates in strings or field
 * names (neither the WASM evaluator nor the audit trail takes them). One detail per offending field, at most 20.
 */
export function jsonValueProblems(value: unknown): ErrorDetail[] {
  return dedupe(illFormedStrings(value, '', [], 0));
}

function illFormedStrings(value: unknown, path: string, out: ErrorDetail[], depth: number): ErrorDetail[] {
  const message = 'must be well-formed Unicode (a lone surrogate is not)';
  if (out.length >= 20) return out;
  if (typeof value === 'string') {
    if (LONE_SURROGATE.test(value)) out.push({ path: path || '(body)', message });
    return out;
  }
  if (typeof value !== 'object' || value === null) return out;
  if (depth >= BODY_MAX_DEPTH) {
    // The path of a deep value is mostly `[0][0]…`: its start says where.
    out.push({ path: path.length > 80 ? `${path.slice(0, 80)}…` : path, message: `nests deeper than ${BODY_MAX_DEPTH} levels` });
    return out;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => illFormedStrings(v, `${path}[${i}]`, out, depth + 1));
  } else {
    for (const [key, v] of Object.entries(value)) {
      const at = path ? `${path}.${key}` : key;
      if (LONE_SURROGATE.test(key)) out.push({ path: at, message: `field name ${message}` });
      illFormedStrings(v, at, out, depth + 1);
    }
  }
  return out;
}

function dedupe(details: ErrorDetail[]): ErrorDetail[] {
  const seen = new Set<string>();
  return details.filter((d) => {
    const key = `${d.path}\u0000${d.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  }).slice(0, 20);
}
