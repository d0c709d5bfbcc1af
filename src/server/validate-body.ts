import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { PdpError, type ErrorDetail } from '../errors/pdp-error.js';

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });

/** Compiles a JSON Schema once; the returned function throws a 400 naming every offending field. */
export function bodyValidator<T>(schema: object): (body: unknown) => T {
  const validate: ValidateFunction = ajv.compile(schema);
  return (body) => {
    if (body === undefined) {
      throw new PdpError('invalid_request', 'a JSON body is required', { details: [{ path: '(body)', message: 'missing' }] });
    }
    if (!validate(body)) {
      const details = dedupe((validate.errors ?? []).map(toDetail));
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
  switch (e.keyword) {
    case 'additionalProperties':
      return { path: join((e.params as { additionalProperty: string }).additionalProperty), message: 'unknown field' };
    case 'required':
      return { path: join((e.params as { missingProperty: string }).missingProperty), message: 'is required' };
    default:
      return { path: base || '(body)', message: e.message ?? e.keyword };
  }
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
