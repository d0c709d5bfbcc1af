/**
 * Tokens per second, two ways:
 *   - library: issueAccessToken (input checks, claims, jti, signature) in a loop, next to jose's SignJWT on the
 *     same claims (the floor), for EdDSA and ES256. A child process: `node issuer-bench.js [--seconds 1]`.
 *   - HTTP: decide then redeem (`POST /v1/decide` → `POST /v1/tokens`) against the running server, with
 *     `concurrency` pairs in flight: what an agent needs for one token, auth and audit on (runDecideRedeem).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import { loadKeyRing } from '../src/issuer/key-ring.js';
import { issueAccessToken, planAccessToken, type IssueAccessTokenInput } from '../src/issuer/token-issuer.js';
import type { KeyRing } from '../src/issuer/key-ring.js';
import { isMain, median, timeAsync } from './lib/timing.js';
import { BENCH_PEP, MIX } from './lib/workload.js';

export interface IssuerLibraryRow {
  alg: 'EdDSA' | 'ES256';
  issue_access_token_per_s: number;
  jose_sign_jwt_per_s: number;
}

function tokenInput(keyRing: KeyRing, i: number): IssueAccessTokenInput {
  return {
    keyRing,
    issuer: 'https://agent-pdp.bench.invalid',
    agent_id: 'support-resolver',
    caller_id: BENCH_PEP.id,
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

export async function runIssuerLibrary(seconds: number): Promise<IssuerLibraryRow[]> {
  const root = mkdtempSync(join(tmpdir(), 'agent-pdp-issuer-bench-'));
  try {
    const rows: IssuerLibraryRow[] = [];
    for (const alg of ['EdDSA', 'ES256'] as const) {
      const ring = await loadKeyRing(join(root, alg), { alg, now: new Date(), maxTokenTtlSeconds: 3600 });
      const { kid, key } = ring.signingKey;
      const claims = Array.from({ length: 1000 }, (_, i) => planAccessToken(tokenInput(ring, i)));
      const jose = (i: number): Promise<string> =>
        new SignJWT({ ...claims[i % claims.length] }).setProtectedHeader({ alg, typ: 'at+jwt', kid }).sign(key);
      const issue = (i: number): Promise<unknown> => issueAccessToken(tokenInput(ring, i));
      await timeAsync(jose, Math.min(0.3, seconds), 1); // warm-up: JIT, WebCrypto key setup
      await timeAsync(issue, Math.min(0.3, seconds), 1);
      // Slices taking turns, median kept: drift (JIT, other load) hits both the same.
      const joseRuns: number[] = [];
      const issueRuns: number[] = [];
      for (let r = 0; r < 5; r++) {
        joseRuns.push((await timeAsync(jose, seconds / 5, 1)).per_second);
        issueRuns.push((await timeAsync(issue, seconds / 5, 1)).per_second);
      }
      rows.push({ alg, jose_sign_jwt_per_s: Math.round(median(joseRuns)), issue_access_token_per_s: Math.round(median(issueRuns)) });
    }
    return rows;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

export interface DecideRedeemResult {
  concurrency: number;
  seconds: number;
  tokens: number;
  tokens_per_s: number;
  /** Requests per second over both endpoints (2 per token). */
  requests_per_s: number;
  failures: number;
}

/** Decide (the registered, record-bound allow of the mix) then redeem, `concurrency` pairs in flight. */
export async function runDecideRedeem(url: string, seconds: number, concurrency: number): Promise<DecideRedeemResult> {
  const allow = MIX.find((c) => c.kind === 'allow, record-bound');
  if (!allow) throw new Error('the mix has no record-bound allow');
  const headers = { authorization: `Bearer ${BENCH_PEP.key}`, 'content-type': 'application/json' };
  const decideBody = JSON.stringify(allow.request);
  let failures = 0;
  const pair = async (): Promise<void> => {
    const d = await fetch(`${url}/v1/decide`, { method: 'POST', headers, body: decideBody });
    const decision = (await d.json()) as { decision_id?: string; allow?: boolean };
    if (d.status !== 200 || !decision.allow || !decision.decision_id) {
      failures++;
      return;
    }
    const t = await fetch(`${url}/v1/tokens`, { method: 'POST', headers, body: JSON.stringify({ decision_id: decision.decision_id }) });
    const token = (await t.json()) as { access_token?: string };
    if (t.status !== 201 || !token.access_token) failures++;
  };
  await timeAsync(pair, Math.min(1, seconds), concurrency); // warm-up
  failures = 0;
  const r = await timeAsync(pair, seconds, concurrency);
  const tokens = r.ops - failures;
  return {
    concurrency,
    seconds: r.seconds,
    tokens,
    tokens_per_s: Math.round(tokens / r.seconds),
    requests_per_s: Math.round((2 * r.ops) / r.seconds),
    failures,
  };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '1' } } });
  process.stdout.write(`${JSON.stringify(await runIssuerLibrary(Number(values.seconds)))}\n`);
}
