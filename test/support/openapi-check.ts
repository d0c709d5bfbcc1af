import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';

/**
 * Checks real responses against the OpenAPI 3.1 document the server itself serves at GET /openapi.json.
 * The document's `components.schemas` are registered under one $id (as `$defs`), so a response schema's
 * `$ref: '#/components/schemas/X'` resolves; every schema is compiled in strict mode, so a typo in the
 * document fails here too.
 */
export interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, OperationObject>>;
  components: { schemas: Record<string, unknown> };
}

interface OperationObject {
  /** A path parameter marked `x-multi-segment` (agent-pdp's extension: OpenAPI has none) matches several segments. */
  parameters?: Array<{ name?: string; in?: string; 'x-multi-segment'?: boolean }>;
  responses: Record<string, { description: string; content?: Record<string, { schema?: unknown }> }>;
}

/** The parts of a supertest response the checker reads (its request, `req`, is there at runtime but not typed). */
export interface CheckedResponse {
  status: number;
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
}

export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;

const DOC_ID = 'https://agent-pdp.test/openapi.json';
const COMPONENT_REF = '#/components/schemas/';

export class OpenApiChecker {
  readonly document: OpenApiDocument;
  readonly #ajv: Ajv2020;
  readonly #validators = new Map<string, ValidateFunction>();
  readonly #templates: Array<{ template: string; pattern: RegExp; literal: boolean }>;

  constructor(document: OpenApiDocument) {
    this.document = document;
    this.#ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
    // OpenAPI's own schema keywords (3.1 §4.8.24), annotations only.
    this.#ajv.addVocabulary(['discriminator', 'xml', 'externalDocs', 'example']);
    this.#ajv.addFormat('date-time', {
      type: 'string',
      validate: (s: string) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(s) && !Number.isNaN(Date.parse(s)),
    });
    this.#ajv.addFormat('uri', { type: 'string', validate: (s: string) => URL.canParse(s) });
    this.#ajv.addSchema({ $id: DOC_ID, $defs: rewriteRefs(document.components.schemas) });
    this.#templates = Object.entries(document.paths).map(([template, item]) => {
      const multi = new Set(
        Object.values(item).flatMap((op) => (op.parameters ?? []).filter((p) => p.in === 'path' && p['x-multi-segment'] === true).map((p) => p.name)),
      );
      const pattern = template
        .split(/(\{[^}]+\})/)
        .map((part) => (/^\{[^}]+\}$/.test(part) ? (multi.has(part.slice(1, -1)) ? '.+' : '[^/]+') : escapeRegExp(part)))
        .join('');
      return { template, literal: !template.includes('{'), pattern: new RegExp(`^${pattern}$`) };
    });
    // Literal paths win over templated ones, as OpenAPI 3.1 §4.8.8 asks.
    this.#templates.sort((a, b) => Number(b.literal) - Number(a.literal));
  }

  static async fetch(baseUrl: string): Promise<OpenApiChecker> {
    const res = await fetch(new URL('/openapi.json', baseUrl));
    if (res.status !== 200) throw new Error(`GET /openapi.json answered ${res.status}`);
    return new OpenApiChecker((await res.json()) as OpenApiDocument);
  }

  /** The document's path template for a concrete path (`/v1/tasks/t-1` → `/v1/tasks/{id}`), if any. */
  templateOf(path: string): string | undefined {
    const bare = path.split('?')[0] ?? path;
    return this.#templates.find((t) => t.pattern.test(bare))?.template;
  }

  /** Every documented operation as `METHOD /template`. */
  operations(): string[] {
    return Object.entries(this.document.paths).flatMap(([template, item]) =>
      HTTP_METHODS.filter((m) => item[m] !== undefined).map((m) => `${m.toUpperCase()} ${template}`),
    );
  }

  /**
   * Throws unless the document describes this response: the operation exists, the status is listed for it, and
   * a JSON body validates against the listed schema. A path the document does not know must be a 404 whose
   * body is the documented Error.
   */
  expectResponseMatches(method: string, path: string, status: number, body: unknown): void {
    const template = this.templateOf(path);
    const where = `${method.toUpperCase()} ${path} → ${status}`;
    if (template === undefined) {
      if (status !== 404) throw new Error(`${where}: path is not in the OpenAPI document`);
      this.#validate(`${DOC_ID}#/$defs/Error`, { $ref: `${COMPONENT_REF}Error` }, body, where);
      return;
    }
    const operation = this.document.paths[template]?.[method.toLowerCase()];
    if (operation === undefined) {
      // The path exists, the method does not: express answers 404 like any unknown route.
      if (status !== 404) throw new Error(`${where}: ${method} is not documented for ${template}`);
      this.#validate(`${DOC_ID}#/$defs/Error`, { $ref: `${COMPONENT_REF}Error` }, body, where);
      return;
    }
    const response = operation.responses[String(status)];
    if (response === undefined) {
      throw new Error(`${where}: status ${status} is not documented for ${method.toUpperCase()} ${template} (has ${Object.keys(operation.responses).join(', ')})`);
    }
    const schema = response.content?.['application/json']?.schema;
    if (schema !== undefined) this.#validate(`${method} ${template} ${status}`, schema, body, where);
  }

  /** The same, for a supertest response (method and path are read from its request). */
  expectResponse(res: CheckedResponse): void {
    const req = (res as { req?: { method?: unknown; path?: unknown } }).req;
    if (typeof req?.method !== 'string' || typeof req.path !== 'string') throw new TypeError('not a supertest response: no req');
    const { method, path } = req as { method: string; path: string };
    if (this.#jsonDocumented(method, path, res.status)) {
      const type = String(res.headers['content-type'] ?? '');
      if (!type.startsWith('application/json')) throw new Error(`${method} ${path}: content-type ${type}, documented JSON`);
    }
    this.expectResponseMatches(method, path, res.status, res.body);
  }

  #jsonDocumented(method: string, path: string, status: number): boolean {
    const template = this.templateOf(path);
    const operation = template === undefined ? undefined : this.document.paths[template]?.[method.toLowerCase()];
    return operation?.responses[String(status)]?.content?.['application/json'] !== undefined;
  }

  #validate(key: string, schema: unknown, body: unknown, where: string): void {
    let validate = this.#validators.get(key);
    if (validate === undefined) {
      validate = this.#ajv.compile(rewriteRefs(schema) as object);
      this.#validators.set(key, validate);
    }
    if (!validate(body)) {
      const errors = (validate.errors ?? []).map((e) => `${e.instancePath || '(body)'} ${e.message ?? e.keyword}`).join('; ');
      throw new Error(`${where}: body does not match the OpenAPI document: ${errors}\n${JSON.stringify(body).slice(0, 500)}`);
    }
  }
}

/** `#/components/schemas/X` → `<doc id>#/$defs/X`, everywhere in a deep copy. */
function rewriteRefs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rewriteRefs);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k,
      k === '$ref' && typeof v === 'string' && v.startsWith(COMPONENT_REF) ? `${DOC_ID}#/$defs/${v.slice(COMPONENT_REF.length)}` : rewriteRefs(v),
    ]),
  );
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
