/**
 * Issue 18's "Done when", end to end: a 90-day trail made through the real API on a settable clock (tasks,
 * decisions, tokens, calls through the enforcement proxy and through the PEP middleware's usage reports), then
 * `agent-pdp suggest` and `agent-pdp suggest apply` (runCli, in this process, on the server's own store and policy
 * folder) on day 90:
 * - the source document's example: repo:write held 90 days, only reads made → a removal, with its evidence;
 * - a scope used once in the window (pr:read) is kept; a scope in deny_scope (workflows:write) or never granted
 *   (issues:read) is ignored;
 * - too little data (a 20-day window; an agent with five tokens) yields nothing;
 * - a file edited by hand since the suggestion is refused (suggestion_stale), nothing written;
 * - apply rewrites the file with its comments intact, and after the server's reload the next decide follows the
 *   narrower policy.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SuggestionRecord } from '../../src/store/index.js';
import type { SuggestionReportV1 } from '../../src/suggest/report-json.js';
import { auth, KEYS } from '../support/pdp-harness.js';
import { cli, cliConfig } from './cli-world.js';
import { buildTrail, DAY0, DAY_MS, decide, post, readPolicy, RELEASE_BOT_YAML, startNinetyDayWorld, type NinetyDayWorld, type TrailCounts } from './ninety-day-world.js';

let w: NinetyDayWorld;
let config: string;
let counts: TrailCounts;

beforeAll(async () => {
  w = await startNinetyDayWorld();
  config = cliConfig(w.t, 'suggest-config');
  counts = await buildTrail(w);
  w.setDay(90);
}, 60_000);
afterAll(async () => w?.close());

async function report(...args: string[]): Promise<SuggestionReportV1> {
  const run = await cli('suggest', '--config', config, '--format', 'json', ...args);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as SuggestionReportV1;
}

const targets = (r: SuggestionReportV1, agent: string): string[] =>
  r.suggestions.filter((s) => s.agent_id === agent).map((s) => `${s.kind} ${s.integration} ${s.target}`).sort();

const find = (r: SuggestionReportV1, kind: string, target: string): SuggestionRecord => {
  const found = r.suggestions.find((s) => s.agent_id === 'release-bot' && s.kind === kind && s.target === target);
  if (found === undefined) throw new Error(`no ${kind} ${target} in ${JSON.stringify(targets(r, 'release-bot'))}`);
  return found;
};

const scopeOf = (r: SuggestionReportV1, agent: string, integration: string, scope: string) =>
  r.agents.find((a) => a.agent_id === agent)?.integrations.find((i) => i.integration === integration)?.scopes.find((x) => x.scope === scope);

describe('90 days of traffic through the API, the proxy and the middleware', () => {
  it('made the trail it says', () => {
    expect(counts).toEqual({ githubTokens: 90, crmTokens: 30, fewTokens: 5 });
    expect(w.github.received.filter((r) => r.url === '/repos/acme/api/pulls/7')).toHaveLength(1);
  });

  it('too little data yields nothing: a window of 20 days is below min_days (30)', async () => {
    const r = await report('--since', '20d', '--agent', 'release-bot');
    expect(r.suggestions).toEqual([]);
    expect(await w.t.pdp.store.listSuggestions({})).toEqual([]);
  });

  it('the source document example: repo:write held 90 days, only reads used → removed, with its evidence', async () => {
    const r = await report();
    const removal = find(r, 'remove_scope', 'repo:write');
    expect(removal).toMatchObject({ integration: 'github', status: 'open', file: 'agents/release-bot.yaml' });
    expect(removal.proposal).toMatchObject({ edits: [{ op: 'remove_item', path: ['agent_policy', 'integrations', 'github', 'max_scope'], value: 'repo:write' }] });
    expect((removal.proposal as { diff: string }).diff).toContain(
      '-      max_scope: [repo:read, repo:write, pr:read, issues:read, workflows:write]\n+      max_scope: [repo:read, pr:read, issues:read, workflows:write]\n',
    );
    const first = new Date(DAY0).toISOString().slice(0, 10);
    const last = new Date(DAY0 + 89 * DAY_MS).toISOString().slice(0, 10);
    expect(removal.evidence).toMatchObject({
      samples: 90,
      days_observed: 90,
      sources: ['proxy'],
      confidence: expect.stringMatching(/^(medium|high)$/),
      scope: { scope: 'repo:write', granted: 90, requested: 90, used: { proxy: 0, resource_server: 0 }, used_first_at: null, days_observed: 90 },
    });
    const evidence = removal.evidence as { scope: { granted_first_at: string; granted_last_at: string } };
    expect([evidence.scope.granted_first_at.slice(0, 10), evidence.scope.granted_last_at.slice(0, 10)]).toEqual([first, last]);
    // Its reads are the evidence that the integration is watched: repo:read was used on each of the 90 days.
    expect(scopeOf(r, 'release-bot', 'github', 'repo:read')).toMatchObject({ verdict: 'used', evidence: { used: { proxy: 90 } } });
    // The CRM's write scope goes the same way, on the middleware's reports (one step less confident: best effort).
    expect(find(r, 'remove_scope', 'tickets:write').evidence).toMatchObject({ sources: ['resource_server'], samples: 30, confidence: 'low' });
    expect(scopeOf(r, 'release-bot', 'crm', 'tickets:read')).toMatchObject({ verdict: 'used', evidence: { used: { resource_server: 30 } } });
  });

  it('a scope used once in the window is kept; a denied or never granted scope is ignored', async () => {
    const r = await report();
    expect(targets(r, 'release-bot')).toEqual(['remove_scope crm tickets:write', 'remove_scope github repo:write', 'shorten_ttl * token_ttl']);
    expect(scopeOf(r, 'release-bot', 'github', 'pr:read')).toMatchObject({ verdict: 'used', evidence: { granted: 90, used: { proxy: 1 } } });
    // In max_scope and in deny_scope: never granted (asked for twice, refused), never suggested.
    expect(scopeOf(r, 'release-bot', 'github', 'workflows:write')).toMatchObject({ verdict: 'denied', evidence: { granted: 0, requested: 2, denied: 2 } });
    // In max_scope, never asked for: never carried, nothing to compare.
    expect(scopeOf(r, 'release-bot', 'github', 'issues:read')).toMatchObject({ verdict: 'not_granted', evidence: { granted: 0 } });
  });

  it('too little data yields nothing: five tokens in 90 days (below min_tokens, 20)', async () => {
    const r = await report();
    expect(targets(r, 'code-review-agent')).toEqual([]);
    // pr:read and issues:read were never used, but five tokens are not enough to say so.
    expect(scopeOf(r, 'code-review-agent', 'github', 'issues:read')).toMatchObject({ verdict: 'unused', evidence: { granted: 5 } });
    const notes = r.agents.find((a) => a.agent_id === 'code-review-agent')?.notes.map((n) => n.message).join('\n');
    expect(notes).toMatch(/5 tokens/);
  });

  it('the stored suggestions are listed by GET /v1/suggestions (auditor)', async () => {
    const res = await fetch(`${w.t.url}/v1/suggestions?agent=release-bot&status=open`, { headers: auth(KEYS.auditor) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as SuggestionReportV1;
    expect(body.suggestions.map((s) => s.target).sort()).toEqual(['repo:write', 'tickets:write', 'token_ttl']);
  });
});

describe('applying the suggestion (day 90)', () => {
  it('a file edited by hand since the suggestion → suggestion_stale; nothing written, the suggestion still open', async () => {
    const removal = find(await report(), 'remove_scope', 'repo:write');
    const edited = `${RELEASE_BOT_YAML}# reviewed by alice on day 90\n`;
    writeFileSync(w.policyPath, edited);
    try {
      const run = await cli('suggest', 'apply', removal.id, '--config', config);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('suggestion_stale');
      expect(readPolicy(w)).toBe(edited);
      expect((await w.t.pdp.store.getSuggestion(removal.id))?.status).toBe('open');
    } finally {
      writeFileSync(w.policyPath, RELEASE_BOT_YAML);
    }
  });

  it('apply rewrites the file with its comments intact; after the reload the next decide follows the narrower policy', async () => {
    const removal = find(await report(), 'remove_scope', 'repo:write');
    // The day-90 task, registered before the change: repo:write is still in the ceiling.
    await post(w, '/v1/tasks', KEYS.orchestrator, { id: 'release-90', agent_id: 'release-bot', type: 'release_notes', expires_in_seconds: 3600 }, 201);
    expect(await decide(w, 'release-bot', 'release-90', 'github', ['repo:write'])).toMatchObject({ outcome: 'allow', granted_scopes: ['repo:write'] });

    const run = await cli('suggest', 'apply', removal.id, '--config', config, '--as', 'alice', '--note', 'CHG-90');
    expect(run.code, run.stderr).toBe(0);
    const after = readPolicy(w);
    expect(after).toBe(RELEASE_BOT_YAML.replace('[repo:read, repo:write, pr:read, issues:read, workflows:write]', '[repo:read, pr:read, issues:read, workflows:write]'));
    for (const comment of RELEASE_BOT_YAML.split('\n').filter((l) => l.includes('#'))) {
      expect(after).toContain(comment.includes('max_scope: [repo:read') ? '# Its ceiling' : comment.slice(comment.indexOf('#')));
    }
    expect(await w.t.pdp.store.getSuggestion(removal.id)).toMatchObject({ status: 'applied', decided_by: 'alice' });

    // The server picks the file up on reload (its watcher, SIGHUP or this).
    const reload = await fetch(`${w.t.url}/v1/admin/reload`, { method: 'POST', headers: auth(KEYS.admin) });
    expect(reload.status).toBe(200);
    // repo:write is out of the ceiling: asked for, it is capped to the repo:read it implies, never granted.
    const write = await decide(w, 'release-bot', 'release-90', 'github', ['repo:write']);
    expect(write).toMatchObject({ outcome: 'allow', granted_scopes: ['repo:read'], denied_scopes: [{ scope: 'repo:write', reason: 'capped', granted_instead: ['repo:read'] }] });
    expect((await decide(w, 'release-bot', 'release-90', 'github', ['repo:read', 'pr:read'])).outcome).toBe('allow');
    // The trail says who changed what.
    const applied = [];
    for await (const e of w.t.pdp.store.iterateEvents({ types: ['policy.suggestion.applied'] })) applied.push(e);
    expect(applied).toEqual([expect.objectContaining({ agent_id: 'release-bot', caller_id: 'alice', data: expect.objectContaining({ target: 'repo:write', note: 'CHG-90' }) })]);
  });
});
