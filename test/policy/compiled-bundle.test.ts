import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { isPdpError } from '../../src/errors/pdp-error.js';
import { readBundleFile, type OpaBundle } from '../../src/policy/bundle-reader.js';
import { bundleFileDigest, SIGNATURES_FILE, type BundleVerification } from '../../src/policy/bundle-signature.js';
import { buildCompiledBundle, bundleFiles, compiledPolicySet, openCompiledBundle, readCompiledBundle } from '../../src/policy/compiled-bundle.js';
import type { EvaluationInputV1 } from '../../src/policy/decision-types.js';
import { loadPolicyDir } from '../../src/policy/policy-loader.js';
import type { PolicySet } from '../../src/policy/policy-types.js';
import { readTarGz } from '../../src/policy/tar-reader.js';
import { writeTarGz } from '../../src/policy/tar-writer.js';
import { WasmEvaluator } from '../../src/policy/wasm-evaluator.js';
import { OPA_BIN } from '../support/opa-cli.js';

const REGO_BUNDLE = 'opa-bundle/bundle.tar.gz';

let rego: OpaBundle;
let regoSources: { path: string; content: Buffer }[];
let fromYaml: PolicySet;
let unsigned: Buffer;

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsaPrivate = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const rsaPublic = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();

const verifyWith = (key: string, extra: Partial<BundleVerification> = {}): BundleVerification => ({
  keys: { release: { algorithm: 'RS256', key } },
  ...extra,
});

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (isPdpError(err)) return `${err.code}: ${err.message}`;
    throw err;
  }
  throw new Error('expected a refusal');
}

/** The bundle's files, changed by `edit`, packed again (a tampered copy). */
function tampered(gz: Buffer, edit: (files: Map<string, Buffer>) => void): Map<string, Buffer> {
  const files = bundleFiles(gz, 'test');
  edit(files);
  return bundleFiles(writeTarGz([...files].map(([path, content]) => ({ path, content }))), 'tampered');
}

function inputs(set: PolicySet): EvaluationInputV1[] {
  const out: EvaluationInputV1[] = [];
  for (const agent of set.agents) {
    const compiled = set.data.policies.agents[agent];
    for (const integration of Object.keys(compiled?.integrations ?? {})) {
      const allowed = Object.keys(compiled?.integrations[integration]?.allowed ?? {});
      for (const scopes of [allowed.slice(0, 1), allowed, ['delete_repo', ...allowed.slice(0, 1)], ['not-a-scope']]) {
        out.push({ agent_id: agent, caller_id: 'test', integration, scopes, task: { id: 't', context: {}, registered: false } });
      }
    }
  }
  return out;
}

beforeAll(async () => {
  rego = await readBundleFile(REGO_BUNDLE);
  regoSources = readTarGz(readFileSync(REGO_BUNDLE));
  fromYaml = await loadPolicyDir('policies');
  unsigned = await buildCompiledBundle(fromYaml, rego, regoSources);
});

