import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

/**
 * Vitest global setup: one throwaway PostgreSQL cluster per test run (Debian's server, installed if missing, a temp
 * folder, a free loopback port, run as a non-root user: scripts/postgres-cluster.sh), handed to every worker as
 * AGENT_PDP_TEST_PG_URL and stopped when the run ends. Tests take a schema of their own (`test/support/postgres.ts`).
 * AGENT_PDP_TEST_PG_URL already set: that server is used instead, and left alone.
 */
export default function setup(): (() => void) | undefined {
  if (process.env['AGENT_PDP_TEST_PG_URL'] !== undefined) return undefined;
  const script = resolve(import.meta.dirname, '../../scripts/postgres-cluster.sh');
  // A root-owned test TMPDIR is not enterable by the server's user: the script picks its own folder then.
  const out = execFileSync('bash', [script, 'start'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 });
  const vars = Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((line) => {
        const at = line.indexOf('=');
        return [line.slice(0, at), unquote(line.slice(at + 1))];
      }),
  );
  const url = vars['PG_URL'];
  const dir = vars['PG_DIR'];
  if (url === undefined || dir === undefined) throw new Error('scripts/postgres-cluster.sh start printed no PG_URL / PG_DIR');
  process.env['AGENT_PDP_TEST_PG_URL'] = url;
  process.env['AGENT_PDP_TEST_PG_DIR'] = dir;
  return () => {
    delete process.env['AGENT_PDP_TEST_PG_URL'];
    delete process.env['AGENT_PDP_TEST_PG_DIR'];
    execFileSync('bash', [script, 'stop', dir], { stdio: 'inherit', timeout: 120_000 });
  };
}

/** printf %q output of the values the script prints (letters, digits and URL punctuation; quoted otherwise). */
function unquote(value: string): string {
  if (value.startsWith("'") && value.endsWith("'")) return value.slice(1, -1);
  return value.replace(/\\(.)/g, '$1');
}
