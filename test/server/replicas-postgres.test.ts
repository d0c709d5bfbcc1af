import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ensureBuilt, runBuiltCli } from '../audit-e2e/cli.js';
import { callOnFreshConnection, type JsonAnswer } from '../support/fresh-connection.js';
import { KEYS, TEST_CALLERS } from '../support/pdp-harness.js';
import { dropSchema, newSchema, postgresUrl } from '../support/postgres.js';

/**
 * Issue 19, "several replicas on one database", as real processes: three `agent-pdp serve` replicas (three
 * processes, three loopback ports, a config each) on one PostgreSQL schema and one issuer key folder, under a bounded
 * client load. A decision is redeemed once whichever replicas race for it; what one replica writes (a decision, a
 * completed task) the others act on at once; a token from one verifies with another's JWKS; a replica killed with
 * SIGKILL mid-burst loses nothing a client was told, and the trail stays one verified chain. Then, on a cluster of
 * this file's own: PostgreSQL stopped for 10 s under load answers 503 store_unavailable, never an allow without its
 * record, and the same processes serve again once it is back. The trail is read as an auditor does: exported
 * through a replica's audit API and checked by `agent-pdp audit verify --file`.
 */

const ISSUER = 'http://127.0.0.1:8181';
const CLUSTER_SCRIPT = resolve('scripts/postgres-cluster.sh');

type Answer = JsonAnswer;

interface Replica {
  name: string;
  configPath: string;
  child: ChildProcess;
  pid: number;
  url: string;
  lines: Array<{ msg?: string; pid?: number; url?: string; code?: string }>;
  stderr: string[];
}

/** One request on a connection of its own. */
const call = (base: string, method: string, path: string, key: string | undefined, body?: object): Promise<Answer> =>
  callOnFreshConnection(base, method, path, key, body);

/** code-review-agent on a task the trusted PEP asserts inline (no registration). */
const decide = (r: Replica, task: string) =>
  call(r.url, 'POST', '/v1/decide', KEYS.pep, { agent_id: 'code-review-agent', task: { id: task }, integration: 'github', scopes: ['repo:read'] });
/** support-resolver on its registered complaint task. */
const decideRegistered = (r: Replica, task: string) =>
  call(r.url, 'POST', '/v1/decide', KEYS.pep, { agent_id: 'support-resolver', task: { id: task }, integration: 'crm', scopes: ['tickets:read'] });
