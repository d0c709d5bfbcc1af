/**
 * `agent-pdp/mcp` ships on its own, like `agent-pdp/pep` (src/mcp/README.md): its own files, the PEP SDK through its
 * index, the wire's types (and the one wire file with no imports of its own, `decision-v1.ts`, for the id and scope
 * patterns), and the MCP SDK the application brings, `jose` (the PEP SDK's one package) and node:http's types. Nothing of the server side.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importsOf, type ImportStatement } from '../support/module-imports.js';

function allowed(i: ImportStatement): boolean {
  if (/^\.\/[a-z-]+\.js$/.test(i.specifier)) return true;
  if (i.specifier === '../pep/index.js' || i.specifier === '../wire/decision-v1.js') return true;
  if (/^\.\.\/wire\/[a-z0-9-]+\.js$/.test(i.specifier)) return i.typeOnly;
  if (i.specifier.startsWith('@modelcontextprotocol/sdk/')) return true;
  return i.specifier === 'jose' || (i.specifier === 'node:http' && i.typeOnly);
}

describe('src/mcp import boundary', () => {
  const statements = importsOf('src/mcp');

  it('finds the imports it checks', () => {
    expect(statements.some((i) => i.specifier === '../pep/index.js')).toBe(true);
    expect(statements.some((i) => i.specifier.startsWith('@modelcontextprotocol/sdk/'))).toBe(true);
  });

  it('imports only its own files, the PEP SDK, wire types, the MCP SDK, jose and node:http types', () => {
    expect(statements.filter((i) => !allowed(i)).map((i) => `${i.file}: ${i.typeOnly ? 'type ' : ''}${i.specifier}`)).toEqual([]);
  });

  it('the one wire file it imports at run time imports nothing at run time', () => {
    const text = readFileSync('src/wire/decision-v1.ts', 'utf8');
    const runtime = [...text.matchAll(/^\s*import\s+(?!type\b)[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1]);
    expect(runtime).toEqual([]);
  });
});
