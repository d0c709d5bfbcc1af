import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guardTool, PdpClient, type ToolGrant } from '../../src/pep/index.js';
import { KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';

/**
 * `guardTool({ proxy })`: the tool's grant has a `fetch` bound to the proxy's base URL and the grant's token. A real
 * PDP decides and issues the token; a loopback server stands in for the proxy and records what reaches it.
 */
let t: TestPdp;
let pep: PdpClient;
let recorder: Server;
let proxyUrl: string;
const seen: Array<{ method: string; url: string; headers: IncomingHttpHeaders }> = [];

beforeAll(async () => {
  t = await startTestPdp();
  pep = new PdpClient({ url: t.url, apiKey: KEYS.pep, retryDelayMs: 1 });
  await new PdpClient({ url: t.url, apiKey: KEYS.orchestrator }).registerTask({
    id: 'proxy-fetch-1',
    agent_id: 'support-resolver',
    type: 'complaint_resolution',
    context: { customer_id: '1234' },
    expires_in_seconds: 900,
  });
  recorder = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  await new Promise<void>((resolve) => recorder.listen(0, '127.0.0.1', resolve));
  proxyUrl = `http://127.0.0.1:${(recorder.address() as AddressInfo).port}/crm/`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => recorder.close(() => resolve()));
  await t.close();
});

function tool(proxy: string | undefined, call: (grant: ToolGrant) => Promise<Response>) {
  return guardTool(
    {
      pdp: pep,
      agentId: 'support-resolver',
      task: 'proxy-fetch-1',
      integration: 'crm',
      scopes: ['tickets:write'],
      resource: { type: 'customer', id: '1234' },
      tokens: false,
      ...(proxy === undefined ? {} : { proxy }),
    },
    async (_args: unknown, grant) => ({ grant, res: await call(grant) }),
  );
}

describe('grant.fetch', () => {
  it('sends the call to the proxy with the grant token, replacing any Authorization the tool set', async () => {
    const before = seen.length;
    const { grant, res } = await tool(proxyUrl, (g) =>
      g.fetch('/customers/1234/tickets', { method: 'POST', headers: { authorization: 'Bearer not-this', 'content-type': 'application/json' }, body: '{}' }),
    )({});
    expect(res.status).toBe(200);
    const call = seen[before];
    expect(call?.method).toBe('POST');
    expect(call?.url).toBe('/crm/customers/1234/tickets'); // the base's trailing slash is not doubled
    expect(call?.headers.authorization).toBe(`Bearer ${grant.accessToken}`);
    expect(call?.headers['content-type']).toBe('application/json');
  });

  it('takes a path only: another origin, a protocol-relative URL or a backslash never get the token', async () => {
    for (const path of ['https://evil.example/x', '//evil.example/x', 'customers/1', '/\\evil.example']) {
      const before = seen.length;
      await expect(tool(proxyUrl, (g) => g.fetch(path))({})).rejects.toThrow(TypeError);
      expect(seen.length).toBe(before);
    }
  });

  it('is refused when the tool declared no proxy', async () => {
    await expect(tool(undefined, (g) => g.fetch('/customers/1234'))({})).rejects.toThrow(/no `proxy` was declared/);
  });

  it('refuses a proxy that is not an http(s) URL at declaration', () => {
    expect(() => tool('ftp://proxy/crm', (g) => g.fetch('/x'))).toThrow(/"proxy" must be an http\(s\) URL/);
    expect(() => tool('http://proxy/crm?x=1', (g) => g.fetch('/x'))).toThrow(TypeError);
  });
});
