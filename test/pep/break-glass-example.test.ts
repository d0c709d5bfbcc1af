/**
 * Example 4 (issue 16, break-glass escalation), run in-process against a whole PDP on loopback (the shipped
 * policies, real bundle, store, HTTP, outbox worker and sweep), configured as `make demo` configures its PDP
 * (examples/demo.ts): a webhook receiver of group platform-oncall started first (the PDP's config names its URL and
 * HMAC secret), an approver caller of that group (the harness's oncall-1), a sweep every 200 ms. `agent-pdp audit
 * chain` runs in this process on the PDP's store (test/audit-e2e/cli.ts runAudit), as the CLI would.
 *
 * The harness clock is frozen unless moved; the example waits for a real 5 s window to end, so a ticker keeps the
 * PDP's clock at real time (as test/escalation/delivery.test.ts does).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { run as runBreakGlass } from '../../examples/break-glass.js';
import type { EntryKind, Transcript } from '../../examples/support/transcript.js';
import { startWebhookInbox, type WebhookInbox } from '../../examples/support/webhook-inbox.js';
import { runAudit } from '../audit-e2e/cli.js';
import { KEYS, startTestPdp, TEST_CALLERS, type TestPdp } from '../support/pdp-harness.js';

const WINDOW_SECONDS = 5;
const WEBHOOK_SECRET = 'break-glass-example-test-secret-4c7e1a9d2b';

let secretDir: string;
let inbox: WebhookInbox;
let pdp: TestPdp | undefined;
let ticker: NodeJS.Timeout | undefined;
let cliConfig: string;

beforeAll(async () => {
  secretDir = mkdtempSync(join(tmpdir(), 'agent-pdp-break-glass-'));
  const secretFile = join(secretDir, 'webhook-secret');
  writeFileSync(secretFile, WEBHOOK_SECRET, { mode: 0o600 });
  inbox = await startWebhookInbox(WEBHOOK_SECRET);
  pdp = await startTestPdp({
    policies: 'policies',
    issuerIsUrl: true,
    config: {
      escalation: {
        sweep_interval_ms: 200,
        webhooks: [{ id: 'oncall-webhook', groups: ['platform-oncall'], format: 'generic', url: inbox.url, secret_file: secretFile }],
      },
    },
  });
  const t = pdp;
  ticker = setInterval(() => {
    const real = Date.now();
    if (real > t.clock.now.getTime()) t.clock.now = new Date(real);
  }, 5);
  cliConfig = join(t.dir, 'cli-config.yaml');
  writeFileSync(cliConfig, stringify({ policy: { bundle: resolve('opa-bundle/bundle.tar.gz'), agents: 'policies' }, store: { url: 'sqlite:data/pdp.db' }, issuer: { keys: 'data/keys' }, callers: TEST_CALLERS }));
});

afterAll(async () => {
  if (ticker) clearInterval(ticker);
  await pdp?.close();
  await inbox?.close();
  if (secretDir) rmSync(secretDir, { recursive: true, force: true });
});

/** `agent-pdp <args> --config <the PDP's>` in this process; rejects on a non-zero exit, as the demo's runner does. */
async function runCli(args: readonly string[]): Promise<string> {
  const [group, ...rest] = args;
  if (group !== 'audit') throw new Error(`not an audit command: ${args.join(' ')}`);
  const r = await runAudit([...rest, '--config', cliConfig]);
  if (r.code !== 0) throw new Error(`agent-pdp ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
  return r.stdout;
}

const outcomes = (t: Transcript, kinds: EntryKind[] = ['allow', 'deny', 'refused', 'stop']): string[] =>
  t.entries.filter((e) => kinds.includes(e.kind)).map((e) => `${e.kind}: ${e.text}`);

it('4. break-glass: denied with a hint, request, signed webhook, approval from the page, elevated allow, denied after the window, the chain', async () => {
  const printed: string[] = [];
  const t = await runBreakGlass({ pdpUrl: pdp!.url, keys: KEYS, log: (line) => printed.push(line), inbox, approverKey: KEYS.approver, windowSeconds: WINDOW_SECONDS, runCli });
  expect(printed).toEqual(t.lines);
  expect(t.lines[0]).toBe(`== ${t.title}`);
  expect(t.lines.join('\n')).not.toMatch(/UNEXPECTED/);
  const text = (kind: EntryKind, pattern: RegExp): string => {
    const found = t.entries.find((e) => e.kind === kind && pattern.test(e.text));
    expect(found, `a ${kind} entry matching ${pattern}`).toBeDefined();
    return found!.text;
  };

  // The decisions and the refusal, in order: denied (requestable), allowed (elevated), the token refused after the
  // window, denied again.
  const PR = 'pr:write on acme/api/pulls/1042';
  expect(outcomes(t)).toEqual([
    expect.stringMatching(new RegExp(`^deny: ${PR}: decision \\S+: approval_required \\(requested scopes need an approver.s approval: pr:write\\)`)),
    expect.stringMatching(new RegExp(`^allow: ${PR}: decision \\S+, elevated \\(granted by access request ar_\\S+: pr:write\\); token \\[pr:write\\] expires \\S+ \\(window ends \\S+\\)$`)),
    expect.stringMatching(/^refused: the elevated token, presented again after the window: GitHub answered 401 token_expired$/),
    expect.stringMatching(new RegExp(`^deny: ${PR} after the window: decision \\S+: approval_required `)),
  ]);
  const firstId = /decision (\S+):/.exec(text('deny', /^pr:write on \S+: decision/))![1]!;
  const afterId = /decision (\S+):/.exec(text('deny', /after the window/))![1]!;
  expect(afterId).not.toBe(firstId);

  // 1. The denial's hint: where to ask, for what, who decides, a reason required.
  expect(text('info', /^hint: /)).toMatch(new RegExp(`^hint: request \\[pr:write\\] at ${pdp!.url}/v1/access-requests until \\S+; approvers decide for at most 3600 s; reason required$`));
  // 2. Submitted: pending, for platform-oncall.
  const requestId = /^submitted access request (ar_\S+): pending, pending until \S+, approvers \[platform-oncall\]$/.exec(text('ok', /^submitted access request /))?.[1];
  expect(requestId).toBeDefined();
  // 3. The webhook arrived, its signature checked by the receiver (none refused), naming the request's facts.
  expect(text('ok', /^webhook /)).toMatch(/^webhook access_request\.submitted delivery \S+: signature valid \(HMAC-SHA256, signed \S+\); code-review-agent wants \[pr:write\] on acme\/api\/pulls\/1042 for 5 s: "Security fix PR #1042/);
  expect(inbox.rejected).toEqual([]);
  expect(inbox.deliveries).toHaveLength(1);
  expect(inbox.deliveries[0]!.event).toBe('access_request.submitted');
  expect((inbox.deliveries[0]!.json['access_request'] as Record<string, unknown>)['id']).toBe(requestId);
  expect(text('info', /^review link: /)).toBe(`review link: ${pdp!.url}/v1/access-requests/${requestId}/review?t=<signed link token>`);
  // 4. Opening the page changed nothing; posting its form with the approver's key approved it, for the window.
  expect(text('info', /^approver opened the review page/)).toBe('approver opened the review page (200, shows pr:write); the request is still pending');
  const approved = /^approver oncall-1 approved from the page \(5 s\): approved until (\S+)$/.exec(text('ok', /approved from the page/));
  expect(approved).not.toBeNull();
  const windowEnd = Date.parse(approved![1]!);
  // 5. The elevated allow: a token for pr:write that expires by the window's end; GitHub posted the review.
  const allow = /token \[pr:write\] expires (\S+) \(window ends (\S+)\)$/.exec(text('allow', /elevated/))!;
  expect(Date.parse(allow[2]!)).toBe(windowEnd);
  expect(Date.parse(allow[1]!)).toBeLessThanOrEqual(windowEnd);
  expect(text('allow', /elevated/)).toContain(`granted by access request ${requestId}`);
  const allowId = /decision (\S+),/.exec(text('allow', /elevated/))![1]!;
  expect(text('ok', /^GitHub posted review/)).toBe('GitHub posted review 1 on acme/api#1042 (by code-review-agent)');
  // 6. After the window: the sweep recorded the end.
  expect(text('info', /elevation ended/)).toMatch(new RegExp(`^access request ${requestId}: elevation ended \\(window\\) at \\S+$`));

  // 7. `agent-pdp audit chain <first denial>`: from the denial to elevation.ended (the notification's event is
  //    written when the receiver answered, so its place relative to the approval is not fixed).
  expect(text('info', /^agent-pdp audit /)).toMatch(new RegExp(`^agent-pdp audit chain ${firstId} --json: 7 events$`));
  const audit = t.entries.filter((e) => e.kind === 'audit').map((e) => e.text);
  /** `#seq time type ...` (elevation.ended is followed by a colon). */
  const typeOf = (line: string): string => (line.split(' ')[2] ?? '').replace(/:$/, '');
  const types = audit.map(typeOf);
  expect(types.filter((type) => type !== 'access_request.notified')).toEqual(['decision', 'access_request.submitted', 'access_request.approved', 'decision', 'token.issued', 'elevation.ended']);
  expect(types.filter((type) => type === 'access_request.notified')).toHaveLength(1);
  expect(types.indexOf('access_request.notified')).toBeGreaterThan(types.indexOf('access_request.submitted'));
  expect(audit.find((line) => typeOf(line) === 'access_request.notified')).toMatch(/^#\d+ \S+ access_request\.notified oncall-webhook \(platform-oncall\): HTTP 200, attempt 1$/);
  expect(audit.filter((line) => typeOf(line) !== 'access_request.notified')).toEqual([
    expect.stringMatching(new RegExp(`^#\\d+ \\S+ decision …${firstId.slice(-8)}: deny \\[\\] approval_required$`)),
    expect.stringMatching(/^#\d+ \S+ access_request\.submitted by pep-1: \[pr:write\] for 5 s, approvers \[platform-oncall\]$/),
    expect.stringMatching(new RegExp(`^#\\d+ \\S+ access_request\\.approved by oncall-1: until ${approved![1]!.replace(/\./g, '\\.')} \\("ok for PR 1042 only"\\)$`)),
    expect.stringMatching(new RegExp(`^#\\d+ \\S+ decision …${allowId.slice(-8)}: allow \\[pr:write\\] allowed, elevated$`)),
    expect.stringMatching(new RegExp(`^#\\d+ \\S+ token\\.issued for decision …${allowId.slice(-8)}: \\[pr:write\\] expires ${allow[1]!.replace(/\./g, '\\.')}$`)),
    expect.stringMatching(/^#\d+ \S+ elevation\.ended: window at /),
  ]);
}, 30_000);
