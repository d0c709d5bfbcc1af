/**
 * The package as a consumer gets it: the built package is packed once with `npm pack`, installed from the tarball
 * into a fresh project (offline, from the npm cache this repository was installed from), type-checked there with
 * `moduleResolution: NodeNext`, and imported from plain `.mjs`: `agent-pdp/pep` (the SDK, which must load on its
 * own), `agent-pdp/mcp` (with the MCP SDK the consumer brings: an in-memory session, the PDP down) and `agent-pdp` (the PDP as a library: a config on a temp dir with the policies and bundle the package
 * ships, one decision over `pdp.handler` on loopback). Slow by nature: one pack, a long timeout. If `dist/` is
 * missing or older than `src/`, the test builds first.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { closedPort } from './fake-pdp.js';

const ROOT = resolve('.');
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
/** The declaration files of the two entry points: both must be at least as new as every source file. */
const MARKERS = ['dist/pep/index.d.ts', 'dist/mcp/index.d.ts', 'dist/index.d.ts'];
/** The native addon of better-sqlite3: `npm install --ignore-scripts` leaves it unbuilt, and no build runs offline. */
const SQLITE_ADDON = 'node_modules/better-sqlite3/build/Release/better_sqlite3.node';
const temp = mkdtempSync(join(tmpdir(), 'agent-pdp-pack-'));
const app = join(temp, 'consumer');

afterAll(() => rmSync(temp, { recursive: true, force: true }));

/** Newest modification time among the sources dist/ is built from (the root entry reaches every folder). */
function newestSource(dir = join(ROOT, 'src')): number {
  return Math.max(
    0,
    ...readdirSync(dir, { withFileTypes: true }).map((e) =>
      e.isDirectory() ? newestSource(join(dir, e.name)) : e.name.endsWith('.ts') ? statSync(join(dir, e.name)).mtimeMs : 0,
    ),
  );
}

const fresh = (): boolean => MARKERS.every((m) => existsSync(join(ROOT, m)) && statSync(join(ROOT, m)).mtimeMs >= newestSource());

function ensureBuilt(): void {
  if (fresh()) return;
  const build = spawnSync(process.execPath, [TSC, '-p', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8' });
  // tsc emits even when a module has a type error; what matters here is that both entry points were emitted.
  if (!fresh()) throw new Error(`building dist/ failed:\n${build.stdout}${build.stderr}`);
}

function npm(args: string[], cwd: string): string {
  const result = spawnSync('npm', args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } });
  if (result.status !== 0) throw new Error(`npm ${args.join(' ')} failed:\n${result.stdout}${result.stderr}`);
  return result.stdout;
}

/** What `npm pack` put in the tarball. */
let packedFiles: string[] = [];

beforeAll(() => {
  ensureBuilt();
  const packed = JSON.parse(npm(['pack', '--pack-destination', temp, '--json'], ROOT)) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const tarball = join(temp, packed[0]!.filename);
  packedFiles = packed[0]!.files.map((f) => f.path);

  mkdirSync(app);
  const version = (pkg: string): string => (JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
  // The MCP SDK and zod: what an MCP server using `agent-pdp/mcp` brings itself (an optional peer dependency).
  writeFileSync(join(app, 'package.json'), JSON.stringify({
    name: 'pdp-consumer', private: true, type: 'module',
    dependencies: { 'agent-pdp': `file:${tarball}`, '@types/node': version('@types/node'), '@modelcontextprotocol/sdk': version('@modelcontextprotocol/sdk'), zod: version('zod') },
  }));
  // --ignore-scripts: the PEP entry point needs no native build, and none can run offline. The root entry point
  // needs better-sqlite3's addon: the one this repository built, for the same pinned version, is copied in.
  const install = ['install', '--no-audit', '--no-fund', '--ignore-scripts'];
  try {
    npm([...install, '--offline'], app);
  } catch {
    npm([...install, '--prefer-offline'], app);
  }
  const addon = join(app, SQLITE_ADDON);
  mkdirSync(join(addon, '..'), { recursive: true });
  copyFileSync(join(ROOT, SQLITE_ADDON), addon);
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: ['node'], verbatimModuleSyntax: true },
    files: ['consumer.ts'],
  }));
}, 240_000);

