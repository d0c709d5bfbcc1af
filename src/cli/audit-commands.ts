/**
 * `agent-pdp audit verify | export | prune`: the audit trail from a shell, on the store a config names (a running
 * server may keep serving: reading is safe, and pruning takes its turn on the write lock like any writer) or, for
 * verify, on an export file alone. Adapters only: the chain, the formats and the verifier live in src/audit/.
 *
 * Exit codes: 0 done (the chain verifies), 3 the chain or file does NOT verify (the break is printed), 1 could
 * not run (bad options, unreadable store or file), 2 usage.
 */
import { createWriteStream, existsSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { exportLines, inChunks, isHash, planExport, verifyExportFile, writeChunks } from '../audit/index.js';
import type { ChainHead, ExportPlan, ExportVerifyResult, VerifyResult } from '../audit/index.js';
import { loadConfigFile } from '../config/config-loader.js';
import type { PdpConfig } from '../config/config-types.js';
import { PdpError } from '../errors/pdp-error.js';
import { parseAuditTime, parseExportQuery } from '../audit/index.js';
import { openStore, sqlitePath, type Store } from '../store/index.js';
import type { Command } from './commands.js';
import { ProgressBar } from './progress-bar.js';

type Values = Parameters<Command['run']>[0];

/** The chain (or file) does not verify. */
export const EXIT_NOT_VERIFIED = 3;

const str = (v: string | boolean | undefined): string | undefined => (typeof v === 'string' ? v : undefined);

export const AUDIT_COMMANDS: Command[] = [
  {
    name: 'audit verify',
    summary: 'check the hash chain and name the first changed, removed, inserted or reordered event: --config FILE | --file EXPORT [--expect-head SEQ:HASH] [--expect-digest HEX] [--json]',
    options: {
      config: { type: 'string', short: 'c' },
      file: { type: 'string', short: 'f' },
      'expect-head': { type: 'string' },
      'expect-digest': { type: 'string' },
      json: { type: 'boolean' },
    },
    async run(values) {
      const file = str(values['file']);
      const expectedLast = parseHead(str(values['expect-head']));
      const expectedDigest = str(values['expect-digest']);
      if (expectedDigest !== undefined && (file === undefined || !isHash(expectedDigest.toLowerCase()))) {
        throw new PdpError('invalid_request', '--expect-digest takes the 64 hex digits an export trailer records, with --file');
      }
      let result: VerifyResult | ExportVerifyResult;
      let what: string;
      if (file !== undefined) {
        if (str(values['config']) !== undefined) throw new PdpError('invalid_request', 'pass --config FILE or --file EXPORT, not both');
        if (!existsSync(file)) throw new PdpError('invalid_request', `no export file at ${file}`);
        result = await verifyExportFile(file, {
          ...(expectedLast ? { expectedLast } : {}),
          ...(expectedDigest ? { expectedDigest: expectedDigest.toLowerCase() } : {}),
        });
        what = `export file ${file}`;
      } else {
        const { store, config } = await openConfiguredStore(values);
        try {
          const start = await store.chainStart();
          result = await store.verifyStoredChain(expectedLast ? { expectedLast } : {});
          const recorded = result.ok && result.pruned_by !== undefined ? `, recorded by the audit.pruned event at seq ${result.pruned_by}` : '';
          const from = start.checkpoint === null ? 'genesis' : `the pruning checkpoint at seq ${start.checkpoint.last_pruned_seq}${recorded}`;
          what = `the audit chain in ${sqlitePath(config.store.url)} (from ${from})`;
        } finally {
          await store.close();
        }
      }
      if (values['json']) process.stdout.write(`${JSON.stringify(result)}\n`);
      else process.stdout.write(describeVerification(what, result));
      return result.ok ? 0 : EXIT_NOT_VERIFIED;
    },
  },
  {
    name: 'audit export',
    summary: 'export the audit trail, streamed: --config FILE [--format jsonl|csv|opa] [--out FILE] [--since T] [--until T] [--from-seq N] [--to-seq N] [--agent ID] [--task ID] [--outcome O] [--type T,...]',
    options: {
      config: { type: 'string', short: 'c' },
      format: { type: 'string' },
      out: { type: 'string', short: 'o' },
      since: { type: 'string' },
      until: { type: 'string' },
      'from-seq': { type: 'string' },
      'to-seq': { type: 'string' },
      agent: { type: 'string' },
      task: { type: 'string' },
      outcome: { type: 'string' },
      type: { type: 'string' },
    },
    async run(values) {
      // The same names, validation and errors as GET /v1/audit/export.
      const query: Record<string, string> = {};
      const names: Record<string, string> = { format: 'format', since: 'since', until: 'until', 'from-seq': 'from_seq', 'to-seq': 'to_seq', agent: 'agent_id', task: 'task_id', outcome: 'outcome', type: 'type' };
      for (const [option, name] of Object.entries(names)) {
        const value = str(values[option]);
        if (value !== undefined) query[name] = value;
      }
      const { format, request } = parseExportQuery(query);
      const outPath = str(values['out']);
      const { store } = await openConfiguredStore(values);
      try {
        const exportedAt = new Date().toISOString();
        const plan = await planExport(store, request);
        const bar = ProgressBar.onTty(process.stderr, plan.to_seq - plan.from_seq + 1, `exporting ${format}`);
        let events = 0;
        let lastLine = '';
        const lines = exportLines(store, plan, format, {
          exported_at: exportedAt,
          onEvent: (seq) => {
            events++;
            bar?.update(seq - plan.from_seq + 1);
          },
        });
        async function* remembered(): AsyncGenerator<string> {
          for await (const line of lines) {
            lastLine = line;
            yield line;
          }
        }
        const out: Writable = outPath === undefined ? process.stdout : createWriteStream(outPath);
        let failure: Error | undefined;
        const onError = (error: Error): void => {
          failure ??= error;
        };
        out.on('error', onError);
        try {
          const complete = await writeChunks(inChunks(remembered()), out);
          if (outPath !== undefined) await endStream(out);
          if (!complete || failure !== undefined) {
            throw new PdpError('internal', `the export could not be written${failure ? `: ${failure.message}` : ''}`);
          }
        } finally {
          bar?.finish();
          out.off('error', onError);
        }
        process.stderr.write(describeExport(format, plan, events, outPath, format === 'jsonl' ? lastLine : undefined));
        return 0;
      } finally {
        await store.close();
      }
    },
  },
  {
    name: 'audit prune',
    summary: 'delete audit events older than --before T (default: audit.retention_days) behind a checkpoint and an audit.pruned event, after verifying the chain: --config FILE [--before T]',
    options: { config: { type: 'string', short: 'c' }, before: { type: 'string' } },
    async run(values) {
      const beforeText = str(values['before']);
      const { store, config } = await openConfiguredStore(values);
      try {
        const now = new Date();
        const before = beforeText !== undefined ? parseAuditTime(beforeText) : retentionCut(config, now);
        if (before === undefined) {
          const message = beforeText !== undefined ? `--before ${beforeText} is not an RFC 3339 time or a date` : 'pass --before TIME, or set audit.retention_days in the config';
          throw new PdpError('invalid_request', message);
        }
        // Pruning a broken chain would destroy the evidence of the break: refuse, and say where it is.
        const verified = await store.verifyStoredChain();
        if (!verified.ok) {
          process.stdout.write(describeVerification(`the audit chain in ${sqlitePath(config.store.url)}`, verified));
          process.stdout.write('refusing to prune: investigate the break first (pruning would delete its evidence)\n');
          return EXIT_NOT_VERIFIED;
        }
        const start = await store.chainStart();
        const result = await store.pruneEvents({ before, at: now.toISOString() });
        if (result.pruned === 0) {
          process.stdout.write(`nothing to prune: no event before ${before} at the start of the chain\n`);
        } else {
          const checkpoint = result.checkpoint as NonNullable<typeof result.checkpoint>;
          process.stdout.write(
            [
              `pruned ${result.pruned} events (seq ${start.start_seq}..${checkpoint.last_pruned_seq}) older than ${before}`,
              `the chain now starts at seq ${checkpoint.last_pruned_seq + 1}, from checkpoint hash ${checkpoint.last_pruned_hash}`,
              `recorded in the chain by the audit.pruned event at seq ${result.event?.seq ?? '?'}`,
              '',
            ].join('\n'),
          );
        }
        return 0;
      } finally {
        await store.close();
      }
    },
  },
];

/** The store of --config FILE (or AGENT_PDP_CONFIG). Refuses a store file that does not exist rather than create it. */
async function openConfiguredStore(values: Values): Promise<{ store: Store; config: PdpConfig }> {
  const configPath = str(values['config']) ?? process.env['AGENT_PDP_CONFIG'];
  if (!configPath) throw new PdpError('config_invalid', 'no config: pass --config FILE (or set AGENT_PDP_CONFIG), or --file EXPORT');
  const { config } = loadConfigFile(configPath, { nodeEnv: process.env['NODE_ENV'] });
  const path = sqlitePath(config.store.url);
  if (path !== ':memory:' && !existsSync(path)) throw new PdpError('store_unavailable', `there is no store at ${path}`);
  return { store: await openStore(config.store.url, { synchronous: config.store.synchronous }), config };
}

function retentionCut(config: PdpConfig, now: Date): string | undefined {
  const days = config.audit.retention_days;
  return days === null ? undefined : new Date(now.getTime() - days * 86_400_000).toISOString();
}

/** `SEQ:HASH`, as `audit verify` prints it. */
function parseHead(text: string | undefined): ChainHead | undefined {
  if (text === undefined) return undefined;
  const match = /^([1-9][0-9]{0,15}):([0-9a-fA-F]{64})$/.exec(text);
  if (!match) throw new PdpError('invalid_request', '--expect-head takes SEQ:HASH, as `audit verify` prints it');
  return { seq: Number(match[1]), hash: (match[2] as string).toLowerCase() };
}

export function describeVerification(what: string, result: VerifyResult | ExportVerifyResult): string {
  if (!result.ok) {
    return [
      `FAILED: ${what} does not verify`,
      `  ${result.kind} at seq ${result.seq}: ${result.message}`,
      `  ${result.verified} event${result.verified === 1 ? '' : 's'} verified before the break`,
      '',
    ].join('\n');
  }
  const range = result.count === 0 ? 'no events' : `${result.count} event${result.count === 1 ? '' : 's'} up to seq ${result.last_seq}`;
  const lines = [`ok: ${what} verifies: ${range}`];
  const file = 'header' in result ? result : undefined;
  if (file?.header?.filter !== undefined) {
    lines.push(`  filtered export (${describeFilter(file.header.filter)}): each event is intact and in order; events left out are declared by skip lines`);
  }
  lines.push(`  head ${result.last_seq}:${result.last_hash}`);
  if (file?.trailer !== undefined) lines.push(`  digest ${file.trailer.digest}`);
  lines.push('  keep the head (and digest) outside the store; later, --expect-head (and --expect-digest) detect a rewritten or truncated tail', '');
  return lines.join('\n');
}

function describeFilter(filter: NonNullable<NonNullable<ExportVerifyResult['header']>['filter']>): string {
  return Object.entries(filter)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`)
    .join(' ');
}

function describeExport(format: string, plan: ExportPlan, events: number, outPath: string | undefined, trailerLine: string | undefined): string {
  const range = plan.from_seq > plan.to_seq ? 'an empty range' : `seq ${plan.from_seq}..${plan.to_seq}`;
  const lines = [`exported ${events} events of ${range} as ${format}${outPath === undefined ? '' : ` to ${outPath}`}`];
  if (trailerLine !== undefined) {
    try {
      const end = (JSON.parse(trailerLine) as { end: { last_seq: number; last_hash: string; digest: string } }).end;
      lines.push(`  last event ${end.last_seq}:${end.last_hash}`, `  digest ${end.digest}  (record it: audit verify --file F --expect-digest ${end.digest})`);
    } catch {
      // not a trailer: nothing more to say
    }
  }
  return `${lines.join('\n')}\n`;
}

function endStream(out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    out.once('error', reject);
    out.end(() => resolve());
  });
}
