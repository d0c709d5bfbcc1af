import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { SCOPE_PATTERN } from '../wire/decision-v1.js';
import { article, typeName } from './error-wording.js';
import { pointerToPath } from './field-path.js';
import { POLICY_KINDS, type PathSegment } from './policy-types.js';

/**
 * The JSON Schema of policy files (`schemas/agent-policy.schema.json`, shipped in the package so editors can use
 * it), compiled once. Validation reports every problem, each as a field path an author can find in the file.
 *
 * Scopes follow the one grammar of the wire, `SCOPE_PATTERN`: it replaces the file's copy here, so policies and
 * decision requests cannot drift apart (test/semantics/scope-grammar.test.ts keeps the file's copy equal for editors).
 */
const SCHEMA_URL = new URL('../../schemas/agent-policy.schema.json', import.meta.url);

export const policySchema: Record<string, unknown> = withScopeGrammar(JSON.parse(readFileSync(SCHEMA_URL, 'utf8')));

function withScopeGrammar(schema: { definitions: { scope: { pattern: string } } }): Record<string, unknown> {
  schema.definitions.scope.pattern = SCOPE_PATTERN;
  return schema;
}

/**
 * Compiled on the first check, not when the module loads: about 0.2 s of a start on a compiled bundle (which
 * checks no policy file), and of every CLI command that reads none.
 */
let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
  compiled ??= new Ajv({ allErrors: true, verbose: true, strict: true, strictRequired: false }).compile(policySchema);
  return compiled;
}

/** One schema violation: `key` says the location is the key at `path` (an unknown or misspelt key), not its value. */
export interface SchemaIssue {
  path: PathSegment[];
  key: boolean;
  message: string;
}

/** Keywords that only summarise other errors reported on their own. */
const SUMMARY_KEYWORDS = new Set(['if', 'propertyNames']);

const KIND_LIST = POLICY_KINDS.join(', ');

export function checkPolicyShape(value: unknown): SchemaIssue[] {
  const validate = validator();
  if (validate(value)) return [];
  return (validate.errors ?? [])
    .filter((e) => !SUMMARY_KEYWORDS.has(e.keyword))
    .map((e) => describe(e, value));
}

function describe(e: ErrorObject, root: unknown): SchemaIssue {
  const path = pointerToPath(e.instancePath, root);
  const params = e.params as Record<string, unknown>;
  const atTop = path.length === 0;
  if (e.propertyName !== undefined) {
    const what = noun(e) === 'id' ? 'name' : noun(e);
    const message = `${JSON.stringify(e.propertyName)} is not a valid ${what} (must match ${String(params['pattern'])})`;
    return { path: [...path, e.propertyName], key: true, message };
  }
  switch (e.keyword) {
    case 'additionalProperties': {
      const name = String(params['additionalProperty']);
      const known = Object.keys((e.parentSchema?.['properties'] as object | undefined) ?? {}).join(', ');
      const hint = atTop ? `a policy file holds exactly one of: ${KIND_LIST}` : `expected one of: ${known}`;
      return { path: [...path, name], key: true, message: `unknown key ${JSON.stringify(name)}; ${hint}` };
    }
    case 'required': {
      const name = String(params['missingProperty']);
      const agentCeiling = name === 'max_scope' && path[0] === 'agent_policy';
      const why = agentCeiling ? ' (an agent without roles must state its ceiling)' : '';
      return { path, key: path.length > 0, message: `missing required key ${JSON.stringify(name)}${why}` };
    }
    case 'minProperties':
    case 'maxProperties':
      if (atTop) return { path, key: false, message: `a policy file holds exactly one of: ${KIND_LIST}` };
      break;
    case 'type':
      return { path, key: false, message: `expected ${article(String(params['type']))}, got ${typeName(e.data)}` };
    case 'pattern':
      return {
        path,
        key: false,
        message: `${JSON.stringify(e.data)} is not a valid ${noun(e)} (must match ${String(params['pattern'])})`,
      };
    case 'minimum':
    case 'maximum': {
      const bound = `${e.keyword === 'minimum' ? 'at least' : 'at most'} ${String(params['limit'])}`;
      return { path, key: false, message: `must be ${bound}, got ${String(e.data)}` };
    }
    case 'enum': {
      const allowed = (params['allowedValues'] as unknown[]).map(String).join(', ');
      return { path, key: false, message: `${JSON.stringify(e.data)} is not one of: ${allowed}` };
    }
    case 'minLength':
    case 'maxLength': {
      const bound = `${e.keyword === 'minLength' ? 'at least' : 'at most'} ${String(params['limit'])} characters`;
      return { path, key: false, message: `must be ${bound}` };
    }
    case 'minItems':
      if (params['limit'] === 1) return { path, key: false, message: 'must list at least one' };
      break;
    case 'uniqueItems':
      return {
        path: [...path, Number(params['i'])],
        key: false,
        message: `duplicate entry (same as item ${String(params['j'])})`,
      };
    default:
      break;
  }
  return { path, key: false, message: e.message ?? `fails ${e.keyword}` };
}

function noun(e: ErrorObject): string {
  if (e.schemaPath.includes('/definitions/scope/')) return 'scope';
  if (e.schemaPath.includes('/definitions/id/')) return 'id';
  return 'value';
}