const redeem = (r: Replica, decisionId: unknown) => call(r.url, 'POST', '/v1/tokens', KEYS.pep, { decision_id: decisionId });
const introspect = (r: Replica, token: unknown) => call(r.url, 'POST', '/v1/introspect', KEYS.resource, { token });
const errorCode = (a: Answer | undefined): string | undefined => (a?.json['error'] as { code?: string } | undefined)?.code;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>, ms = 60_000, explain?: () => string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${explain === undefined ? '' : `: ${explain()}`}`);
    await sleep(50);
  }
}

/** A folder with the test policies, the shared key folder, and one config per replica (same store, same keys). */
function writeConfigs(dir: string, store: { url: string; schema: string }, names: readonly string[]): Map<string, string> {
  cpSync(resolve('test/fixtures/policies'), join(dir, 'policies'), { recursive: true });
  const configs = new Map<string, string>();
  for (const name of names) {
    mkdirSync(join(dir, name), { recursive: true });
    const configPath = join(dir, name, 'agent-pdp.yaml');
    writeFileSync(
      configPath,
      JSON.stringify({
        server: { listen: '127.0.0.1:0', workers: 1 },
        policy: { bundle: resolve('opa-bundle/bundle.tar.gz'), agents: join(dir, 'policies'), watch: false },
        store,
        // One key folder on "shared storage": empty at first, so the replicas starting together create it together.
        // A window that outlasts the outage test: decisions allowed before it are redeemed after it.
        issuer: { issuer: ISSUER, keys: join(dir, 'keys'), redeem_window_seconds: 600 },
        log: { level: 'info' },
        callers: TEST_CALLERS,
      }),
    );
    configs.set(name, configPath);
  }
  return configs;
}

async function startReplica(name: string, configPath: string): Promise<Replica> {
  const child = spawn(process.execPath, [CLI, 'serve', '--config', configPath, '--workers', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const replica: Replica = { name, configPath, child, pid: child.pid as number, url: '', lines: [], stderr: [] };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      replica.lines.push(JSON.parse(line) as Replica['lines'][number]);
    } catch {
      // not a log line
    }
  });
  createInterface({ input: child.stderr! }).on('line', (line) => replica.stderr.push(line));
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  const ready = await until(`replica ${name} to listen`, () => {
    if (exited !== undefined) throw new Error(`replica ${name} exited (${exited}): ${replica.stderr.slice(-10).join('\n')}`);
    return replica.lines.find((l) => l.msg === 'agent-pdp listening');
  });
  replica.url = ready.url as string;
  expect(ready.pid).toBe(replica.pid);
  return replica;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM each replica this file started (by pid), SIGKILL whichever is still there after 10 s. */
async function stopReplicas(replicas: readonly Replica[]): Promise<void> {
  await Promise.all(
    replicas.map(async (r) => {
      if (r.child.exitCode !== null || r.child.signalCode !== null) return;
      const exit = new Promise<void>((ok) => r.child.once('exit', () => ok()));
      r.child.kill('SIGTERM');
      const stopped = await Promise.race([exit.then(() => true), sleep(10_000).then(() => false)]);
      if (!stopped && alive(r.pid)) process.kill(r.pid, 'SIGKILL');
    }),
  );
}

/** The whole body of one GET, as text. */
function fetchText(base: string, path: string, key: string): Promise<{ status: number; text: string }> {
  return new Promise((ok, fail) => {
    const req = request(`${base}${path}`, { agent: false, timeout: 60_000, headers: { authorization: `Bearer ${key}` } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', fail);
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer in 60 s`)));
    req.end();
  });
}

/**
 * The whole trail, exported through `r`'s audit API (JSON Lines with hashes) into `file`, then checked by
 * `agent-pdp audit verify --file`: the decision ids of its `decision` events and the jtis of its `token.issued`.
 */
async function verifiedTrail(r: Replica, file: string): Promise<{ decisions: Set<string>; tokens: Set<string> }> {
  const exported = await fetchText(r.url, '/v1/audit/export?format=jsonl', KEYS.auditor);
  expect(exported.status, exported.text.slice(0, 300)).toBe(200);
  writeFileSync(file, exported.text);
  const verify = await runBuiltCli(['audit', 'verify', '--file', file]);
  expect(verify.code, `${verify.stdout}\n${verify.stderr}`).toBe(0);
  const decisions = new Set<string>();
  const tokens = new Set<string>();
  for (const line of exported.text.split('\n')) {
    if (line === '') continue;
    const e = JSON.parse(line) as { type?: string; decision_id?: string; jti?: string };
    if (e.type === 'decision' && e.decision_id !== undefined) decisions.add(e.decision_id);
    if (e.type === 'token.issued' && e.jti !== undefined) tokens.add(e.jti);
  }
  return { decisions, tokens };
}

const NAMES = ['a', 'b', 'c'] as const;

