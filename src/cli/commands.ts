import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { loadConfigFile } from '../config/config-loader.js';
import { AGENT_ID_PATTERN, CONFIG_ID_PATTERN } from '../config/config-schema.js';
import { CALLER_ROLES } from '../config/config-types.js';
import { sha256Hex } from '../config/dev-keys.js';
import { formatErrorDetail, PdpError } from '../errors/pdp-error.js';
import { RETIRED_KEY_GRACE_SECONDS } from '../issuer/key-index.js';
import { rotateKeys } from '../issuer/key-ring.js';
import { buildEvaluationInput, unregisteredTask } from '../pdp/evaluation-input.js';
import { PolicyEngine } from '../pdp/policy-engine.js';
import { loadPolicyDir } from '../policy/policy-loader.js';
import { parseDecisionRequest } from '../wire/request-parsers.js';
import { ACCESS_REQUEST_COMMANDS } from './access-request-commands.js';
import { AUDIT_COMMANDS } from './audit-commands.js';
import { BUNDLE_COMMANDS } from './bundle-commands.js';
import { explainEvaluation } from './explain.js';
import { SUGGEST_COMMANDS } from './suggest-commands.js';

type Values = Record<string, string | boolean | undefined>;

export interface Command {
  name: string;
  summary: string;
  options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;
  run(values: Values, positionals: string[]): Promise<number>;
}

const str = (v: string | boolean | undefined): string | undefined => (typeof v === 'string' ? v : undefined);

/** The caller id the `decide` command evaluates as (policies see it as `input.caller_id`). */
const CLI_CALLER_ID = 'agent-pdp-cli';

