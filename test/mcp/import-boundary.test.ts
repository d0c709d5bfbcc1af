/**
 * `agent-pdp/mcp` ships on its own, like `agent-pdp/pep` (src/mcp/README.md): its own files, the PEP SDK through its
 * index, the wire's types (and the one wire file with no imports of its own, `decision-v1.ts`, for the id and scope
 * patterns), and the MCP SDK the application brings, `jose` (the PEP SDK's one package) and node:http's types. Nothing of the server side.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

interface ImportStatement {
  file: string;
  specifier: string;
  typeOnly: boolean;
}

function importsOf(dir: string): ImportStatement[] {
  const found: ImportStatement[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const text = readFileSync(join(dir, file), 'utf8');
    expect(text, `${file} must not use dynamic import()`).not.toMatch(/\bimport\s*\(/);
    for (const m of text.matchAll(/^\s*(import|export)(\s+type)?\b[^;]*?\bfrom\s+'([^']+)'/gms)) {
      found.push({ file, specifier: m[3] ?? '', typeOnly: m[2] !== undefined });
    }
    for (const m of text.matchAll(/^\s*import\s+'([^']+)'/gm)) found.push({ file, specifier: m[1] ?? '', typeOnly: false });
  }
  return found;
}

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
