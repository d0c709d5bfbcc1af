import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/config-loader.js';
import { configSchema } from '../../src/config/config-schema.js';

/**
 * docs/configuration.md is the config reference: its key table names exactly the keys the schema accepts, and
 * every default it states is the one the loader applies. A key added to the schema without a row (or a default
 * changed in the code alone) fails here.
 */
interface SchemaNode {
  type?: string;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  items?: SchemaNode;
}

/** Every leaf key of the schema, dotted: `server.listen`, `callers[].id`, `issuer.audiences.<integration>`. */
function schemaKeys(node: SchemaNode, prefix: string): string[] {
  if (node.type === 'array' && node.items?.properties) return schemaKeys(node.items, `${prefix}[]`);
  if (node.properties) return Object.entries(node.properties).flatMap(([name, child]) => schemaKeys(child, prefix ? `${prefix}.${name}` : name));
  if (typeof node.additionalProperties === 'object') {
    // A map of objects (`policy.verification.keys.<id>.algorithm`), or of values (`issuer.audiences.<integration>`).
    const entry = node.additionalProperties;
    return entry.properties ? schemaKeys(entry, `${prefix}.<id>`) : [`${prefix}.<integration>`];
  }
  return [prefix];
}

const doc = readFileSync('docs/configuration.md', 'utf8');
/** The key table's rows: cells split on `|` but not on an escaped `\|` (inside a type like `normal` \| `full`). */
const rows = new Map(
  doc
    .split('\n')
    .filter((line) => /^\| `[^`]+` \|/.test(line))
    .map((line) => line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim()))
    .map(([key = '', type = '', fallback = '']) => [key.replace(/`/g, ''), { type, default: fallback }] as const),
);

const { config } = buildConfig({ callers: [{ id: 'a', role: 'pep', key_sha256: '0'.repeat(64) }] }, '/etc/agent-pdp/c.yaml', '/etc/agent-pdp');
/** The proxy section's defaults: a config with the smallest proxy section (one upstream, its credential a file). */
const proxied = buildConfig(
  {
    callers: [{ id: 'a', role: 'pep', key_sha256: '0'.repeat(64) }],
    proxy: { listen: '127.0.0.1:8282', upstreams: [{ integration: 'github', origin: 'https://api.github.com', credential: { file: '/dev/null' } }] },
  },
  '/etc/agent-pdp/c.yaml',
  '/etc/agent-pdp',
).config;

/** A provider's defaults: a config with the smallest provider entry (its source credential a file). */
const provided = buildConfig(
  {
    callers: [{ id: 'a', role: 'pep', key_sha256: '0'.repeat(64) }],
    providers: [{ integration: 's3-reports', kind: 'aws', role_arn: 'arn:aws:iam::123456789012:role/r', region: 'eu-west-1', credential: { file: '/dev/null' } }],
  },
  '/etc/agent-pdp/c.yaml',
  '/etc/agent-pdp',
).config;

/** The scheduled suggestion run's defaults: a config with an empty `suggestions.schedule` (the section turns it on). */
const scheduled = buildConfig({ callers: [{ id: 'a', role: 'pep', key_sha256: '0'.repeat(64) }], suggestions: { schedule: {} } }, '/etc/agent-pdp/c.yaml', '/etc/agent-pdp').config;

/** Keys whose default, null, the doc states as `none`. */
const NULL_MEANS_NONE = new Set(['audit.mask_key_file', 'policy.compiled', 'policy.verification.key_id', 'policy.verification.scope', 'store.schema']);
/** The policy.service section's defaults: a config with the smallest one. */
const serviced = buildConfig({ callers: [{ id: 'a', role: 'pep', key_sha256: '0'.repeat(64) }], policy: { service: { url: 'https://bundles.example.com/p.tar.gz' } } }, '/etc/agent-pdp/c.yaml', '/etc/agent-pdp').config;

