/**
 * `agent-pdp/pep` ships on its own: src/pep imports nothing of the server side (src/pep/README.md). Allowed:
 * its own files, type-only imports of src/wire, the issuer's verification leaf (four files that import only
 * `jose`, each other and wire types), the `jose` package, and Node's `node:crypto` (the receiver's webhook signature
 * check, src/pep/webhook-signature.ts).
 */
import { describe, expect, it } from 'vitest';
import { importsOf, type ImportStatement } from '../support/module-imports.js';

const ISSUER_LEAF = ['../issuer/bearer-header.js', '../issuer/token-claims.js', '../issuer/verification-error.js', '../issuer/verify-access-token.js'];

function allowed(i: ImportStatement): boolean {
  if (/^\.\/[a-z-]+\.js$/.test(i.specifier)) return true;
  if (/^\.\.\/wire\/[a-z0-9-]+\.js$/.test(i.specifier)) return i.typeOnly;
  return ISSUER_LEAF.includes(i.specifier) || i.specifier === 'jose' || (i.specifier === 'node:crypto' && i.file === 'webhook-signature.ts');
}

describe('src/pep import boundary', () => {
  const statements = importsOf('src/pep');

  it('finds the imports it checks', () => {
    expect(statements.length).toBeGreaterThan(10);
    expect(statements.some((i) => i.specifier === 'jose')).toBe(true);
  });

  it('imports only its own files, wire types, the issuer verification leaf, jose, and node:crypto for webhook signatures', () => {
    expect(statements.filter((i) => !allowed(i)).map((i) => `${i.file}: ${i.typeOnly ? 'type ' : ''}${i.specifier}`)).toEqual([]);
  });

  it('the issuer leaf it imports imports only jose and itself', () => {
    const leaf = importsOf('src/issuer').filter((i) => ISSUER_LEAF.includes(`../issuer/${i.file.replace(/\.ts$/, '.js')}`));
    expect(new Set(leaf.map((i) => i.file))).toEqual(new Set(['verify-access-token.ts', 'token-claims.ts']));
    const wireTypes = (i: ImportStatement): boolean => i.typeOnly && /^\.\.\/wire\/[a-z0-9-]+\.js$/.test(i.specifier);
    expect(leaf.filter((i) => i.specifier !== 'jose' && !wireTypes(i) && !ISSUER_LEAF.includes(`../issuer/${i.specifier.slice(2)}`))).toEqual([]);
  });
});
