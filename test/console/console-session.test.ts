import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEventV1 } from '../../src/audit/index.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';

/**
 * The web console's sessions over real HTTP (docs/console.md): an API key exchanged once for an HttpOnly,
 * SameSite=Strict cookie; the cookie then authenticates API calls with the caller's console roles only; a state
 * change needs the session's CSRF token; an idle, expired or ended session is refused and its cookie deleted.
 */
let t: TestPdp;
beforeAll(async () => {
  t = await startTestPdp({ config: { console: { session_idle_seconds: 600, session_max_seconds: 3600 } } });
});
afterAll(async () => {
  await t.close();
});

interface Session {
  cookie: string;
  csrf: string;
  body: Record<string, unknown>;
  setCookie: string;
}

async function signIn(key: string): Promise<Session> {
  const res = await fetch(`${t.url}/console/session`, { method: 'POST', headers: auth(key) });
  expect(res.status).toBe(201);
  const setCookie = res.headers.get('set-cookie') ?? '';
  const body = (await res.json()) as Record<string, unknown>;
  return { cookie: setCookie.split(';')[0] ?? '', csrf: String(body['csrf_token']), body, setCookie };
}

const withCookie = (s: Session, extra: Record<string, string> = {}): Record<string, string> => ({ cookie: s.cookie, ...extra });

async function events(type: string): Promise<AuditEventV1[]> {
  await t.pdp.refusals.flush();
  const out: AuditEventV1[] = [];
  for await (const e of t.pdp.store.iterateEvents({ types: [type as AuditEventV1['type']] })) out.push(e);
  return out;
}

describe('signing in', () => {
  it('an auditor key → 201, an HttpOnly SameSite=Strict cookie for / (not Secure on plain http), the roles and a CSRF token', async () => {
    const s = await signIn(KEYS.auditor);
    expect(s.setCookie).toMatch(/^agentpdp_console=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=3600; HttpOnly; SameSite=Strict$/);
    expect(s.body).toMatchObject({ caller_id: 'compliance', roles: ['auditor'], approver_groups: [], idle_timeout_seconds: 600 });
    expect(s.body['csrf_token']).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(s.body['csrf_token']).not.toBe(s.cookie.split('=')[1]);
    // The session is readable again (a reloaded page resumes), with the same token.
    const again = await fetch(`${t.url}/console/session`, { headers: withCookie(s) });
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ caller_id: 'compliance', csrf_token: s.csrf });
  });

  it('a PEP key cannot sign in (403 forbidden_role); a bad key is a 401', async () => {
    const pep = await fetch(`${t.url}/console/session`, { method: 'POST', headers: auth(KEYS.pep) });
    expect(pep.status).toBe(403);
    expect(((await pep.json()) as { error: { code: string } }).error.code).toBe('forbidden_role');
    expect(pep.headers.get('set-cookie')).toBeNull();
    const bad = await fetch(`${t.url}/console/session`, { method: 'POST', headers: auth('not-a-key') });
    expect(bad.status).toBe(401);
  });

  it('a caller that is a PEP and an approver gets a session with the approver role only: it cannot decide through the browser', async () => {
    const s = await signIn(KEYS.pepApprover);
    expect(s.body['roles']).toEqual(['approver']);
    const decide = await fetch(`${t.url}/v1/decide`, {
      method: 'POST',
      headers: withCookie(s, { 'x-csrf-token': s.csrf, 'content-type': 'application/json' }),
      body: JSON.stringify({ agent_id: 'support-resolver', task: { id: 'console-t1' }, integration: 'crm', scopes: ['tickets:read'] }),
    });
    expect(decide.status).toBe(403);
    expect(((await decide.json()) as { error: { code: string } }).error.code).toBe('forbidden_role');
    // Its approver role works: the inbox lists.
    const inbox = await fetch(`${t.url}/v1/access-requests`, { headers: withCookie(s) });
    expect(inbox.status).toBe(200);
  });

  it('a session cannot mint another: POST /console/session with the cookie is refused', async () => {
    const s = await signIn(KEYS.admin);
    const res = await fetch(`${t.url}/console/session`, { method: 'POST', headers: withCookie(s, { 'x-csrf-token': s.csrf }) });
    expect(res.status).toBe(400);
    expect(res.headers.get('set-cookie')).toBeNull();
  });

  it('the store holds only the hash of a session id', async () => {
    const s = await signIn(KEYS.auditor);
    const id = s.cookie.split('=')[1] ?? '';
    const db = new Database(join(t.dir, 'data/pdp.db'), { readonly: true });
    try {
      const rows = db.prepare('SELECT * FROM console_sessions').all() as Array<Record<string, unknown>>;
      expect(rows.length).toBeGreaterThan(0);
      expect(JSON.stringify(rows)).not.toContain(id);
      expect(JSON.stringify(rows)).not.toContain(s.csrf);
    } finally {
      db.close();
    }
    expect(readFileSync(join(t.dir, 'data/pdp.db')).includes(id)).toBe(false);
  });
});

