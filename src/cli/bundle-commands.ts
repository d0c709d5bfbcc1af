/**
 * `agent-pdp bundle build | bundle inspect`: compiled bundles (docs/bundles.md). `build` compiles the YAML policies
 * of a folder with the Rego bundle into one OPA bundle a replica serves without YAML (`policy.compiled`), optionally
 * signed the way `opa build --signing-key` signs; `inspect` reads one back, checks it (and its signature, given a
 * key) and says what it holds.
 *
 * Exit codes: 0 done, 1 refused (invalid policies, a bundle that does not check), 2 usage.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { PdpError } from '../errors/pdp-error.js';
import { readBundleFile } from '../policy/bundle-reader.js';
import { BUNDLE_SIGNING_ALGORITHMS, type BundleSigningAlgorithm } from '../policy/bundle-signature.js';
import { buildCompiledBundle, bundleFiles, readCompiledBundle } from '../policy/compiled-bundle.js';
import { loadPolicyDir } from '../policy/policy-loader.js';
import { readTarGz } from '../policy/tar-reader.js';
import type { Command } from './commands.js';

type Values = Parameters<Command['run']>[0];

const str = (v: string | boolean | undefined): string | undefined => (typeof v === 'string' ? v : undefined);

const BUILD_USAGE =
  'usage: agent-pdp bundle build [DIR] --out FILE [--bundle F] [--signing-key FILE [--signing-alg RS256] [--key-id ID] [--scope S]]';
const INSPECT_USAGE = 'usage: agent-pdp bundle inspect FILE [--verification-key FILE [--signing-alg RS256] [--key-id ID] [--scope S]]';

/** `--signing-alg`, as OPA defaults it; undefined when not one OPA signs with. */
function algorithm(values: Values): BundleSigningAlgorithm | undefined {
  const alg = str(values['signing-alg']) ?? 'RS256';
  return (BUNDLE_SIGNING_ALGORITHMS as readonly string[]).includes(alg) ? (alg as BundleSigningAlgorithm) : undefined;
}

/** A key file's text: a PEM key, or an HMAC secret (surrounding whitespace dropped). */
async function keyText(path: string): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (cause) {
    throw new PdpError('config_invalid', `cannot read the key file ${path}`, { cause });
  }
}

const signingOptions = {
  'signing-alg': { type: 'string' },
  'key-id': { type: 'string' },
  scope: { type: 'string' },
} as const;

export const BUNDLE_COMMANDS: Command[] = [
  {
    name: 'bundle build',
    summary:
      'compile the policies of DIR (default policies/) with the Rego bundle (--bundle, default opa-bundle/bundle.tar.gz) into one compiled bundle: --out FILE [--signing-key FILE --signing-alg RS256 --key-id ID --scope S]',
    options: { out: { type: 'string', short: 'o' }, bundle: { type: 'string' }, 'signing-key': { type: 'string' }, ...signingOptions },
    async run(values, positionals) {
      const out = str(values['out']);
      const alg = algorithm(values);
      if (out === undefined || positionals.length > 1 || alg === undefined) {
        return usage('bundle build', alg === undefined ? `--signing-alg must be one of ${BUNDLE_SIGNING_ALGORITHMS.join(', ')}` : BUILD_USAGE);
      }
      const signingKey = str(values['signing-key']);
      if (signingKey === undefined && (values['key-id'] !== undefined || values['scope'] !== undefined || values['signing-alg'] !== undefined)) {
        return usage('bundle build', '--signing-alg, --key-id and --scope sign the bundle: give --signing-key too');
      }
      const dir = resolve(positionals[0] ?? 'policies');
      const regoPath = resolve(str(values['bundle']) ?? 'opa-bundle/bundle.tar.gz');
      const [set, rego, regoGz] = await Promise.all([loadPolicyDir(dir), readBundleFile(regoPath), readFile(regoPath)]);
      for (const w of set.warnings) process.stderr.write(`warning: ${w.file ?? ''}${w.line ? `:${w.line}` : ''} ${w.path}: ${w.message}\n`);
      const signing =
        signingKey === undefined
          ? undefined
          : {
              algorithm: alg,
              key: await keyText(signingKey),
              ...(str(values['key-id']) === undefined ? {} : { keyId: str(values['key-id']) as string }),
              ...(str(values['scope']) === undefined ? {} : { scope: str(values['scope']) as string }),
            };
      const gz = await buildCompiledBundle(set, rego, readTarGz(regoGz), signing);
      // Written next to the target, then renamed: a server watching the file never reads half of it.
      const target = resolve(out);
      const partial = `${target}.partial-${process.pid}`;
      await writeFile(partial, gz, { mode: 0o644 });
      await rename(partial, target);
      const signed = signing === undefined ? 'unsigned' : `signed ${signing.algorithm}${signing.keyId === undefined ? '' : ` (kid ${signing.keyId})`}`;
      process.stdout.write(`${out}: ${set.agents.length} agents, revision ${rego.revision}.${set.revision}, ${gz.length} bytes, ${signed}\n`);
      return 0;
    },
  },
  {
    name: 'bundle inspect',
    summary: 'check a compiled bundle FILE and print what it holds (JSON): [--verification-key FILE --signing-alg RS256 --key-id ID --scope S]',
    options: { 'verification-key': { type: 'string' }, ...signingOptions },
    async run(values, positionals) {
      const alg = algorithm(values);
      const file = positionals[0];
      if (file === undefined || positionals.length > 1 || alg === undefined) return usage('bundle inspect', INSPECT_USAGE);
      const keyFile = str(values['verification-key']);
      const keyId = str(values['key-id']) ?? 'default';
      const verification =
        keyFile === undefined
          ? undefined
          : {
              keys: { [keyId]: { algorithm: alg, key: await keyText(keyFile) } },
              keyId,
              ...(str(values['scope']) === undefined ? {} : { scope: str(values['scope']) as string }),
            };
      const path = resolve(file);
      const read = await readCompiledBundle(bundleFiles(await readFile(path), path), path, verification);
      const { policySet, bundle } = read;
      const report = {
        file: path,
        revision: `${bundle.revision}.${policySet.revision}`,
        rego_revision: bundle.revision,
        policies_revision: policySet.revision,
        signed: read.signed,
        signature_verified: read.verified,
        agents: policySet.agents.length,
        integrations: Object.keys(policySet.data.policies.integrations).sort(),
        endpoint_maps: Object.keys(policySet.endpointMaps).sort(),
        files: policySet.files,
        warnings: policySet.warnings.length,
      };
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      return 0;
    },
  },
];

function usage(command: string, line: string): number {
  process.stderr.write(`agent-pdp ${command}: ${line}\n`);
  return 2;
}
