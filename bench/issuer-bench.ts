/**
 * Tokens per second from the library: issueAccessToken (input checks, claims, jti, signature) in a loop, next to
 * jose's SignJWT on the same claims (the floor), for EdDSA and ES256. A child process:
 * `node issuer-bench.js [--seconds 1]`. Redeeming over HTTP (`POST /v1/tokens`) is measured by routes-bench.ts,
 * under the same vegeta load as `POST /v1/decide`.
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
import { BENCH_PEP } from './lib/workload.js';

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

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '1' } } });
  process.stdout.write(`${JSON.stringify(await runIssuerLibrary(Number(values.seconds)))}\n`);
}
