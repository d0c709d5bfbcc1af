/**
 * `agent-pdp access-requests list | show | approve | deny` against a real store: a real PDP (HTTP on loopback,
 * the escalation test policies) makes the requestable denials and takes the submissions; the CLI opens the same
 * SQLite file through a config written next to it, while the server keeps running. Most runs are in this process
 * (through runCli, as main.ts dispatches); one is the built binary in a child process, a second writer on the file.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli } from '../../src/cli/run-cli.js';
import { ensureBuilt, runBuiltCli, type CliRun } from '../audit-e2e/cli.js';
import { auth, KEYS, startTestPdp, TEST_CALLERS, type TestPdp } from '../support/pdp-harness.js';

type Json = Record<string, any>;

let t: TestPdp;
let configPath: string;
let taskSeq = 0;

beforeAll(async () => {
  // Built first: the build blocks this process, and the server's idle keep-alive connections would not survive it.
  ensureBuilt();
  t = await startTestPdp({ policies: 'test/escalation/policies', issuerIsUrl: true });
  // The config an operator on the box has: the same store, keys and callers the server runs with.
  configPath = join(t.dir, 'cli-config.json');
  const raw = {
    server: { listen: '127.0.0.1:0' },
    policy: { bundle: 'bundle.tar.gz', agents: 'policies', watch: false },
    store: { url: 'sqlite:data/pdp.db' },
    issuer: { issuer: t.url, keys: 'data/keys' },
    log: { level: 'silent' },
    callers: TEST_CALLERS,
  };
  writeFileSync(configPath, JSON.stringify(raw, null, 2));
  chmodSync(configPath, 0o600);
}, 180_000);
afterAll(async () => {
  await t.close();
});

async function call(method: string, path: string, key: string, body?: unknown): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${t.url}${path}`, {
    method,
    headers: { ...auth(key), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

async function decide(taskId: string, key: string = KEYS.pep): Promise<Json> {
  const res = await call('POST', '/v1/decide', key, {
    agent_id: 'release-bot',
    task: { id: taskId },
    integration: 'crm',
    scopes: ['tickets:write'],
    resource: { type: 'customer', id: '1234' },
  });
  expect(res.status).toBe(200);
  return res.body;
}

/** A registered task, its requestable denial and a pending access request for it, submitted with `key`. */
async function pending(key: string = KEYS.pep): Promise<{ taskId: string; denial: Json; request: Json }> {
  const taskId = `cli-esc-${++taskSeq}`;
  expect((await call('POST', '/v1/tasks', KEYS.orchestrator, { id: taskId, agent_id: 'release-bot', type: 'incident', context: { customer_id: '1234' } })).status).toBe(201);
  const denial = await decide(taskId, key);
  expect(denial['access_request']).toBeDefined();
  const res = await call('POST', '/v1/access-requests', key, { decision_id: denial['decision_id'], reason: 'hotfix for incident 42', duration_seconds: 900 });
  expect(res.status).toBe(202);
  return { taskId, denial, request: res.body };
}

