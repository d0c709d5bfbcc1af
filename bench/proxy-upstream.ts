/**
 * The proxy section's fake upstream: a minimal `node:http` server standing in for api.github.com. It answers one
 * endpoint, `GET /repos/acme/api/pulls/1042`, with a small fixed JSON body (a pull request), and only when the
 * request carries the provider credential (`Authorization: Bearer <the credential file's content>`): anything
 * else is 401 (GitHub's "Bad credentials"), so a proxy that failed to inject the credential cannot be counted as
 * throughput. `GET /-/count` answers what it served (not counted itself).
 *
 *   node .build/bench/bench/proxy-upstream.js --port 8999 --credential-file FILE
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { isMain } from './lib/timing.js';

/** The endpoint every case of the proxy section calls (mapped to `pr:read` on record `repo acme/api`). */
export const PULL_PATH = '/repos/acme/api/pulls/1042';
export const PULL_RECORD = { type: 'repo', id: 'acme/api' } as const;
/** The upstream's answer, byte for byte: each case checks every response against it. */
export const PULL_BODY = JSON.stringify({
  url: 'https://api.github.com/repos/acme/api/pulls/1042',
  number: 1042,
  state: 'open',
  title: 'Fix the null check in parse()',
  user: { login: 'octocat', id: 583231 },
  head: { ref: 'fix-parse', sha: '6dcb09b5b57875f334f61aebed695e2e4193db5e' },
  base: { ref: 'main' },
  draft: false,
  mergeable: true,
});
const BAD_CREDENTIALS = '{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}';
const NOT_FOUND = '{"message":"Not Found","documentation_url":"https://docs.github.com/rest","status":"404"}';

export interface UpstreamCount {
  /** 200 answers: the pull request to a request with the credential. */
  served: number;
  /** 401 answers: no credential, or another one. */
  refused: number;
  not_found: number;
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, 'credential-file': { type: 'string' } } });
  if (values['credential-file'] === undefined) throw new Error('--credential-file is required');
  const expected = `Bearer ${readFileSync(values['credential-file'], 'utf8').trim()}`;
  const count: UpstreamCount = { served: 0, refused: 0, not_found: 0 };
  const json = { 'content-type': 'application/json; charset=utf-8' };
  const server = createServer((req, res) => {
    req.resume();
    if (req.url === '/-/count') {
      res.writeHead(200, json).end(JSON.stringify(count));
      return;
    }
    if (req.method !== 'GET' || req.url !== PULL_PATH) {
      count.not_found++;
      res.writeHead(404, json).end(NOT_FOUND);
    } else if (req.headers.authorization !== expected) {
      count.refused++;
      res.writeHead(401, json).end(BAD_CREDENTIALS);
    } else {
      count.served++;
      res.writeHead(200, { ...json, 'x-ratelimit-limit': '5000', 'x-ratelimit-remaining': '4999' }).end(PULL_BODY);
    }
  });
  server.keepAliveTimeout = 65_000;
  server.listen(Number(values.port), '127.0.0.1');
  process.once('SIGTERM', () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
