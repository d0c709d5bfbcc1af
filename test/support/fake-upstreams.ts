/**
 * A fake GitHub REST API and a fake Slack Web API for the enforcement proxy's tests: real node:http servers on
 * 127.0.0.1 (ephemeral ports) that record every request they receive — method, request target (path and query) as
 * received, headers (parsed and raw, repeats included), body bytes — so a test can assert what the upstream saw and,
 * above all, what it never saw. Close them like any server a test starts.
 *
 * GitHub (paths as api.github.com has them):
 * - `GET /repos/{owner}/{repo}`, `GET /repos/{owner}/{repo}/pulls` (with a `Link` header),
 *   `GET /repos/{owner}/{repo}/pulls/{n}`, `GET /repos/{owner}/{repo}/issues/{n}`: JSON answers;
 *   issue `404` answers GitHub's own 404 error JSON.
 * - `GET /repos/{owner}/{repo}/contents/big.bin`: BIG_BODY_BYTES of fixed random bytes, streamed in 64 KiB chunks
 *   (chunked, no Content-Length), honouring backpressure; `bigBodySha256` is their hash.
 * - `GET /repos/{owner}/{repo}/contents/slow`: no response headers for `slowMs` (default 30 s), then a JSON answer.
 * - `GET /repos/{owner}/{repo}/contents/endless.bin`: the big body again and again, until the reader goes.
 * - `GET /repos/{owner}/{repo}/contents/stalled`: headers and the first KiB of the big body, then nothing more.
 * - `GET /repos/{owner}/{repo}/contents/hop-by-hop`: 200 JSON (chunked) carrying, beside the usual headers, every
 *   response header the proxy must not pass back (`GITHUB_STRIPPED_RESPONSE_HEADERS`: hop-by-hop ones, one named in
 *   `Connection`, those describing the credential).
 * - `POST`, `PUT`, `PATCH` on `/repos/...`: 201 with `{ received: <body bytes> }` (the writes the tests send are
 *   refused before they reach it; one let through would be answered, and recorded, like any other call).
 * - anything else: GitHub's 404 error JSON.
 * Every answer carries GitHub's rate-limit headers (`x-ratelimit-*`, `remaining` counting down), an
 * `x-github-request-id`, and a `Set-Cookie` the proxy must not pass back.
 *
 * Slack (`/api/<method>`, form or JSON bodies, HTTP 200 always, like Slack): `chat.postMessage` answers `{ ok: true,
 * channel, ts }`; `conversations.history` and `conversations.info` answer for the `channel` argument; `users.list`;
 * any other method `{ ok: false, error: 'unknown_method' }`. `conversations.history` of `SLACK_RATE_LIMITED_CHANNEL`
 * answers as Slack does when rate limited: 429, `Retry-After: 30`, `{ ok: false, error: 'ratelimited' }`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  /** The request target exactly as received: path and query. */
  url: string;
  /** Parsed by node:http (lower-case names; some repeats dropped or joined). */
  headers: IncomingHttpHeaders;
  /** Name, value, name, value... as received, repeats included. */
  rawHeaders: string[];
  body: Buffer;
  /** The client's port: two requests with one port came over one (kept-alive) connection. */
  remotePort: number | undefined;
}

export interface FakeUpstream {
  /** `http://127.0.0.1:<port>`: the origin the proxy is configured with. */
  origin: string;
  port: number;
  /** Every request that arrived, in order (recorded when its body ended, or when it was cut). */
  received: ReceivedRequest[];
  /** What arrived after `mark` (a previous `received.length`). */
  since(mark: number): ReceivedRequest[];
  /** One string of everything received (method, target, raw headers, body as latin1) for "appears nowhere" checks. */
  transcript(requests?: readonly ReceivedRequest[]): string;
  close(): Promise<void>;
}

export interface FakeGitHub extends FakeUpstream {
  /** The exact bytes `GET .../contents/big.bin` streams, and their SHA-256 (hex). */
  readonly bigBody: Buffer;
  readonly bigBodySha256: string;
  /** How long `GET .../contents/slow` holds its response headers back. Default 30,000 ms. */
  slowMs: number;
}

/** 10 MiB: the streamed download. */
export const BIG_BODY_BYTES = 10 * 1024 * 1024;
const CHUNK = 64 * 1024;

/** The `Set-Cookie` every GitHub answer carries (the proxy must strip it). */
export const GITHUB_SET_COOKIE = 'logged_in=no; Path=/; Domain=github.com; HttpOnly; Secure';
/** The `Link` header of `GET /repos/{owner}/{repo}/pulls`. */
export const GITHUB_PULLS_LINK =
  '<https://api.github.com/repositories/1296269/pulls?page=2>; rel="next", <https://api.github.com/repositories/1296269/pulls?page=4>; rel="last"';
