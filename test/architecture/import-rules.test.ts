/**
 * The dependency table of docs/architecture.md (`## Layout`, column `may import`) is the contract; this test reads
 * it from the doc and holds every file under src/ to it. A violation prints as `src/<file>: <specifier> (why)`.
 * The first block runs the checker on made-up inputs, so each rule is seen to fail before it is trusted to pass.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  checkCoverage,
  checkImports,
  importsOf,
  parseDependencyTable,
  TableError,
  type ImportStatement,
  type SourceTree,
} from './import-graph.js';

const SRC = 'src';
const DOC = 'docs/architecture.md';

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

const TABLE = (rows: string): string => `# x\n\n## Layout (one folder per role)\n\nprose\n\n| folder | owns | may import | must never |\n| --- | --- | --- | --- |\n${rows}\n\n## Next\n`;

describe('the checker itself', () => {
  const rules = parseDependencyTable(
    TABLE(
      [
        '| `src/errors/` | e | nothing | x |',
        '| `src/wire/` | w | `errors` | x |',
        '| `src/store/` | s | `errors`, `audit` | x |',
        '| `src/audit/` | a | `errors` | x |',
        '| `src/pdp/` | p | `store` (types), `issuer/verify.ts` | x |',
        '| `src/issuer/` | i | nothing | x |',
        '| `src/main.ts` | m | anything | x |',
      ].join('\n'),
    ),
  );
  const tree: SourceTree = {
    files: ['errors/e.ts', 'wire/w.ts', 'store/index.ts', 'store/sql.ts', 'audit/a.ts', 'pdp/p.ts', 'issuer/verify.ts', 'issuer/keys.ts', 'main.ts'],
    isDir: (p) => ['errors', 'wire', 'store', 'audit', 'pdp', 'issuer'].includes(p),
  };
  const check = (file: string, text: string): string[] => checkImports(rules, importsOf(file, text), tree).map((v) => `${v.specifier}: ${v.why}`);

  it.each([
    { note: 'own files, allowed folders and packages pass', file: 'store/sql.ts', text: "import { a } from './x.js';\nimport { b } from '../errors/e.js';\nimport { c } from '../audit/a.js';\nimport Database from 'better-sqlite3';", expected: [] },
    { note: 'a leaf imports nothing of ours', file: 'errors/e.ts', text: "import type { W } from '../wire/w.js';", expected: ['../wire/w.js: errors may not import wire/'] },
    { note: 'a re-export is an import', file: 'wire/w.ts', text: "export { S } from '../store/index.js';", expected: ['../store/index.js: wire may not import store/'] },
    { note: 'export * is an import', file: 'wire/w.ts', text: "export * from '../audit/a.js';", expected: ['../audit/a.js: wire may not import audit/'] },
    { note: 'a dynamic import is a value import', file: 'pdp/p.ts', text: "const s = await import('../store/index.js');", expected: ['../store/index.js: pdp may import store for types only: use `import type`'] },
    { note: 'a computed dynamic import cannot be checked', file: 'pdp/p.ts', text: 'const s = await import(name);', expected: ['<expression>: dynamic import of a computed specifier: name a string literal'] },
    { note: 'require() counts', file: 'audit/a.ts', text: "const s = require('../store/index.js');", expected: ['../store/index.js: audit may not import store/'] },
    { note: 'types-only allowance takes import type', file: 'pdp/p.ts', text: "import type { Store } from '../store/index.js';\nexport type { Store as S } from '../store/index.js';\ntype T = import('../store/index.js').Store;", expected: [] },
    { note: 'inline type modifiers still load the module', file: 'pdp/p.ts', text: "import { type Store } from '../store/index.js';", expected: ['../store/index.js: pdp may import store for types only: use `import type`'] },
    { note: 'a folder import resolves to its index', file: 'pdp/p.ts', text: "import type { Store } from '../store';", expected: [] },
    { note: 'a folder with an index is imported through it', file: 'main.ts', text: "import { sql } from './store/sql.js';", expected: ['./store/sql.js: store/ has an index.ts: import it through that'] },
    { note: 'a one-file allowance allows that file only', file: 'pdp/p.ts', text: "import { v } from '../issuer/verify.js';\nimport { k } from '../issuer/keys.js';", expected: ['../issuer/keys.js: pdp may not import issuer/keys.ts (of issuer/ only issuer/verify.ts)'] },
    { note: 'leaving src/ is refused', file: 'pdp/p.ts', text: "import pkg from '../../package.json' with { type: 'json' };", expected: ['../../package.json: leaves src/'] },
    { note: 'anything means anything', file: 'main.ts', text: "import { p } from './pdp/p.js';\nimport { k } from './issuer/keys.js';", expected: [] },
    { note: 'a string that looks like an import is not one', file: 'audit/a.ts', text: "const code = `import x from '../store/index.js'`; // import '../pdp/p.js'", expected: [] },
  ])('$note', ({ file, text, expected }) => {
    expect(check(file, text)).toEqual(expected);
  });

  it.each([
    { note: 'no Layout heading', doc: '# x\n| folder | may import |\n| --- | --- |\n| `src/a/` | nothing |' },
    { note: 'no may-import column', doc: '## Layout\n\n| folder | owns |\n| --- | --- |\n| `src/a/` | x |' },
    { note: 'no rows', doc: TABLE('') },
    { note: 'a folder cell that is not src/<name>/', doc: TABLE('| errors | e | nothing | x |') },
    { note: 'an entry it cannot read', doc: TABLE('| `src/a/` | e | errors and wire | x |') },
    { note: 'an unknown qualifier', doc: TABLE('| `src/a/` | e | `errors` (values) | x |') },
    { note: 'a row with a missing cell', doc: TABLE('| `src/a/` | e | nothing |') },
    { note: 'two rows for one folder', doc: TABLE('| `src/a/` | e | nothing | x |\n| `src/a/` | e | nothing | x |') },
  ])('refuses a table with $note', ({ doc }) => {
    expect(() => parseDependencyTable(doc)).toThrow(TableError);
  });

  it('finds folders without a row and rows without a folder', () => {
    expect(checkCoverage(rules, tree, ['errors', 'wire', 'store', 'audit', 'pdp', 'issuer', 'main.ts', 'cli', 'index.ts'])).toEqual([
      'src/cli/ has no row in the table',
      'src/index.ts has no row in the table',
    ]);
    expect(checkCoverage(rules, { ...tree, files: tree.files.filter((f) => f !== 'issuer/verify.ts') }, ['errors', 'wire', 'store', 'audit', 'pdp', 'issuer'])).toEqual([
      'row src/pdp/: may-import entry issuer/verify.ts names nothing that exists',
      'row src/main.ts names nothing that exists',
    ]);
  });
});

describe('src/ against the table in docs/architecture.md', () => {
  const rules = parseDependencyTable(readFileSync(DOC, 'utf8'));
  const files = walk(SRC).map((f) => relative(SRC, f).split('\\').join('/'));
  const sources = files.filter((f) => f.endsWith('.ts'));
  const tree: SourceTree = { files: sources, isDir: (p) => statSync(join(SRC, p), { throwIfNoEntry: false })?.isDirectory() ?? false };
  const folders = readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  const topLevel = [...folders, ...readdirSync(SRC).filter((f) => f.endsWith('.ts'))];
  const imports: ImportStatement[] = sources.flatMap((f) => importsOf(f, readFileSync(join(SRC, f), 'utf8')));

  it('reads a row for each folder and root file, and finds the imports it checks', () => {
    expect(rules.length).toBeGreaterThanOrEqual(10);
    expect(rules.find((r) => r.module === 'errors')).toEqual({ module: 'errors', anything: false, allows: [] });
    expect(imports.filter((i) => i.specifier.startsWith('.') && !i.specifier.startsWith('./')).length).toBeGreaterThan(100);
  });

  it('every folder under src/ and every root file has exactly one row, and every row names something that exists', () => {
    expect(checkCoverage(rules, tree, topLevel)).toEqual([]);
  });

  it('every import of ours is one the table allows', () => {
    expect(checkImports(rules, imports, tree).map((v) => `${v.file}: ${v.specifier} (${v.why})`)).toEqual([]);
  });

  it('every folder of more than three files has a README.md', () => {
    const missing = folders.filter((d) => files.filter((f) => f.startsWith(`${d}/`) && !f.endsWith('/README.md')).length > 3 && !files.includes(`${d}/README.md`));
    expect(missing.map((d) => `src/${d}/README.md`)).toEqual([]);
  });
});
