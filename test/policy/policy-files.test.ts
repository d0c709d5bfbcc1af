import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isPdpError, type PdpError } from '../../src/errors/pdp-error.js';
import { checkBundlePermissions } from '../../src/policy/bundle-reader.js';
import { buildPolicySet, loadPolicyDir, type PolicyLoadOptions } from '../../src/policy/policy-loader.js';
import { policyDir, SEED_POLICY } from './policy-fixtures.js';

/*
 * What the loader reads and what it refuses before parsing (issue 13, items 5 and 10): permissions that let
 * someone else change the policy, symbolic links out of the directory, files too large or too full; and the
 * list of files, each with its SHA-256, that a loaded set came from.
 */

const sha256 = (bytes: string | Buffer): string => createHash('sha256').update(bytes).digest('hex');

async function refusal(dir: string, options?: PolicyLoadOptions): Promise<PdpError> {
  try {
    await loadPolicyDir(dir, options);
  } catch (err) {
    if (isPdpError(err)) return err;
    throw err;
  }
  throw new Error('expected the policy set to be refused');
}

const scratch: string[] = [];
afterAll(async () => {
  await Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true })));
});
async function scratchDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'agent-pdp-files-'));
  scratch.push(dir);
  return dir;
}

describe('permissions: nobody but the owner may change what agents are granted', () => {
  it.each([
    { note: 'a group-writable file', path: 'agents/a.yaml', mode: 0o664, file: 'agents/a.yaml', message: /^file writable by group or others \(mode 0664\)/ },
    { note: 'a world-writable file', path: 'agents/a.yaml', mode: 0o666, file: 'agents/a.yaml', message: /^file writable by group or others \(mode 0666\)/ },
    { note: 'a world-writable sub-folder', path: 'agents', mode: 0o777, file: 'agents', message: /^folder writable by group or others \(mode 0777\)/ },
    { note: 'a world-writable policy directory', path: '.', mode: 0o777, file: '.', message: /^folder writable by group or others \(mode 0777\)/ },
    { note: 'a world-writable policy directory with the sticky bit', path: '.', mode: 0o1777, file: '.', message: /mode 01777/ },
  ])('refuses $note, naming it', async ({ path, mode, file, message }) => {
    const dir = await policyDir({ 'agents/a.yaml': SEED_POLICY });
    await chmod(join(dir, path), mode);
    const err = await refusal(dir);
    expect(err.code).toBe('policy_invalid');
    expect(err.message).toMatch(/are refused \(1 problem; first: /);
    expect(err.details).toEqual([{ path: '', file, message: expect.stringMatching(message) }]);
    expect(err.details[0]?.message).toMatch(/chmod go-w/);
  });

  it('loads them with allowInsecurePermissions, with an INSECURE warning for each', async () => {
    const dir = await policyDir({ 'agents/a.yaml': SEED_POLICY });
    await chmod(join(dir, 'agents'), 0o777);
    await chmod(join(dir, 'agents/a.yaml'), 0o666);
    const set = await loadPolicyDir(dir, { allowInsecurePermissions: true });
    expect(set.agents).toEqual(['code-review-agent']);
    expect(set.warnings).toEqual([
      { path: '', file: 'agents', message: expect.stringMatching(/^INSECURE: folder writable .*allow_insecure_permissions is true\)$/) },
      { path: '', file: 'agents/a.yaml', message: expect.stringMatching(/^INSECURE: file writable .*allow_insecure_permissions is true\)$/) },
    ]);
  });

  it('refuses a folder above the directory that others may write, unless it has the sticky bit', async () => {
    const outer = join(await scratchDir(), 'shared');
    await mkdir(join(outer, 'policies'), { recursive: true, mode: 0o755 });
    await writeFile(join(outer, 'policies', 'a.yaml'), SEED_POLICY, { mode: 0o644 });
    await chmod(outer, 0o777);
    const err = await refusal(join(outer, 'policies'));
    expect(err.details).toEqual([{ path: '', file: outer, message: expect.stringMatching(/is writable by group or others \(mode 0777\): whoever can write it can replace/) }]);
    await chmod(outer, 0o1777); // like /tmp: others cannot rename what they do not own
    expect((await loadPolicyDir(join(outer, 'policies'))).agents).toEqual(['code-review-agent']);
  });

  it('lists every problem at once', async () => {
    const dir = await policyDir({ 'a.yaml': SEED_POLICY, 'b/b.yaml': SEED_POLICY.replace('code-review-agent', 'b') });
    await chmod(join(dir, 'a.yaml'), 0o666);
    await chmod(join(dir, 'b'), 0o775);
    const err = await refusal(dir);
    expect(err.details.map((d) => d.file).sort()).toEqual(['a.yaml', 'b']);
  });
});

