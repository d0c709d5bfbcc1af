import type { ErrorDetail } from '../errors/pdp-error.js';
import { dedupeDetails as dedupe } from './error-wording.js';
import { formatPath } from './field-path.js';
import { checkPolicyShape } from './policy-schema.js';
import { POLICY_KINDS, type PolicyDocument, type PolicyKind } from './policy-types.js';
import { parseYamlSource } from './yaml-source.js';

export interface ParsedFile {
  /** Present only when the file is valid YAML and matches the schema. */
  document?: PolicyDocument;
  errors: ErrorDetail[];
  warnings: ErrorDetail[];
}

/**
 * Parses and schema-checks one policy file. Never throws: every problem becomes a located detail. `maxEntries`
 * bounds the document's map entries and list items (`parseYamlSource`).
 */
export function parsePolicyFile(text: string, file: string, maxEntries?: number): ParsedFile {
  const source = parseYamlSource(text, file, maxEntries);
  const { errors, warnings } = source;
  if (errors.length > 0) return { errors, warnings };
  if (source.value === null || source.value === undefined) {
    const message = `the file is empty; expected one of: ${POLICY_KINDS.join(', ')}`;
    return { errors: [{ file, line: 1, column: 1, path: '', message }], warnings };
  }
  const issues = checkPolicyShape(source.value);
  if (issues.length > 0) {
    const details = issues.map(({ path, key, message }) => ({
      file,
      ...source.locate(path, key),
      path: formatPath(path),
      message,
    }));
    return { errors: dedupe(details), warnings };
  }
  const value = source.value as Record<string, unknown>;
  const kind = Object.keys(value)[0] as PolicyKind;
  const document = { kind, file, body: value[kind], locate: source.locate } as PolicyDocument;
  return { document, errors: [], warnings };
}
