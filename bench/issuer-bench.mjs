/**
 * What issuing an access token costs, from the signature alone up to the whole HTTP redemption.
 *
 *   make build && node bench/issuer-bench.mjs [tokens per round]
 *
 * Rows, for EdDSA and ES256 keys:
 *   jose SignJWT (peer)    the same claims and header signed with jose directly: the floor
 *   issueAccessToken       the library: input checks, claims, jti, signature
 *   POST /v1/revoke        of garbage: auth, body check, an empty 200; no signature, no write. The HTTP floor.
 *   POST /v1/tokens        a whole PDP on loopback: auth, body check, the redemption transaction (SQLite, group
 *                          commit, audit event), claims, signature, JSON; one request at a time (latency) and
 *                          16 in flight (throughput). Decisions are made beforehand and not timed. The client
 *                          (node:http, keep-alive) runs in the same process, so its cost is in these figures too.
 *
 * Imports the built dist/ (there is no TypeScript runner for scripts). Figures are for comparing on one
 * machine; no test asserts them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SignJWT } from 'jose';
import { buildConfig } from '../dist/config/config-loader.js';
import { sha256Hex } from '../dist/config/dev-keys.js';
import { loadKeyRing } from '../dist/issuer/key-ring.js';
import { issueAccessToken, planAccessToken } from '../dist/issuer/token-issuer.js';
import { createPdp } from '../dist/main.js';
import { createLogger } from '../dist/server/logger.js';

const TOKENS = Number(process.argv[2] ?? 2000); // per round
const HTTP_TOKENS = Math.min(TOKENS, 400);
const ISSUER = 'http://127.0.0.1:8181';
const rows = [];

/** One row: the mean of each round, and the best round (the machine is shared; the best round is the least disturbed). */
function report(name, count, roundNanos) {
  const per = roundNanos.map((n) => Number(n) / 1e3 / count);
  const mean = per.reduce((a, b) => a + b, 0) / per.length;
  const best = Math.min(...per);
  rows.push({ name, tokens: `${roundNanos.length} × ${count}`, 'µs/token mean': mean.toFixed(1), 'µs/token best': best.toFixed(1), 'tokens/s best': Math.round(1e6 / best).toLocaleString('en') });
}

const ROUNDS = 5;
async function rounds(count, fn) {
  const out = [];
  for (let r = 0; r < ROUNDS; r++) out.push(await time(count, (i) => fn(r * count + i)));
  return out;
}

async function time(count, fn) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await fn(i);
  return process.hrtime.bigint() - start;
}

function tokenInput(keyRing, i) {
  return {
    keyRing,
    issuer: ISSUER,
    agent_id: 'support-resolver',
    caller_id: 'support-middleware',
    integration: 'crm',
    audience: 'https://crm.example.com/api',
    scopes: ['tickets:write'],
    resource: { type: 'customer', id: String(1000 + (i % 100)) },
    task_id: `task-${i}`,
    decision_id: `dec-${i}`,
    ttl_seconds: 900,
    now: new Date(),
  };
}

async function library(alg, root) {
  const ring = await loadKeyRing(join(root, `keys-${alg}`), { alg, now: new Date(), maxTokenTtlSeconds: 3600 });
  const { kid, key } = ring.signingKey;
  const claims = Array.from({ length: ROUNDS * TOKENS }, (_, i) => planAccessToken(tokenInput(ring, i)));
  const peer = (i) => new SignJWT({ ...claims[i] }).setProtectedHeader({ alg, typ: 'at+jwt', kid }).sign(key);
  const ours = (i) => issueAccessToken(tokenInput(ring, i));
  await time(500, peer); // warm up: JIT, WebCrypto key setup
  await time(500, ours);
  report(`${alg}  jose SignJWT (peer)`, TOKENS, await rounds(TOKENS, peer));
  report(`${alg}  issueAccessToken`, TOKENS, await rounds(TOKENS, ours));
}

