import { chmodSync, cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { buildConfig } from '../../src/config/config-loader.js';
import type { CallerConfig, PdpConfig } from '../../src/config/config-types.js';
import { sha256Hex } from '../../src/config/dev-keys.js';
import { createPdp, type Pdp } from '../../src/main.js';
import { createLogger } from '../../src/server/logger.js';

/** API keys of the test callers (not the documented dev keys). */
export const KEYS = {
  pep: 'test-pep-key',
  strictPep: 'test-strict-pep-key',
  orchestrator: 'test-orchestrator-key',
  auditor: 'test-auditor-key',
  admin: 'test-admin-key',
  resource: 'test-resource-key',
  approver: 'test-approver-key',
  approver2: 'test-approver-2-key',
  otherApprover: 'test-other-group-approver-key',
  pepApprover: 'test-pep-and-approver-key',
} as const;

export const TEST_CALLERS = [
  { id: 'pep-1', role: 'pep', key_sha256: sha256Hex(KEYS.pep), agents: ['support-resolver', 'code-review-agent', 'mailbox-summarizer', 'feedback-workflow', 'release-bot', 'sibling-bot'], may_assert_context: true },
  { id: 'pep-strict', role: 'pep', key_sha256: sha256Hex(KEYS.strictPep), agents: ['support-resolver'] },
  { id: 'orchestrator', role: 'orchestrator', key_sha256: sha256Hex(KEYS.orchestrator) },
  { id: 'compliance', role: 'auditor', key_sha256: sha256Hex(KEYS.auditor) },
  { id: 'ops', role: 'admin', key_sha256: sha256Hex(KEYS.admin) },
  { id: 'crm-api', role: 'resource_server', key_sha256: sha256Hex(KEYS.resource) },
  // Break-glass approvers: two of the on-call group, one of another group, and a caller that is both a PEP and an
  // approver of the on-call group (it must never approve what it asked for).
  { id: 'oncall-1', role: 'approver', key_sha256: sha256Hex(KEYS.approver), approver_groups: ['platform-oncall'] },
  { id: 'oncall-2', role: 'approver', key_sha256: sha256Hex(KEYS.approver2), approver_groups: ['platform-oncall'] },
  { id: 'security-1', role: 'approver', key_sha256: sha256Hex(KEYS.otherApprover), approver_groups: ['security-team'] },
  { id: 'ops-alice', role: ['pep', 'approver'], key_sha256: sha256Hex(KEYS.pepApprover), agents: ['*'], approver_groups: ['platform-oncall'] },
] satisfies Array<Partial<Omit<CallerConfig, 'role'>> & { id: string; role: CallerConfig['role'] | CallerConfig['role'][] }>;

/**
 * The config of a server a test spawns from the built CLI (`agent-pdp serve --config …`) in a folder holding a copy of
 * test/fixtures/policies as `policies/`: a free loopback port, the committed bundle, SQLite in `data/`, the test
 * callers, info logs (the tests read its log lines). `extra` adds or replaces top-level sections.
 */
export function spawnedServerConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    server: { listen: '127.0.0.1:0' },
    policy: { bundle: resolve('opa-bundle/bundle.tar.gz'), agents: 'policies', watch: false },
    store: { url: 'sqlite:data/pdp.db' },
    issuer: { issuer: 'http://127.0.0.1:8181', keys: 'data/keys' },
    log: { level: 'info' },
    callers: TEST_CALLERS,
    ...extra,
  };
}

export interface TestPdp {
  pdp: Pdp;
  /** A real HTTP server on 127.0.0.1 with an ephemeral port. */
  server: Server;
  url: string;
  dir: string;
  /** Settable clock: tests move time forward instead of sleeping. */
  clock: { now: Date; advance(seconds: number): void };
  close(): Promise<void>;
}