describe('symbolic links', () => {
  it('does not follow a link to a file outside the directory', async () => {
    const outside = join(await scratchDir(), 'elsewhere.yaml');
    await writeFile(outside, SEED_POLICY, { mode: 0o644 });
    const dir = await policyDir({ 'agents/ok.yaml': SEED_POLICY.replace('code-review-agent', 'ok') });
    await symlink(outside, join(dir, 'agents', 'evil.yaml'));
    const err = await refusal(dir);
    expect(err.code).toBe('policy_invalid');
    expect(err.details).toEqual([{ path: '', file: 'agents/evil.yaml', message: `is a symbolic link to ${outside}, outside the policy directory: not followed` }]);
  });

  it('does not follow a relative link that climbs out of the directory', async () => {
    const dir = await policyDir({ 'agents/ok.yaml': SEED_POLICY });
    await symlink('../..', join(dir, 'agents', 'up.yaml'));
    const err = await refusal(dir);
    expect(err.details.find((d) => d.file === 'agents/up.yaml')?.message).toMatch(/outside the policy directory/);
  });

  it('follows a link that stays inside (a Kubernetes ConfigMap: name.yaml -> ..data/name.yaml), hidden folders included', async () => {
    const dir = await policyDir({ '..2026_01_01_00_00_00.1/agent.yaml': SEED_POLICY });
    await symlink('..2026_01_01_00_00_00.1', join(dir, '..data'));
    await symlink('..data/agent.yaml', join(dir, 'agent.yaml'));
    const set = await loadPolicyDir(dir);
    expect(set.agents).toEqual(['code-review-agent']);
    expect(set.files).toEqual([{ path: 'agent.yaml', sha256: sha256(SEED_POLICY) }]);
  });

  it('checks the hidden folders a link leads through', async () => {
    const dir = await policyDir({ '..real/agent.yaml': SEED_POLICY });
    await symlink('..real/agent.yaml', join(dir, 'agent.yaml'));
    await chmod(join(dir, '..real'), 0o777);
    expect((await refusal(dir)).details).toEqual([{ path: '', file: '..real', message: expect.stringMatching(/^folder writable by group or others/) }]);
  });

  it('follows the policy directory itself through a link', async () => {
    const dir = await policyDir({ 'a.yaml': SEED_POLICY });
    const link = join(await scratchDir(), 'current');
    await symlink(dir, link);
    expect((await loadPolicyDir(link)).files.map((f) => f.path)).toEqual(['a.yaml']);
  });
});

describe('files: the policy files a set came from, with their SHA-256', () => {
  it('lists every file read, sorted, with the digest of its bytes', async () => {
    const role = 'role_policy:\n  id: r\n  integrations:\n    github: { max_scope: [repo:read] }\n';
    const dir = await policyDir({ 'roles/r.yaml': role, 'agents/a.yml': SEED_POLICY });
    const set = await loadPolicyDir(dir);
    expect(set.files).toEqual([
      { path: 'agents/a.yml', sha256: sha256(await readFile(join(dir, 'agents/a.yml'))) },
      { path: 'roles/r.yaml', sha256: sha256(role) },
    ]);
    expect(Object.isFrozen(set.files[0])).toBe(true);
  });

  it('hashes the bytes, not their decoding: invalid UTF-8 gets the digest sha256sum prints', async () => {
    const dir = await policyDir({ 'a.yaml': SEED_POLICY });
    const bytes = Buffer.concat([Buffer.from(SEED_POLICY), Buffer.from('# \xff\xfe\n', 'latin1')]);
    await writeFile(join(dir, 'a.yaml'), bytes);
    expect((await loadPolicyDir(dir)).files).toEqual([{ path: 'a.yaml', sha256: sha256(bytes) }]);
  });

  it('hashes in-memory sources as UTF-8', () => {
    expect(buildPolicySet([{ file: 'a.yaml', text: SEED_POLICY }]).files).toEqual([{ path: 'a.yaml', sha256: sha256(SEED_POLICY) }]);
  });
});

