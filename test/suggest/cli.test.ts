/**
 * `agent-pdp suggest | suggest apply | suggest dismiss` on a real store and policy folder: a real PDP (HTTP on
 * loopback) issues tokens and takes a resource server's usage reports; the CLI, in this process as main.ts would
 * dispatch it, opens the same SQLite file and policy folder through a config written next to them. A small trail
 * with low thresholds: the 90-day trail through the API is the end-to-end test's.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli } from '../../src/cli/run-cli.js';
import { sinceOf } from '../../src/cli/suggest-commands.js';
import type { SuggestionRecord } from '../../src/store/index.js';
import type { SuggestionReportV1 } from '../../src/suggest/report-json.js';
import { auth, KEYS, startTestPdp, TEST_CALLERS, type TestPdp } from '../support/pdp-harness.js';

let t: TestPdp;
let configPath: string;
const FILE = 'agents/code-review-agent.yaml';

beforeAll(async () => {
  t = await startTestPdp();
  configPath = join(t.dir, 'cli-config.json');
  const raw = {
    policy: { bundle: 'bundle.tar.gz', agents: 'policies', watch: false },
    store: { url: 'sqlite:data/pdp.db' },
    issuer: { issuer: 'http://127.0.0.1:8181', keys: 'data/keys' },
    log: { level: 'silent' },
    suggestions: { min_days: 1, min_tokens: 2 },
    callers: TEST_CALLERS,
  };
  writeFileSync(configPath, JSON.stringify(raw, null, 2));
  chmodSync(configPath, 0o600);
  // Three review tasks, a token each with the agent's whole github ceiling; the resource server saw reads of code
  // and pull requests, never of issues.
  for (let i = 0; i < 3; i++) {
    const task = `cli-suggest-${i}`;
    await call('/v1/tasks', KEYS.orchestrator, { id: task, agent_id: 'code-review-agent', type: 'review' }, 201);
    const decision = await call('/v1/decide', KEYS.pep, { agent_id: 'code-review-agent', task: { id: task }, integration: 'github', scopes: ['repo:read', 'pr:read', 'issues:read'] }, 200);
    const token = await call('/v1/tokens', KEYS.pep, { decision_id: decision['decision_id'] }, 201);
    const used = { jti: token['jti'], integration: 'github', used_at: t.clock.now.toISOString() };
    const answer = await call('/v1/usage', KEYS.resource, { reports: [{ ...used, scope: 'repo:read' }, { ...used, scope: 'pr:read' }] }, 202);
    expect(answer).toEqual({ accepted: 2, unknown: 0, rejected: [] });
  }
});
afterAll(async () => t.close());

async function call(path: string, key: string, body: unknown, status: number): Promise<Record<string, unknown>> {
  const res = await fetch(`${t.url}${path}`, { method: 'POST', headers: { ...auth(key), 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status, path).toBe(status);
  return (await res.json()) as Record<string, unknown>;
}

/** `agent-pdp ...args` in this process, stdout and stderr captured. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const capture = (into: (text: string) => void) => (chunk: string | Uint8Array) => {
    into(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  };
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(capture((s) => (stdout += s)) as typeof process.stdout.write);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(capture((s) => (stderr += s)) as typeof process.stderr.write);
  try {
    return { code: await runCli(args), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

const policyFile = (): string => readFileSync(join(t.dir, 'policies', FILE), 'utf8');

async function report(): Promise<SuggestionReportV1> {
  const run = await cli('suggest', '--config', configPath, '--format', 'json');
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as SuggestionReportV1;
}

const byKind = (r: SuggestionReportV1, kind: string): SuggestionRecord => {
  const found = r.suggestions.find((s) => s.kind === kind);
  if (found === undefined) throw new Error(`no ${kind} in ${JSON.stringify(r.suggestions.map((s) => s.kind))}`);
  return found;
};

describe('agent-pdp suggest', () => {
  it('rolls the trail up, suggests from it and saves the suggestions (introspection-free evidence: the reports)', async () => {
    const r = await report();
    expect(r.suggestions.map((s) => `${s.kind} ${s.integration} ${s.target} ${s.status}`)).toEqual(['shorten_ttl * token_ttl open', 'remove_scope github issues:read open']);
    const removal = byKind(r, 'remove_scope');
    expect(removal.evidence).toMatchObject({ sources: ['resource_server'], samples: 3, scope: { granted: 3, used: { proxy: 0, resource_server: 0 } } });
    expect(byKind(r, 'shorten_ttl').proposal).toMatchObject({ from_ttl: 3600, to_ttl: 60 });
    expect(await t.pdp.store.getSuggestion(removal.id)).toMatchObject({ status: 'open', file: FILE });
    expect(r.agents.map((a) => a.agent_id)).toEqual(['code-review-agent']);
  });

  it.each([
    { format: 'md', marker: '## `code-review-agent`' },
    { format: 'html', marker: '<svg class="chart"' },
  ])('--format $format', async ({ format, marker }) => {
    const run = await cli('suggest', '--config', configPath, '--format', format);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(marker);
    expect(run.stderr).toMatch(/^2 suggestions \(\d open\) from \d{4}-\d{2}-\d{2} to/);
  });

  it.each([
    { note: 'an unknown format', args: ['--format', 'pdf'] },
    { note: 'a window in the future', args: ['--since', '2999-01-01'] },
    { note: 'a window of 0 days', args: ['--since', '0d'] },
    { note: 'a ttl factor below 2', args: ['--ttl-factor', '1'] },
  ])('refuses $note (a usage error: exit 2, invalid_request)', async ({ args }) => {
    const run = await cli('suggest', '--config', configPath, ...args);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('invalid_request');
  });
});

describe('a config serving a compiled bundle', () => {
  it('suggest and apply refuse it (no policy folder to read or write), naming why', async () => {
    const compiled = join(t.dir, 'compiled-cli.json');
    writeFileSync(compiled, JSON.stringify({ ...JSON.parse(readFileSync(configPath, 'utf8')), policy: { compiled: 'compiled.tar.gz', watch: false } }));
    chmodSync(compiled, 0o600);
    for (const args of [['suggest', '--config', compiled], ['suggest', 'apply', 'sg_x', '--config', compiled]]) {
      const run = await cli(...args);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('serves a compiled bundle');
    }
  });
});

describe('agent-pdp suggest apply / dismiss', () => {
  it('--dry-run prints the diff and writes nothing', async () => {
    const removal = byKind(await report(), 'remove_scope');
    const before = policyFile();
    const run = await cli('suggest', 'apply', removal.id, '--config', configPath, '--dry-run');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe((removal.proposal as { diff: string }).diff);
    expect(run.stdout).toContain('-      max_scope: [repo:read, pr:read, issues:read]\n+      max_scope: [repo:read, pr:read]\n');
    expect(run.stderr).toContain('dry run');
    expect(policyFile()).toBe(before);
    expect((await t.pdp.store.getSuggestion(removal.id))?.status).toBe('open');
  });

  it('a file edited by hand since → suggestion_stale, the file untouched, the suggestion still open', async () => {
    const removal = byKind(await report(), 'remove_scope');
    const edited = `${policyFile()}# reviewed by hand\n`;
    writeFileSync(join(t.dir, 'policies', FILE), edited);
    try {
      const run = await cli('suggest', 'apply', removal.id, '--config', configPath);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('suggestion_stale');
      expect(policyFile()).toBe(edited);
      expect((await t.pdp.store.getSuggestion(removal.id))?.status).toBe('open');
    } finally {
      writeFileSync(join(t.dir, 'policies', FILE), edited.replace('# reviewed by hand\n', ''));
    }
  });

  it('applies: the file rewritten, the suggestion applied, policy.suggestion.applied in the trail; not twice', async () => {
    const removal = byKind(await report(), 'remove_scope');
    const before = policyFile();
    const run = await cli('suggest', 'apply', removal.id, '--config', configPath, '--as', 'alice', '--note', 'CHG-1042');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(`applied ${removal.id} as alice`);
    expect(policyFile()).toBe(before.replace('[repo:read, pr:read, issues:read]', '[repo:read, pr:read]'));
    expect(await t.pdp.store.getSuggestion(removal.id)).toMatchObject({ status: 'applied', decided_by: 'alice' });
    const events = [];
    for await (const e of t.pdp.store.iterateEvents({ types: ['policy.suggestion.applied'] })) events.push(e);
    expect(events.at(-1)).toMatchObject({
      type: 'policy.suggestion.applied',
      agent_id: 'code-review-agent',
      caller_id: 'alice',
      data: { suggestion_id: removal.id, kind: 'remove_scope', target: 'issues:read', file: FILE, note: 'CHG-1042' },
    });

    const again = await cli('suggest', 'apply', removal.id, '--config', configPath);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('suggestion_decided');
  });

  it('dismisses: the suggestion stays dismissed on the next run while its evidence holds', async () => {
    const ttl = byKind(await report(), 'shorten_ttl');
    const run = await cli('suggest', 'dismiss', ttl.id, '--config', configPath, '--as', 'bob', '--note', 'batch jobs run long');
    expect(run.code, run.stderr).toBe(0);
    const next = await report();
    expect(next.suggestions.find((s) => s.id === ttl.id)).toMatchObject({ status: 'dismissed', decided_by: 'bob' });
    // The applied removal is no longer suggested: issues:read is out of max_scope.
    expect(next.suggestions.filter((s) => s.kind === 'remove_scope')).toEqual([]);
  });

  it('a suggestion the evidence no longer supports (its scope used since) → suggestion_stale, the file untouched', async () => {
    // Slack tokens carrying both scopes; only chat:write reported used: channels:read is suggested away.
    const jtis: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      const task = `cli-slack-${i}`;
      await call('/v1/tasks', KEYS.orchestrator, { id: task, agent_id: 'code-review-agent', type: 'review' }, 201);
      const decision = await call('/v1/decide', KEYS.pep, { agent_id: 'code-review-agent', task: { id: task }, integration: 'slack', scopes: ['channels:read', 'chat:write'] }, 200);
      const token = await call('/v1/tokens', KEYS.pep, { decision_id: decision['decision_id'] }, 201);
      jtis.push(token['jti']);
      await call('/v1/usage', KEYS.resource, { reports: [{ jti: token['jti'], integration: 'slack', scope: 'chat:write', used_at: t.clock.now.toISOString() }] }, 202);
    }
    const removal = (await report()).suggestions.find((s) => s.kind === 'remove_scope' && s.target === 'channels:read');
    expect(removal?.status).toBe('open');
    // Then the agent reads channels after all.
    await call('/v1/usage', KEYS.resource, { reports: [{ jti: jtis[0], integration: 'slack', scope: 'channels:read', used_at: t.clock.now.toISOString() }] }, 202);
    const before = policyFile();
    const run = await cli('suggest', 'apply', removal?.id ?? '', '--config', configPath);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('suggestion_stale');
    expect(run.stderr).toContain('no longer holds on the evidence up to now');
    expect(policyFile()).toBe(before);
    expect((await t.pdp.store.getSuggestion(removal?.id ?? ''))?.status).toBe('open');
  });

  it('an unknown id → not_found', async () => {
    const run = await cli('suggest', 'dismiss', 'sg_nope', '--config', configPath);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('not_found');
  });
});

describe('--since', () => {
  const now = new Date('2026-12-02T10:00:00.000Z');
  it('starts the window at the start of the UTC day it names (the evidence is counted in whole days)', () => {
    expect(sinceOf('2026-12-01T23:59:00Z', now, 90)).toBe('2026-12-01T00:00:00.000Z');
    expect(sinceOf('2026-11-01', now, 90)).toBe('2026-11-01T00:00:00.000Z');
    expect(sinceOf('1d', now, 90)).toBe('2026-12-01T00:00:00.000Z');
    expect(sinceOf(undefined, now, 90)).toBe('2026-09-03T00:00:00.000Z');
  });

  it.each(['2026-02-30', '2026-13-01', '0d', 'yesterday', '2027-01-01'])('refuses %s (a usage error)', (value) => {
    expect(() => sinceOf(value, now, 90)).toThrow(/--since must be/);
  });
});
