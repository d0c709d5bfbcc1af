/*
 * Which test files a run reads, and all of them parsed at once: every problem of every file is collected, so an
 * author sees them all in one run, and nothing is run while any file is wrong.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import type { ErrorDetail } from '../errors/pdp-error.js';
import { byLocation } from '../policy/compile-diagnostics.js';
import { parseTestFile, type PolicyTestSuite } from './test-file.js';

/** Where `agent-pdp policy test DIR` looks for test files: a folder the policy loader skips (its name starts with `.`). */
export const DEFAULT_TESTS_FOLDER = '.tests';

const TEST_FILE = /\.ya?ml$/;

export interface LoadedSuites {
  suites: PolicyTestSuite[];
  /** Every problem, located; when not empty, nothing may be run. */
  errors: ErrorDetail[];
}

/**
 * Reads `path` (one test file, or every `*.yaml` / `*.yml` under a folder, recursively, skipping names that start
 * with `.`, in path order). Files are named relative to `base` in suites and errors (absolute when outside it).
 */
export async function loadTestSuites(path: string, base: string): Promise<LoadedSuites> {
  const name = (file: string): string => {
    const rel = relative(base, file);
    return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? file : rel.split(sep).join('/');
  };
  let files: string[];
  try {
    files = (await stat(path)).isDirectory() ? await listFiles(path) : [path];
  } catch (cause) {
    const message =
      (cause as NodeJS.ErrnoException).code === 'ENOENT'
        ? `not found: test files go in the policy directory's ${DEFAULT_TESTS_FOLDER} folder, or pass --tests PATH`
        : `cannot read the tests: ${(cause as Error).message}`;
    return { suites: [], errors: [{ file: name(path), path: '', message }] };
  }
  if (files.length === 0) return { suites: [], errors: [{ file: name(path), path: '', message: 'no test files (*.yaml, *.yml) here' }] };
  const suites: PolicyTestSuite[] = [];
  const errors: ErrorDetail[] = [];
  const bySuite = new Map<string, string>();
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (cause) {
      errors.push({ file: name(file), path: '', message: (cause as Error).message });
      continue;
    }
    const parsed = parseTestFile(text, name(file));
    errors.push(...parsed.errors);
    if (parsed.suite === undefined) continue;
    const other = bySuite.get(parsed.suite.name);
    if (other !== undefined) {
      errors.push({ file: name(file), line: parsed.suite.line, column: 1, path: 'suite', message: `suite ${JSON.stringify(parsed.suite.name)} is also the name of the suite in ${other}` });
    }
    bySuite.set(parsed.suite.name, name(file));
    suites.push(parsed.suite);
  }
  return { suites, errors: errors.sort(byLocation) };
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true });
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(path)));
    else if (TEST_FILE.test(entry.name) && (entry.isFile() || entry.isSymbolicLink())) out.push(path);
  }
  return out;
}