export interface TestPdpOptions {
  /**
   * The PDP reads the real clock instead of `clock` (which stands still until advanced): for a provider's credential,
   * whose expiry the provider (and our provider code) times by the real clock while the token is timed by the PDP's.
   */
  realClock?: boolean;
  /** Where `clock` starts (default: the real time now): e.g. days ago, for a history the real clock has left behind. */
  clockStart?: Date;
  /** Copy this policy folder into the temp dir (default: the tests' own copy, test/fixtures/policies/). */
  policies?: string;
  bundle?: string;
  /** Extra or replacement top-level config sections. */
  config?: Record<string, unknown>;
  watch?: boolean;
  /** Logger for the PDP (e.g. `createLogger('debug', stream)` to capture its lines). Default: silent. */
  logger?: Logger;
  /**
   * Make the issuer identifier the server's real URL (a free loopback port is picked first), as standard OAuth
   * clients require: they check the discovered `issuer` against the URL they discovered it from. Default: the
   * fixed `http://127.0.0.1:8181`.
   */
  issuerIsUrl?: boolean;
  /** What a reload reads as the config (`CreatePdpOptions.rereadConfig`), given the one the PDP started with. Default: none. */
  rereadConfig?: (started: PdpConfig) => PdpConfig;
}

/** Folders 0755, files 0644, recursively. */
function privateTree(path: string): void {
  chmodSync(path, 0o755);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.isDirectory()) privateTree(join(path, entry.name));
    else if (entry.isFile()) chmodSync(join(path, entry.name), 0o644);
  }
}

/** A port that was free a moment ago on 127.0.0.1. */
async function freePort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1');
  await new Promise<void>((ok) => probe.once('listening', ok));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((ok) => probe.close(() => ok()));
  return port;
}

/** A whole PDP on a temp dir: real bundle, real YAML policies, real SQLite file, real HTTP server on loopback. */
export async function startTestPdp(options: TestPdpOptions = {}): Promise<TestPdp> {
  const port = options.issuerIsUrl ? await freePort() : 0;
  const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-test-'));
  cpSync(resolve(options.policies ?? 'test/fixtures/policies'), join(dir, 'policies'), { recursive: true });
  // The PDP refuses policy files and a bundle that group or others may write: whatever the checkout's umask was,
  // the copies this PDP serves are 0644 in 0755 folders, inside the 0700 temp dir.
  privateTree(join(dir, 'policies'));
  // A bundle the test passes stays where the test keeps it (it may replace it to trigger a reload).
  if (options.bundle === undefined) {
    cpSync(resolve('opa-bundle/bundle.tar.gz'), join(dir, 'bundle.tar.gz'));
    chmodSync(join(dir, 'bundle.tar.gz'), 0o644);
  }
  const raw = {
    server: { listen: '127.0.0.1:0' },
    policy: { bundle: options.bundle === undefined ? 'bundle.tar.gz' : resolve(options.bundle), agents: 'policies', watch: options.watch ?? false, watch_interval_ms: 100 },
    store: { url: 'sqlite:data/pdp.db' },
    issuer: { issuer: options.issuerIsUrl ? `http://127.0.0.1:${port}` : 'http://127.0.0.1:8181', keys: 'data/keys' },
    log: { level: 'silent' },
    callers: TEST_CALLERS,
    ...options.config,
  };
  const { config } = buildConfig(raw, join(dir, 'test-config.yaml'), dir);
  const clock = {
    now: options.clockStart ?? new Date(),
    advance(seconds: number) {
      this.now = new Date(this.now.getTime() + seconds * 1000);
    },
  };
  const reread = options.rereadConfig;
  const pdp = await createPdp(config, {
    logger: options.logger ?? createLogger('silent'),
    now: options.realClock === true ? () => new Date() : () => clock.now,
    defaultMetrics: false,
    ...(reread === undefined ? {} : { rereadConfig: () => reread(config) }),
  }).catch(
    (err: unknown) => {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    },
  );
  const server = createServer(pdp.handler).listen(port, '127.0.0.1');
  await new Promise<void>((ok) => server.once('listening', ok));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    pdp,
    server,
    url,
    dir,
    clock,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
      await pdp.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const auth = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });
