/** The served OpenAPI document, which describes the audit routes like every other (built from the route table). */
import { OpenApiChecker } from '../support/openapi-check.js';

export async function auditApiChecker(baseUrl: string): Promise<OpenApiChecker> {
  return OpenApiChecker.fetch(baseUrl);
}
