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
 * How deep a JSON body may nest. The audit trail's canonical JSON refuses data nested deeper than 128 levels from an
 * event's data (audit/canonical-json.ts, MAX_DEPTH), and a body lands a few levels down in it (`input.…`), so a body
 * is held well within that: refused when it is read, before anything walks it.
 */
export const BODY_MAX_DEPTH = 100;

/**
 * What no JSON body may hold, whatever its route (`bodyValidator` asks it of every body it validates, the AuthZEN
 * parsers of theirs): nesting deeper than BODY_MAX_DEPTH, and lone surrogates in strings or field names (neither the
 * WASM evaluator nor the audit trail takes them). One detail per offending field, at most 20. A body with nothing
 * wrong costs one walk and no string building: a field's path is spelled out only when it is reported.
 */
export function jsonValueProblems(value: unknown): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  walk(value, [], out);
  return dedupe(out);
}

const ILL_FORMED = 'must be well-formed Unicode (a lone surrogate is not)';

function walk(value: unknown, at: Array<string | number>, out: ErrorDetail[]): void {
  if (out.length >= 20) return;
  if (typeof value === 'string') {
    if (LONE_SURROGATE.test(value)) out.push({ path: pathOf(at), message: ILL_FORMED });
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  if (at.length >= BODY_MAX_DEPTH) {
    out.push({ path: pathOf(at), message: `nests deeper than ${BODY_MAX_DEPTH} levels` });
    return;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      at.push(i);
      walk(value[i], at, out);
      at.pop();
    }
    return;
  }
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    at.push(key);
    if (LONE_SURROGATE.test(key)) out.push({ path: pathOf(at), message: `field name ${ILL_FORMED}` });
    walk((value as Record<string, unknown>)[key], at, out);
    at.pop();
  }
}

/** `a.b[0].c`, or `(body)` for the body itself; the path of a deep value (mostly `[0][0]…`) is cut after 80 characters. */
function pathOf(at: ReadonlyArray<string | number>): string {
  let path = '';
  for (const part of at) {
    path += typeof part === 'number' ? `[${part}]` : path === '' ? part : `.${part}`;
    if (path.length > 80) return `${path.slice(0, 80)}…`;
  }
  return path || '(body)';
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