describe('compiled bundle: agent policies compiled once, served without YAML', () => {
  it('reads back the same policy set, revision and all, and the same bytes every build', async () => {
    const read = await readCompiledBundle(bundleFiles(unsigned, 'b.tar.gz'), 'b.tar.gz');
    expect(read.policySet).toEqual(fromYaml);
    expect(read.policySet.revision).toBe(fromYaml.revision);
    expect(read.bundle.revision).toBe(rego.revision);
    expect(read.bundle.wasm.equals(rego.wasm)).toBe(true);
    expect(read.verified).toBe(false);
    expect(read.signed).toBe(false);
    expect(Object.isFrozen(read.policySet.data.policies.agents)).toBe(true);
    for (const map of [read.policySet.data.policies.agents, read.policySet.data.policies.integrations, read.policySet.integrations, read.policySet.endpointMaps]) {
      expect(Object.getPrototypeOf(map)).toBeNull();
    }
    expect((read.policySet.data.policies.agents as Record<string, unknown>)['constructor']).toBeUndefined();
    const someAgent = read.policySet.data.policies.agents[read.policySet.agents[0] as string];
    expect(Object.isFrozen(someAgent?.integrations)).toBe(true);
    expect(read.dataJson.equals(bundleFiles(unsigned, 'b').get('data.json') as Buffer)).toBe(true);
    expect((await buildCompiledBundle(fromYaml, rego, regoSources)).equals(unsigned)).toBe(true);
    const names = [...bundleFiles(unsigned, 'b').keys()];
    expect(names).toEqual(expect.arrayContaining(['.manifest', 'data.json', 'agentpdp_compiled/data.json', 'policy.wasm', 'rego/agentpdp/decision.rego']));
  });

  it('decides exactly as the YAML it was built from', async () => {
    const read = await readCompiledBundle(bundleFiles(unsigned, 'b'), 'b');
    const yamlEvaluator = await WasmEvaluator.create(rego, fromYaml.data as unknown as Record<string, unknown>, fromYaml.revision);
    const bundleEvaluator = await WasmEvaluator.create(read.bundle, read.policySet.data as unknown as Record<string, unknown>, read.policySet.revision);
    expect(bundleEvaluator.revision).toBe(yamlEvaluator.revision);
    const cases = inputs(fromYaml);
    expect(cases.length).toBeGreaterThan(20);
    for (const input of cases) expect(bundleEvaluator.evaluate(input)).toEqual(yamlEvaluator.evaluate(input));
  });

  it('refuses a data.json edited after the build, a wrong format and a missing part, signed or not', async () => {
    const edited = tampered(unsigned, (files) => {
      const data = JSON.parse((files.get('data.json') as Buffer).toString()) as { policies: { agents: Record<string, { token_ttl: number }> } };
      const first = Object.keys(data.policies.agents)[0] as string;
      (data.policies.agents[first] as { token_ttl: number }).token_ttl = 86_400;
      files.set('data.json', Buffer.from(JSON.stringify(data)));
    });
    expect(await refusal(readCompiledBundle(edited, 'e'))).toMatch(/^bundle_invalid: .*data\.json does not match the policies revision/);
    const noWasm = tampered(unsigned, (files) => files.delete('policy.wasm'));
    expect(await refusal(readCompiledBundle(noWasm, 'w'))).toMatch(/policy\.wasm is missing/);
    const future = tampered(unsigned, (files) => {
      const meta = JSON.parse((files.get('agentpdp_compiled/data.json') as Buffer).toString()) as Record<string, unknown>;
      files.set('agentpdp_compiled/data.json', Buffer.from(JSON.stringify({ ...meta, format: 'agent-pdp-compiled-bundle-v9' })));
    });
    expect(await refusal(readCompiledBundle(future, 'f'))).toMatch(/unknown format/);
  });

  it("keeps the roles each agent names (not part of data: the revision does not change); an older bundle without them reads with none, a malformed list is refused", async () => {
    const read = await readCompiledBundle(bundleFiles(unsigned, 'b'), 'b');
    expect(fromYaml.agentRoles).toEqual({ 'support-resolver': ['support-agent'] });
    expect(read.policySet.agentRoles).toEqual(fromYaml.agentRoles);
    expect(Object.getPrototypeOf(read.policySet.agentRoles)).toBeNull();
    const withMeta = (edit: (meta: Record<string, unknown>) => void): Map<string, Buffer> =>
      tampered(unsigned, (files) => {
        const meta = JSON.parse((files.get('agentpdp_compiled/data.json') as Buffer).toString()) as Record<string, unknown>;
        edit(meta);
        files.set('agentpdp_compiled/data.json', Buffer.from(JSON.stringify(meta)));
      });
    const older = await readCompiledBundle(withMeta((meta) => delete meta['agent_roles']), 'o');
    expect(older.policySet.agentRoles).toBeUndefined();
    expect(older.policySet.revision).toBe(fromYaml.revision);
    expect(await refusal(readCompiledBundle(withMeta((meta) => (meta['agent_roles'] = { 'support-resolver': 'support-agent' })), 'm'))).toMatch(/malformed agent_roles/);
  });

  it('builds each agent only when it is first read, for a caller whose evaluator parses data.json whole (the policy engine)', async () => {
    const lazy = (await compiledPolicySet(await openCompiledBundle(bundleFiles(unsigned, 'b'), 'b'), { lazyAgents: true })).policySet;
    const agents = lazy.data.policies.agents;
    expect(Object.isFrozen(agents)).toBe(true);
    expect(Object.getPrototypeOf(agents)).toBeNull();
    expect(Object.keys(agents)).toEqual(Object.keys(fromYaml.data.policies.agents));
    const id = lazy.agents[0] as string;
    // Not built yet: an accessor, whose first read parses and freezes the entry, and every later read gives it again.
    expect(typeof Object.getOwnPropertyDescriptor(agents, id)?.get).toBe('function');
    const first = agents[id];
    expect(agents[id]).toBe(first);
    expect(Object.isFrozen(first?.integrations)).toBe(true);
    expect((agents as Record<string, unknown>)['constructor']).toBeUndefined();
    // Read in full, the set is the one the YAML compiled to.
    expect(lazy).toEqual(fromYaml);
  });

  it('records the longest token_ttl, so a server knows whether an agent exceeds its cap without reading them all; an older bundle reads without it', async () => {
    const longest = Math.max(...Object.values(fromYaml.data.policies.agents).map((a) => a.token_ttl));
    expect(fromYaml.longestTokenTtl).toBe(longest);
    expect((await readCompiledBundle(bundleFiles(unsigned, 'b'), 'b')).policySet.longestTokenTtl).toBe(longest);
    const withMeta = (edit: (meta: Record<string, unknown>) => void): Map<string, Buffer> =>
      tampered(unsigned, (files) => {
        const meta = JSON.parse((files.get('agentpdp_compiled/data.json') as Buffer).toString()) as Record<string, unknown>;
        edit(meta);
        files.set('agentpdp_compiled/data.json', Buffer.from(JSON.stringify(meta)));
      });
    expect((await readCompiledBundle(withMeta((meta) => delete meta['longest_token_ttl']), 'o')).policySet.longestTokenTtl).toBeUndefined();
    for (const bad of [-1, 1.5, '3600', null]) {
      expect(await refusal(readCompiledBundle(withMeta((meta) => (meta['longest_token_ttl'] = bad)), 'm'))).toMatch(/malformed longest_token_ttl/);
    }
  });
});

