import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The docs hold together: every relative link of README.md, docs/*.md and the folders' READMEs names a file that
 * exists, and the guides a newcomer needs are reachable from the README (the Rego extension guide was linked from
 * nowhere).
 */
const DOCS = [
  'README.md',
  ...readdirSync('docs').filter((f) => f.endsWith('.md')).map((f) => join('docs', f)),
  ...['src', 'rego/agentpdp/ext', 'bench', 'examples', 'test/fixtures'].flatMap((root) => findReadmes(root)),
];

function findReadmes(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name === 'README.md')
    .map((e) => join(e.parentPath, e.name));
}

function relativeLinks(file: string): string[] {
  const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
  return [...text.matchAll(/\]\(([^)\s#]+)(#[^)]*)?\)/g)].map((m) => m[1] ?? '').filter((target) => !/^[a-z]+:/.test(target));
}

describe('relative links', () => {
  it.each(DOCS)('%s links only to files that exist', (file) => {
    const broken = relativeLinks(file).filter((target) => !existsSync(resolve(dirname(file), target)));
    expect(broken).toEqual([]);
  });
});

it('the README leads to every guide: policies, semantics, the Rego extension guide, PEPs, tokens, compliance, configuration, architecture', () => {
  const links = new Set(relativeLinks('README.md').map((l) => l.replace(/^\.\//, '')));
  for (const guide of [
    'docs/policy-authoring.md',
    'docs/pep-integration.md',
    'docs/tokens.md',
    'docs/compliance.md',
    'docs/configuration.md',
    'docs/architecture.md',
    'rego/agentpdp/ext/README.md',
  ]) {
    expect(links, guide).toContain(guide);
  }
  expect(relativeLinks('docs/policy-authoring.md')).toEqual(expect.arrayContaining(['policy-semantics.md', '../rego/agentpdp/ext/README.md']));
});
