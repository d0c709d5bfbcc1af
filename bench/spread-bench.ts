/**
 * Two patterns that cost V8 far more than they look (bench/README.md, "Steady state", session 15), each way timed for
 * `--seconds` in a child process of its own run with `--trace-gc --trace-gc-nvp`, which reports how much of the
 * young generation survived each scavenge and how long each one paused:
 * - six ways to make `{ ...o, k: v }` and its neighbours (the object cloned has the shape of a policy evaluation's
 *   result). docs/architecture.md states the rule: on the request path, no leading spread followed by a property the
 *   spread object does not have;
 * - calling a generator function made anew each time (`function* () {…}` written inline, as store programs were)
 *   against one declared once. src/store/README.md ("Programs") states that rule.
 *
 *   node .build/bench/bench/spread-bench.js [--seconds 3]
 * prints one JSON line: per way, ops/s, KB surviving a scavenge and the scavenge pause (means over the last 8).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isMain, round } from './lib/timing.js';

export const WAYS = [
  'spread then a new key',
  'spread, then a new key set',
  'two spreads',
  'spread then an existing key',
  'a new key then spread',
  'Object.assign',
  'a fresh generator called',
  'a declared generator called',
] as const;
type Way = (typeof WAYS)[number];

export interface SpreadRow {
  way: Way;
  ops_per_s: number;
  survived_kb: number;
  scavenge_ms: number;
}

function make(way: Way, i: number): { token_ttl_seconds: number; defined?: boolean } {
  const o = { outcome: 'allow', granted_scopes: ['pr:read'], denied_scopes: [], reasons: [], token_ttl_seconds: i, elevated_scopes: [] };
  switch (way) {
    case 'spread then a new key':
      return { ...o, defined: true };
    case 'spread, then a new key set': {
      const c: Record<string, unknown> & typeof o = { ...o };
      c['defined'] = true;
      return c;
    }
    case 'two spreads':
      return { ...o, ...{ defined: true } };
    case 'spread then an existing key':
      return { ...o, token_ttl_seconds: 7 };
    case 'a new key then spread':
      return { defined: true, ...o };
    case 'Object.assign':
      return Object.assign({}, o, { defined: true });
    case 'a fresh generator called':
      return { token_ttl_seconds: (function* () {
        return i;
      })().next().value as number };
    case 'a declared generator called':
      return { token_ttl_seconds: declared(i).next().value as number };
  }
}

function* declared(i: number): Generator<never, number> {
  return i;
}

/** The child: makes objects one way for `seconds`; prints its count. */
function child(way: Way, seconds: number): void {
  let sink = 0;
  let n = 0;
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    for (let i = 0; i < 100; i++) sink += make(way, i).token_ttl_seconds;
    n += 100;
  }
  process.stderr.write(`${JSON.stringify({ ops: n, sink })}\n`);
}

export function runSpreadBench(seconds: number): SpreadRow[] {
  const self = fileURLToPath(import.meta.url);
  return WAYS.map((way) => {
    const out = spawnSync(process.execPath, ['--trace-gc', '--trace-gc-nvp', self, '--child', way, '--seconds', String(seconds)], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
    if (out.status !== 0) throw new Error(`${way}: ${out.stderr}`);
    const { ops } = JSON.parse(out.stderr.trim().split('\n').at(-1) ?? '{}') as { ops: number };
    const scavenges = out.stdout.split('\n').filter((l) => l.includes(' gc=s ')).slice(-8);
    const field = (line: string, name: string): number => Number(new RegExp(`\\b${name}=([0-9.]+)`).exec(line)?.[1] ?? 0);
    const mean = (name: string): number => scavenges.reduce((sum, l) => sum + field(l, name), 0) / Math.max(1, scavenges.length);
    return { way, ops_per_s: Math.round(ops / seconds), survived_kb: round(mean('new_space_survived') / 1024, 0), scavenge_ms: round(mean('pause'), 2) };
  });
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, child: { type: 'string' } } });
  if (values.child !== undefined) child(values.child as Way, Number(values.seconds));
  else process.stdout.write(`${JSON.stringify(runSpreadBench(Number(values.seconds)))}\n`);
}