describe('three replicas on one PostgreSQL schema', () => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-replicas-'));
  const schema = newSchema('replicas');
  const replicas: Replica[] = [];
  let configs: Map<string, string>;
  const replica = (name: (typeof NAMES)[number]): Replica => replicas.find((r) => r.name === name) as Replica;

  beforeAll(async () => {
    ensureBuilt();
    configs = writeConfigs(dir, { url: postgresUrl(), schema }, NAMES);
    // All three at once, on an empty schema and an empty key folder: the migrations and the key ring race.
    const started = await Promise.allSettled(NAMES.map((name) => startReplica(name, configs.get(name) as string)));
    for (const s of started) if (s.status === 'fulfilled') replicas.push(s.value);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    expect(new Set(replicas.map((r) => r.url)).size).toBe(3);
  }, 120_000);

  afterAll(async () => {
    await stopReplicas(replicas);
    await dropSchema(schema).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('replicas started at once on an empty key folder share one key ring: a token from A verifies with B\'s JWKS', async () => {
    const jwks = await Promise.all(replicas.map(async (r) => (await call(r.url, 'GET', '/.well-known/jwks.json', undefined)).json));
    expect(jwks[1]).toEqual(jwks[0]);
    expect(jwks[2]).toEqual(jwks[0]);
    const allow = await decide(replica('a'), 'jwks');
    expect(allow.json['outcome']).toBe('allow');
    const issued = await redeem(replica('a'), allow.json['decision_id']);
    expect(issued.status).toBe(201);
    const { payload } = await jwtVerify(issued.json['access_token'] as string, createLocalJWKSet(jwks[1] as unknown as JSONWebKeySet), { issuer: ISSUER });
    expect(payload.jti).toBe(issued.json['jti']);
    // And B's introspection, with its own key ring, finds it active.
    expect((await introspect(replica('b'), issued.json['access_token'])).json['active']).toBe(true);
  });

  it('one decision redeemed concurrently through all three replicas issues exactly one token', async () => {
    for (let round = 0; round < 5; round++) {
      const allow = await decide(replicas[round % 3] as Replica, 'race');
      expect(allow.json['outcome']).toBe('allow');
      const redeems = await Promise.all(replicas.flatMap((r) => [redeem(r, allow.json['decision_id']), redeem(r, allow.json['decision_id']), redeem(r, allow.json['decision_id'])]));
      const statuses = redeems.map((r) => [r.status, errorCode(r)]);
      expect(redeems.filter((r) => r.status === 201), JSON.stringify(statuses)).toHaveLength(1);
      expect(redeems.filter((r) => r.status !== 201).every((r) => r.status === 409), JSON.stringify(statuses)).toBe(true);
    }
  });

  it('a decision made on A is redeemable on B (once: C is refused)', async () => {
    const allow = await decide(replica('a'), 'across');
    expect(allow.json['outcome']).toBe('allow');
    expect((await redeem(replica('b'), allow.json['decision_id'])).status).toBe(201);
    expect((await redeem(replica('c'), allow.json['decision_id'])).status).toBe(409);
  });

  it('a task completed on C is seen at once by A\'s next decision and by introspection on B', async () => {
    const task = 'complete-on-c';
    const registered = await call(replica('a').url, 'POST', '/v1/tasks', KEYS.orchestrator, {
      id: task,
      agent_id: 'support-resolver',
      type: 'complaint_resolution',
      context: { customer_id: 'c-1' },
      expires_in_seconds: 3600,
    });
    expect(registered.status).toBe(201);
    const allow = await decideRegistered(replica('b'), task);
    expect(allow.json['outcome']).toBe('allow');
    const issued = await redeem(replica('b'), allow.json['decision_id']);
    expect(issued.status).toBe(201);
    expect((await introspect(replica('b'), issued.json['access_token'])).json['active']).toBe(true);

    expect((await call(replica('c').url, 'POST', `/v1/tasks/${task}/complete`, KEYS.orchestrator, {})).status).toBe(200);
    const after = await decideRegistered(replica('a'), task);
    expect(after.json['outcome']).toBe('deny');
    expect((after.json['reasons'] as Array<{ code: string }>)[0]?.code).toBe('task_completed');
    expect((await introspect(replica('b'), issued.json['access_token'])).json).toEqual({ active: false });
  });

  it('a replica killed with SIGKILL mid-burst: every decision and token a client saw is in the trail, which verifies', async () => {
    const victim = replica('c');
    const acknowledged = { decisions: [] as string[], tokens: [] as string[] };
    const refused: string[] = [];
    let answeredByVictim = 0;
    // Bounded: 40 decide + redeem rounds per client, two clients per replica.
    const burst = async (r: Replica): Promise<void> => {
      for (let i = 0; i < 40; i++) {
        const d = await decide(r, 'burst').catch(() => undefined);
        if (d?.status !== 200) {
          refused.push(`${r.name} decide ${d?.status ?? 'no answer'}`);
          continue;
        }
        acknowledged.decisions.push(d.json['decision_id'] as string);
        if (r === victim) answeredByVictim++;
        const t = await redeem(r, d.json['decision_id']).catch(() => undefined);
        if (t?.status === 201) acknowledged.tokens.push(t.json['jti'] as string);
        else refused.push(`${r.name} redeem ${t?.status ?? 'no answer'}`);
      }
    };
    const running = Promise.all(replicas.flatMap((r) => [burst(r), burst(r)]));
    // Kill C once it has answered some of its clients' 80 rounds.
    await until('C to answer part of the burst', () => (answeredByVictim >= 5 ? true : undefined), 30_000);
    process.kill(victim.pid, 'SIGKILL');
    await running;
    expect(alive(victim.pid)).toBe(false);
    expect(refused.some((r) => r.startsWith('c ')), 'C was killed before the end of its burst').toBe(true);
    // Only C's clients lose answers (refused connections); A and B answer every request.
    expect(refused.filter((r) => !r.startsWith('c ')), refused.join(', ')).toEqual([]);
    expect(acknowledged.decisions.length).toBeGreaterThanOrEqual(160 + 5);

    const trail = await verifiedTrail(replica('a'), join(dir, 'after-kill.jsonl'));
    for (const id of acknowledged.decisions) expect(trail.decisions.has(id), `decision ${id}`).toBe(true);
    for (const jti of acknowledged.tokens) expect(trail.tokens.has(jti), `token ${jti}`).toBe(true);

    // The survivors keep serving, on the same chain.
    const allow = await decide(replica('a'), 'after-kill');
    const issued = await redeem(replica('b'), allow.json['decision_id']);
    expect(issued.status).toBe(201);
    expect((await verifiedTrail(replica('b'), join(dir, 'survivors.jsonl'))).tokens.has(issued.json['jti'] as string)).toBe(true);
  }, 120_000);

  it('one replica at a time signs the chain head: the shared signed-heads file verifies with `audit verify --config` after a handover', async () => {
    const survivors = [replica('a'), replica('b')];
    // A replica logs when it starts and stops leading (the leadership lease on the store): the last word counts.
    const LEADS = 'this process leads: it signs the audit chain head and runs the scheduled jobs';
    const leads = (r: Replica): boolean => r.lines.filter((l) => l.msg === LEADS || l.msg === 'this process no longer leads').at(-1)?.msg === LEADS;
    const leader = await until('one surviving replica to lead', () => (survivors.filter(leads).length === 1 ? survivors.find(leads) : undefined));
    const follower = survivors.find((r) => r !== leader) as Replica;
    // The leader signs the head as it stops; the other takes the lease over, and signs as it stops in turn.
    expect((await decide(leader, 'heads')).status).toBe(200);
    await stopReplicas([leader]);
    await until('the other replica to take the lease over', () => (leads(follower) ? true : undefined));
    expect((await decide(follower, 'heads')).status).toBe(200);
    await stopReplicas([follower]);
    const verify = await runBuiltCli(['audit', 'verify', '--config', follower.configPath]);
    expect(verify.code, `${verify.stdout}\n${verify.stderr}`).toBe(0);
    const heads = /signed-heads file .*: (\d+) heads? verified/.exec(verify.stdout);
    expect(heads, verify.stdout).not.toBeNull();
    expect(Number(heads?.[1])).toBeGreaterThanOrEqual(2);
  }, 120_000);
});

/** `scripts/postgres-cluster.sh start` prints shell assignments (printf %q); the values are URL-safe or quoted. */
function clusterVars(out: string): Record<string, string> {
  return Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((line) => {
        const at = line.indexOf('=');
        const value = line.slice(at + 1);
        return [line.slice(0, at), value.startsWith("'") && value.endsWith("'") ? value.slice(1, -1) : value.replace(/\\(.)/g, '$1')];
      }),
  );
}