/** The default the loader applies to a key, as the doc would spell it (paths relative to the config file). */
function appliedDefault(key: string): string | undefined {
  if (key === 'server.listen') return `${config.server.host}:${config.server.port}`;
  if (key.startsWith('proxy.upstreams[].')) {
    // An upstream's keys have defaults of their own (an upstream names its integration, origin and credential).
    if (/credential\.(env|file)$/.test(key)) return undefined;
    let value: unknown = proxied.proxy?.upstreams[0];
    for (const name of key.slice('proxy.upstreams[].'.length).split('.')) value = (value as Record<string, unknown>)[name];
    return value === undefined || value === '' ? undefined : Array.isArray(value) ? JSON.stringify(value) : String(value);
  }
  if (key.startsWith('providers[].')) {
    // The source credential, and what a kind requires (aws: role and region), have no default.
    if (/credential\.(env|file)$|\.(role_arn|region)$/.test(key)) return undefined;
    const value = (provided.providers[0] as unknown as Record<string, unknown>)[key.slice('providers[].'.length)];
    return value === undefined || value === null ? undefined : String(value);
  }
  if (key.startsWith('proxy.')) {
    const value = (proxied.proxy as unknown as Record<string, unknown>)[key.slice('proxy.'.length)];
    return value === undefined ? undefined : String(value);
  }
  if (key.startsWith('suggestions.schedule.')) {
    const value = (scheduled.suggestions.schedule as unknown as Record<string, unknown>)[key.slice('suggestions.schedule.'.length)];
    return Array.isArray(value) ? JSON.stringify(value) : String(value);
  }
  if (key.startsWith('callers[].')) return undefined;
  if (key.startsWith('policy.service.')) {
    const value = (serviced.policy.service as unknown as Record<string, unknown>)[key.slice('policy.service.'.length)];
    return value === undefined || value === null || key === 'policy.service.url' ? undefined : String(value).replace('/etc/agent-pdp/', '');
  }
  if (key.endsWith('.<integration>')) return undefined;
  // Keys of list items (`escalation.webhooks[].url`) have no default: the item is written whole or not at all.
  if (key.includes('[]')) return undefined;
  let value: unknown = config;
  for (const name of key.split('.')) value = value === null || value === undefined ? undefined : (value as Record<string, unknown>)[name];
  if (value === undefined || value === null) return value === null && !NULL_MEANS_NONE.has(key) ? 'null' : undefined;
  if (Array.isArray(value)) return JSON.stringify(value);
  if (typeof value === 'string') return value.replace('/etc/agent-pdp/', '');
  return String(value);
}

describe('docs/configuration.md', () => {
  it('has a row for every key of the schema, and none for a key the schema refuses', () => {
    expect([...rows.keys()].sort()).toEqual(schemaKeys(configSchema as unknown as SchemaNode, '').sort());
  });

  it.each(schemaKeys(configSchema as unknown as SchemaNode, ''))('%s: the stated default is the applied one', (key) => {
    const stated = rows.get(key)?.default ?? '';
    const applied = appliedDefault(key);
    if (key.startsWith('callers[].')) {
      expect(stated).toMatch(/^(required|none|`(\[\]|false)`)$/);
      const value = (config.callers[0] as unknown as Record<string, unknown>)[key.slice(10)];
      if (stated === 'none') expect(value).toBeUndefined();
      else if (stated !== 'required') expect(stated).toBe(`\`${JSON.stringify(value)}\``);
    } else if (key === 'proxy.listen' || key === 'policy.service.url') {
      expect(stated).toBe('required');
    } else if ((key.startsWith('proxy.upstreams[].') || key.startsWith('providers[].')) && applied !== undefined && stated !== 'required') {
      expect(stated).toBe(`\`${applied}\``);
    } else if (key.includes('[]') || key.includes('<id>')) {
      expect(stated).toMatch(/^(required|none)$/);
    } else if (applied === undefined) {
      expect(stated).toBe('none');
    } else {
      expect(stated).toBe(`\`${applied}\``);
    }
  });

  it('required keys are the schema\'s required ones', () => {
    const required = (list: string) => [...rows.entries()].filter(([k, r]) => k.startsWith(`${list}[].`) && r.default === 'required').map(([k]) => k.slice(list.length + 3));
    expect(required('callers').sort()).toEqual([...configSchema.properties.callers.items.required].sort());
    expect(required('escalation.webhooks').sort()).toEqual([...configSchema.properties.escalation.properties.webhooks.items.required].sort());
    // An upstream's credential is an object: one of its `env`, `file` is required (the loader says which is missing).
    const upstream = configSchema.properties.proxy.properties.upstreams.items;
    expect(required('proxy.upstreams').sort()).toEqual(upstream.required.filter((k) => k !== 'credential').sort());
  });
});
