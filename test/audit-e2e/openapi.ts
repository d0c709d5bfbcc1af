/**
 * The served OpenAPI document with the audit routes' fragment merged in (idempotent once src/server/openapi.ts
 * spreads AUDIT_OPENAPI itself), so audit responses are checked against the schemas they are documented with.
 */
import { AUDIT_OPENAPI } from '../../src/server/routes/audit.js';
import { OpenApiChecker, type OpenApiDocument } from '../support/openapi-check.js';

export async function auditApiChecker(baseUrl: string): Promise<OpenApiChecker> {
  const served = (await OpenApiChecker.fetch(baseUrl)).document;
  const fragment = JSON.parse(JSON.stringify(AUDIT_OPENAPI)) as { paths: OpenApiDocument['paths']; schemas: Record<string, unknown> };
  return new OpenApiChecker({
    ...served,
    paths: { ...served.paths, ...fragment.paths },
    components: { ...served.components, schemas: { ...served.components.schemas, ...fragment.schemas } },
  });
}
