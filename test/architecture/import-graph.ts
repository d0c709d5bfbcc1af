/**
 * The pieces of the import-rules test: the `may import` table of docs/architecture.md as data, every import of a
 * source file (parsed with the TypeScript compiler, not a regex), and the check of one against the other. Pure
 * functions over text, so the test can feed them small made-up inputs and see each rule fail.
 */
import { posix } from 'node:path';
import ts from 'typescript';

/** One entry of a `may import` cell. */
export interface Allowance {
  /** A folder (`errors`), a root file (`main.ts`) or one file in a folder (`issuer/metadata.ts`). */
  target: string;
  typesOnly: boolean;
}

/** One row of the table: a folder (`errors`) or a root file (`main.ts`), relative to `src/`. */
export interface ModuleRule {
  module: string;
  anything: boolean;
  allows: Allowance[];
}

export interface ImportStatement {
  /** Path of the importing file relative to `src/`, e.g. `cli/commands.ts`. */
  file: string;
  /** The specifier as written; `<expression>` for a dynamic import of a non-literal. */
  specifier: string;
  typeOnly: boolean;
  kind: 'import' | 'export' | 'dynamic' | 'require' | 'import-type';
}

export interface Violation {
  file: string;
  specifier: string;
  why: string;
}

/** Thrown when the doc's table cannot be read as a dependency table. */
export class TableError extends Error {}

const NAME = /^[a-z][a-z0-9-]*$/;
const FILE = /^[a-z][a-z0-9-]*\.ts$/;

function cell(text: string): string {
  return text.trim().replaceAll('`', '').trim();
}

function parseModule(text: string): string {
  const m = /^src\/([a-z][a-z0-9-]*\/|[a-z][a-z0-9-]*\.ts)$/.exec(cell(text));
  if (!m) throw new TableError(`folder cell "${text.trim()}" is neither \`src/<folder>/\` nor \`src/<file>.ts\``);
  return (m[1] as string).replace(/\/$/, '');
}

function parseAllowance(entry: string, row: string): Allowance {
  const m = /^([a-z0-9./-]+)(\s*\(types\))?$/.exec(cell(entry));
  const target = m?.[1] ?? '';
  const parts = target.split('/');
  const wellFormed = (parts.length === 1 && (NAME.test(target) || FILE.test(target))) || (parts.length === 2 && NAME.test(parts[0] as string) && FILE.test(parts[1] as string));
  if (!m || !wellFormed) throw new TableError(`row ${row}: cannot read may-import entry "${entry.trim()}"`);
  return { target, typesOnly: m[2] !== undefined };
}

/**
 * The table under the `## Layout` heading. Fails on a missing heading, table or `folder` / `may import` column,
 * a row with the wrong number of cells, a duplicate row, and any cell it cannot read.
 */
export function parseDependencyTable(markdown: string): ModuleRule[] {
  const lines = markdown.split('\n');
  const heading = lines.findIndex((l) => /^##\s+Layout\b/.test(l));
  if (heading < 0) throw new TableError('no "## Layout" heading');
  const first = lines.findIndex((l, i) => i > heading && l.trim().startsWith('|'));
  if (first < 0 || lines.slice(heading + 1, first).some((l) => l.startsWith('#'))) throw new TableError('no table under "## Layout"');
  const rows: string[][] = [];
  for (let i = first; i < lines.length && (lines[i] as string).trim().startsWith('|'); i++) {
    const line = (lines[i] as string).trim();
    if (!line.endsWith('|')) throw new TableError(`table line ${i + 1} does not end with "|"`);
    rows.push(line.slice(1, -1).split('|').map((c) => c.trim()));
  }
  const [header, separator, ...body] = rows;
  if (!header || !separator || !separator.every((c) => /^:?-{3,}:?$/.test(c))) throw new TableError('the Layout table has no header row');
  const folderAt = header.findIndex((c) => cell(c) === 'folder');
  const mayAt = header.findIndex((c) => cell(c) === 'may import');
  if (folderAt < 0 || mayAt < 0) throw new TableError(`the Layout table has no "folder" or "may import" column: ${header.join(' | ')}`);
  if (body.length === 0) throw new TableError('the Layout table has no rows');

  const rules: ModuleRule[] = [];
  for (const row of body) {
    if (row.length !== header.length) throw new TableError(`row "${row.join(' | ')}" has ${row.length} cells, the header ${header.length}`);
    const module = parseModule(row[folderAt] as string);
    if (rules.some((r) => r.module === module)) throw new TableError(`${module} has two rows`);
    const may = cell(row[mayAt] as string);
    if (may === 'anything') rules.push({ module, anything: true, allows: [] });
    else if (may === 'nothing') rules.push({ module, anything: false, allows: [] });
    else rules.push({ module, anything: false, allows: (row[mayAt] as string).split(',').map((e) => parseAllowance(e, module)) });
  }
  return rules;
}

function literal(node: ts.Node | undefined): string | undefined {
  return node && (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) ? node.text : undefined;
}

/** Every module reference in one file: static imports and re-exports, `import()`, `require()`, `import('x').T`. */
export function importsOf(file: string, text: string): ImportStatement[] {
  const found: ImportStatement[] = [];
  const add = (specifier: string, typeOnly: boolean, kind: ImportStatement['kind']): void => {
    found.push({ file, specifier, typeOnly, kind });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      add(literal(node.moduleSpecifier) ?? '<expression>', node.importClause?.isTypeOnly ?? false, 'import');
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      add(literal(node.moduleSpecifier) ?? '<expression>', node.isTypeOnly, 'export');
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(literal(node.moduleReference.expression) ?? '<expression>', node.isTypeOnly, 'import');
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(literal(node.arguments[0]) ?? '<expression>', false, 'dynamic');
    } else if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'require' && literal(node.arguments[0])) {
      add(literal(node.arguments[0]) as string, false, 'require');
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(literal(node.argument.literal) ?? '<expression>', true, 'import-type');
    }
    ts.forEachChild(node, visit);
  };
  visit(ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS));
  return found;
}

