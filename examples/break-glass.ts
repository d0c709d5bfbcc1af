/**
 * Example 4 — break-glass escalation. `code-review-agent` may read pull requests but not write them: `pr:write` is
 * above its ceiling, and its policy marks it requestable (`escalation: { scopes: [pr:write], approvers:
 * [platform-oncall], require_reason: true }`). The agent asks to post a review, gets `approval_required` with an
 * access-request hint, submits a request with a reason; the PDP notifies the platform-oncall webhook (signed); the
 * approver follows the notification's link to the review page and approves with their own API key for a short
 * window; the agent decides again and is allowed (reason `elevated`) with a token that expires by the window's end;
 * after the window the same call is denied again. Last, `agent-pdp audit chain <first denial>` prints that denial's
 * chain: the request, the notification, the approval, the elevated decision and its token, and `elevation.ended`
 * (a CLI without `audit chain`: `agent-pdp audit export --task`, the task's events).
 *
 * It needs what only `make demo` sets up (examples/demo.ts): a PDP whose config has the webhook pointing at this
 * run's receiver, an approver caller in group platform-oncall, and the audit CLI on the same store.
 */
import { randomUUID } from 'node:crypto';
import { accessTokenClaims, createResourceServerAuth, PdpClient, PermissionDenied } from '../src/pep/index.js';
import type { DecisionRequestV1, DecisionResponseV1 } from '../src/wire/decision-v1.js';
import { callService, ServiceRefused } from './support/call-service.js';
import { startService, stopAll, type LocalService } from './support/local-service.js';
import { TranscriptWriter, type ExampleOptions, type Transcript } from './support/transcript.js';
import type { WebhookInbox } from './support/webhook-inbox.js';

export const title = 'Example 4: break-glass escalation (code-review-agent asks for pr:write)';

export interface BreakGlassOptions extends ExampleOptions {
  /** The receiver the PDP's platform-oncall webhook posts to (started before the PDP, whose config names it). */
  inbox: WebhookInbox;
  /** API key of a caller with role approver in group platform-oncall. */
  approverKey: string;
  /** The approval window, in seconds (the demo keeps it short). */
  windowSeconds: number;
  /** Runs `agent-pdp <args>` against the PDP's config and store; resolves with its stdout. */
  runCli: (args: readonly string[]) => Promise<string>;
}

type Json = Record<string, any>;

const REPO = 'acme/api';
const PULL = 1042;
const RECORD = { type: 'pull_request', id: `${REPO}/pulls/${PULL}` };

/** A tiny GitHub: posting a review needs pr:write on that pull request, checked locally against the PDP's JWKS. */
async function startGithub(issuer: string, jwksUri: string, reviews: Json[]): Promise<LocalService> {
  const requireToken = createResourceServerAuth({ issuer, audience: 'https://api.github.com', jwksUri, clockTolerance: 0 });
  return startService('github', (app) => {
    app.post('/repos/:owner/:repo/pulls/:n/reviews', requireToken({
      integration: 'github',
      scope: 'pr:write',
      record: (req) => ({ type: 'pull_request', id: `${req.params['owner']}/${req.params['repo']}/pulls/${req.params['n']}` }),
    }), (req, res) => {
      const review = { id: reviews.length + 1, pull: `${req.params.owner}/${req.params.repo}#${req.params.n}`, body: String((req.body as Json)['body']), by: accessTokenClaims(res).sub };
      reviews.push(review);
      res.status(201).json(review);
    });
  });
}

/** The review page's form: where it posts and its hidden fields (the link token). */
function formOf(html: string): { action: string; hidden: Record<string, string> } {
  const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
  if (action === undefined) throw new Error('the review page has no form');
  const hidden: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) hidden[m[1] as string] = unescapeHtml(m[2] as string);
  return { action: unescapeHtml(action), hidden };
}

const unescapeHtml = (s: string): string => s.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&');
const shortId = (id: string): string => (id.length > 13 ? `…${id.slice(-8)}` : id);

