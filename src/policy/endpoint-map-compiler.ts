import { type Diagnostics, where } from './compile-diagnostics.js';
import { label, parseIdTemplate, parsePathTemplate, pathShape } from './endpoint-template.js';
import type { CompiledEndpoint, CompiledEndpointMap, PathSegment, PolicyDocument, TemplateSegment } from './policy-types.js';
import { sortedRecord, sortedUnion } from './scope-set.js';

/*
 * Endpoint maps (`endpoint_map:`): per integration, which scope and which record each call of its API needs, for
 * the enforcement proxy (src/proxy/request-target.ts matches requests against them). They are compiled here into
 * `PolicySet.endpointMaps` and never enter the Rego data document: a map-only change leaves every decision, and
 * the revision, as it was (the map's file and digest are still in `PolicySet.files`).
 */

type MapDoc = PolicyDocument<'endpoint_map'>;

/** An integration's scope list, from its integration file. */
export type ScopeCatalogues = ReadonlyMap<string, { file: string; scopes: ReadonlySet<string> }>;

/**
 * Every `endpoint_map` document compiled, by integration (sorted, no prototype). `integrations`: the set's
 * integrations (those with a file, and those an agent names); a map for another one is an error. Every problem is
 * reported through `diag` with its file and line; a map with an error is still returned without the bad entries
 * (the set is refused anyway).
 */
export function compileEndpointMaps(
  documents: readonly PolicyDocument[],
  integrations: ReadonlySet<string>,
  catalogues: ScopeCatalogues,
  diag: Diagnostics,
): Record<string, CompiledEndpointMap> {
  const maps = documents.filter((d): d is MapDoc => d.kind === 'endpoint_map').sort((a, b) => compareText(a.file, b.file));
  const byIntegration = new Map<string, { doc: MapDoc; map: CompiledEndpointMap }>();
  for (const doc of maps) {
    const name = doc.body.integration;
    const first = byIntegration.get(name);
    if (first !== undefined) {
      const at = where(first.doc, ['endpoint_map', 'integration']);
      diag.error(doc, ['endpoint_map', 'integration'], `a second endpoint map for integration ${name}: the first is ${at}`);
      continue;
    }
    if (!integrations.has(name)) {
      const message = `integration "${name}" has no integration file and no agent names it: is it misspelt?`;
      diag.error(doc, ['endpoint_map', 'integration'], message);
    }
    byIntegration.set(name, { doc, map: compileMap(doc, catalogues.get(name), diag) });
  }
  return sortedRecord([...byIntegration].map(([name, { map }]) => [name, map] as const));
}

function compileMap(doc: MapDoc, catalogue: { file: string; scopes: ReadonlySet<string> } | undefined, diag: Diagnostics): CompiledEndpointMap {
  const { integration, endpoints } = doc.body;
  const shapes = new Map<string, number>();
  const compiled: CompiledEndpoint[] = [];
  for (const [i, entry] of endpoints.entries()) {
    const at: PathSegment[] = ['endpoint_map', 'endpoints', i];
    let ok = true;
    const path = parsePathTemplate(entry.path);
    if (!path.ok) {
      diag.error(doc, [...at, 'path'], `invalid path template: ${path.error}`);
      continue;
    }
    const shape = `${entry.method} ${pathShape(path.value)}`;
    const twin = shapes.get(shape);
    if (twin !== undefined) {
      const message =
        `${entry.method} ${entry.path} matches the same requests as endpoints[${twin}] (${where(doc, ['endpoint_map', 'endpoints', twin])}): ` +
        'the same method and path shape (params renamed are the same shape)';
      diag.error(doc, [...at, 'path'], message);
      ok = false;
    } else shapes.set(shape, i);
    if (catalogue !== undefined && !catalogue.scopes.has(entry.scope)) {
      const message = `"${entry.scope}" is not a scope of integration ${integration} (see the scopes list in ${catalogue.file})`;
      diag.error(doc, [...at, 'scope'], message);
      ok = false;
    }
    const record = entry.record === undefined ? null : compileRecord(doc, at, entry.method, entry.record, path.value, diag);
    if (record === undefined || !ok) continue;
    const reads = (from: 'query' | 'body'): string[] =>
      sortedUnion((record?.id ?? []).flatMap((p) => ('from' in p && p.from === from ? [p.name] : [])));
    compiled.push({
      method: entry.method,
      path: entry.path,
      segments: path.value,
      scope: entry.scope,
      record,
      readsQuery: reads('query'),
      readsBody: reads('body'),
    });
  }
  return { integration, endpoints: compiled };
}

/** The compiled record, or `undefined` after reporting why its id template is refused. */
function compileRecord(
  doc: MapDoc,
  at: readonly PathSegment[],
  method: string,
  record: { type: string; id: string },
  segments: readonly TemplateSegment[],
  diag: Diagnostics,
): CompiledEndpoint['record'] | undefined {
  const params = new Set(segments.flatMap((s) => ('param' in s ? [s.param] : [])));
  const rest = new Set(segments.flatMap((s) => ('param' in s && s.rest ? [s.param] : [])));
  const idPath = [...at, 'record', 'id'];
  const parsed = parseIdTemplate(record.id, rest);
  if (!parsed.ok) {
    diag.error(doc, idPath, `invalid record id template: ${parsed.error}`);
    return undefined;
  }
  for (const part of parsed.value) {
    if (!('from' in part)) continue;
    if (part.from === 'path' && !params.has(part.name)) {
      diag.error(doc, idPath, `{${part.name}} is not a param of this entry's path (${[...params].map((p) => `{${p}}`).join(', ') || 'it has none'})`);
      return undefined;
    }
    if (part.from === 'body' && (method === 'GET' || method === 'HEAD')) {
      diag.error(doc, idPath, `{${label(part)}}: a ${method} request has no body to read; use {query.${part.name}}`);
      return undefined;
    }
  }
  return { type: record.type, id: parsed.value };
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