/** `cli/commands.ts` → `cli`; `main.ts` → `main.ts`. */
export function moduleOf(path: string): string {
  return path.includes('/') ? (path.split('/')[0] as string) : path;
}

/**
 * The file a relative specifier names, relative to `src/` (`../store/index.js` from `pdp/x.ts` → `store/index.ts`),
 * or undefined when it leaves `src/`. `isDir` tells a folder import (`../store`) from a file.
 */
export function resolveSpecifier(from: string, specifier: string, isDir: (path: string) => boolean): string | undefined {
  const joined = posix.normalize(posix.join(posix.dirname(from), specifier));
  if (joined === '..' || joined.startsWith('../')) return undefined;
  if (/\.[cm]?js$/.test(joined)) return joined.replace(/\.([cm]?)js$/, '.$1ts');
  if (/\.[cm]?ts$/.test(joined)) return joined;
  return isDir(joined) ? `${joined}/index.ts` : joined;
}

export interface SourceTree {
  /** Every source file, relative to `src/`. */
  files: string[];
  isDir(path: string): boolean;
}

/** Every import of ours the table does not allow, and every import the checker cannot follow. */
export function checkImports(rules: ModuleRule[], imports: ImportStatement[], tree: SourceTree): Violation[] {
  const violations: Violation[] = [];
  const folderIndex = new Set(tree.files.filter((f) => /^[^/]+\/index\.ts$/.test(f)).map(moduleOf));
  for (const i of imports) {
    const flag = (why: string): void => {
      violations.push({ file: `src/${i.file}`, specifier: i.specifier, why });
    };
    if (i.specifier === '<expression>') {
      flag('dynamic import of a computed specifier: name a string literal');
      continue;
    }
    if (!i.specifier.startsWith('.')) continue; // a package (node:, npm): not the table's business
    const target = resolveSpecifier(i.file, i.specifier, tree.isDir);
    if (target === undefined) {
      flag('leaves src/');
      continue;
    }
    const from = moduleOf(i.file);
    const to = moduleOf(target);
    if (from === to) continue;
    const rule = rules.find((r) => r.module === from);
    if (!rule) {
      flag(`${from} has no row in the docs/architecture.md table`);
      continue;
    }
    if (folderIndex.has(to) && target !== `${to}/index.ts`) flag(`${to}/ has an index.ts: import it through that`);
    if (rule.anything) continue;
    const allowance = rule.allows.find((a) => a.target === to || a.target === target);
    if (!allowance) {
      const files = rule.allows.filter((a) => a.target.startsWith(`${to}/`)).map((a) => a.target);
      flag(`${from} may not import ${files.length === 0 ? `${to}/` : `${target} (of ${to}/ only ${files.join(', ')})`}`);
    } else if (allowance.typesOnly && !i.typeOnly) flag(`${from} may import ${to} for types only: use \`import type\``);
  }
  return violations;
}

/** Table rows naming a folder or file that does not exist, and folders or root files with no row. */
export function checkCoverage(rules: ModuleRule[], tree: SourceTree, topLevel: string[]): string[] {
  const problems: string[] = [];
  const shown = (m: string): string => `src/${m}${m.endsWith('.ts') ? '' : '/'}`;
  const rows = new Set(rules.map((r) => r.module));
  for (const m of topLevel) if (!rows.has(m)) problems.push(`${shown(m)} has no row in the table`);
  for (const r of rules) {
    if (!topLevel.includes(r.module)) problems.push(`row ${shown(r.module)} names nothing that exists`);
    for (const a of r.allows) {
      const exists = a.target.includes('/') ? tree.files.includes(a.target) : topLevel.includes(a.target);
      if (!exists) problems.push(`row ${shown(r.module)}: may-import entry ${a.target} names nothing that exists`);
      if (moduleOf(a.target) === r.module) problems.push(`row ${shown(r.module)}: lists itself`);
    }
  }
  return problems;
}