/** Type-checks `source` as the consumer's `consumer.ts`; the compiler's output, empty when it passes. */
function typeCheck(source: string): string {
  writeFileSync(join(app, 'consumer.ts'), source);
  const check = spawnSync(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: app, encoding: 'utf8' });
  return `${check.stdout}${check.stderr}`;
}

/** Runs `source` as a plain `.mjs` of the consumer; its stdout parsed as JSON. */
function runModule(name: string, source: string, args: string[]): unknown {
  writeFileSync(join(app, name), source);
  return JSON.parse(execFileSync(process.execPath, [name, ...args], { cwd: app, encoding: 'utf8' }));
}

const CONSUMER_TS = `
import { createResourceServerAuth, guardTool, isPepError, PdpClient, PepError, PermissionDenied, TokenCache } from 'agent-pdp/pep';
import type { DecisionResponseV1, PepErrorCode, RequireToken, ToolGrant } from 'agent-pdp/pep';

const pdp = new PdpClient({ url: 'http://127.0.0.1:8181', apiKey: 'dev-pep-key', timeoutMs: 1000 });
const writeTicket = guardTool(
  { pdp, agentId: 'support-resolver', task: 'task-42', integration: 'crm', scopes: ['tickets:write'], tokens: new TokenCache(),
    resource: (args: { customerId: string }) => ({ type: 'customer', id: args.customerId }) },
  async (args, grant: ToolGrant) => ({ customer: args.customerId, scopes: grant.scopes, bearer: grant.authorization }),
);
export async function use(): Promise<string> {
  const result = await writeTicket({ customerId: '1234' });
  // @ts-expect-error the guarded tool keeps the tool's argument type
  await writeTicket({ customer: 1234 });
  return result.customer;
}
const requireToken: RequireToken = createResourceServerAuth({ issuer: 'http://127.0.0.1:8181', audience: 'crm', pdp, introspect: true });
export const middleware = requireToken({ integration: 'crm', scope: 'tickets:write', record: (req) => ({ type: 'customer', id: String(req.params['id']) }) });
export function explain(err: unknown): string {
  if (err instanceof PermissionDenied) return err.reasons.map((r) => r.code).join(', ') + err.decisionId;
  if (isPepError(err)) { const code: PepErrorCode = err.code; return code; }
  return String(err instanceof PepError);
}
export type Decision = DecisionResponseV1['outcome'];
`;

const CONSUMER_MJS = `
import { PdpClient, PepError, PermissionDenied, guardTool, createResourceServerAuth } from 'agent-pdp/pep';
const [, , port] = process.argv;
const pdp = new PdpClient({ url: 'http://127.0.0.1:' + port, apiKey: 'k', maxAttempts: 1 });
let called = false;
const tool = guardTool({ pdp, agentId: 'a', task: 't', integration: 'crm', scopes: ['x'] }, async () => { called = true; });
const error = await tool({}).catch((e) => e);
console.log(JSON.stringify({
  failedClosed: error instanceof PepError && !(error instanceof PermissionDenied),
  code: error.code, called, middleware: typeof createResourceServerAuth,
}));
`;

it('agent-pdp/pep type-checks and imports in a fresh project that installs the packed package', async () => {
  expect(packedFiles).toEqual(expect.arrayContaining(['dist/pep/index.js', 'dist/pep/index.d.ts', 'dist/issuer/verify-access-token.js']));
  expect(packedFiles.some((f) => f.startsWith('src/') || f.startsWith('examples/') || f.startsWith('dist-examples/'))).toBe(false);

  expect(typeCheck(CONSUMER_TS)).toBe('');
  const output = runModule('consumer.mjs', CONSUMER_MJS, [String(await closedPort())]);
  expect(output).toEqual({ failedClosed: true, code: 'pdp_unavailable', called: false, middleware: 'function' });
}, 120_000);

