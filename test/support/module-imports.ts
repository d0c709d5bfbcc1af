/** The import and export-from statements of a folder's `.ts` files, for the import-boundary tests of the SDK entries. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';

export interface ImportStatement {
  file: string;
  specifier: string;
  typeOnly: boolean;
}

/** Every `import … from` / `export … from` / bare `import '…'` of `dir`'s own `.ts` files; a dynamic `import()` fails the test. */
export function importsOf(dir: string): ImportStatement[] {
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
