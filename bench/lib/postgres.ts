/**
 * A throwaway PostgreSQL cluster for a benchmark: scripts/postgres-cluster.sh (Debian's server, installed if missing,
 * a temp folder, a free loopback port, run as a non-root user). `stop` removes it. The URL holds the cluster's
 * random password: never print it.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from './servers.js';

export interface BenchPostgres {
  url: string;
  dir: string;
  /** The postmaster's pid (its backends are its children). */
  pid: number;
  stop(): void;
}

export function startPostgres(): BenchPostgres {
  const script = join(REPO, 'scripts/postgres-cluster.sh');
  const out = execFileSync('bash', [script, 'start'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 });
  const vars = new Map(
    out
      .trim()
      .split('\n')
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1).replace(/^'(.*)'$/, '$1')] as const),
  );
  const url = vars.get('PG_URL');
  const dir = vars.get('PG_DIR');
  const pid = Number(vars.get('PG_PID'));
  if (url === undefined || dir === undefined || !Number.isSafeInteger(pid)) throw new Error('scripts/postgres-cluster.sh start printed no PG_URL / PG_DIR / PG_PID');
  return { url, dir, pid, stop: () => void execFileSync('bash', [script, 'stop', dir], { stdio: 'inherit', timeout: 120_000 }) };
}