async function overHttp(alg, root) {
  const dir = mkdtempSync(join(root, `pdp-${alg}-`));
  const { config } = buildConfig(
    {
      server: { listen: '127.0.0.1:0' },
      policy: { bundle: resolve('opa-bundle/bundle.tar.gz'), agents: resolve('policies'), watch: false },
      store: { url: 'sqlite:data/pdp.db' },
      issuer: { issuer: ISSUER, keys: 'data/keys', alg, redeem_window_seconds: 3600 },
      log: { level: 'silent' },
      callers: [
        { id: 'pep-1', role: 'pep', key_sha256: sha256Hex('bench-pep-key'), agents: ['support-resolver'] },
        { id: 'orchestrator', role: 'orchestrator', key_sha256: sha256Hex('bench-orchestrator-key') },
      ],
    },
    join(dir, 'bench.yaml'),
    dir,
  );
  const pdp = await createPdp(config, { logger: createLogger('silent'), defaultMetrics: false });
  const server = pdp.app.listen(0, '127.0.0.1');
  await new Promise((ok) => server.once('listening', ok));
  const url = `http://127.0.0.1:${server.address().port}`;
  // node:http with keep-alive, not fetch: on Node 20 fetch adds about a millisecond of client work per request.
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const send = (path, key, text) => new Promise((ok, fail) => {
    const req = httpRequest(url + path, { method: 'POST', agent, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', fail);
    req.end(text);
  });
  const post = async (path, key, body, expected) => {
    const res = await send(path, key, JSON.stringify(body));
    if (res.status !== expected) throw new Error(`${path}: ${res.status} ${res.text}`);
    return JSON.parse(res.text);
  };
  try {
    await post('/v1/tasks', 'bench-orchestrator-key', {
      id: 'bench-task', agent_id: 'support-resolver', type: 'complaint_resolution', context: { customer_id: '1234' }, expires_in_seconds: 86400,
    }, 201);
    const decide = () => post('/v1/decide', 'bench-pep-key', {
      agent_id: 'support-resolver', task: { id: 'bench-task' }, integration: 'crm', scopes: ['tickets:write'], resource: { type: 'customer', id: '1234' },
    }, 200).then((d) => d.decision_id);
    const redeem = (id) => post('/v1/tokens', 'bench-pep-key', { decision_id: id }, 201);

    const warm = [];
    for (let i = 0; i < 300; i++) warm.push(await decide());
    for (const id of warm) await redeem(id);

    // The HTTP floor: auth, body check and an answer, with no signature and no write (a revocation of garbage).
    const floor = () => send('/v1/revoke', 'bench-pep-key', '{"token":"x"}');
    report(`${alg}  POST /v1/revoke of garbage (HTTP floor)`, HTTP_TOKENS, await rounds(HTTP_TOKENS, floor));

    const serial = [];
    for (let i = 0; i < ROUNDS * HTTP_TOKENS; i++) serial.push(await decide());
    report(`${alg}  POST /v1/tokens, 1 in flight`, HTTP_TOKENS, await rounds(HTTP_TOKENS, (i) => redeem(serial[i])));

    const parallel = [];
    for (let i = 0; i < ROUNDS * HTTP_TOKENS; i++) parallel.push(await decide());
    const concurrent = [];
    for (let r = 0; r < ROUNDS; r++) {
      const ids = parallel.slice(r * HTTP_TOKENS, (r + 1) * HTTP_TOKENS);
      const start = process.hrtime.bigint();
      await Promise.all(Array.from({ length: 16 }, async () => {
        while (ids.length > 0) await redeem(ids.pop());
      }));
      concurrent.push(process.hrtime.bigint() - start);
    }
    report(`${alg}  POST /v1/tokens, 16 in flight`, HTTP_TOKENS, concurrent);
  } finally {
    agent.destroy();
    server.closeAllConnections();
    await new Promise((ok) => server.close(ok));
    await pdp.close();
  }
}

const root = mkdtempSync(join(tmpdir(), 'agent-pdp-issuer-bench-'));
try {
  for (const alg of ['EdDSA', 'ES256']) {
    await library(alg, root);
    await overHttp(alg, root);
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.table(rows);
