/**
 * `agent-pdp/pep` as a consumer gets it: the built package is packed with `npm pack`, installed from the tarball
 * into a fresh project (offline, from the npm cache this repository was installed from), type-checked there
 * with `moduleResolution: NodeNext`, and imported from plain `.mjs`. Slow by nature: one test, a long timeout.
 * If `dist/pep` is missing or older than its sources, the test builds first.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { closedPort } from './fake-pdp.js';

const ROOT = resolve('.');
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const SOURCES = ['src/pep', 'src/wire', 'src/issuer'];
const temp = mkdtempSync(join(tmpdir(), 'agent-pdp-pack-'));

afterAll(() => rmSync(temp, { recursive: true, force: true }));

/** Newest modification time among the sources dist/pep is built from. */
function newestSource(): number {
  return Math.max(...SOURCES.flatMap((dir) => readdirSync(join(ROOT, dir)).filter((f) => f.endsWith('.ts')).map((f) => statSync(join(ROOT, dir, f)).mtimeMs)));
}

function ensureBuilt(): void {
  const marker = join(ROOT, 'dist/pep/index.d.ts');
  if (existsSync(marker) && statSync(marker).mtimeMs >= newestSource()) return;
  const build = spawnSync(process.execPath, [TSC, '-p', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8' });
  // tsc emits even when another module of the repository has a type error; what matters here is dist/pep.
  if (!existsSync(marker) || statSync(marker).mtimeMs < newestSource()) {
    throw new Error(`building dist/pep failed:\n${build.stdout}${build.stderr}`);
  }
}

function npm(args: string[], cwd: string): string {
  const result = spawnSync('npm', args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } });
  if (result.status !== 0) throw new Error(`npm ${args.join(' ')} failed:\n${result.stdout}${result.stderr}`);
  return result.stdout;
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
  ensureBuilt();
  const packed = JSON.parse(npm(['pack', '--pack-destination', temp, '--json'], ROOT)) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const tarball = join(temp, packed[0]!.filename);
  const files = packed[0]!.files.map((f) => f.path);
  expect(files).toEqual(expect.arrayContaining(['dist/pep/index.js', 'dist/pep/index.d.ts', 'dist/issuer/verify-access-token.js']));
  expect(files.some((f) => f.startsWith('src/') || f.startsWith('examples/') || f.startsWith('dist-examples/'))).toBe(false);

  const app = join(temp, 'consumer');
  mkdirSync(app);
  const typesNode = (JSON.parse(readFileSync(join(ROOT, 'node_modules/@types/node/package.json'), 'utf8')) as { version: string }).version;
  writeFileSync(join(app, 'package.json'), JSON.stringify({
    name: 'pep-consumer', private: true, type: 'module', dependencies: { 'agent-pdp': `file:${tarball}`, '@types/node': typesNode },
  }));
  // --ignore-scripts: no native build (better-sqlite3) is needed by the PEP entry point, and none can run offline.
  const install = ['install', '--no-audit', '--no-fund', '--ignore-scripts'];
  try {
    npm([...install, '--offline'], app);
  } catch {
    npm([...install, '--prefer-offline'], app);
  }

  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: ['node'], verbatimModuleSyntax: true },
    files: ['consumer.ts'],
  }));
  writeFileSync(join(app, 'consumer.ts'), CONSUMER_TS);
  const check = spawnSync(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: app, encoding: 'utf8' });
  expect(`${check.stdout}${check.stderr}`).toBe('');
  expect(check.status).toBe(0);

  writeFileSync(join(app, 'consumer.mjs'), CONSUMER_MJS);
  const output = execFileSync(process.execPath, ['consumer.mjs', String(await closedPort())], { cwd: app, encoding: 'utf8' });
  expect(JSON.parse(output)).toEqual({ failedClosed: true, code: 'pdp_unavailable', called: false, middleware: 'function' });
}, 240_000);