/** `agent-pdp ...args` in this process, stdout and stderr captured. */
async function cli(...args: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const capture = (into: (text: string) => void) => (chunk: string | Uint8Array) => {
    into(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  };
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(capture((s) => (stdout += s)) as typeof process.stdout.write);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(capture((s) => (stderr += s)) as typeof process.stderr.write);
  try {
    const code = await runCli(args);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

const status = async (id: string): Promise<Json> => (await call('GET', `/v1/access-requests/${id}`, KEYS.auditor)).body;

describe('list and show', () => {
  it('lists the pending requests as a table (and as JSON), and shows one with the facts an approver needs', async () => {
    const { denial, request } = await pending();
    const id = request['id'] as string;

    const table = await cli('access-requests', 'list', '--config', configPath, '--status', 'pending');
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+STATUS\s+AGENT\s+TASK\s+INTEGRATION\s+SCOPES\s+RECORD\s+APPROVERS\s+FOR\s+CREATED\s+UNTIL$/);
    const row = lines.find((l) => l.startsWith(id));
    expect(row).toBeDefined();
    expect(row!.split(/\s{2,}/)).toEqual([id, 'pending', 'release-bot', request['task_id'], 'crm', 'tickets:write', 'customer:1234', 'platform-oncall', '15m', expect.any(String), expect.any(String)]);
    expect(lines.at(-1)).toMatch(/^\d+ access requests?$/);

    const json = await cli('access-requests', 'list', '--config', configPath, '--json');
    expect(json.code).toBe(0);
    const listed = (JSON.parse(json.stdout) as Json[]).find((r) => r['id'] === id);
    expect(listed).toEqual(await status(id));

    const none = await cli('access-requests', 'list', '--config', configPath, '--status', 'expired');
    expect(none).toMatchObject({ code: 0, stdout: 'no expired access requests\n' });

    const shown = await cli('access-requests', 'show', id, '--config', configPath);
    expect(shown.code).toBe(0);
    for (const text of [`id:`, id, 'status:', 'pending', 'release-bot', 'tickets:write', 'customer 1234', 'hotfix for incident 42', '15m asked (policy max 1h)', 'platform-oncall', 'pep-1', denial['decision_id']]) {
      expect(shown.stdout).toContain(text);
    }
    const shownJson = await cli('access-requests', 'show', id, '--config', configPath, '--json');
    expect(JSON.parse(shownJson.stdout)).toEqual(await status(id));
  });

  it('refuses an unknown id, a bad status, a missing id and a missing config', async () => {
    const unknown = await cli('access-requests', 'show', 'ar_nope', '--config', configPath);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('access_request_not_found');
    const badStatus = await cli('access-requests', 'list', '--config', configPath, '--status', 'open');
    expect(badStatus.code).toBe(1);
    expect(badStatus.stderr).toContain('--status must be one of pending, approved, denied, expired');
    const noId = await cli('access-requests', 'approve', '--config', configPath, '--as', 'oncall-1');
    expect(noId.code).toBe(1);
    expect(noId.stderr).toContain('usage: agent-pdp access-requests approve ID');
    const old = process.env['AGENT_PDP_CONFIG'];
    delete process.env['AGENT_PDP_CONFIG'];
    try {
      const noConfig = await cli('access-requests', 'list');
      expect(noConfig.code).toBe(1);
      expect(noConfig.stderr).toContain('pass --config FILE');
    } finally {
      if (old !== undefined) process.env['AGENT_PDP_CONFIG'] = old;
    }
    const unknownOption = await cli('access-requests', 'deny', 'x', '--config', configPath, '--duration', '60');
    expect(unknownOption.code).toBe(2);
    expect(unknownOption.stderr).toContain('usage: agent-pdp access-requests deny');
  });
});

describe('approve', () => {
  it('refuses an unknown caller, a non-approver, self-approval, another group and a duration above the cap, changing nothing', async () => {
    // Submitted by ops-alice, a caller that is both a PEP and an approver of the request's group.
    const { request } = await pending(KEYS.pepApprover);
    const id = request['id'] as string;
    const approve = (...more: string[]) => cli('access-requests', 'approve', id, '--config', configPath, ...more);
    const cases: Array<[string[], string]> = [
      [['--as', 'nobody'], 'invalid_request: there is no caller "nobody" in the config'],
      [[], 'pass --as CALLER_ID'],
      [['--as', 'pep-1'], 'forbidden_role'],
      [['--as', 'compliance'], 'forbidden_role'],
      [['--as', 'ops-alice'], 'self_approval'],
      [['--as', 'orchestrator'], 'forbidden_role'],
      [['--as', 'security-1'], 'forbidden_approver_group'],
      [['--as', 'oncall-1', '--duration', '3601'], "duration_seconds exceeds the policy's max_duration of 3600"],
      [['--as', 'oncall-1', '--duration', '0'], '--duration must be an integer from 1 to 604800'],
      [['--as', 'oncall-1', '--duration', '1h'], '--duration must be an integer'],
    ];
    for (const [args, text] of cases) {
      const res = await approve(...args);
      expect(res.code, args.join(' ')).toBe(1);
      expect(res.stderr, args.join(' ')).toContain(text);
      expect(res.stdout).toBe('');
    }
    expect((await status(id))['status']).toBe('pending');
    const chain = await call('GET', `/v1/audit/decisions/${request['decision_id']}`, KEYS.auditor);
    expect(chain.body['events'].map((e: Json) => e['type'])).not.toContain('access_request.approved');
  });

  it('approves as a configured approver: the running server allows the next decision, within the window; a second verdict is refused', async () => {
    const { taskId, denial, request } = await pending();
    const id = request['id'] as string;
    const res = await cli('access-requests', 'approve', id, '--as', 'oncall-1', '--duration', '300', '--note', 'ok for incident 42', '--config', configPath);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(new RegExp(`^approved ${id} as oncall-1: release-bot may use crm \\[tickets:write\\] on customer 1234 for task ${taskId} until .+ \\(5m\\); it takes effect at the agent's next decision\\n$`));

    const after = await status(id);
    expect(after).toMatchObject({ status: 'approved', decided_by: 'oncall-1', note: 'ok for incident 42', duration_seconds: 900 });
    expect(Date.parse(after['approved_until']) - Date.parse(after['decided_at'])).toBe(300_000);

    const elevated = await decide(taskId);
    expect(elevated['allow']).toBe(true);
    expect(elevated['approval']).toEqual({ id, approved_until: after['approved_until'] });

    for (const verb of ['approve', 'deny']) {
      const again = await cli('access-requests', verb, id, '--as', 'oncall-2', '--config', configPath);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain('access_request_not_pending');
    }
    const chain = await call('GET', `/v1/audit/decisions/${denial['decision_id']}`, KEYS.auditor);
    const approvals = chain.body['events'].filter((e: Json) => e['type'] === 'access_request.approved');
    expect(approvals).toHaveLength(1);
    expect(approvals[0]).toMatchObject({ caller_id: 'oncall-1', data: { access_request_id: id, note: 'ok for incident 42' } });

    const listed = await cli('access-requests', 'list', '--config', configPath, '--status', 'approved');
    expect(listed.stdout.split('\n').find((l) => l.startsWith(id))?.split(/\s{2,}/).slice(1, 2)).toEqual(['approved']);
  });
});

describe('deny', () => {
  it('denies as a configured approver, with a note; the agent stays denied; refusals as for approve', async () => {
    const { taskId, request } = await pending();
    const id = request['id'] as string;
    const refused = await cli('access-requests', 'deny', id, '--as', 'crm-api', '--config', configPath);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('forbidden_role');

    const res = await cli('access-requests', 'deny', id, '--as', 'oncall-2', '--note', 'not during the freeze', '--config', configPath, '--json');
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ id, status: 'denied', decided_by: 'oncall-2', note: 'not during the freeze' });
    expect((await decide(taskId))['allow']).toBe(false);

    const shown = await cli('access-requests', 'show', id, '--config', configPath);
    expect(shown.stdout).toMatch(/decided:\s+.+ by oncall-2/);
    expect(shown.stdout).toMatch(/note:\s+not during the freeze/);
    const twice = await cli('access-requests', 'approve', id, '--as', 'oncall-1', '--config', configPath);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toContain('access_request_not_pending');
  });
});

describe('the built binary, a second process on the server’s store', () => {
  it('approves while the server runs and writes; the server uses the elevation at once and the chain stays whole', async () => {
    const { taskId, request } = await pending();
    const id = request['id'] as string;
    // The server keeps writing while the CLI takes its turn on the write lock.
    const busy = Promise.all(Array.from({ length: 20 }, () => decide(`cli-esc-${taskSeq}`)));
    const res = await runBuiltCli(['access-requests', 'approve', id, '--as', 'oncall-1', '--config', configPath]);
    await busy;
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`approved ${id} as oncall-1`);
    expect((await decide(taskId))['allow']).toBe(true);

    const help = await runBuiltCli(['access-requests', 'approve', '--help']);
    expect(help.stdout).toContain('usage: agent-pdp access-requests approve');
    expect(help.stdout).toContain('--as VALUE');

    const verified = await runBuiltCli(['audit', 'verify', '--config', configPath]);
    expect(verified.stdout).not.toContain('does NOT verify');
    expect([0, 4]).toContain(verified.code);
  }, 60_000);
});