export async function run(options: BreakGlassOptions): Promise<Transcript> {
  const t = new TranscriptWriter(title, options.log);
  const orchestrator = new PdpClient({ url: options.pdpUrl, apiKey: options.keys.orchestrator });
  const pep = new PdpClient({ url: options.pdpUrl, apiKey: options.keys.pep });
  const { issuer } = await pep.metadata();
  const reviews: Json[] = [];
  const github = await startGithub(issuer, pep.jwksUri, reviews);
  try {
    const taskId = `review-${randomUUID().slice(0, 8)}`;
    await orchestrator.registerTask({ id: taskId, agent_id: 'code-review-agent', type: 'review', context: { repo: REPO }, expires_in_seconds: 900 });
    t.add('info', `orchestrator registered task ${taskId}: review of ${REPO}#${PULL}`);

    const request: DecisionRequestV1 = { agent_id: 'code-review-agent', task: { id: taskId }, integration: 'github', scopes: ['pr:write'], resource: RECORD };
    /** The agent's tool: decide, redeem, call GitHub. A denial is returned, not thrown, so its hint can be read. */
    const reviewsUrl = `${github.url}/repos/${REPO}/pulls/${PULL}/reviews`;
    const postReview = async (body: string): Promise<{ decision: DecisionResponseV1; review?: Json; expiresAt?: Date; token?: string }> => {
      const decision = await pep.decide(request);
      if (!decision.allow) return { decision };
      const token = await pep.redeem(decision.decision_id);
      const expiresAt = new Date(accessTokenClaimsOf(token.access_token).exp * 1000);
      const elevated = decision.reasons.find((r) => r.code === 'elevated');
      t.add('allow', `pr:write on ${RECORD.id}: decision ${decision.decision_id}, ${elevated ? `elevated (${elevated.message})` : decision.reasons.map((r) => r.code).join(', ')}; ` +
        `token [${token.scope}] expires ${expiresAt.toISOString()}${decision.approval ? ` (window ends ${decision.approval.approved_until})` : ''}`);
      const review = await callService<Json>({ service: 'github', method: 'POST', url: reviewsUrl, token: token.access_token, body: { body } });
      return { decision, review, expiresAt, token: token.access_token };
    };

    // 1. Above the ceiling: denied, but requestable.
    const first = await postReview('LGTM after the null check in parse()');
    if (first.decision.allow) throw new Error('UNEXPECTED: pr:write was allowed before any approval');
    t.denied(`pr:write on ${RECORD.id}`, new PermissionDenied(first.decision, ['pr:write']));
    const hint = first.decision.access_request;
    if (!hint) {
      t.add('ok', 'UNEXPECTED: the denial has no access_request hint (is escalation in policies/agents/code-review-agent.yaml?)');
      return t.done();
    }
    t.add('info', `hint: request [${hint.scopes.join(' ')}] at ${hint.endpoint} until ${hint.expires_at}; approvers decide for at most ${hint.max_duration_seconds} s; reason ${hint.require_reason ? 'required' : 'optional'}`);

    // 2. The agent's PEP submits the request (the hint's template + a reason) to the hint's endpoint, idempotently.
    const submitted = await pep.submitAccessRequest(
      { ...hint.template, reason: 'Security fix PR #1042 blocks the release; the review must be posted before 17:00', duration_seconds: options.windowSeconds },
      { idempotencyKey: `${taskId}-review-1` },
    );
    t.add('ok', `submitted access request ${submitted.id}: ${submitted.status}, pending until ${submitted.expires_at}, approvers [${submitted.approver_groups.join(' ')}]`);

    // 3. The platform-oncall webhook: verified signature, then the review link.
    const delivery = await options.inbox.next(0);
    const notified = delivery.json as Json;
    const ar = notified['access_request'] as Json;
    t.add('ok', `webhook ${delivery.event} delivery ${shortId(delivery.deliveryId)}: signature valid (HMAC-SHA256, signed ${new Date(delivery.signedAt * 1000).toISOString()}); ` +
      `${ar['agent_id']} wants [${(ar['scopes'] as string[]).join(' ')}] on ${ar['resource']?.id} for ${ar['duration_seconds']} s: "${ar['reason']}"`);
    const reviewLink = (notified['links'] as Json)['review'] as string;
    t.add('info', `review link: ${reviewLink.replace(/t=.*/, 't=<signed link token>')}`);

    // 4. The approver opens the page (a GET changes nothing), then posts its form with their own API key.
    const page = await fetch(reviewLink, { signal: AbortSignal.timeout(5000) });
    const html = await page.text();
    if (page.status !== 200) throw new Error(`review page: ${page.status}`);
    const stillPending = await pep.getAccessRequest(submitted.id);
    t.add('info', `approver opened the review page (${page.status}, ${html.includes('pr:write') ? 'shows pr:write' : 'no scope shown'}); the request is still ${stillPending.status}`);
    const form = formOf(html);
    const posted = await fetch(new URL(form.action, reviewLink), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...form.hidden, api_key: options.approverKey, action: 'approve', duration_seconds: String(options.windowSeconds), note: 'ok for PR 1042 only' }).toString(),
      signal: AbortSignal.timeout(5000),
    });
    const answer = (await posted.text()).match(/<p>([^<]*)<\/p>\s*<\/body>/)?.[1] ?? '';
    if (posted.status !== 200) throw new Error(`the review form was refused: ${posted.status} ${answer}`);
    const approved = await pep.getAccessRequest(submitted.id);
    t.add('ok', `approver ${approved.decided_by} approved from the page (${options.windowSeconds} s): ${approved.status} until ${approved.approved_until}`);

    // 5. The agent decides again: allowed, elevated, with a token that ends with the window.
    const second = await postReview('LGTM after the null check in parse()');
    if (!second.decision.allow || !second.review || !second.expiresAt || !second.token) {
      t.denied(`pr:write on ${RECORD.id} after the approval`, new PermissionDenied(second.decision, ['pr:write']));
      t.add('ok', 'UNEXPECTED: the approved request did not allow the call');
      return t.done();
    }
    t.add('ok', `GitHub posted review ${second.review['id']} on ${second.review['pull']} (by ${second.review['by']})`);
    const windowEnd = Date.parse(approved.approved_until ?? '');
    if (second.expiresAt.getTime() > windowEnd) t.add('ok', `UNEXPECTED: the token outlives the window (${second.expiresAt.toISOString()} > ${approved.approved_until})`);

    // 6. The window ends (bounded wait); the same call is denied again, and the sweep records the end.
    const wait = Math.max(0, windowEnd - Date.now()) + 250;
    t.add('info', `waiting ${(wait / 1000).toFixed(1)} s for the window to end`);
    await new Promise((ok) => setTimeout(ok, wait));
    try {
      await callService({ service: 'github', method: 'POST', url: reviewsUrl, token: second.token, body: { body: 'one more comment' } });
      t.add('ok', 'UNEXPECTED: GitHub accepted the elevated token after the window');
    } catch (err) {
      if (!(err instanceof ServiceRefused)) throw err;
      t.add('refused', `the elevated token, presented again after the window: GitHub answered ${err.status} ${err.code}`);
    }
    const third = await postReview('one more comment');
    if (third.decision.allow) t.add('ok', 'UNEXPECTED: pr:write was allowed after the window');
    else t.denied(`pr:write on ${RECORD.id} after the window`, new PermissionDenied(third.decision, ['pr:write']));
    const ended = await waitFor(async () => {
      const r = await pep.getAccessRequest(submitted.id);
      return r.ended_at === null ? undefined : r;
    }, 5000);
    t.add('info', ended ? `access request ${ended.id}: elevation ended (${ended.ended_reason}) at ${ended.ended_at}` : 'UNEXPECTED: the elevation has not ended 5 s after its window');

    // 7. The audit trail from the CLI on the same store: the first denial's chain (`audit chain`: the denial, the
    //    request, its notification, the approval, the decisions and tokens the elevation enabled, its end); with a
    //    CLI that has no `audit chain`, the task's events (`audit export --task`).
    const firstId = first.decision.decision_id;
    let command = ['audit', 'chain', firstId, '--json'];
    let exported: string;
    try {
      exported = await options.runCli(command);
    } catch {
      command = ['audit', 'export', '--task', taskId, '--format', 'jsonl'];
      exported = await options.runCli(command);
    }
    const events = exported.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Json).filter((e) => typeof e['type'] === 'string' && e['seq'] !== undefined);
    t.add('info', `agent-pdp ${command.join(' ')}: ${events.length} events`);
    for (const e of events) t.add('audit', describeEvent(e));
    const types = new Set(events.map((e) => e['type'] as string));
    const missing = ['decision', 'access_request.submitted', 'access_request.notified', 'access_request.approved', 'token.issued', 'elevation.ended'].filter((x) => !types.has(x));
    if (missing.length) t.add('ok', `UNEXPECTED: the audit trail lacks ${missing.join(', ')}`);
    return t.done();
  } finally {
    await stopAll([github]);
  }
}

