import { execFileSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadPolicyDir } from '../../src/policy/policy-loader.js';
import type { SuggestionRecord } from '../../src/store/index.js';
import { applySuggestion } from '../../src/suggest/apply.js';
import { suggestPolicies } from '../../src/suggest/engine.js';
import { loadPolicyFolder } from '../../src/suggest/policy-folder.js';
import { sha256 } from '../../src/suggest/suggestion-identity.js';
import { DEFAULT_THRESHOLDS } from '../../src/suggest/suggestion-types.js';
import { unifiedDiff } from '../../src/suggest/unified-diff.js';
import { EditError, editYaml, type YamlEdit } from '../../src/suggest/yaml-edit.js';
import { UsageBuilder } from './usage-builder.js';

/**
 * Applying a suggestion to a real policy folder on disk: only the changed lines move, the folder loads with the
 * narrower policy afterwards, and every refusal (file edited since, a change policy check would refuse, a change
 * that would widen) leaves the file as it was.
 */

const GITHUB = `integration:
  id: github
  scopes: [repo:read, repo:write, pr:read, pr:write, issues:read, admin:org]
  implies:
    repo:write: [repo:read]
`;

// Comments, blank lines, odd spacing, quoting and both list styles: all of it must survive an edit elsewhere.
const AGENT = `# yaml-language-server: $schema=../../schemas/agent-policy.schema.json
#
# The code review agent.   (two spaces here)

agent_policy:
  id: code-review-agent       # the id
  integrations:
    github:
      # The ceiling: repo:write is for the old release job.
      max_scope: [ repo:read,  "pr:read", repo:write ]   # keep aligned
      deny_scope:
        - admin:org     # never
    slack:
      max_scope: [chat:write]

  token_ttl: 3600  # 1 hour
`;

const FILE = 'agents/code-review-agent.yaml';
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'agent-pdp-apply-'));
  write('integrations/github.yaml', GITHUB);
  write(FILE, AGENT, 0o640);
  chmodSync(dir, 0o755);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function write(file: string, text: string, mode = 0o644): void {
  mkdirSync(join(dir, file, '..'), { recursive: true, mode: 0o755 });
  chmodSync(join(dir, file, '..'), 0o755);
  writeFileSync(join(dir, file), text);
  chmodSync(join(dir, file), mode);
}

const read = (file = FILE): string => readFileSync(join(dir, file), 'utf8');

/** The engine's suggestion for the folder as it is: repo:write carried 90 days, only reads used. */
async function removalOfRepoWrite(): Promise<SuggestionRecord> {
  const folder = await loadPolicyFolder(dir);
  const summary = new UsageBuilder()
    .grant({ agent: 'code-review-agent', integration: 'github', scopes: ['repo:read', 'pr:read', 'repo:write'], days: 90, perDay: 2 })
    .use({ agent: 'code-review-agent', integration: 'github', scope: 'repo:read', days: 90 })
    .use({ agent: 'code-review-agent', integration: 'github', scope: 'pr:read', days: 90 })
    .build();
  const run = suggestPolicies({ summary, policy: folder.set, files: folder, thresholds: DEFAULT_THRESHOLDS, now: summary.until });
  const s = run.suggestions.find((x) => x.kind === 'remove_scope' && x.target === 'repo:write');
  if (s === undefined) throw new Error('no removal suggested');
  return { ...s, status: 'open', created_at: summary.until, updated_at: summary.until, decided_by: null, decided_at: null };
}

/** A hand-made suggestion on the file as it is now (what a stored record could hold). */
function handMade(edits: YamlEdit[]): SuggestionRecord {
  const at = '2026-04-01T00:00:00.000Z';
  return {
    id: 'sg_hand',
    agent_id: 'code-review-agent',
    integration: 'github',
    kind: 'remove_scope',
    target: 'x',
    proposal: { summary: 'hand-made', edits, diff: '' },
    evidence: {},
    evidence_hash: 'h',
    file: FILE,
    file_sha256: sha256(read()),
    status: 'open',
    created_at: at,
    updated_at: at,
    decided_by: null,
    decided_at: null,
  };
}

const leftovers = (): string[] => readdirSync(join(dir, 'agents')).filter((f) => f !== 'code-review-agent.yaml');