const ROOT_CONSUMER_TS = `
import type { RequestListener } from 'node:http';
import { buildConfig, createPdp, isPdpError, loadConfigFile, PdpError, startServer } from 'agent-pdp';
import type { CreatePdpOptions, DecisionRequestV1, DecisionResponseV1, Pdp, PdpConfig, PdpErrorCode, RunningServer } from 'agent-pdp';

export async function embed(raw: unknown): Promise<RequestListener> {
  const { config, warnings }: { config: PdpConfig; warnings: string[] } = buildConfig(raw, '/etc/agent-pdp.yaml', '/etc');
  const options: CreatePdpOptions = { defaultMetrics: false, now: () => new Date() };
  const pdp: Pdp = await createPdp(config, options);
  await pdp.reload();
  await pdp.close();
  return warnings.length > 0 ? pdp.handler : pdp.handler;
}
export async function serve(path: string): Promise<string> {
  const running: RunningServer = await startServer({ configPath: path });
  await running.close();
  return running.url + loadConfigFile(path).config.server.host;
}
export const request: DecisionRequestV1 = { agent_id: 'support-resolver', task: { id: 'task-42' }, integration: 'crm', scopes: ['tickets:read'] };
export function granted(r: DecisionResponseV1): string[] {
  return r.allow ? r.granted_scopes : r.denied_scopes.map((d) => d.scope);
}
export function code(err: unknown): PdpErrorCode | undefined {
  return isPdpError(err) ? err.code : err instanceof PdpError ? 'internal' : undefined;
}
// @ts-expect-error the config loader takes a path
loadConfigFile(42);
`;

const ROOT_CONSUMER_MJS = `
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { buildConfig, createPdp, isPdpError } from 'agent-pdp';

const [, , dir] = process.argv;
const shipped = dirname(createRequire(import.meta.url).resolve('agent-pdp/package.json'));
const key = 'consumer-pep-key';
const raw = {
  server: { listen: '127.0.0.1:0' },
  policy: { bundle: join(shipped, 'opa-bundle/bundle.tar.gz'), agents: join(shipped, 'policies'), watch: false },
  store: { url: 'sqlite:data/pdp.db' },
  issuer: { issuer: 'http://127.0.0.1:8181', keys: 'data/keys' },
  log: { level: 'silent' },
  callers: [{ id: 'pep-1', role: 'pep', key_sha256: createHash('sha256').update(key).digest('hex'), agents: ['code-review-agent'], may_assert_context: true }],
};
const { config } = buildConfig(raw, join(dir, 'agent-pdp.yaml'), dir);
let refused;
try { buildConfig({ ...raw, callers: 'none' }, join(dir, 'agent-pdp.yaml'), dir); } catch (err) { refused = isPdpError(err) && err.code; }

const pdp = await createPdp(config, { defaultMetrics: false });
const server = createServer(pdp.handler).listen(0, '127.0.0.1');
await once(server, 'listening');
const response = await fetch('http://127.0.0.1:' + server.address().port + '/v1/decide', {
  method: 'POST',
  headers: { authorization: 'Bearer ' + key, 'content-type': 'application/json' },
  body: JSON.stringify({ agent_id: 'code-review-agent', task: { id: 'task-inline' }, integration: 'github', scopes: ['repo:read', 'pr:read'] }),
});
const body = await response.json();
server.closeAllConnections();
await new Promise((ok) => server.close(ok));
await pdp.close();
console.log(JSON.stringify({
  status: response.status, outcome: body.outcome, granted: body.granted_scopes,
  revision: body.policy_revision === pdp.engine.active?.revision, refused,
}));
`;

