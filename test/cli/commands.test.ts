import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { buildConfig } from '../../src/config/config-loader.js';
import { sha256Hex } from '../../src/config/dev-keys.js';
import { CLI, ensureBuilt } from '../audit-e2e/cli.js';

/** The `agent-pdp` binary as an operator meets it: help per command, version, key tools, clear usage errors. */

const run = (args: string[], input?: string) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', input, env: { ...process.env, AGENT_PDP_CONFIG: '' } });

beforeAll(() => ensureBuilt(), 120_000);

describe('help and version', () => {
  it('--version prints the package version', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    expect(run(['--version'])).toMatchObject({ status: 0, stdout: `agent-pdp ${pkg.version}\n` });
  });

  it.each([
    { args: ['decide', '--help'], want: ['usage: agent-pdp decide', '--input', '--bundle'] },
    { args: ['keys', 'rotate', '--help'], want: ['usage: agent-pdp keys rotate', '--config'] },
    { args: ['audit', 'export', '--help'], want: ['usage: agent-pdp audit export', '--format'] },
  ])('$args prints that command’s own help', ({ args, want }) => {
    const res = run(args);
    expect(res.status).toBe(0);
    for (const w of want) expect(res.stdout).toContain(w);
    expect(res.stdout).not.toContain('keys hash'); // not the global list
  });

  it('decide: exit 0 on allow, 3 on deny, 2 without --input', () => {
    expect(run(['decide']).status).toBe(2);
    expect(run(['decide', '--input', 'examples/requests/crm-1234.json', '--json']).status).toBe(0);
    const other = JSON.parse(readFileSync('examples/requests/crm-1234.json', 'utf8')) as { resource: { id: string } };
    const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-decide-'));
    const deny = join(dir, 'deny.json');
    writeFileSync(deny, JSON.stringify({ ...other, resource: { ...other.resource, id: '5678' } }));
    const res = run(['decide', '--input', deny, '--json']);
    expect(res.status).toBe(3);
    expect(JSON.parse(res.stdout)).toMatchObject({ outcome: 'deny' });
  });

  it('an unknown option is a usage error that shows the command’s options (exit 2)', () => {
    const res = run(['keys', 'rotate', '--nope']);
    expect(res.status).toBe(2);
    expect(res.stderr).toContain('usage: agent-pdp keys rotate');
  });
});

describe('keys', () => {
  it('keys hash - reads the key from stdin (not the literal "-")', () => {
    const res = run(['keys', 'hash', '-'], 'a-secret-key\n');
    expect(res).toMatchObject({ status: 0, stdout: `${sha256Hex('a-secret-key')}\n` });
    expect(res.stdout).not.toBe(`${sha256Hex('-')}\n`);
  });

  it('keys new prints a fresh key once and the config entry holding only its hash', () => {
    const res = run(['keys', 'new', '--id', 'billing-pep', '--role', 'pep', '--agent', 'billing-agent']);
    expect(res.status).toBe(0);
    const key = /^key: (\S+)$/m.exec(res.stdout)?.[1] ?? '';
    expect(key).toMatch(/^apdp_[A-Za-z0-9_-]{43}$/);
    expect(res.stdout).toContain(`key_sha256: ${sha256Hex(key)}`);
    expect(res.stdout).toContain('agents: ["billing-agent"]');
    expect(run(['keys', 'new', '--id', 'billing-pep', '--role', 'pep']).stdout).not.toContain(key);
  });

  it.each([
    ['keys', 'new', '--id', 'billing-pep', '--role', 'pep', '--agent', 'billing-agent', '--agent', 'support-*'],
    ['keys', 'new', '--id', 'oncall-1', '--role', 'approver', '--group', 'platform-oncall', '--group', 'security'],
    ['keys', 'new', '--id', 'ops', '--role', 'admin'],
  ])('keys new prints an entry the config accepts: %s', (...args) => {
    const res = run(args);
    expect(res.status, res.stderr).toBe(0);
    const entry = parseYaml(res.stdout.slice(res.stdout.indexOf('  - id:'))) as unknown[];
    const { config } = buildConfig({ callers: entry }, '/tmp/agent-pdp.yaml', '/tmp');
    expect(config.callers).toHaveLength(1);
  });

  it.each([
    { args: ['keys', 'new', '--id', 'x'], text: 'pass --role' },
    { args: ['keys', 'new', '--id', 'x', '--role', 'root'], text: 'pass --role' },
    { args: ['keys', 'new', '--id', 'svc@corp', '--role', 'pep'], text: 'pass --id' },
    { args: ['keys', 'new', '--id', 'oncall', '--role', 'approver'], text: '--group' },
    { args: ['keys', 'new', '--id', 'ops', '--role', 'admin', '--agent', 'foo'], text: '--agent is for a pep' },
    { args: ['keys', 'new', '--id', 'p', '--role', 'pep', '--agent', 'c]'], text: 'not an agent id' },
  ])('keys new refuses $args (a usage error, exit 2)', ({ args, text }) => {
    const res = run(args);
    expect(res.status).toBe(2);
    expect(res.stderr).toContain(text);
  });

  it('keys rotate without a config says what to pass', () => {
    const res = run(['keys', 'rotate']);
    expect(res.status).toBe(1);
    expect(res.stderr).toContain('pass --config FILE');
  });
});

it('the binary is the one built from these sources (ensureBuilt rebuilt it if stale)', () => {
  expect(execFileSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' })).toContain('agent-pdp <command> --help');
});