/** GitHub's 404 body, byte for byte as the fake sends it. */
export const GITHUB_NOT_FOUND = '{"message":"Not Found","documentation_url":"https://docs.github.com/rest/issues/issues#get-an-issue","status":"404"}';

/**
 * What `GET .../contents/hop-by-hop` sends besides GitHub's usual headers, none of which may reach the agent:
 * hop-by-hop headers (RFC 9110 §7.6.1), one the `Connection` header names, and those describing the credential
 * (its scopes, its app, its expiry). Its `Connection` header is `keep-alive, x-upstream-hop`.
 */
export const GITHUB_STRIPPED_RESPONSE_HEADERS: Readonly<Record<string, string>> = {
  'keep-alive': 'timeout=600, max=1000',
  'proxy-authenticate': 'Basic realm="github-egress"',
  trailer: 'x-checksum',
  'x-upstream-hop': 'named-in-connection',
  'x-oauth-scopes': 'repo, admin:org, delete_repo',
  'x-accepted-oauth-scopes': 'repo',
  'x-oauth-client-id': 'Iv1.8a61f9b3a7aba766',
  'github-authentication-token-expiration': '2030-01-01 00:00:00 UTC',
};

/** The Slack channel whose `conversations.history` answers 429 with `Retry-After` (Slack's rate limit). */
export const SLACK_RATE_LIMITED_CHANNEL = 'C0LIMITED';

interface Recorder {
  received: ReceivedRequest[];
  open: Set<ServerResponse>;
  timers: Set<NodeJS.Timeout>;
}

/** Reads the whole request, records it, then lets `answer` respond. */
function recording(rec: Recorder, answer: (req: IncomingMessage, body: Buffer, res: ServerResponse) => void | Promise<void>) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    let recorded = false;
    const record = (): ReceivedRequest => {
      const entry = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: [...req.rawHeaders], body: Buffer.concat(chunks), remotePort: req.socket.remotePort };
      if (!recorded) rec.received.push(entry);
      recorded = true;
      return entry;
    };
    rec.open.add(res);
    res.once('close', () => rec.open.delete(res));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.once('error', () => record());
    req.once('end', () => {
      const entry = record();
      void Promise.resolve(answer(req, entry.body, res)).catch(() => res.destroy());
    });
  };
}

async function listen(server: Server, rec: Recorder): Promise<Pick<FakeUpstream, 'origin' | 'port' | 'received' | 'since' | 'transcript' | 'close'>> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    received: rec.received,
    since: (mark) => rec.received.slice(mark),
    transcript: (requests = rec.received) =>
      requests.map((r) => [r.method, r.url, ...r.rawHeaders, r.body.toString('latin1')].join('\n')).join('\n\n'),
    async close() {
      for (const timer of rec.timers) clearTimeout(timer);
      for (const res of rec.open) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}

