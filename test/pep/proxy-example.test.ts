/**
 * Example 5 (issue 17, the enforcement proxy), run in-process against a whole PDP on loopback with the proxy's
 * listener on its parts, configured as `make demo` configures it (examples/demo.ts): the example's own fake GitHub
 * started first (the proxy's config names its origin; only the proxy holds its credential, from a 0600 file).
 * `agent-pdp audit export` runs in this process on the PDP's store, as the CLI would.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { run as runProxyExample, startFakeGitHub, type FakeGitHub } from '../../examples/code-review-proxy.js';
import { run as runSuggestions } from '../../examples/policy-suggestions.js';
import type { EntryKind, Transcript } from '../../examples/support/transcript.js';
import { startPdpProxy } from '../../src/main.js';
import type { EnforcementProxy } from '../../src/proxy/index.js';
import { runAudit } from '../audit-e2e/cli.js';
import { cli } from '../suggest/cli-world.js';
import { KEYS, startTestPdp, TEST_CALLERS, type TestPdp } from '../support/pdp-harness.js';

const CREDENTIAL = `ghs_${randomBytes(18).toString('hex')}`;
let secretDir: string;
let github: FakeGitHub;
let pdp: TestPdp | undefined;
let proxy: EnforcementProxy | undefined;
let cliConfig: string;

beforeAll(async () => {
  secretDir = mkdtempSync(join(tmpdir(), 'agent-pdp-proxy-example-'));
  const credentialFile = join(secretDir, 'github-token');
  writeFileSync(credentialFile, CREDENTIAL, { mode: 0o600 });
  github = await startFakeGitHub(CREDENTIAL);
  pdp = await startTestPdp({
    policies: 'policies',
    issuerIsUrl: true,
    config: {
      proxy: { listen: '127.0.0.1:0', revocation_poll_ms: 100, upstreams: [{ integration: 'github', origin: github.origin, credential: { file: credentialFile } }] },
    },
  });
  // The example waits for real time (the revocation to reach the proxy): the PDP's clock follows it.
  const t = pdp;
  t.clock.now = new Date();
  proxy = await startPdpProxy(t.pdp, { now: () => new Date(Math.max(Date.now(), t.clock.now.getTime())) });
  cliConfig = join(t.dir, 'cli-config.yaml');
  writeFileSync(cliConfig, stringify({ policy: { bundle: resolve('opa-bundle/bundle.tar.gz'), agents: 'policies' }, store: { url: 'sqlite:data/pdp.db' }, issuer: { keys: 'data/keys' }, callers: TEST_CALLERS }));
});

afterAll(async () => {
  await proxy?.close();
  await pdp?.close();
  await github?.close();
  if (secretDir) rmSync(secretDir, { recursive: true, force: true });
});

/** `agent-pdp audit|suggest <args> --config <the PDP's>` in this process; rejects on a non-zero exit, as the demo's runner does. */
async function runCli(args: readonly string[]): Promise<string> {
  const [group, ...rest] = args;
  if (group !== 'audit' && group !== 'suggest') throw new Error(`not an audit or suggest command: ${args.join(' ')}`);
  const r = group === 'audit' ? await runAudit([...rest, '--config', cliConfig]) : await cli(...args, '--config', cliConfig);
  if (r.code !== 0) throw new Error(`agent-pdp ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
  return r.stdout;
}

const entries = (t: Transcript, kinds: EntryKind[]): string[] => t.entries.filter((e) => kinds.includes(e.kind)).map((e) => `${e.kind}: ${e.text}`);

it('5. the code-review agent reads a pull request through the proxy and is refused the push; GitHub never saw the push', async () => {
  const printed: string[] = [];
  const t = await runProxyExample({ pdpUrl: pdp!.url, keys: KEYS, log: (line) => printed.push(line), proxyUrl: proxy!.url, github, runCli });
  expect(printed).toEqual(t.lines);
  expect(t.lines.join('\n')).not.toMatch(/UNEXPECTED/);
  // The read went through; the push was refused by the PDP and by the proxy, and the revoked token after the task.
  const refusals = entries(t, ['deny', 'refused']).join('\n');
  expect(refusals).toMatch(/repo:write/);
  expect(refusals).toMatch(/token_scope_insufficient/);
  expect(refusals).toMatch(/endpoint_not_mapped/);
  expect(refusals).toMatch(/token_revoked/);
  // What the upstream itself received: reads only, each with the provider credential, never the agent's token.
  expect(github.log.length).toBeGreaterThan(0);
  for (const entry of github.log) {
    expect(entry.method).toBe('GET');
    expect(entry.authorization).toMatch(/^the provider credential/);
    expect(entry.status).toBe(200);
  }
});

it("make demo's last step: a policy suggestion from the example's own traffic (thresholds lowered, and said so)", async () => {
  const printed: string[] = [];
  const step = await runSuggestions({ runCli, log: (line) => printed.push(line) });
  expect(printed).toEqual(step.lines);
  const text = step.lines.join('\n');
  expect(text).toContain('thresholds lowered for the demo');
  // The agent's token was seen in use for a second at most, against a token_ttl of an hour.
  expect(step.suggestions).toContainEqual(expect.stringMatching(/^code-review-agent shorten_ttl \* token_ttl: shorten code-review-agent's token_ttl from 3600 s to /));
  // The dry run's diff, nothing written.
  expect(text).toMatch(/--- a\/agents\/code-review-agent\.yaml\n\s+\+\+\+ b\/agents\/code-review-agent\.yaml/);
  expect(text).toContain('-  token_ttl: 3600  # 1 hour');
});
