import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { article, typeName } from '../policy/error-wording.js';
import { pointerToPath } from '../policy/field-path.js';
import type { PathSegment } from '../policy/policy-types.js';
import { ID_PATTERN, SCOPE_PATTERN } from '../wire/decision-v1.js';

/**
 * The JSON Schema of policy test files (`schemas/policy-test.schema.json`, shipped so editors can use it), compiled
 * on first use. Ids and scopes are the wire's patterns (`ID_PATTERN`, `SCOPE_PATTERN`) put in place of the file's
 * copies, so a test request accepts exactly what `POST /v1/decide` accepts. Every problem is reported, each as a
 * field path an author can find in the file.
 */
const SCHEMA_URL = new URL('../../schemas/policy-test.schema.json', import.meta.url);

interface SchemaShape {
  definitions: {
    id: { pattern: string };
    scope: { pattern: string };
    task: { properties: { type: { pattern: string } } };
    expect: { properties: object };
  };
}

let compiled: { validate: ValidateFunction; expectFields: string } | undefined;

function compile(): NonNullable<typeof compiled> {
  const schema = JSON.parse(readFileSync(SCHEMA_URL, 'utf8')) as SchemaShape;
  schema.definitions.id.pattern = ID_PATTERN;
  schema.definitions.task.properties.type.pattern = ID_PATTERN;
  schema.definitions.scope.pattern = SCOPE_PATTERN;
  const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictRequired: false, allowUnionTypes: true });
  return { validate: ajv.compile(schema), expectFields: Object.keys(schema.definitions.expect.properties).join(', ') };
}

/** One schema violation: `key` says the location is the key at `path` (an unknown or misspelt key), not its value. */
export interface TestFileIssue {
  path: PathSegment[];
  key: boolean;
  message: string;
}

/** Keywords that only summarise errors reported on their own. */
const SUMMARY_KEYWORDS = new Set(['if', 'propertyNames']);

export function checkTestFileShape(value: unknown): TestFileIssue[] {
  compiled ??= compile();
  const { validate } = compiled;
  if (validate(value)) return [];
  const errors = (validate.errors ?? []).filter((e) => !SUMMARY_KEYWORDS.has(e.keyword));
  // A value that fits no branch of an anyOf (a context value) is reported once, by the anyOf itself.
  const anyOf = errors.filter((e) => e.keyword === 'anyOf').map((e) => e.schemaPath);
  return errors.filter((e) => e.keyword === 'anyOf' || !anyOf.some((p) => e.schemaPath.startsWith(`${p}/`))).map((e) => describe(e, value));
}

function describe(e: ErrorObject, root: unknown): TestFileIssue {
  const path = pointerToPath(e.instancePath, root);
  const params = e.params as Record<string, unknown>;
  if (e.propertyName !== undefined) {
    return { path: [...path, e.propertyName], key: true, message: `${JSON.stringify(e.propertyName)} is not a valid context key (must match ${String(params['pattern'])})` };
  }
  switch (e.keyword) {
    case 'additionalProperties': {
      const name = String(params['additionalProperty']);
      const known = Object.keys((e.parentSchema?.['properties'] as object | undefined) ?? {}).join(', ');
      return { path: [...path, name], key: true, message: `unknown key ${JSON.stringify(name)}; expected one of: ${known}` };
    }
    case 'required':
      return { path, key: path.length > 0, message: `missing required key ${JSON.stringify(String(params['missingProperty']))}` };
    case 'minProperties':
      return { path, key: true, message: `expects nothing: give at least one of ${(compiled as NonNullable<typeof compiled>).expectFields}` };
    case 'type':
      return { path, key: false, message: `expected ${String(params['type']).split(',').map(article).join(' or ')}, got ${typeName(e.data)}` };
    case 'anyOf':
      return { path, key: false, message: `expected a string (at most 256 characters), a number or true/false, got ${typeName(e.data)}` };
    case 'pattern':
      return { path, key: false, message: `${JSON.stringify(e.data)} is not a valid ${noun(e)} (must match ${String(params['pattern'])})` };
    case 'enum':
      return { path, key: false, message: `${JSON.stringify(e.data)} is not one of: ${(params['allowedValues'] as unknown[]).join(', ')}` };
    case 'minimum':
    case 'maximum':
      return { path, key: false, message: `must be ${e.keyword === 'minimum' ? 'at least' : 'at most'} ${String(params['limit'])}, got ${String(e.data)}` };
    case 'minItems':
    case 'maxItems': {
      const limit = Number(params['limit']);
      return { path, key: false, message: `must have ${e.keyword === 'minItems' ? 'at least' : 'at most'} ${limit} ${limit === 1 ? 'item' : 'items'}` };
    }
    case 'uniqueItems':
      return { path: [...path, Number(params['i'])], key: false, message: `duplicate entry (same as item ${String(params['j'])})` };
    default:
      return { path, key: false, message: e.message ?? `fails ${e.keyword}` };
  }
}

function noun(e: ErrorObject): string {
  if (e.schemaPath.includes('/definitions/scope/')) return 'scope';
  if (e.schemaPath.includes('/definitions/id/') || e.schemaPath.includes('/definitions/task/properties/type/')) return 'id';
  if (e.schemaPath.includes('/definitions/name/')) return 'name (no leading or trailing spaces)';
  return 'value';
}