describe('three replicas while PostgreSQL is stopped for 10 s (a cluster of this file\'s own)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-replicas-outage-'));
  const replicas: Replica[] = [];
  let clusterDir: string | undefined;
  let configs: Map<string, string>;

  beforeAll(async () => {
    ensureBuilt();
    const vars = clusterVars(execFileSync('bash', [CLUSTER_SCRIPT, 'start'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 }));
    clusterDir = vars['PG_DIR'];
    if (vars['PG_URL'] === undefined || clusterDir === undefined) throw new Error('scripts/postgres-cluster.sh start printed no PG_URL / PG_DIR');
    configs = writeConfigs(dir, { url: vars['PG_URL'], schema: 'replicas' }, NAMES);
    const started = await Promise.allSettled(NAMES.map((name) => startReplica(name, configs.get(name) as string)));
    for (const s of started) if (s.status === 'fulfilled') replicas.push(s.value);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
  }, 180_000);

  afterAll(async () => {
    await stopReplicas(replicas);
    if (clusterDir !== undefined) execFileSync('bash', [CLUSTER_SCRIPT, 'stop', clusterDir], { stdio: 'inherit', timeout: 120_000 });
    rmSync(dir, { recursive: true, force: true });
  }, 180_000);

  it('answers 503 store_unavailable, never an allow without its record, and the same processes serve again after', async () => {
    const testEnds = Date.now() + 175_000; // the test's own limit is 180 s: a recovery timeout must say why before it
    type Phase = 'before' | 'stopping' | 'outage' | 'resuming' | 'after';
    let phase: Phase = 'before';
    let stop = false;
    const answers: Array<{ replica: string; what: 'decide' | 'redeem'; from: Phase; to: Phase; status: number | 'no answer'; code?: string | undefined }> = [];
    const acknowledged = { decisions: [] as string[], tokens: [] as string[] };
    const ask = async (r: Replica, what: 'decide' | 'redeem', send: () => Promise<Answer>): Promise<Answer | undefined> => {
      const from = phase;
      const a = await send().catch(() => undefined);
      answers.push({ replica: r.name, what, from, to: phase, status: a?.status ?? 'no answer', code: errorCode(a) });
      return a;
    };
    // One client per replica, deciding and redeeming each allow at once. Bounded by time (a 503 comes back in a few
    // milliseconds, so a bound on rounds would run out during a slow outage): it stops once every replica has served
    // again after the outage, or after 170 s.
    const clientsEnd = Date.now() + 170_000;
    const client = async (r: Replica): Promise<void> => {
      while (!stop && Date.now() < clientsEnd) {
        const d = await ask(r, 'decide', () => decide(r, 'outage'));
        if (d?.status === 200 && d.json['outcome'] === 'allow') {
          acknowledged.decisions.push(d.json['decision_id'] as string);
          const t = await ask(r, 'redeem', () => redeem(r, d.json['decision_id']));
          if (t?.status === 201) acknowledged.tokens.push(t.json['jti'] as string);
        }
        await sleep(20);
      }
    };
    const servedIn = (p: Phase, r: Replica, what: 'decide' | 'redeem', status: number) =>
      answers.some((a) => a.replica === r.name && a.what === what && a.from === p && a.status === status);
    const load = Promise.all(replicas.map((r) => client(r)));

    await until('every replica to serve before the outage', () => (replicas.every((r) => servedIn('before', r, 'redeem', 201)) ? true : undefined));
    // Allowed before the outage, redeemed during it (refused), and again after it (a refusal wrote nothing).
    const held = await Promise.all(replicas.map(async (r) => (await decide(r, 'held')).json));
    expect(held.map((d) => d['outcome'])).toEqual(['allow', 'allow', 'allow']);
    acknowledged.decisions.push(...held.map((d) => d['decision_id'] as string));
    phase = 'stopping';
    // Asynchronously: the clients keep asking while the server goes down and comes back.
    await promisify(execFile)('bash', [CLUSTER_SCRIPT, 'pause', clusterDir as string], { timeout: 120_000 });
    phase = 'outage';
    const heldRedeems = await Promise.all(held.map((d, i) => ask(replicas[(i + 1) % 3] as Replica, 'redeem', () => redeem(replicas[(i + 1) % 3] as Replica, d['decision_id']))));
    await sleep(10_000);
    phase = 'resuming';
    await promisify(execFile)('bash', [CLUSTER_SCRIPT, 'resume', clusterDir as string], { timeout: 120_000 });
    phase = 'after';
    // On a timeout, what each replica answered since PostgreSQL came back, and what it logged at warn or above.
    const since = (): string => {
      const counts = (r: Replica): Record<string, number> => {
        const n: Record<string, number> = {};
        for (const a of answers) {
          if (a.replica !== r.name || (a.from !== 'resuming' && a.from !== 'after')) continue;
          const key = `${a.what} ${a.status} ${a.code ?? ''}`.trim();
          n[key] = (n[key] ?? 0) + 1;
        }
        return n;
      };
      const logged = (r: Replica): string[] =>
        r.lines
          .map((l) => l as { level?: number; msg?: string; err?: { cause?: string } })
          .filter((l) => (l.level ?? 0) >= 40)
          .slice(-3)
          .map((l) => `${l.msg ?? ''}: ${l.err?.cause ?? ''}`);
      return JSON.stringify(replicas.map((r) => ({ replica: r.name, alive: alive(r.pid), answers: counts(r), logged: logged(r) })));
    };
    await until(
      'every replica to decide and redeem again',
      () => (replicas.every((r) => servedIn('after', r, 'decide', 200) && servedIn('after', r, 'redeem', 201)) ? true : undefined),
      Math.max(1_000, Math.min(90_000, testEnds - 15_000 - Date.now())),
      since,
    ).finally(() => (stop = true));
    await load;

    expect(heldRedeems.map((a) => [a?.status, errorCode(a)])).toEqual(Array.from({ length: 3 }, () => [503, 'store_unavailable']));
    for (const [i, d] of held.entries()) {
      const t = await redeem(replicas[(i + 2) % 3] as Replica, d['decision_id']);
      expect(t.status, JSON.stringify(t.json)).toBe(201);
      acknowledged.tokens.push(t.json['jti'] as string);
    }
    // While the database was down (asked and answered in the outage): 503 store_unavailable, every one.
    const during = answers.filter((a) => a.from === 'outage' && a.to === 'outage');
    const summary = JSON.stringify(during.filter((a) => a.status !== 503 || a.code !== 'store_unavailable').slice(0, 10));
    expect(during.every((a) => a.status === 503 && a.code === 'store_unavailable'), summary).toBe(true);
    for (const r of replicas) expect(during.some((a) => a.replica === r.name && a.what === 'decide'), r.name).toBe(true);
    // No replica restarted: the same processes, listening once each.
    for (const r of replicas) {
      expect(alive(r.pid)).toBe(true);
      expect(r.child.exitCode).toBe(null);
      expect(r.lines.filter((l) => l.msg === 'agent-pdp listening')).toHaveLength(1);
    }
    // Every allow and every token a client was given is in the trail, and the trail is one verified chain.
    const trail = await verifiedTrail(replicas[2] as Replica, join(dir, 'after-outage.jsonl'));
    for (const id of acknowledged.decisions) expect(trail.decisions.has(id), `decision ${id}`).toBe(true);
    for (const jti of acknowledged.tokens) expect(trail.tokens.has(jti), `token ${jti}`).toBe(true);
  }, 180_000);
});
