/**
 * OPA's decision-log event, EventV1 (open-policy-agent/opa v1/plugins/logs/plugin.go), as its JSON tags define it:
 * field name → JSON type, and whether the tag has `omitempty`. A field without omitempty is always written.
 */
export type JsonType = 'string' | 'object' | 'array' | 'number' | 'any';

export const OPA_EVENT_V1: Record<string, { type: JsonType; omitempty: boolean }> = {
  labels: { type: 'object', omitempty: false }, // map[string]string
  decision_id: { type: 'string', omitempty: false },
  trace_id: { type: 'string', omitempty: true },
  span_id: { type: 'string', omitempty: true },
  revision: { type: 'string', omitempty: true }, // deprecated: bundles
  bundles: { type: 'object', omitempty: true }, // map[string]BundleInfoV1{revision string omitempty}
  path: { type: 'string', omitempty: true },
  query: { type: 'string', omitempty: true },
  input: { type: 'any', omitempty: true },
  result: { type: 'any', omitempty: true },
  mapped_result: { type: 'any', omitempty: true },
  nd_builtin_cache: { type: 'any', omitempty: true },
  erased: { type: 'array', omitempty: true },
  masked: { type: 'array', omitempty: true },
  error: { type: 'any', omitempty: true },
  requested_by: { type: 'string', omitempty: true },
  timestamp: { type: 'string', omitempty: false }, // time.Time: RFC 3339 with nanoseconds
  metrics: { type: 'object', omitempty: true },
  req_id: { type: 'number', omitempty: true },
  request_context: { type: 'object', omitempty: true },
};

/** Every way `event` departs from EventV1's field names and types (empty when it is a valid EventV1). */
export function eventV1Problems(event: Record<string, unknown>): string[] {
  const problems: string[] = [];
  for (const [name, field] of Object.entries(OPA_EVENT_V1)) {
    const value = event[name];
    if (value === undefined) {
      if (!field.omitempty) problems.push(`${name} is missing (EventV1 always writes it)`);
      continue;
    }
    if (field.omitempty && (value === '' || (Array.isArray(value) && value.length === 0))) problems.push(`${name} is empty but omitempty`);
    const actual = Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value;
    if (field.type !== 'any' && actual !== field.type) problems.push(`${name} is ${actual}, EventV1 has ${field.type}`);
  }
  for (const name of Object.keys(event)) if (!(name in OPA_EVENT_V1)) problems.push(`${name} is not an EventV1 field`);
  const labels = event['labels'];
  if (typeof labels === 'object' && labels !== null) {
    for (const [k, v] of Object.entries(labels)) if (typeof v !== 'string') problems.push(`labels.${k} is not a string (map[string]string)`);
  }
  const bundles = event['bundles'];
  if (typeof bundles === 'object' && bundles !== null) {
    for (const [k, v] of Object.entries(bundles)) {
      const keys = Object.keys(v as object);
      if (keys.some((key) => key !== 'revision') || typeof (v as { revision?: unknown }).revision !== 'string') {
        problems.push(`bundles.${k} is not a BundleInfoV1 {revision}`);
      }
    }
  }
  if (typeof event['timestamp'] === 'string' && !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/.test(event['timestamp'])) {
    problems.push('timestamp is not RFC 3339');
  }
  return problems;
}
