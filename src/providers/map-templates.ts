import type { MapTemplatePart } from '../policy/policy-types.js';

/**
 * A value put into a provider map's template (an ARN, a condition value) must not widen it: no `*` or `?` (IAM
 * wildcards), no `/` (another prefix level), no `$` (`${aws:…}` policy variables), no braces or quotes. What is left
 * is what IAM's own names allow.
 */
export const TEMPLATE_VALUE = /^[A-Za-z0-9._@+=,-]{1,128}$/;

/** What a template may read: the grant's bound record and the registered task's context. */
export interface TemplateValues {
  record: { type: string; id: string } | null;
  /** Registered task context; null for a task no orchestrator registered. */
  context: Readonly<Record<string, unknown>> | null;
}

/** Thrown when a template cannot be filled safely; its message names the template part, never a secret. */
export class TemplateRefused extends Error {
  override readonly name = 'TemplateRefused';
}

export function fillTemplate(parts: readonly MapTemplatePart[], values: TemplateValues): string {
  let out = '';
  for (const part of parts) {
    if ('text' in part) {
      out += part.text;
      continue;
    }
    const label = `{${part.from}.${part.name}}`;
    let value: unknown;
    if (part.from === 'record') value = values.record === null ? undefined : values.record[part.name];
    else value = values.context === null || !Object.hasOwn(values.context, part.name) ? undefined : values.context[part.name];
    if (typeof value === 'number' && Number.isSafeInteger(value)) value = String(value);
    if (value === undefined) throw new TemplateRefused(`${label} has no value for this grant (no bound record, or no registered task context)`);
    if (typeof value !== 'string' || !TEMPLATE_VALUE.test(value)) {
      throw new TemplateRefused(`${label}'s value is not [A-Za-z0-9._@+=,-]{1,128}: it could widen the pattern`);
    }
    out += value;
  }
  return out;
}
