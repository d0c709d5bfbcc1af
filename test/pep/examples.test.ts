/**
 * The three examples, run in-process against a whole PDP on loopback (real policies, bundle, store, HTTP), as
 * `make demo` runs them against the built CLI. Assertions read the transcript's allow / deny / refused / stop
 * entries, which are what the printed lines say.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run as runComplaint } from '../../examples/complaint-resolution.js';
import { PLANS, run as runFeedback } from '../../examples/feedback-workflow.js';
import { run as runMailbox } from '../../examples/mailbox-agent.js';
import type { EntryKind, ExampleOptions, Transcript } from '../../examples/support/transcript.js';
import { KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';

let pdp: TestPdp;
beforeAll(async () => {
  pdp = await startTestPdp();
});
afterAll(async () => {
  await pdp.close();
});

async function transcriptOf(run: (options: ExampleOptions) => Promise<Transcript>): Promise<Transcript & { printed: string[] }> {
  const printed: string[] = [];
  const transcript = await run({ pdpUrl: pdp.url, keys: KEYS, log: (line) => printed.push(line) });
  return { ...transcript, printed };
}

/** `kind: text` for each decision-bearing entry, in order. */
const outcomes = (t: Transcript, kinds: EntryKind[] = ['allow', 'deny', 'refused', 'stop']): string[] =>
  t.entries.filter((e) => kinds.includes(e.kind)).map((e) => `${e.kind}: ${e.text}`);

describe('examples against a PDP on loopback', () => {
  it('1. the mailbox agent reads and labels its mailbox; sending, and reading another mailbox, are denied', async () => {
    const t = await transcriptOf(runMailbox);
    expect(outcomes(t)).toEqual([
      expect.stringMatching(/^allow: mail:read on support@example\.com: decision \S+, token \[mail:read\]/),
      expect.stringMatching(/^allow: mail:labels on support@example\.com: decision \S+, token \[mail:labels\]/),
      expect.stringMatching(/^deny: mail:send from support@example\.com: decision \S+: .*deny_scope/),
      expect.stringMatching(/^deny: mail:read on sales@example\.com: decision \S+: record_binding_mismatch/),
      expect.stringMatching(/^refused: .* for sales@example\.com: mail API answered 403 token_wrong_resource$/),
    ]);
    expect(outcomes(t, ['ok', 'info'])).toEqual(expect.arrayContaining([
      'ok: read 3 messages from support@example.com',
      expect.stringMatching(/^ok: labelled 3 messages \(billing ×2, outage ×1\) with one token, reused for 2 calls$/),
      'info: mail API: 0 messages sent',
    ]));
    expect(t.printed).toEqual(t.lines);
    expect(t.lines[0]).toBe(`== ${t.title}`);
    expect(t.lines.join('\n')).not.toMatch(/UNEXPECTED/);
  });

  it('2. the workflow runs each step on its own one-scope token, and stops cleanly at the step whose token is refused', async () => {
    const t = await transcriptOf(runFeedback);
    const runs = splitRuns(t);
    expect(runs).toHaveLength(PLANS.length);
    const [planned, otherChannel, otherTable] = runs;

    expect(planned).toEqual([
      expect.stringMatching(/^allow: step 1 read: .*token \[select:customer_feedback\] /),
      expect.stringMatching(/^allow: step 2 translate: .*token \[translate\] /),
      expect.stringMatching(/^allow: step 3 post: chat:write on #support: .*token \[chat:write\] /),
      'ok: posted a digest of 3 translated items to #support',
    ]);
    expect(otherChannel).toEqual([
      expect.stringMatching(/^allow: step 1 read/),
      expect.stringMatching(/^allow: step 2 translate/),
      expect.stringMatching(/^deny: step 3 post: chat:write on channel #general: decision \S+: record_binding_mismatch/),
      'stop: workflow stopped at step 3/3 (post): permission_denied (record_binding_mismatch); it was the last step',
      expect.stringMatching(/^info: chat received 0 messages;/),
    ]);
    expect(otherTable).toEqual([
      expect.stringMatching(/^deny: step 1 read: select:customers on table customers: decision \S+: /),
      expect.stringMatching(/^stop: workflow stopped at step 1\/3 \(read\): permission_denied \(.+\); not run: translate, post$/),
      'info: chat received 0 messages; translation API called 0 times in this run',
    ]);
    expect(t.lines.join('\n')).not.toMatch(/UNEXPECTED/);
  });

  it('3. complaint resolution: 1234 allowed, 5678 denied, the old token refused by the CRM after completion', async () => {
    const t = await transcriptOf(runComplaint);
    expect(outcomes(t)).toEqual([
      expect.stringMatching(/^allow: tickets:write on customer 1234: decision \S+, token \[tickets:write\]/),
      expect.stringMatching(/^deny: tickets:write on customer 5678: decision \S+: record_binding_mismatch/),
      'refused: retry with the old token for customer 1234: CRM answered 401 token_inactive',
      expect.stringMatching(/^deny: tickets:write on customer 1234 after completion: decision \S+: task_completed/),
    ]);
    expect(outcomes(t, ['info', 'ok'])).toEqual(expect.arrayContaining([
      expect.stringMatching(/^info: orchestrator completed task complaint-\S+ \(1 token revoked\)$/),
      'info: CRM holds 1 ticket: T-1 for 1234',
    ]));
    expect(t.lines.join('\n')).not.toMatch(/UNEXPECTED/);
  });
});

/** The feedback transcript's entries per run, without the run header and the orchestrator's bookkeeping. */
function splitRuns(t: Transcript): string[][] {
  const runs: string[][] = [];
  for (const e of t.entries) {
    if (e.kind === 'info' && e.text.startsWith('-- ')) runs.push([]);
    else if (!e.text.startsWith('orchestrator ')) runs.at(-1)?.push(`${e.kind}: ${e.text}`);
  }
  return runs;
}
