import { chmodSync, cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { sha256Hex } from '../../src/config/dev-keys.js';
import { startServer, type RunningServer } from '../../src/main.js';

/**
 * `proxy.serve: true`: `agent-pdp serve` opens the proxy's listener beside the API, on the same store, keys and
 * policy (the shipped endpoint maps), and stops it with the server.
 */
const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-proxy-serve-'));
const configPath = join(dir, 'agent-pdp.yaml');
const PEP = 'proxy-serve-pep-key';
const ORCH = 'proxy-serve-orchestrator-key';
const CREDENTIAL = 'ghs_proxy_serve_credential';

function privateTree(path: string): void {
  chmodSync(path, 0o755);
  for (const e of readdirSync(path, { withFileTypes: true })) {
    if (e.isDirectory()) privateTree(join(path, e.name));
    else chmodSync(join(path, e.name), 0o644);
  }
}

let upstream: Server;
const seen: Array<{ url: string; authorization: string | undefined }> = [];
let server: RunningServer;

beforeAll(async () => {
  upstream = createServer((req, res) => {
    seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"number":7}');
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  cpSync(resolve('policies'), join(dir, 'policies'), { recursive: true });
  privateTree(join(dir, 'policies'));
  cpSync(resolve('opa-bundle/bundle.tar.gz'), join(dir, 'bundle.tar.gz'));
  chmodSync(join(dir, 'bundle.tar.gz'), 0o644);
  writeFileSync(join(dir, 'github.token'), CREDENTIAL, { mode: 0o600 });
  writeFileSync(
    configPath,
    stringify({
      server: { listen: '127.0.0.1:0' },
      policy: { bundle: 'bundle.tar.gz', agents: 'policies', watch: false },
      store: { url: 'sqlite:data/pdp.db' },
      issuer: { issuer: 'http://127.0.0.1:8181', keys: 'data/keys' },
      log: { level: 'silent' },
      proxy: {
        listen: '127.0.0.1:0',
        serve: true,
        upstreams: [{ integration: 'github', origin: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, credential: { file: 'github.token' } }],
      },
      callers: [
        { id: 'pep', role: 'pep', key_sha256: sha256Hex(PEP), agents: ['code-review-agent'] },
        { id: 'orchestrator', role: 'orchestrator', key_sha256: sha256Hex(ORCH) },
      ],
    }),
    { mode: 0o600 },
  );
  server = await startServer({ configPath });
});
afterAll(async () => {
  await server.close();
  await new Promise<void>((r) => upstream.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

async function api(path: string, key: string, body: object): Promise<Record<string, unknown>> {
  const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status).toBeLessThan(300);
  return (await res.json()) as Record<string, unknown>;
}

it('serves the proxy beside the API: a token the PDP issued reads a pull request through it, with the credential', async () => {
  expect(server.proxy).toBeDefined();
  const proxyUrl = server.proxy?.url as string;
  expect(await (await fetch(`${proxyUrl}/-/healthz`)).json()).toEqual({ status: 'ok' });

  await api('/v1/tasks', ORCH, { id: 'serve-review-1', agent_id: 'code-review-agent', type: 'review', context: { repo: 'acme/api' }, expires_in_seconds: 600 });
  const decision = await api('/v1/decide', PEP, {
    agent_id: 'code-review-agent',
    task: { id: 'serve-review-1' },
    integration: 'github',
    scopes: ['pr:read'],
    resource: { type: 'repo', id: 'acme/api' },
  });
  expect(decision).toMatchObject({ allow: true });
  const { access_token: token } = (await api('/v1/tokens', PEP, { decision_id: decision['decision_id'] })) as { access_token: string };

  const res = await fetch(`${proxyUrl}/github/repos/acme/api/pulls/7`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ number: 7 });
  expect(seen.at(-1)).toEqual({ url: '/repos/acme/api/pulls/7', authorization: `Bearer ${CREDENTIAL}` });

  // Its calls count in the PDP's own /metrics.
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  expect(metrics).toMatch(/agentpdp_proxy_requests_total\{integration="github",outcome="forwarded",code="200"\} 1/);
});