describe('compiled bundle: provider maps', () => {
  let withMaps: PolicySet;
  let built: Buffer;
  beforeAll(async () => {
    withMaps = await loadPolicyDir('examples/provider-policies');
    built = await buildCompiledBundle(withMaps, rego, regoSources);
  });
  type Maps = Record<string, { scopes: Record<string, Array<Record<string, unknown>>> } & Record<string, unknown>>;
  const withProviderMaps = (edit: (maps: Maps) => void): Map<string, Buffer> =>
    tampered(built, (files) => {
      const meta = JSON.parse((files.get('agentpdp_compiled/data.json') as Buffer).toString()) as { provider_maps: Maps };
      edit(meta.provider_maps);
      files.set('agentpdp_compiled/data.json', Buffer.from(JSON.stringify(meta)));
    });

  it('reads back the maps the compiler wrote', async () => {
    const read = await readCompiledBundle(bundleFiles(built, 'p'), 'p');
    expect(Object.keys(withMaps.providerMaps ?? {})).toEqual(['calendar', 'customer-files', 'gmail', 'orders-table', 's3-reports']);
    expect(read.policySet.providerMaps).toEqual(withMaps.providerMaps);
  });

  it.each([
    { note: 'not an object', edit: (m: Maps) => Object.assign(m, { 's3-reports': [] }), path: 'provider_maps.s3-reports: expected an object' },
    { note: 'an unknown kind', edit: (m: Maps) => (m['s3-reports']!['kind'] = 'github'), path: 'provider_maps.s3-reports.kind: expected aws, google_workspace or gcp_storage' },
    { note: 'a map filed under another integration', edit: (m: Maps) => (m['s3-reports']!['integration'] = 'orders-table'), path: 'provider_maps.s3-reports.integration: expected s3-reports' },
    { note: 'an unknown member', edit: (m: Maps) => (m['s3-reports']!['subject'] = [{ text: 'x' }]), path: 'provider_maps.s3-reports.subject: is not a member of it' },
    { note: 'no scope', edit: (m: Maps) => (m['s3-reports']!.scopes = {}), path: 'provider_maps.s3-reports.scopes: maps no scope' },
    { note: 'a scope with no statement', edit: (m: Maps) => (m['s3-reports']!.scopes['reports:read'] = []), path: 'provider_maps.s3-reports.scopes["reports:read"]: expected a non-empty list' },
    { note: 'a statement without actions', edit: (m: Maps) => delete m['s3-reports']!.scopes['reports:read']![0]!['actions'], path: '["reports:read"][0].actions: is missing' },
    { note: 'an action that is not service:Action', edit: (m: Maps) => (m['s3-reports']!.scopes['reports:read']![0]!['actions'] = ['*']), path: '[0].actions[0]: expected a string matching' },
    { note: 'a resource that is not an ARN', edit: (m: Maps) => (m['s3-reports']!.scopes['reports:read']![0]!['resources'] = [[{ text: '*' }]]), path: '[0].resources[0]: expected an ARN' },
    { note: 'a template part of another source', edit: (m: Maps) => (m['s3-reports']!.scopes['reports:read']![0]!['resources'] = [[{ text: 'arn:aws:s3:::b/' }, { from: 'env', name: 'HOME' }]]), path: '.resources[0][1]: expected {text}' },
    { note: 'a text part with a policy variable', edit: (m: Maps) => (m['s3-reports']!.scopes['reports:read']![0]!['resources'] = [[{ text: 'arn:aws:s3:::b/${aws:username}/*' }]]), path: '.resources[0][0].text: expected text without braces' },
    { note: 'a placeholder a value could continue (an old bundle)', edit: (m: Maps) => (m['s3-reports']!.scopes['reports:read']![0]!['resources'] = [[{ text: 'arn:aws:s3:::b/' }, { from: 'record', name: 'id' }, { text: '*' }]]), path: '.resources[0]: {record.id} is followed by "*"' },
    { note: 'a condition value a value could continue', edit: (m: Maps) => (m['orders-table']!.scopes['orders:read']![0]!['conditions'] = { StringLike: { 'dynamodb:LeadingKeys': [[{ from: 'record', name: 'id' }, { text: '*' }]] } }), path: '.conditions.StringLike["dynamodb:LeadingKeys"][0]: {record.id} is followed by' },
    { note: 'a Workspace subject that is not a template', edit: (m: Maps) => (m['calendar']!['subject'] = 'ana@example.com'), path: 'provider_maps.calendar.subject: expected a non-empty list' },
    { note: 'a Workspace scope that is not a Google scope URL', edit: (m: Maps) => (m['calendar']!.scopes['calendar:read'] = ['https://mail.google.com/' as never]), path: 'provider_maps.calendar.scopes["calendar:read"][0]: expected a string' },
    { note: 'a GCS bucket that is not a bucket name', edit: (m: Maps) => (m['customer-files']!.scopes['files:read']![0]!['bucket'] = 'a/b'), path: '["files:read"][0].bucket: expected a string' },
    { note: 'a GCS role outside storage', edit: (m: Maps) => (m['customer-files']!.scopes['files:read']![0]!['role'] = 'roles/owner'), path: '["files:read"][0].role: expected a string' },
    { note: 'a GCS prefix not ending with /', edit: (m: Maps) => (m['customer-files']!.scopes['files:read']![0]!['object_prefix'] = [{ text: 'customers/' }, { from: 'record', name: 'id' }]), path: '["files:read"][0].object_prefix: expected a prefix ending with /' },
  ])('refuses provider_maps with $note, naming the path', async ({ edit, path }) => {
    expect(await refusal(readCompiledBundle(withProviderMaps(edit), 't'))).toMatch(new RegExp(`^bundle_invalid: compiled bundle t: agentpdp_compiled/data\\.json has malformed provider_maps: .*${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  });

  it('reads an older bundle without provider maps as minting nothing', async () => {
    const older = await readCompiledBundle(
      tampered(built, (files) => {
        const meta = JSON.parse((files.get('agentpdp_compiled/data.json') as Buffer).toString()) as Record<string, unknown>;
        delete meta['provider_maps'];
        files.set('agentpdp_compiled/data.json', Buffer.from(JSON.stringify(meta)));
      }),
      'o',
    );
    expect(older.policySet.providerMaps).toEqual({});
  });
});

describe('compiled bundle: OPA bundle signatures', () => {
  let signed: Buffer;
  beforeAll(async () => {
    signed = await buildCompiledBundle(fromYaml, rego, regoSources, { algorithm: 'RS256', key: rsaPrivate, keyId: 'release' });
  });

  it('verifies with the configured public key, and lists every file in the signature', async () => {
    const files = bundleFiles(signed, 's');
    const read = await readCompiledBundle(files, 's', verifyWith(rsaPublic));
    expect(read.verified).toBe(true);
    expect(read.signed).toBe(true);
    expect(read.policySet.revision).toBe(fromYaml.revision);
    const jwt = (JSON.parse((files.get(SIGNATURES_FILE) as Buffer).toString()) as { signatures: string[] }).signatures[0] as string;
    const payload = JSON.parse(Buffer.from(jwt.split('.')[1] as string, 'base64url').toString()) as { files: { name: string; hash: string; algorithm: string }[] };
    expect(payload.files.map((f) => f.name).sort()).toEqual([...files.keys()].filter((n) => n !== SIGNATURES_FILE).sort());
    for (const f of payload.files) expect(f).toEqual({ name: f.name, hash: bundleFileDigest(f.name, files.get(f.name) as Buffer), algorithm: 'SHA-256' });
  });

  it('refuses: another key, no signature, an unknown key id, a scope mismatch, a changed, added or removed file', async () => {
    expect(await refusal(readCompiledBundle(bundleFiles(signed, 's'), 's', verifyWith(other)))).toMatch(/does not verify with key "release"/);
    expect(await refusal(readCompiledBundle(bundleFiles(unsigned, 'u'), 'u', verifyWith(rsaPublic)))).toMatch(/is not signed/);
    expect(await refusal(readCompiledBundle(bundleFiles(signed, 's'), 's', { keys: { other: { algorithm: 'RS256', key: rsaPublic } } }))).toMatch(/no verification key .* "release"/);
    expect(await refusal(readCompiledBundle(bundleFiles(signed, 's'), 's', verifyWith(rsaPublic, { scope: 'prod' })))).toMatch(/scope mismatch/);
    const rego1 = 'rego/agentpdp/decision.rego';
    const changed = tampered(signed, (files) => files.set(rego1, Buffer.concat([files.get(rego1) as Buffer, Buffer.from('\n# edited\n')])));
    expect(await refusal(readCompiledBundle(changed, 'c', verifyWith(rsaPublic)))).toMatch(/decision\.rego: digest mismatch/);
    const added = tampered(signed, (files) => files.set('extra/data.json', Buffer.from('{"x":1}')));
    expect(await refusal(readCompiledBundle(added, 'a', verifyWith(rsaPublic)))).toMatch(/extra\/data\.json is not included in the signature/);
    const removed = tampered(signed, (files) => files.delete(rego1));
    expect(await refusal(readCompiledBundle(removed, 'r', verifyWith(rsaPublic)))).toMatch(/missing from the bundle: rego\/agentpdp\/decision\.rego/);
  });

  it('does not let an HMAC key configuration accept an RS256 signature (algorithm confusion), nor a short secret', async () => {
    const confused: BundleVerification = { keys: { release: { algorithm: 'HS256', key: rsaPublic } } };
    expect(await refusal(readCompiledBundle(bundleFiles(signed, 's'), 's', confused))).toMatch(/^config_invalid: a PEM key is configured as the HS256 shared secret/);
    const hs = await buildCompiledBundle(fromYaml, rego, regoSources, { algorithm: 'HS256', key: 'k'.repeat(32), keyId: 'release' });
    expect(await refusal(readCompiledBundle(bundleFiles(hs, 'h'), 'h', { keys: { release: { algorithm: 'HS256', key: 'short' } } }))).toMatch(/^config_invalid: the HS256 shared secret must be at least 32 bytes/);
    expect(await refusal(buildCompiledBundle(fromYaml, rego, regoSources, { algorithm: 'HS512', key: 'k'.repeat(40) }))).toMatch(/at least 64 bytes/);
  });

  it('round-trips HS256 with a shared secret and a scope', async () => {
    const secret = 'a shared secret of at least thirty-two bytes';
    const hs = await buildCompiledBundle(fromYaml, rego, regoSources, { algorithm: 'HS256', key: secret, keyId: 'ci', scope: 'prod' });
    const ok = await readCompiledBundle(bundleFiles(hs, 'h'), 'h', { keys: { ci: { algorithm: 'HS256', key: secret, scope: 'prod' } } });
    expect(ok.verified).toBe(true);
    expect(await refusal(readCompiledBundle(bundleFiles(hs, 'h'), 'h', { keys: { ci: { algorithm: 'HS256', key: 'another secret, also thirty-two bytes long' } } }))).toMatch(/does not verify/);
  });

  it('is the signature the real OPA checks: opa build --verification-key accepts ours and refuses a tampered copy', () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-signed-'));
    writeFileSync(join(dir, 'public.pem'), rsaPublic);
    writeFileSync(join(dir, 'signed.tar.gz'), signed);
    const verify = (bundle: string): void => {
      execFileSync(OPA_BIN, ['build', '--verification-key', join(dir, 'public.pem'), '--verification-key-id', 'release', '-b', join(dir, bundle), '-o', join(dir, 'out.tar.gz')], { stdio: 'pipe' });
    };
    verify('signed.tar.gz');
    const files = tampered(signed, (f) => f.set('data.json', Buffer.from((f.get('data.json') as Buffer).toString().replace('"token_ttl":', '"token_ttl": '))));
    // Whitespace alone is not a change to OPA (it hashes the parsed document): still verifies.
    writeFileSync(join(dir, 'spaced.tar.gz'), writeTarGz([...files].map(([path, content]) => ({ path, content }))));
    verify('spaced.tar.gz');
    const edited = tampered(signed, (f) => f.set('data.json', Buffer.from((f.get('data.json') as Buffer).toString().replace(/"token_ttl":\d+/, '"token_ttl":86400'))));
    writeFileSync(join(dir, 'edited.tar.gz'), writeTarGz([...edited].map(([path, content]) => ({ path, content }))));
    let stderr = '';
    try {
      verify('edited.tar.gz');
    } catch (err) {
      const { stdout, stderr: errors } = err as { stdout?: Buffer; stderr?: Buffer };
      stderr = `${String(stdout ?? '')}${String(errors ?? '')}`; // opa prints load errors on stdout
    }
    expect(stderr).toMatch(/data\.json: digest mismatch/);
  });

  it("verifies a signature the real OPA wrote (opa sign), whitespace and key order in data.json included", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-opa-signed-'));
    const root = join(dir, 'bundle');
    const layout: Record<string, string> = {
      '.manifest': '{"revision": "r1",\n "roots": [""]}',
      'data.json': '{ "z": [1, 2.5, "\u2028"],\n  "a": {"y": true, "b": null} }',
      'rego/p.rego': 'package p\n\nallow := true\n',
    };
    for (const [name, text] of Object.entries(layout)) {
      mkdirSync(dirname(join(root, name)), { recursive: true });
      writeFileSync(join(root, name), text);
    }
    writeFileSync(join(dir, 'private.pem'), rsaPrivate);
    // Run from the bundle's root: opa sign names the files by the path it was given.
    execFileSync(OPA_BIN, ['sign', '--signing-key', join(dir, 'private.pem'), '--bundle', '.', '-o', '.'], { stdio: 'pipe', cwd: root });
    const files = new Map<string, Buffer>();
    const walk = (at: string, prefix: string): void => {
      for (const entry of readdirSync(at, { withFileTypes: true })) {
        const path = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
        if (entry.isDirectory()) walk(join(at, entry.name), path);
        else files.set(path, readFileSync(join(at, entry.name)));
      }
    };
    walk(root, '');
    expect(files.has(SIGNATURES_FILE)).toBe(true);
    const { verifyBundleFiles } = await import('../../src/policy/bundle-signature.js');
    // OPA signs without a kid: the key is named by configuration, as with --verification-key-id.
    await expect(verifyBundleFiles(files, { keys: { k: { algorithm: 'RS256', key: rsaPublic } }, keyId: 'k' })).resolves.toBeUndefined();
    files.set('data.json', Buffer.from('{"z":[1,2.5,"\u2028"],"a":{"y":false,"b":null}}'));
    await expect(verifyBundleFiles(files, { keys: { k: { algorithm: 'RS256', key: rsaPublic } }, keyId: 'k' })).rejects.toThrow(/data\.json: digest mismatch/);
  });
});