describe('the cookie as a credential', () => {
  it('authenticates API reads with the caller roles: an auditor reads the trail, an approver may not', async () => {
    const auditor = await signIn(KEYS.auditor);
    const chain = await fetch(`${t.url}/v1/audit/decisions/no-such-decision`, { headers: withCookie(auditor) });
    expect(chain.status).toBe(404);
    expect(((await chain.json()) as { error: { code: string } }).error.code).toBe('decision_not_found');
    const approver = await signIn(KEYS.approver);
    const refused = await fetch(`${t.url}/v1/audit/decisions/no-such-decision`, { headers: withCookie(approver) });
    expect(refused.status).toBe(403);
  });

  it('a state change without the CSRF token, or with another session\'s, is 403 csrf_failed and written to the trail; with it, it goes through', async () => {
    const s = await signIn(KEYS.approver);
    const other = await signIn(KEYS.approver2);
    const before = (await events('access.refused')).filter((e) => (e.data as { code: string }).code === 'csrf_failed').length;
    for (const headers of [withCookie(s), withCookie(s, { 'x-csrf-token': other.csrf }), withCookie(s, { 'x-csrf-token': '' })]) {
      const res = await fetch(`${t.url}/v1/access-requests/no-such/deny`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: '{}' });
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('csrf_failed');
    }
    const refusals = (await events('access.refused')).filter((e) => (e.data as { code: string }).code === 'csrf_failed');
    expect(refusals.length - before).toBeGreaterThanOrEqual(1);
    expect(refusals.at(-1)?.caller_id).toBe('oncall-1');
    // With the token the request reaches the route (which answers for the unknown request).
    const res = await fetch(`${t.url}/v1/access-requests/no-such/deny`, {
      method: 'POST',
      headers: withCookie(s, { 'x-csrf-token': s.csrf, 'content-type': 'application/json' }),
      body: '{}',
    });
    expect(res.status).toBe(404);
  });

  it('an Authorization header wins over the cookie: the key is the credential then', async () => {
    const auditor = await signIn(KEYS.auditor);
    const res = await fetch(`${t.url}/v1/access-requests`, { headers: { ...withCookie(auditor), ...auth(KEYS.pep) } });
    expect(res.status).toBe(403); // the PEP key's role, not the auditor session's
  });

  it('two cookies of the session name are no session at all', async () => {
    const a = await signIn(KEYS.auditor);
    const b = await signIn(KEYS.auditor);
    const res = await fetch(`${t.url}/console/session`, { headers: { cookie: `${a.cookie}; ${b.cookie}` } });
    expect(res.status).toBe(401);
  });
});

describe('how many sessions, and from where', () => {
  it('a caller holds at most 20 live sessions: the 21st sign-in ends the oldest', async () => {
    // A second apart (created_at orders them; an earlier test's session of this caller is older still).
    t.clock.advance(1);
    const first = await signIn(KEYS.approver2);
    for (let i = 0; i < 19; i++) {
      t.clock.advance(1);
      await signIn(KEYS.approver2);
    }
    expect((await fetch(`${t.url}/console/session`, { headers: withCookie(first) })).status).toBe(200);
    const evictedBefore = (await events('console.session_ended')).filter((e) => (e.data as { reason: string }).reason === 'evicted').length;
    t.clock.advance(1);
    const last = await signIn(KEYS.approver2);
    expect((await fetch(`${t.url}/console/session`, { headers: withCookie(first) })).status).toBe(401);
    expect((await fetch(`${t.url}/console/session`, { headers: withCookie(last) })).status).toBe(200);
    // Its end is in the trail: console.session_ended, reason evicted, naming the session by its fingerprint.
    const evicted = (await events('console.session_ended')).filter((e) => (e.data as { reason: string }).reason === 'evicted');
    expect(evicted.length).toBeGreaterThan(evictedBefore);
    expect(evicted.at(-1)).toMatchObject({ caller_id: 'oncall-2', data: { session: expect.stringMatching(/^[0-9a-f]{16}$/) } });
  });

  it('signing in again from a browser that holds a session ends that one', async () => {
    const old = await signIn(KEYS.auditor);
    const res = await fetch(`${t.url}/console/session`, { method: 'POST', headers: { ...auth(KEYS.admin), cookie: old.cookie } });
    expect(res.status).toBe(201);
    expect((await fetch(`${t.url}/console/session`, { headers: withCookie(old) })).status).toBe(401);
    const fingerprint = createHash('sha256').update(old.cookie.split('=')[1] ?? '').digest('hex').slice(0, 16);
    const ended = (await events('console.session_ended')).filter((e) => (e.data as { session: string }).session === fingerprint);
    expect(ended).toEqual([expect.objectContaining({ caller_id: 'compliance', data: { session: fingerprint, reason: 'replaced' } })]);
  });

  it('a request a page of another origin (a sibling subdomain) makes with the cookie is refused: Sec-Fetch-Site', async () => {
    const s = await signIn(KEYS.auditor);
    for (const site of ['same-site', 'cross-site']) {
      const res = await fetch(`${t.url}/v1/audit/export`, { headers: withCookie(s, { 'sec-fetch-site': site }) });
      expect(res.status, site).toBe(403);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('csrf_failed');
    }
    // The console's own requests, and a URL typed or bookmarked by the user.
    expect((await fetch(`${t.url}/console/session`, { headers: withCookie(s, { 'sec-fetch-site': 'same-origin' }) })).status).toBe(200);
    expect((await fetch(`${t.url}/console/session`, { headers: withCookie(s, { 'sec-fetch-site': 'none' }) })).status).toBe(200);
  });
});