describe('applySuggestion', () => {
  it('rewrites only the changed line: comments and layout kept byte-for-byte; the folder loads narrower', async () => {
    const record = await removalOfRepoWrite();
    const before = await loadPolicyDir(dir);
    expect(before.data.policies.agents['code-review-agent']?.integrations['github']?.allowed['repo:write']).toBe(true);

    const result = await applySuggestion(record, dir);

    const expected = AGENT.replace('[ repo:read,  "pr:read", repo:write ]', '[ repo:read,  "pr:read" ]');
    expect(read()).toBe(expected);
    expect(result).toMatchObject({ file: FILE, written: true, sha256_before: sha256(AGENT), sha256_after: sha256(expected), new_warnings: [] });
    expect(result.diff).toBe((record.proposal as { diff: string }).diff);
    expect(result.diff).toBe(unifiedDiff(FILE, AGENT, expected));
    expect(lstatSync(join(dir, FILE)).mode & 0o777).toBe(0o640);
    expect(leftovers()).toEqual([]);

    const after = await loadPolicyDir(dir);
    expect(Object.keys(after.data.policies.agents['code-review-agent']?.integrations['github']?.allowed ?? {})).toEqual(['pr:read', 'repo:read']);
    expect(after.revision).not.toBe(before.revision);
    expect(result.revision_after).toBe(after.revision);
  });

  it('the diff is a patch: git apply turns the old file into the new one', async () => {
    const record = await removalOfRepoWrite();
    const { diff } = await applySuggestion(record, dir, { dryRun: true });
    const copy = mkdtempSync(join(tmpdir(), 'agent-pdp-patch-'));
    try {
      mkdirSync(join(copy, 'agents'));
      writeFileSync(join(copy, FILE), AGENT);
      execFileSync('git', ['apply', '-'], { cwd: copy, input: diff });
      expect(readFileSync(join(copy, FILE), 'utf8')).toBe(AGENT.replace('[ repo:read,  "pr:read", repo:write ]', '[ repo:read,  "pr:read" ]'));
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('a dry run returns the diff and writes nothing', async () => {
    const record = await removalOfRepoWrite();
    const result = await applySuggestion(record, dir, { dryRun: true });
    expect(result.written).toBe(false);
    expect(result.diff).toContain('-      max_scope: [ repo:read,  "pr:read", repo:write ]   # keep aligned\n+      max_scope: [ repo:read,  "pr:read" ]   # keep aligned\n');
    expect(read()).toBe(AGENT);
    expect(leftovers()).toEqual([]);
  });

  it('a file edited since the suggestion → suggestion_stale, the file untouched', async () => {
    const record = await removalOfRepoWrite();
    const edited = AGENT.replace('# the id', '# the id (edited by hand)');
    write(FILE, edited, 0o640);
    await expect(applySuggestion(record, dir)).rejects.toMatchObject({ code: 'suggestion_stale', status: 409 });
    expect(read()).toBe(edited);
    expect(leftovers()).toEqual([]);
  });

  it('another process applying to the file (its lock held) → suggestion_stale, the file untouched; a lock left by a dead process is taken over', async () => {
    const record = await removalOfRepoWrite();
    const lock = join(dir, 'agents', `.${FILE.split('/').pop()}.apply-lock`);
    writeFileSync(lock, '');
    await expect(applySuggestion(record, dir)).rejects.toMatchObject({ code: 'suggestion_stale', message: expect.stringContaining('another apply') });
    expect(read()).toBe(AGENT);
    // Two minutes old: its holder died (the lock lasts a check and a rename).
    const old = (Date.now() - 120_000) / 1000;
    utimesSync(lock, old, old);
    const result = await applySuggestion(record, dir);
    expect(result.written).toBe(true);
    expect(read()).not.toBe(AGENT);
    expect(readdirSync(join(dir, 'agents')).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('a file gone from the folder → suggestion_stale', async () => {
    const record = await removalOfRepoWrite();
    rmSync(join(dir, FILE));
    write('agents/renamed.yaml', AGENT);
    await expect(applySuggestion(record, dir)).rejects.toMatchObject({ code: 'suggestion_stale' });
  });

  it('a change policy check would refuse → policy_invalid with its details, the file untouched', async () => {
    // A binding on the removed scope left behind: "bound scope is not in max_scope".
    const bound = AGENT.replace('      deny_scope:\n', '      bind:\n        repo:write: { resource: repository, context: repo }\n      deny_scope:\n');
    write(FILE, bound, 0o640);
    const record = handMade([{ op: 'remove_item', path: ['agent_policy', 'integrations', 'github', 'max_scope'], value: 'repo:write' }]);
    const error = await applySuggestion(record, dir).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'policy_invalid', details: [expect.objectContaining({ file: FILE, message: expect.stringContaining('bound scope "repo:write"') })] });
    expect(read()).toBe(bound);
    expect(leftovers()).toEqual([]);
  });

  it('a change that would widen the policy is refused, the file untouched (never a suggestion of the engine: a stored record is not trusted)', async () => {
    const record = handMade([{ op: 'set', path: ['agent_policy', 'token_ttl'], value: 86400 }]);
    await expect(applySuggestion(record, dir)).rejects.toMatchObject({ code: 'internal', message: expect.stringContaining('token_ttl 3600 → 86400') });
    expect(read()).toBe(AGENT);
  });

  it.each([
    { note: 'no edits', proposal: { edits: [] } },
    { note: 'an edit outside agent_policy', proposal: { edits: [{ op: 'set', path: ['role_policy', 'token_ttl'], value: 1 }] } },
    { note: 'an unknown operation', proposal: { edits: [{ op: 'replace_file', path: ['agent_policy', 'id'] }] } },
    { note: 'a comment to write that holds a newline', proposal: { edits: [{ op: 'set', path: ['agent_policy', 'token_ttl'], value: 60, durationComment: '1 min\n  deny_scope: []' }] } },
    { note: 'no proposal', proposal: null },
  ])('a stored proposal this version cannot read ($note) → invalid_request', async ({ proposal }) => {
    const record = { ...handMade([]), proposal };
    await expect(applySuggestion(record, dir)).rejects.toMatchObject({ code: 'invalid_request' });
    expect(read()).toBe(AGENT);
  });

  it('a file named outside the folder → invalid_request', async () => {
    const record = { ...(await removalOfRepoWrite()), file: '../elsewhere.yaml' };
    await expect(applySuggestion(record, dir)).rejects.toMatchObject({ code: 'invalid_request' });
  });

  it('a symbolic link is not replaced by a file: refused, the link and its target untouched', async () => {
    const record = await removalOfRepoWrite();
    const target = join(dir, 'agents', '.real.yaml');
    writeFileSync(target, AGENT);
    chmodSync(target, 0o644);
    rmSync(join(dir, FILE));
    symlinkSync('.real.yaml', join(dir, FILE));
    await expect(applySuggestion(record, dir)).rejects.toMatchObject({ code: 'invalid_request', message: expect.stringContaining('symbolic link') });
    expect(lstatSync(join(dir, FILE)).isSymbolicLink()).toBe(true);
    expect(readFileSync(target, 'utf8')).toBe(AGENT);
  });
});

describe('editYaml: only the lines of the change move', () => {
  const base = `agent_policy:
  id: a   # id
  integrations:
    github:
      max_scope:
        - repo:read      # reads
        - repo:write     # writes
        - pr:read
      bind:
        repo:write: { resource: repository, context: repo }
        pr:read: { resource: repository, context: repo }
    slack:
      max_scope: [chat:write]
  token_ttl: 900 # 15 minutes
`;
  it.each<{ note: string; text?: string; edits: YamlEdit[]; expected: string }>([
    {
      note: 'a block list item, with its comment',
      edits: [{ op: 'remove_item', path: ['agent_policy', 'integrations', 'github', 'max_scope'], value: 'repo:write' }],
      expected: base.replace('        - repo:write     # writes\n', ''),
    },
    {
      note: 'the first item of a flow list',
      text: base.replace('[chat:write]', '[chat:write, channels:read]'),
      edits: [{ op: 'remove_item', path: ['agent_policy', 'integrations', 'slack', 'max_scope'], value: 'chat:write' }],
      expected: base.replace('[chat:write]', '[channels:read]'),
    },
    {
      note: 'the last item of a flow list: []',
      edits: [{ op: 'remove_item', path: ['agent_policy', 'integrations', 'slack', 'max_scope'], value: 'chat:write' }],
      expected: base.replace('[chat:write]', '[]'),
    },
    {
      note: 'the only item of a block list: [] on the key line',
      text: base.replace('[chat:write]', '\n        - chat:write  # post\n'.trimEnd()),
      edits: [{ op: 'remove_item', path: ['agent_policy', 'integrations', 'slack', 'max_scope'], value: 'chat:write' }],
      expected: base.replace('[chat:write]', '[]'),
    },
    {
      note: 'a key of a block map',
      edits: [{ op: 'remove_key', path: ['agent_policy', 'integrations', 'github', 'bind', 'repo:write'] }],
      expected: base.replace('        repo:write: { resource: repository, context: repo }\n', ''),
    },
    {
      note: 'a scalar: its comment stays',
      edits: [{ op: 'set', path: ['agent_policy', 'token_ttl'], value: 300 }],
      expected: base.replace('token_ttl: 900 # 15 minutes', 'token_ttl: 300 # 15 minutes'),
    },
    {
      note: 'a scalar with durationComment: a comment stating the old duration states the new one; any other comment stays',
      edits: [{ op: 'set', path: ['agent_policy', 'token_ttl'], value: 300, durationComment: '5 min' }],
      expected: base.replace('token_ttl: 900 # 15 minutes', 'token_ttl: 300 # 5 min'),
    },
    {
      note: 'a scalar with durationComment whose comment is not a duration: it stays',
      text: base.replace('token_ttl: 900 # 15 minutes', 'token_ttl: 900  # see INC-42'),
      edits: [{ op: 'set', path: ['agent_policy', 'token_ttl'], value: 300, durationComment: '5 min' }],
      expected: base.replace('token_ttl: 900 # 15 minutes', 'token_ttl: 300  # see INC-42'),
    },
    {
      note: 'a new key at the end of its map, at its indentation',
      edits: [{ op: 'set', path: ['agent_policy', 'per_task_downscope'], value: true }],
      expected: `${base}  per_task_downscope: true\n`,
    },
    {
      note: 'new nested maps, lists in the file\'s flow style',
      text: base.replace('[chat:write]', '[ chat:write ]'),
      edits: [{ op: 'set', path: ['agent_policy', 'task_types', 'review', 'github'], value: ['pr:read', 'repo:read'] }],
      expected: `${base.replace('[chat:write]', '[ chat:write ]')}  task_types:\n    review:\n      github: [ pr:read, repo:read ]\n`,
    },
    {
      note: 'a file without a final newline',
      text: base.trimEnd(),
      edits: [{ op: 'set', path: ['agent_policy', 'per_task_downscope'], value: true }],
      expected: `${base}  per_task_downscope: true\n`,
    },
    {
      note: 'a scope YAML would read as something else is quoted',
      edits: [{ op: 'set', path: ['agent_policy', 'task_types', 'x', 'github'], value: ['*', '@team', '123'] }],
      expected: `${base}  task_types:\n    x:\n      github: ["*", "@team", "123"]\n`,
    },
  ])('$note', ({ text, edits, expected }) => {
    expect(editYaml(text ?? base, edits)).toBe(expected);
  });

  it.each([
    { note: 'an item that is not there', text: base, edits: [{ op: 'remove_item', path: ['agent_policy', 'integrations', 'slack', 'max_scope'], value: 'x' }] },
    { note: 'aliases', text: `x: &a [1]\nagent_policy:\n  id: a\n  y: *a\n`, edits: [{ op: 'set', path: ['agent_policy', 'id'], value: 'b' }] },
    { note: 'a key added to a flow map', text: `agent_policy: { id: a }\n`, edits: [{ op: 'set', path: ['agent_policy', 'token_ttl'], value: 60 }] },
    { note: 'invalid YAML', text: `agent_policy: [\n`, edits: [{ op: 'set', path: ['agent_policy', 'token_ttl'], value: 60 }] },
  ] as Array<{ note: string; text: string; edits: YamlEdit[] }>)('refuses rather than guesses: $note', ({ text, edits }) => {
    expect(() => editYaml(text, edits)).toThrow(EditError);
  });
});

describe('unifiedDiff: a patch git applies', () => {
  const lines = (n: number): string => Array.from({ length: n }, (_, i) => `line ${i + 1}`).join('\n');
  it.each([
    { note: 'two changes far apart: two hunks', before: `${lines(30)}\n`, after: `${lines(30).replace('line 3\n', 'line three\n').replace('line 27\n', '')}\n`, hunks: 2 },
    { note: 'two changes close together: one hunk', before: `${lines(30)}\n`, after: `${lines(30).replace('line 10\n', 'x\n').replace('line 15\n', 'y\n')}\n`, hunks: 1 },
    { note: 'lines added at the end', before: `${lines(5)}\n`, after: `${lines(5)}\nline 6\nline 7\n`, hunks: 1 },
    { note: 'no final newline before, one after', before: lines(5), after: `${lines(5)}\n  per_task_downscope: true\n`, hunks: 1 },
    { note: 'no final newline on either side', before: lines(5), after: lines(5).replace('line 5', 'line five'), hunks: 1 },
    { note: 'everything removed but one line', before: `${lines(4)}\n`, after: 'line 2\n', hunks: 1 },
  ])('$note', ({ before, after, hunks }) => {
    const diff = unifiedDiff('f.yaml', before, after);
    expect(diff.match(/^@@ /gm)).toHaveLength(hunks);
    const copy = mkdtempSync(join(tmpdir(), 'agent-pdp-patch-'));
    try {
      writeFileSync(join(copy, 'f.yaml'), before);
      execFileSync('git', ['apply', '-'], { cwd: copy, input: diff });
      expect(readFileSync(join(copy, 'f.yaml'), 'utf8')).toBe(after);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('equal texts: no diff', () => {
    expect(unifiedDiff('f.yaml', 'a\n', 'a\n')).toBe('');
  });
});
