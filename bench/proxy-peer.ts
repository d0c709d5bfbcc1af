/**
 * The proxy section's peer: a plain reverse proxy from npm, `http-proxy` (1.18), doing what a reverse proxy in
 * front of one upstream does and nothing of ours: `/github/<path>` is forwarded to the upstream's `<path>` with the
 * provider credential set in `Authorization` (replacing the caller's), over a keep-alive agent with as many sockets
 * as our proxy's upstream pool (32, `proxy.upstreams[].connections`' default). No token check, no endpoint map, no
 * audit event. `GET /-/healthz` answers 200 (readiness).
 *
 *   node .build/bench/bench/proxy-peer.js --port 8998 --target http://127.0.0.1:8999 --credential-file FILE [--sockets 32]
 */
import { readFileSync } from 'node:fs';
import { Agent, createServer } from 'node:http';
import { parseArgs } from 'node:util';
import httpProxy from 'http-proxy';
import { isMain } from './lib/timing.js';

const PREFIX = '/github/';

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: { port: { type: 'string', default: '0' }, target: { type: 'string' }, 'credential-file': { type: 'string' }, sockets: { type: 'string', default: '32' } },
  });
  if (values.target === undefined || values['credential-file'] === undefined) throw new Error('--target and --credential-file are required');
  const credential = `Bearer ${readFileSync(values['credential-file'], 'utf8').trim()}`;
  const agent = new Agent({ keepAlive: true, maxSockets: Number(values.sockets), maxFreeSockets: Number(values.sockets) });
  // `headers` replaces the caller's Authorization in the outgoing request. (Setting it in a 'proxyReq' listener
  // throws ERR_HTTP_HEADERS_SENT on a reused keep-alive socket: http-proxy emits that event on 'socket'.)
  const proxy = httpProxy.createProxyServer({ target: values.target, agent, headers: { authorization: credential } });
  proxy.on('error', (_err, _req, res) => {
    if ('writeHead' in res && !res.headersSent) res.writeHead(502, { 'content-type': 'application/json' }).end('{"error":"upstream"}');
    else res.destroy();
  });
  const server = createServer((req, res) => {
    const url = req.url ?? '';
    if (url === '/-/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    if (!url.startsWith(PREFIX)) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
      return;
    }
    req.url = url.slice(PREFIX.length - 1);
    proxy.web(req, res);
  });
  server.keepAliveTimeout = 65_000;
  server.listen(Number(values.port), '127.0.0.1');
  process.once('SIGTERM', () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
    agent.destroy();
  });
}