describe('the end of a session', () => {
  it('idle for longer than session_idle_seconds → 401, the cookie deleted, auth.failed unknown_session in the trail', async () => {
    const s = await signIn(KEYS.auditor);
    t.clock.advance(400);
    expect((await fetch(`${t.url}/console/session`, { headers: withCookie(s) })).status).toBe(200); // a use within the window
    t.clock.advance(400); // 800 s after sign-in, 400 s after the last use
    expect((await fetch(`${t.url}/console/session`, { headers: withCookie(s) })).status).toBe(200);
    // Its last use is written at most every 30 s, so the idle end is honoured up to 30 s late, never early.
    t.clock.advance(631);
    const res = await fetch(`${t.url}/console/session`, { headers: withCookie(s) });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthenticated');
    expect(res.headers.get('set-cookie')).toMatch(/^agentpdp_console=; Path=\/; Max-Age=0; HttpOnly; SameSite=Strict$/);
    const failures = await events('auth.failed');
    expect(failures.some((e) => (e.data as { reason: string }).reason === 'unknown_session')).toBe(true);
  });

  it('a use its store record lags (within 30 s of the last one written) still counts: never ended before session_idle_seconds', async () => {
    const s = await signIn(KEYS.auditor);
    t.clock.advance(20); // a use 20 s after sign-in: not written (the last write, the sign-in, is under 30 s old)
    expect((await fetch(`${t.url}/console/session`, { headers: withCookie(s) })).status).toBe(200);
    t.clock.advance(599); // 599 s after that use, 619 s after the last use written
    expect((await fetch(`${t.url}/console/session`, { headers: withCookie(s) })).status).toBe(200);
  });

  it('session_max_seconds after sign-in it ends, however busy', async () => {
    const s = await signIn(KEYS.auditor);
    for (let i = 0; i < 7; i++) {
      t.clock.advance(500);
      expect((await fetch(`${t.url}/console/session`, { headers: withCookie(s) })).status).toBe(200);
    }
    t.clock.advance(101); // 3,601 s after sign-in
    expect((await fetch(`${t.url}/console/session`, { headers: withCookie(s) })).status).toBe(401);
  });

  it('sign-out ends it (with the CSRF token only) and deletes the cookie', async () => {
    const s = await signIn(KEYS.admin);
    const forged = await fetch(`${t.url}/console/session/end`, { method: 'POST', headers: withCookie(s) });
    expect(forged.status).toBe(403);
    expect((await fetch(`${t.url}/console/session`, { headers: withCookie(s) })).status).toBe(200);
    const out = await fetch(`${t.url}/console/session/end`, { method: 'POST', headers: withCookie(s, { 'x-csrf-token': s.csrf }) });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(/Max-Age=0/);
    expect((await fetch(`${t.url}/console/session`, { headers: withCookie(s) })).status).toBe(401);
    // Both ends of it are in the trail, under the admin's caller id, by the id's fingerprint (never the id).
    const id = s.cookie.split('=')[1] ?? '';
    const fingerprint = createHash('sha256').update(id).digest('hex').slice(0, 16);
    const started = (await events('console.session_started')).filter((e) => (e.data as { session: string }).session === fingerprint);
    expect(started).toEqual([expect.objectContaining({ caller_id: 'ops', data: { session: fingerprint, roles: ['admin'], ip: '127.0.0.1', expires_at: s.body['expires_at'] } })]);
    const ended = (await events('console.session_ended')).filter((e) => (e.data as { session: string }).session === fingerprint);
    expect(ended).toEqual([expect.objectContaining({ caller_id: 'ops', data: { session: fingerprint, reason: 'signed_out' } })]);
    for await (const e of t.pdp.store.iterateEvents()) expect(JSON.stringify(e)).not.toContain(id);
  });
});

describe('over TLS (console.secure_cookie)', () => {
  it('the cookie is Secure and named __Host-: the plain name is no session then', async () => {
    const tls = await startTestPdp({ config: { console: { secure_cookie: true } } });
    try {
      const res = await fetch(`${tls.url}/console/session`, { method: 'POST', headers: auth(KEYS.auditor) });
      const setCookie = res.headers.get('set-cookie') ?? '';
      expect(setCookie).toMatch(/^__Host-agentpdp_console=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=28800; HttpOnly; SameSite=Strict; Secure$/);
      const id = setCookie.split(';')[0]?.split('=')[1] ?? '';
      expect((await fetch(`${tls.url}/console/session`, { headers: { cookie: `__Host-agentpdp_console=${id}` } })).status).toBe(200);
      expect((await fetch(`${tls.url}/console/session`, { headers: { cookie: `agentpdp_console=${id}` } })).status).toBe(401);
    } finally {
      await tls.close();
    }
  });
});