describe('limits: a file too large or too full is refused before it is parsed', () => {
  const bigScopes = (n: number): string =>
    `integration:\n  id: big\n  scopes:\n${Array.from({ length: n }, (_, i) => `    - scope:${i}\n`).join('')}`;

  it('refuses a file above maxFileBytes, naming it, without parsing it', async () => {
    // Not YAML at all: had it been parsed, the error would be a syntax error.
    const dir = await policyDir({ 'agents/a.yaml': SEED_POLICY, 'agents/huge.yaml': `agent_policy: [${'x'.repeat(2 * 1024 * 1024)}` });
    const err = await refusal(dir);
    expect(err.code).toBe('policy_invalid');
    expect(err.details).toEqual([
      { path: '', file: 'agents/huge.yaml', message: `is ${2 * 1024 * 1024 + 15} bytes, more than the limit of 1048576 bytes per policy file (policy.max_file_bytes): not parsed` },
    ]);
    expect(err.message).toMatch(/agents\/huge\.yaml is \d+ bytes, more than the limit/);
  });

  it('takes the limit from the options, for files and in-memory sources alike', async () => {
    const dir = await policyDir({ 'a.yaml': SEED_POLICY });
    expect((await refusal(dir, { maxFileBytes: 100 })).details[0]?.message).toBe(
      `is ${Buffer.byteLength(SEED_POLICY)} bytes, more than the limit of 100 bytes per policy file (policy.max_file_bytes): not parsed`,
    );
    expect(() => buildPolicySet([{ file: 'a.yaml', text: SEED_POLICY }], '<memory>', { maxFileBytes: 100 })).toThrow(
      expect.objectContaining({ details: [expect.objectContaining({ file: 'a.yaml', message: expect.stringMatching(/more than the limit of 100 bytes/) })] }),
    );
    expect((await loadPolicyDir(dir, { maxFileBytes: SEED_POLICY.length })).agents).toEqual(['code-review-agent']);
  });

  it('refuses a file with more map entries and list items than maxEntriesPerFile', async () => {
    const dir = await policyDir({ 'integrations/big.yaml': bigScopes(10_001) });
    const err = await refusal(dir);
    expect(err.details).toEqual([
      { path: '', file: 'integrations/big.yaml', line: 1, column: 1, message: 'holds more than 10000 map entries and list items (policy.max_entries_per_file): not loaded' },
    ]);
    expect((await loadPolicyDir(dir, { maxEntriesPerFile: 20_000 })).integrations).toEqual({ big: {} });
  });

  it('refuses a file whose aliases would expand it (a "billion laughs")', async () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) levels.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`);
    const dir = await policyDir({ 'bomb.yaml': `${levels.join('\n')}\n`, 'ok.yaml': SEED_POLICY });
    const err = await refusal(dir);
    expect(err.details).toEqual([{ path: '', file: 'bomb.yaml', line: 1, column: 1, message: expect.stringMatching(/alias/i) }]);
  });
});

describe('the bundle', () => {
  it('refuses a bundle others may write with bundle_invalid, or warns when allowed', async () => {
    const dir = await scratchDir();
    const bundle = join(dir, 'bundle.tar.gz');
    await copyFile('opa-bundle/bundle.tar.gz', bundle);
    await chmod(bundle, 0o644);
    expect(await checkBundlePermissions(bundle, false)).toEqual([]);
    await chmod(bundle, 0o666);
    await expect(checkBundlePermissions(bundle, false)).rejects.toMatchObject({
      code: 'bundle_invalid',
      details: [{ path: '', file: bundle, message: expect.stringMatching(/^policy bundle writable by group or others \(mode 0666\)/) }],
    });
    expect(await checkBundlePermissions(bundle, true)).toEqual([{ path: '', file: bundle, message: expect.stringMatching(/^INSECURE: policy bundle writable/) }]);
    await chmod(bundle, 0o644);
    await chmod(dir, 0o777);
    await expect(checkBundlePermissions(bundle, false)).rejects.toMatchObject({ details: [expect.objectContaining({ file: dir })] });
    await chmod(dir, 0o700);
  });

  it('leaves a missing bundle to the reader', async () => {
    expect(await checkBundlePermissions('/nonexistent/bundle.tar.gz', false)).toEqual([]);
  });
});

describe('special files', () => {
  it('refuses a link to a FIFO without waiting for a writer', async () => {
    const dir = await policyDir({ 'a.yaml': SEED_POLICY });
    execFileSync('mkfifo', ['-m', '0644', join(dir, '.pipe')]);
    await symlink('.pipe', join(dir, 'pipe.yaml'));
    expect((await refusal(dir)).details).toEqual([{ path: '', file: 'pipe.yaml', message: 'is not a regular file' }]);
  });
});