it('agent-pdp type-checks, builds a PDP on the policies and bundle it ships, and decides over its handler', () => {
  expect(packedFiles).toEqual(expect.arrayContaining(['dist/index.js', 'dist/index.d.ts', 'dist/main.js', 'opa-bundle/bundle.tar.gz']));
  expect(packedFiles.some((f) => f.startsWith('policies/') && f.endsWith('.yaml'))).toBe(true);

  // Soft: a type error in the shipped declarations is reported, and the runtime check below still runs.
  expect.soft(typeCheck(ROOT_CONSUMER_TS)).toBe('');
  const dir = mkdtempSync(join(temp, 'pdp-'));
  const output = runModule('root-consumer.mjs', ROOT_CONSUMER_MJS, [dir]);
  expect(output).toEqual({ status: 200, outcome: 'allow', granted: ['pr:read', 'repo:read'], revision: true, refused: 'config_invalid' });
}, 120_000);

const MCP_CONSUMER_TS = `
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { createMcpGuard, MCP_REFUSALS, REFUSAL_META, type McpRefusal, type McpToolMapping, type ToolGrant } from 'agent-pdp/mcp';
import { PdpClient } from 'agent-pdp/pep';

const pdp = new PdpClient({ url: 'http://127.0.0.1:8181', apiKey: 'dev-pep-key' });
const guard = createMcpGuard({ pdp, identity: { agentId: 'support-resolver' } });
const server = new McpServer({ name: 'crm', version: '1.0.0' });
const mapping: McpToolMapping = { integration: 'crm', scopes: ['tickets:read'], record: { type: 'customer', id: 'customer_id' } };
guard.registerTool(server, 'read_customer', { inputSchema: { customer_id: z.string() } }, mapping,
  async (args: { customer_id: string }, grant: ToolGrant) => ({ content: [{ type: 'text' as const, text: args.customer_id + grant.scopes.join(' ') }] }));
export function code(result: { _meta?: Record<string, unknown> }): McpRefusal['code'] | undefined {
  return (result._meta?.[REFUSAL_META] as McpRefusal | undefined)?.code;
}
export const retryable: boolean = MCP_REFUSALS.pdp_unavailable.retryable;
// @ts-expect-error a mapping names an integration
export const bad: McpToolMapping = { scopes: ['x'] };
`;

const MCP_CONSUMER_MJS = `
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { createMcpGuard, REFUSAL_META } from 'agent-pdp/mcp';
import { PdpClient } from 'agent-pdp/pep';

const [, , port] = process.argv;
const pdp = new PdpClient({ url: 'http://127.0.0.1:' + port, apiKey: 'k', maxAttempts: 1 });
const guard = createMcpGuard({ pdp, identity: { agentId: 'support-resolver', taskId: 'task-42' } });
const server = new McpServer({ name: 'crm', version: '1.0.0' });
let called = false;
guard.registerTool(server, 'read_customer', { inputSchema: { customer_id: z.string() } },
  { integration: 'crm', scopes: ['tickets:read'], record: { type: 'customer', id: 'customer_id' } },
  async () => { called = true; return { content: [] }; });
const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
await server.connect(guard.wrap(serverSide));
const client = new Client({ name: 'agent', version: '1.0.0' });
await client.connect(clientSide);
const result = await client.callTool({ name: 'read_customer', arguments: { customer_id: '1234' } });
await client.close();
console.log(JSON.stringify({ isError: result.isError, code: result._meta[REFUSAL_META].code, called }));
`;

it('agent-pdp/mcp type-checks and guards an MCP server in a fresh project that brings its own MCP SDK', async () => {
  expect(packedFiles).toEqual(expect.arrayContaining(['dist/mcp/index.js', 'dist/mcp/index.d.ts']));
  expect(typeCheck(MCP_CONSUMER_TS)).toBe('');
  const output = runModule('mcp-consumer.mjs', MCP_CONSUMER_MJS, [String(await closedPort())]);
  expect(output).toEqual({ isError: true, code: 'pdp_unavailable', called: false });
}, 120_000);