/** The claims of a token the PEP just got (no verification: the PEP only reads its expiry). */
function accessTokenClaimsOf(token: string): { exp: number } {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp: number };
}

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T | undefined> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined || Date.now() > until) return v;
    await new Promise((ok) => setTimeout(ok, 100));
  }
}

/** One line of the chain: sequence number, time, type and the facts that matter for that type. */
function describeEvent(e: Json): string {
  const d = (e['data'] ?? {}) as Json;
  const head = `#${e['seq']} ${String(e['time'] ?? '').slice(11, 23)} ${e['type']}`;
  switch (e['type']) {
    case 'decision': {
      const result = (d['result'] ?? {}) as Json;
      const reasons = ((result['reasons'] ?? []) as Json[]).map((r) => r['code']).join(', ');
      return `${head} ${shortId(String(e['decision_id']))}: ${result['outcome']} [${((result['granted_scopes'] ?? []) as string[]).join(' ')}] ${reasons}`;
    }
    case 'access_request.submitted':
      return `${head} by ${e['caller_id']}: [${(d['scopes'] ?? []).join(' ')}] for ${d['duration_seconds']} s, approvers [${(d['approver_groups'] ?? []).join(' ')}]`;
    case 'access_request.notified':
      return `${head} ${d['destination']} (${d['approver_group']}): HTTP ${d['status_code']}, attempt ${d['attempts']}`;
    case 'access_request.approved':
      return `${head} by ${e['caller_id']}: until ${d['approved_until']} ("${d['note'] ?? ''}")`;
    case 'token.issued':
      return `${head} for decision ${shortId(String(e['decision_id']))}: [${(d['scopes'] ?? []).join(' ')}] expires ${d['expires_at']}`;
    case 'elevation.ended':
      return `${head}: ${d['reason']} at ${d['ended_at']}`;
    default:
      return `${head}${e['decision_id'] ? ` ${shortId(String(e['decision_id']))}` : ''}`;
  }
}