export const COMMANDS: Command[] = [
  {
    name: 'serve',
    summary: 'serve the PDP: --config FILE (or AGENT_PDP_CONFIG) [--workers N|auto] (processes on the one port; default server.workers, 1)',
    options: { config: { type: 'string', short: 'c' }, workers: { type: 'string' } },
    async run(values) {
      const configPath = str(values['config']) ?? process.env['AGENT_PDP_CONFIG'];
      if (!configPath) throw new PdpError('config_invalid', 'no config: pass --config FILE or set AGENT_PDP_CONFIG');
      const flag = str(values['workers']);
      if (flag !== undefined && flag !== 'auto' && !(/^[1-9][0-9]{0,2}$/.test(flag) && Number(flag) <= 256)) {
        return usageError('serve', 'usage: agent-pdp serve --config FILE [--workers N|auto] (N from 1 to 256, as server.workers)');
      }
      const { loadConfigFile: load } = await import('../config/config-loader.js');
      const { workerCount } = await import('../workers/supervisor.js');
      const cluster = (await import('node:cluster')).default;
      const setting = flag === undefined ? load(configPath, { nodeEnv: process.env['NODE_ENV'] }).config.server.workers : flag === 'auto' ? 'auto' : Number(flag);
      const workers = workerCount(setting);
      if (workers > 1 && cluster.isPrimary) {
        const { superviseServer } = await import('../main.js');
        return superviseServer({ configPath, nodeEnv: process.env['NODE_ENV'], workers });
      }
      const { startServer } = await import('../main.js');
      const server = await startServer({ configPath, nodeEnv: process.env['NODE_ENV'] });
      await server.closed;
      return 0;
    },
  },
  {
    name: 'proxy',
    summary: 'serve the enforcement proxy alone, on the PDP\'s store, keys and policies: --config FILE (or AGENT_PDP_CONFIG)',
    options: { config: { type: 'string', short: 'c' } },
    async run(values) {
      const configPath = str(values['config']) ?? process.env['AGENT_PDP_CONFIG'];
      if (!configPath) throw new PdpError('config_invalid', 'no config: pass --config FILE or set AGENT_PDP_CONFIG');
      const { startProxy } = await import('../main.js');
      const proxy = await startProxy({ configPath, nodeEnv: process.env['NODE_ENV'] });
      await proxy.closed;
      return 0;
    },
  },
  {
    name: 'decide',
    summary: 'one decision from the local bundle and policies, explained (exit 0 allow, 3 deny or any other outcome): --input FILE [--bundle F] [--policies DIR] [--at TIME] [--json]',
    options: { input: { type: 'string', short: 'i' }, bundle: { type: 'string' }, policies: { type: 'string' }, at: { type: 'string' }, json: { type: 'boolean' } },
    async run(values) {
      const inputPath = str(values['input']);
      if (!inputPath) return usageError('decide', 'pass --input FILE (a DecisionRequestV1 JSON document); exit 0 allow, 3 any other outcome, 2 usage');
      const request = parseDecisionRequest(JSON.parse(await readFile(inputPath, 'utf8')));
      const engine = new PolicyEngine({
        bundlePath: resolve(str(values['bundle']) ?? 'opa-bundle/bundle.tar.gz'),
        policyDir: resolve(str(values['policies']) ?? 'policies'),
      });
      const active = await engine.reload();
      // No store here: the task is evaluated as the request describes it, as a trusted PEP's assertion would be.
      const at = str(values['at']);
      const when = at === undefined ? new Date() : new Date(at);
      if (Number.isNaN(when.getTime())) throw new PdpError('invalid_request', '--at must be an RFC 3339 time, e.g. 2026-01-31T09:30:00Z');
      const input = buildEvaluationInput(request, CLI_CALLER_ID, unregisteredTask(request.task), when);
      const { evaluation } = engine.evaluate(input);
      if (values['json']) process.stdout.write(`${JSON.stringify({ ...evaluation, policy_revision: active.revision }, null, 2)}\n`);
      else process.stdout.write(explainEvaluation(input, evaluation, active.revision));
      return evaluation.outcome === 'allow' ? 0 : 3;
    },
  },
  {
    name: 'policy check',
    summary: 'validate the YAML agent policies in DIR (default policies/): [--strict] fails on warnings, [--format text|json]',
    options: { strict: { type: 'boolean' }, format: { type: 'string' } },
    async run(values, positionals) {
      const format = str(values['format']) ?? 'text';
      if ((format !== 'text' && format !== 'json') || positionals.length > 1) {
        return usageError('policy check', 'usage: agent-pdp policy check [DIR] [--strict] [--format text|json]');
      }
      const strict = values['strict'] === true;
      const dir = resolve(positionals[0] ?? 'policies');
      let set: Awaited<ReturnType<typeof loadPolicyDir>>;
      try {
        set = await loadPolicyDir(dir);
      } catch (err) {
        if (format !== 'json' || !(err instanceof PdpError)) throw err;
        // The same members as a success's (nothing was loaded: no revision, no files or agents), for tools reading either.
        const report = { version: 1, ok: false, strict, error: { code: err.code, message: err.message }, files: [], agents: [], errors: err.details, warnings: [] };
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        return 1;
      }
      const refused = strict && set.warnings.length > 0;
      if (format === 'json') {
        const { revision, files, agents, warnings } = set;
        process.stdout.write(`${JSON.stringify({ version: 1, ok: !refused, strict, revision, files, agents, errors: [], warnings }, null, 2)}\n`);
        return refused ? 1 : 0;
      }
      for (const w of set.warnings) {
        process.stderr.write(`warning: ${formatErrorDetail(w)}\n`);
      }
      if (refused) {
        const count = set.warnings.length === 1 ? '1 warning' : `${set.warnings.length} warnings`;
        process.stderr.write(`agent-pdp: policy check --strict: ${count}, refused\n`);
        return 1;
      }
      process.stdout.write(`ok: ${set.files.length} files, ${set.agents.length} agents, revision ${set.revision}\n`);
      return 0;
    },
  },
  {
    name: 'policy test',
    summary:
      'run the policy tests of DIR (default policies/; test files under DIR/.tests) on its compiled policies and the bundle: [--tests PATH] [--bundle F] [--format text|json] [--junit FILE]; exit 1 when a case fails, 2 when a test file is invalid',
    options: { tests: { type: 'string' }, bundle: { type: 'string' }, format: { type: 'string' }, junit: { type: 'string' } },
    async run(values, positionals) {
      const format = str(values['format']) ?? 'text';
      if ((format !== 'text' && format !== 'json') || positionals.length > 1) {
        return usageError('policy test', 'usage: agent-pdp policy test [DIR] [--tests PATH] [--bundle FILE] [--format text|json] [--junit FILE]');
      }
      const tests = await import('../policy-test/index.js');
      const dir = resolve(positionals[0] ?? 'policies');
      const loaded = await tests.loadTestSuites(resolve(str(values['tests']) ?? join(dir, tests.DEFAULT_TESTS_FOLDER)), process.cwd());
      if (loaded.errors.length > 0) {
        const count = loaded.errors.length === 1 ? '1 problem' : `${loaded.errors.length} problems`;
        process.stderr.write(`agent-pdp: invalid policy test files (${count}); nothing was run\n`);
        for (const e of loaded.errors) process.stderr.write(`  ${tests.formatError(e)}\n`);
        if (format === 'json') process.stdout.write(tests.jsonErrors(loaded.errors));
        return 2;
      }
      let run: Awaited<ReturnType<typeof tests.runPolicyTests>>;
      try {
        run = await tests.runPolicyTests({ policyDir: dir, bundlePath: resolve(str(values['bundle']) ?? 'opa-bundle/bundle.tar.gz') }, loaded.suites);
      } catch (err) {
        // The policies or the bundle do not load: a failure of what is tested, not of the tests (exit 1).
        if (format !== 'json' || !(err instanceof PdpError)) throw err;
        process.stdout.write(`${JSON.stringify({ version: 1, passed: false, error: { code: err.code, message: err.message }, errors: err.details }, null, 2)}\n`);
        return 1;
      }
      process.stdout.write(format === 'json' ? tests.jsonReport(run) : tests.textReport(run));
      const junit = str(values['junit']);
      if (junit !== undefined) {
        await mkdir(dirname(resolve(junit)), { recursive: true });
        await writeFile(junit, tests.junitReport(run));
      }
      return run.counts.failed + run.counts.errors === 0 ? 0 : 1;
    },
  },
  {
    name: 'keys hash',
    summary: 'print the key_sha256 of an API key for the config: keys hash KEY, or keys hash - to read it from stdin (keeps it out of shell history)',
    options: {},
    async run(_values, positionals) {
      const given = positionals[0];
      if (given === undefined) throw new PdpError('invalid_request', 'usage: agent-pdp keys hash KEY (or - to read the key from stdin)');
      const key = given === '-' ? (await readStdin()).replace(/\r?\n$/, '') : given;
      if (key.length === 0) throw new PdpError('invalid_request', 'the key is empty');
      process.stdout.write(`${sha256Hex(key)}\n`);
      return 0;
    },
  },
  {
    name: 'keys new',
    summary: 'generate a caller API key and its config entry: keys new --id ID --role ROLE [--agent A ...] (pep) [--group G ...] (approver)',
    options: { id: { type: 'string' }, role: { type: 'string' }, agent: { type: 'string', multiple: true }, group: { type: 'string', multiple: true } },
    async run(values) {
      const id = str(values['id']);
      const role = str(values['role']);
      // The entry printed is one the config accepts: the same patterns and rules as config-schema.ts.
      if (id === undefined || !CALLER_ID.test(id)) return usageError('keys new', 'pass --id ID (a letter or digit, then letters, digits, . _ -; at most 128)');
      if (role === undefined || !(CALLER_ROLES as readonly string[]).includes(role)) return usageError('keys new', `pass --role, one of ${CALLER_ROLES.join(', ')}`);
      const agents = (values['agent'] as unknown as string[] | undefined) ?? [];
      const groups = (values['group'] as unknown as string[] | undefined) ?? [];
      if (agents.length > 0 && role !== 'pep') return usageError('keys new', '--agent is for a pep (the agents it may speak for)');
      const badAgent = agents.find((a) => !AGENT_PATTERN.test(a));
      if (badAgent !== undefined) return usageError('keys new', `--agent ${JSON.stringify(badAgent)} is not an agent id or pattern (letters, digits, . _ - and *)`);
      if (role === 'approver' && groups.length === 0) return usageError('keys new', 'an approver needs the groups it answers for: --group G (one or more)');
      if (groups.length > 0 && role !== 'approver') return usageError('keys new', '--group is for an approver');
      const badGroup = groups.find((g) => !CALLER_ID.test(g));
      if (badGroup !== undefined) return usageError('keys new', `--group ${JSON.stringify(badGroup)} is not a group name (letters, digits, . _ -)`);
      if (new Set(groups).size !== groups.length) return usageError('keys new', '--group names a group twice');
      const key = `apdp_${randomBytes(32).toString('base64url')}`;
      const entry = [
        `  - id: ${id}`,
        `    role: ${role}`,
        `    key_sha256: ${sha256Hex(key)}`,
        ...(agents.length > 0 ? [`    agents: [${agents.map((a) => JSON.stringify(a)).join(', ')}]`] : []),
        ...(groups.length > 0 ? [`    approver_groups: [${groups.join(', ')}]`] : []),
      ];
      process.stderr.write('the key is shown once: hand it to the caller over a secure channel; only its hash goes in the config\n');
      process.stdout.write(`key: ${key}\n\n# under callers: in the config\n${entry.join('\n')}\n`);
      return 0;
    },
  },
  {
    name: 'keys rotate',
    summary: 'rotate the issuer keys: --config FILE (or AGENT_PDP_CONFIG); every server reads the new ring within 30 s',
    options: { config: { type: 'string', short: 'c' } },
    async run(values) {
      const configPath = str(values['config']) ?? process.env['AGENT_PDP_CONFIG'];
      if (!configPath) throw new PdpError('config_invalid', 'no config: pass --config FILE or set AGENT_PDP_CONFIG');
      const { config } = loadConfigFile(configPath, { nodeEnv: process.env['NODE_ENV'], webhookSecrets: false });
      const { keys: dir, alg, max_token_ttl_seconds: maxTtl } = config.issuer;
      const now = new Date();
      const rotation = await rotateKeys(dir, now, { alg, maxTokenTtlSeconds: maxTtl });
      const until = new Date(now.getTime() + (maxTtl + RETIRED_KEY_GRACE_SECONDS) * 1000).toISOString();
      const lines = [
        `rotated the issuer keys in ${dir}`,
        `  active   ${rotation.active}  (was next, already published: signs once a server has read the ring again)`,
        `  next     ${rotation.next}  (new ${alg} key, published now, signs after the next rotation)`,
        `  retired  ${rotation.retired}  (private key deleted; published until ${until} for the tokens it signed)`,
        ...rotation.removed.map((kid) => `  removed  ${kid}  (retired long enough: no longer published)`),
        'every server (each replica and worker) reads the key folder again within 30 s; SIGHUP or POST /v1/admin/reload makes one start signing with the new key at once',
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
      return 0;
    },
  },
  ...AUDIT_COMMANDS,
  ...ACCESS_REQUEST_COMMANDS,
  ...SUGGEST_COMMANDS,
  ...BUNDLE_COMMANDS,
];

/** A caller id or approver group; an agent id or pattern of a pep's `agents`: the config's own patterns. */
const CALLER_ID = new RegExp(CONFIG_ID_PATTERN);
const AGENT_PATTERN = new RegExp(AGENT_ID_PATTERN);

/** A command's usage error: the usage line on stderr, exit 2 (as run-cli does for an unknown option). */
function usageError(command: string, usageLine: string): number {
  process.stderr.write(`agent-pdp ${command}: ${usageLine}\n`);
  return 2;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8');
}

export function usage(): string {
  const lines = COMMANDS.map((c) => `  ${c.name.padEnd(14)} ${c.summary}`);
  return `usage: agent-pdp <command> [options]\n       agent-pdp <command> --help\n       agent-pdp --version\n\n${lines.join('\n')}\n`;
}