/** Resolves on the next 'drain' or 'close', leaving no listener behind. */
function drainOrClose(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string | string[]> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export async function startFakeGitHub(): Promise<FakeGitHub> {
  const rec: Recorder = { received: [], open: new Set(), timers: new Set() };
  const bigBody = randomBytes(BIG_BODY_BYTES);
  let remaining = 5000;
  const rateLimit = (): Record<string, string | string[]> => {
    remaining = Math.max(0, remaining - 1);
    return {
      'x-ratelimit-limit': '5000',
      'x-ratelimit-remaining': String(remaining),
      'x-ratelimit-reset': '1893456000',
      'x-ratelimit-used': String(5000 - remaining),
      'x-ratelimit-resource': 'core',
      'x-github-request-id': `F00D:${5000 - remaining}`,
      'set-cookie': [GITHUB_SET_COOKIE, 'tz=UTC; Path=/'],
    };
  };
  const fake = {
    slowMs: 30_000,
  };
  const server = createServer(
    recording(rec, async (req, body, res) => {
      const path = (req.url ?? '').split('?')[0] as string;
      const s = path.split('/').slice(1);
      const method = req.method ?? '';
      const repo = s[0] === 'repos' && s.length >= 3 ? `${s[1]}/${s[2]}` : null;
      if (method === 'GET' && repo !== null) {
        if (s.length === 3) return json(res, 200, { id: 1296269, full_name: repo, private: false }, rateLimit());
        if (s.length === 4 && s[3] === 'pulls') return json(res, 200, [{ number: 1, title: 'Fix the build', state: 'open' }], { ...rateLimit(), link: GITHUB_PULLS_LINK });
        if (s.length === 5 && s[3] === 'pulls') return json(res, 200, { number: Number(s[4]), title: 'Fix the build', state: 'open', base: { repo: { full_name: repo } } }, rateLimit());
        if (s.length === 5 && s[3] === 'issues') {
          if (s[4] === '404') return json(res, 404, GITHUB_NOT_FOUND, rateLimit());
          return json(res, 200, { number: Number(s[4]), title: 'A bug', state: 'open' }, rateLimit());
        }
        if (s.length === 5 && s[3] === 'contents' && s[4] === 'big.bin') {
          res.writeHead(200, { 'content-type': 'application/octet-stream', ...rateLimit() });
          for (let at = 0; at < bigBody.length; at += CHUNK) {
            if (res.destroyed) return;
            if (!res.write(bigBody.subarray(at, at + CHUNK))) await drainOrClose(res);
          }
          res.end();
          return;
        }
        if (s.length === 5 && s[3] === 'contents' && s[4] === 'endless.bin') {
          // The big body over and over until the reader goes: more than any socket buffer holds.
          res.writeHead(200, { 'content-type': 'application/octet-stream', ...rateLimit() });
          for (let at = 0; !res.destroyed; at = (at + CHUNK) % bigBody.length) {
            if (!res.write(bigBody.subarray(at, at + CHUNK))) await drainOrClose(res);
          }
          return;
        }
        if (s.length === 5 && s[3] === 'contents' && s[4] === 'stalled') {
          // Headers and the first KiB at once, then nothing: a body that stalls.
          res.writeHead(200, { 'content-type': 'application/octet-stream', ...rateLimit() });
          res.write(bigBody.subarray(0, 1024));
          return;
        }
        if (s.length === 5 && s[3] === 'contents' && s[4] === 'hop-by-hop') {
          // No Content-Length: chunked, so a Trailer header is allowed (node refuses one otherwise).
          res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', ...rateLimit(), ...GITHUB_STRIPPED_RESPONSE_HEADERS, connection: 'keep-alive, x-upstream-hop' });
          res.end(JSON.stringify({ name: 'hop-by-hop', size: 0 }));
          return;
        }
        if (s.length === 5 && s[3] === 'contents' && s[4] === 'slow') {
          const timer = setTimeout(() => {
            rec.timers.delete(timer);
            if (!res.destroyed) json(res, 200, { name: 'slow', size: 0 }, rateLimit());
          }, fake.slowMs);
          rec.timers.add(timer);
          res.once('close', () => {
            clearTimeout(timer);
            rec.timers.delete(timer);
          });
          return;
        }
      }
      if ((method === 'POST' || method === 'PUT' || method === 'PATCH') && repo !== null) return json(res, 201, { received: body.length }, rateLimit());
      return json(res, 404, '{"message":"Not Found","documentation_url":"https://docs.github.com/rest"}', rateLimit());
    }),
  );
  const base = await listen(server, rec);
  return Object.assign(fake, base, { bigBody, bigBodySha256: createHash('sha256').update(bigBody).digest('hex') });
}

/** The arguments of a Slack call: its query, and its form or JSON body. */
function slackArguments(req: IncomingMessage, body: Buffer): Record<string, unknown> {
  const url = new URL(req.url ?? '/', 'http://slack.test');
  const args: Record<string, unknown> = Object.fromEntries(url.searchParams);
  const type = String(req.headers['content-type'] ?? '').split(';')[0]?.trim();
  if (type === 'application/x-www-form-urlencoded') Object.assign(args, Object.fromEntries(new URLSearchParams(body.toString('utf8'))));
  if (type === 'application/json' && body.length > 0) Object.assign(args, JSON.parse(body.toString('utf8')) as Record<string, unknown>);
  return args;
}

export async function startFakeSlack(): Promise<FakeUpstream> {
  const rec: Recorder = { received: [], open: new Set(), timers: new Set() };
  const server = createServer(
    recording(rec, (req, body, res) => {
      const path = (req.url ?? '').split('?')[0] as string;
      if (!path.startsWith('/api/')) return json(res, 404, { ok: false, error: 'not_found' });
      let args: Record<string, unknown>;
      try {
        args = slackArguments(req, body);
      } catch {
        return json(res, 200, { ok: false, error: 'invalid_json' });
      }
      switch (path.slice('/api/'.length)) {
        case 'chat.postMessage':
          return json(res, 200, { ok: true, channel: args.channel, ts: '1700000000.000100', message: { text: args.text } });
        case 'conversations.history':
          if (args.channel === SLACK_RATE_LIMITED_CHANNEL) return json(res, 429, { ok: false, error: 'ratelimited' }, { 'retry-after': '30' });
          return json(res, 200, { ok: true, channel: args.channel, messages: [{ type: 'message', text: 'hello', ts: '1700000000.000001' }], has_more: false });
        case 'conversations.info':
          return json(res, 200, { ok: true, channel: { id: args.channel, name: 'general' } });
        case 'users.list':
          return json(res, 200, { ok: true, members: [{ id: 'U0001', name: 'alice' }] });
        default:
          return json(res, 200, { ok: false, error: 'unknown_method' });
      }
    }),
  );
  return listen(server, rec);
}
