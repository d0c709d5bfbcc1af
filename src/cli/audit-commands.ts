/**
 * `agent-pdp audit verify | export | prune | key | chain`: the audit trail from a shell, on the store a config names (a
 * running server may keep serving: reading is safe, and pruning takes its turn on the write lock like any writer)
 * or, for verify, on an export file alone. Adapters only: the chain, the formats, the verifier and the signed heads
 * live in src/audit/, the audit key in src/issuer/audit-key.ts.
 *
 * Exit codes: 0 done (the chain verifies), 3 the chain or file does NOT verify (the break is printed), 4 the chain
 * verifies but the signed-heads file in the key folder could not be checked (no audit key to check it with, or it
 * cannot be read), 1 could not run (bad options, unreadable store or file), 2 usage.
 */
import type { KeyObject } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import { HEAD_SIGNING_DEFAULTS, exportLines, inChunks, isHash, planExport, readSignedHeads, scanSignedHeads, verifyExportFile, writeChunks } from '../audit/index.js';
import type { ChainHead, ExportPlan, ExportVerifyResult, HeadKeys, SignedHeadsScan, VerifyResult } from '../audit/index.js';
import { loadConfigFile } from '../config/config-loader.js';
import type { PdpConfig } from '../config/config-types.js';
import { PdpError } from '../errors/pdp-error.js';
import { parseAuditTime, parseExportQuery } from '../audit/index.js';
import { loadAuditKey, parseAuditPublicKeys, publicKeyOf, signedHeadsPath } from '../issuer/audit-key.js';
import type { Store } from '../store/index.js';
import { openConfiguredStore, storeLabel } from './configured-store.js';
import type { Command } from './commands.js';
import { ProgressBar } from './progress-bar.js';

type Values = Parameters<Command['run']>[0];

/** The chain (or file) does not verify. */
export const EXIT_NOT_VERIFIED = 3;

/** `audit verify --config`: the chain verifies, but the signed-heads file in the key folder could not be checked. */
export const EXIT_HEADS_UNCHECKED = 4;

/**
 * A newest signed head this much older than the last event is reported: a running PDP signs at least every
 * HEAD_SIGNING_DEFAULTS.intervalMs (60 s) while events are written, and once more when it stops.
 */
export const STALE_HEAD_MS = 5 * HEAD_SIGNING_DEFAULTS.intervalMs;

/** How long after a token expired `audit prune` still keeps its decision, for usage reports that come late. */
export const TOKEN_REPORT_GRACE_MS = 24 * 60 * 60 * 1000;

const str = (v: string | boolean | undefined): string | undefined => (typeof v === 'string' ? v : undefined);

export const AUDIT_COMMANDS: Command[] = [
  {
    name: 'audit verify',
    summary:
      'check the hash chain and name the first changed, removed, inserted or reordered event, and check every signed head with the audit public key: --config FILE | --file EXPORT [--public-key FILE] [--signed-heads FILE] [--expect-head SEQ:HASH] [--expect-digest HEX] [--json]',
    options: {
      config: { type: 'string', short: 'c' },
      file: { type: 'string', short: 'f' },
      'public-key': { type: 'string' },
      'signed-heads': { type: 'string' },
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
      if (file !== undefined && str(values['config']) !== undefined) throw new PdpError('invalid_request', 'pass --config FILE or --file EXPORT, not both');
      if (file !== undefined && !existsSync(file)) throw new PdpError('invalid_request', `no export file at ${file}`);
      const config = file === undefined ? configOf(values) : undefined;
      const keys = await headKeysOf(str(values['public-key']), config);
      const given = str(values['signed-heads']);
      if (given !== undefined && !existsSync(given)) throw new PdpError('invalid_request', `no signed-heads file at ${given}`);
      if (given !== undefined && keys.keys === undefined) throw new PdpError('invalid_request', `--signed-heads needs the audit public key: ${keys.note}`);
      // With --config, the signed-heads file beside the key is checked whenever it is there; one that is there (or
      // may be) but cannot be checked is never skipped in silence: the run says so and ends with EXIT_HEADS_UNCHECKED.
      const beside = given === undefined && config !== undefined ? headsFileBeside(config) : undefined;
      let heads: HeadsFile | undefined;
      let unchecked: string | undefined;
      if (given !== undefined) {
        heads = { path: given, scan: await scanSignedHeads(given, keys.keys as HeadKeys) };
      } else if (beside !== undefined && beside.problem !== undefined) {
        unchecked = `the signed-heads file ${beside.path} was NOT checked: ${beside.problem}`;
      } else if (beside !== undefined && beside.exists) {
        if (keys.keys === undefined) unchecked = `the signed-heads file ${beside.path} was NOT checked: ${keys.note}`;
        else heads = { path: beside.path, scan: await scanSignedHeads(beside.path, keys.keys) };
      }
      if (heads?.scan.problem !== undefined) {
        const { line, message } = heads.scan.problem;
        const failed: VerifyResult = { ok: false, kind: 'changed', seq: heads.scan.newest?.seq ?? 0, message: `line ${line} of ${heads.path} ${message}`, verified: 0 };
        process.stdout.write(values['json'] ? `${JSON.stringify({ ...failed, signed_heads_file: heads })}\n` : describeVerification(`the signed-heads file ${heads.path}`, failed));
        return EXIT_NOT_VERIFIED;
      }
      const newest = heads?.scan.newest ?? null;
      const signing = keys.keys ? { headKeys: keys.keys } : {};
      const expected = expectedLast ? { expectedLast } : {};
      let result: VerifyResult | ExportVerifyResult;
      let what: string;
      if (file !== undefined) {
        // An export is a range of the chain, which may end before the newest head (an archive cut at --until, a
        // filtered export ending on events it left out): every head of the file within the range is checked, and
        // those beyond its end are out of its range, not missing.
        const startSeq = await exportStartSeq(file);
        const inRange = heads === undefined ? undefined : await headsFrom(heads, startSeq - 1);
        result = await verifyExportFile(file, {
          ...expected,
          ...(inRange === undefined ? {} : { rangeAnchors: inRange }),
          ...signing,
          ...(expectedDigest ? { expectedDigest: expectedDigest.toLowerCase() } : {}),
        });
        if (heads !== undefined && inRange !== undefined && result.ok && result.range_anchors !== undefined) {
          const seen = result.range_anchors;
          heads.range = { from_seq: startSeq, to_seq: result.last_seq, ...seen, before: seen.before + heads.scan.count - inRange.length };
        }
        what = `export file ${file}`;
      } else {
        const store = await openConfiguredStore(config as PdpConfig);
        try {
          const start = await store.chainStart();
          // A head before the chain's start cannot be checked against it (pruned since): the chain's own records are.
          const anchors = newest !== null && newest.seq >= start.start_seq - 1 ? [{ seq: newest.seq, hash: newest.hash }] : [];
          if (heads !== undefined) heads.anchored = anchors.length > 0;
          result = await store.verifyStoredChain({ ...expected, anchors, ...signing });
          const recorded = result.ok && result.pruned_by !== undefined ? `, recorded by the audit.pruned event at seq ${result.pruned_by}` : '';
          const from = start.checkpoint === null ? 'genesis' : `the pruning checkpoint at seq ${start.checkpoint.last_pruned_seq}${recorded}`;
          what = `the audit chain in ${storeLabel(config as PdpConfig)} (from ${from})`;
        } finally {
          await store.close();
        }
      }
      // A filtered export leaves the signed heads out with the events it skips: no head there says nothing.
      const filtered = 'header' in result && result.header?.filter !== undefined;
      const stale = result.ok ? staleHead(result, filtered) : undefined;
      // The key folder's signed-heads file is gone though the chain holds signed heads (each of which the PDP that
      // signed it appended to that file): deleted, or this is not the folder the signing PDP used. Not silent.
      if (result.ok && unchecked === undefined && heads === undefined && beside !== undefined && !beside.exists && (result.signed_heads?.count ?? 0) > 0) {
        unchecked = `the signed-heads file ${beside.path} is missing, though the chain holds ${result.signed_heads?.count} signed heads (the PDP that signed them appends each to that file): deleted, or not the key folder the signing PDP used; pass --signed-heads FILE`;
      }
      if (values['json']) {
        const extra = { ...(heads ? { signed_heads_file: heads } : {}), ...(unchecked ? { signed_heads_file_unchecked: unchecked } : {}), ...(stale ? { stale_signed_head: stale } : {}) };
        process.stdout.write(`${JSON.stringify({ ...result, ...extra })}\n`);
      } else {
        process.stdout.write(describeVerification(what, result, { keys, heads, unchecked, stale }));
      }
      if (!result.ok) return EXIT_NOT_VERIFIED;
      return unchecked === undefined ? 0 : EXIT_HEADS_UNCHECKED;
    },
  },
  {
    name: 'audit chain',
    summary: 'one decision and everything that followed from it, as a timeline: DECISION_ID --config FILE [--json]',
    options: { config: { type: 'string', short: 'c' }, json: { type: 'boolean' } },
    async run(values, positionals) {
      const decisionId = positionals[0];
      if (decisionId === undefined || positionals.length > 1) throw new PdpError('invalid_request', 'usage: agent-pdp audit chain DECISION_ID --config FILE [--json]');
      const store = await openConfiguredStore(configOf(values));
      try {
        // The same chain as GET /v1/audit/decisions/{id}: the decision, its token and uses, its task's completion,
        // and for a denial an access request was made for, the request, its notifications, its verdict, the
        // decisions made with its elevation and the elevation's end.
        const events = await store.decisionChain(decisionId);
        if (events.length === 0) throw new PdpError('decision_not_found', `no events for decision ${decisionId}`);
        if (values['json'] === true) {
          for (const event of events) process.stdout.write(`${JSON.stringify(event)}\n`);
        } else {
          process.stdout.write(`${events.map(timelineLine).join('\n')}\n`);
        }
        return 0;
      } finally {
        await store.close();
      }
    },
  },
  {
    name: 'audit key',
    summary: 'print the audit public key that verifies signed heads, as a JWK (or --pem): --config FILE [--pem]; publish it where the database writers cannot change it',
    options: { config: { type: 'string', short: 'c' }, pem: { type: 'boolean' } },
    async run(values) {
      const key = await loadAuditKey(configOf(values).issuer.keys);
      const text = values['pem'] ? String(key.publicKey.export({ type: 'spki', format: 'pem' })) : `${JSON.stringify(key.jwk, null, 2)}\n`;
      process.stdout.write(text);
      return 0;
    },
  },
  {
    name: 'audit export',
    summary: 'export the audit trail, streamed: --config FILE [--format jsonl|csv|opa] [--out FILE] [--since T] [--until T] [--from-seq N] [--to-seq N] [--agent ID] [--task ID] [--decision ID] [--outcome O] [--reason CODE] [--type T,...]',
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
      decision: { type: 'string' },
      outcome: { type: 'string' },
      reason: { type: 'string' },
      type: { type: 'string' },
    },
    async run(values) {
      // The same names, validation and errors as GET /v1/audit/export.
      const query: Record<string, string> = {};
      const names: Record<string, string> = { format: 'format', since: 'since', until: 'until', 'from-seq': 'from_seq', 'to-seq': 'to_seq', agent: 'agent_id', task: 'task_id', decision: 'decision_id', outcome: 'outcome', reason: 'reason', type: 'type' };
      for (const [option, name] of Object.entries(names)) {
        const value = str(values[option]);
        if (value !== undefined) query[name] = value;
      }
      const { format, request } = parseExportQuery(query);
      const outPath = str(values['out']);
      const store = await openConfiguredStore(configOf(values));
      try {
        const exportedAt = new Date().toISOString();
        const plan = await planExport(store, request);
        const bar = ProgressBar.onTty(process.stderr, plan.to_seq - plan.from_seq + 1, `exporting ${format}`);
        let lastLine = '';
        let written = 0;
        const lines = exportLines(store, plan, format, {
          exported_at: exportedAt,
          onEvent: (seq) => bar?.update(seq - plan.from_seq + 1),
        });
        async function* remembered(): AsyncGenerator<string> {
          for await (const line of lines) {
            lastLine = line;
            written++;
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
        // The events written: JSON Lines counts them in its trailer (skip lines are not events); CSV has a header row;
        // OPA's format is one line per event.
        const events = format === 'jsonl' ? trailerCount(lastLine) : format === 'csv' ? Math.max(0, written - 1) : written;
        process.stderr.write(describeExport(format, plan, events, outPath, format === 'jsonl' ? lastLine : undefined));
        return 0;
      } finally {
        await store.close();
      }
    },
  },
  {
    name: 'audit prune',
    summary: 'delete audit events older than --before T (default: audit.retention_days) behind a checkpoint and an audit.pruned event, after verifying the chain and rolling the usage aggregates up: --config FILE [--before T]',
    options: { config: { type: 'string', short: 'c' }, before: { type: 'string' } },
    async run(values) {
      const beforeText = str(values['before']);
      const config = configOf(values);
      const store = await openConfiguredStore(config);
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
          process.stdout.write(describeVerification(`the audit chain in ${storeLabel(config)}`, verified));
          process.stdout.write('refusing to prune: investigate the break first (pruning would delete its evidence)\n');
          return EXIT_NOT_VERIFIED;
        }
        // The usage aggregates (policy suggestions, docs/suggestions.md) are folded from the events: fold in every
        // event first, so pruning never takes one the aggregates have not counted.
        const rolled = await store.rollupUsage();
        if (rolled.events > 0) process.stderr.write(`usage aggregates rolled up first: ${rolled.events} events (cursor at seq ${rolled.seq})\n`);
        const start = await store.chainStart();
        // A decision is its event: keep those still inside a redeem or request window (the store keeps those a live
        // token or an open access request reads on its own).
        const windowSeconds = Math.max(config.issuer.redeem_window_seconds, config.escalation.request_window_seconds);
        const decisionsLiveSince = new Date(now.getTime() - windowSeconds * 1000).toISOString();
        // A usage report may come after its token expired (the use fell inside the token's life): keep the decisions
        // of tokens that expired within the last day too.
        const tokensLiveSince = new Date(now.getTime() - TOKEN_REPORT_GRACE_MS).toISOString();
        const result = await store.pruneEvents({ before, at: now.toISOString(), decisions_live_since: decisionsLiveSince, tokens_live_since: tokensLiveSince });
        if (result.held_by !== null) {
          const why =
            result.held_by.reason === 'live_decision'
              ? 'the decision there is still read by a token (live, or expired less than a day ago) or an open access request'
              : 'decisions from there on may still be inside their redeem or request window';
          process.stderr.write(`stopped before seq ${result.held_by.seq} (${result.held_by.time}): ${why}\n`);
        }
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

/** One event of a chain as a line: time, seq, type, who, and what it says in a few words. */
function timelineLine(event: { seq: number; time: string; type: string; caller_id?: string; decision_id?: string; jti?: string; data: unknown }): string {
  const d = (event.data ?? {}) as Record<string, unknown>;
  const result = (d['result'] ?? {}) as Record<string, unknown>;
  const list = (v: unknown): string => (Array.isArray(v) ? v.join(' ') : '');
  let what = '';
  switch (event.type) {
    case 'decision': {
      const reasons = Array.isArray(result['reasons']) ? (result['reasons'] as Array<{ code?: string }>).map((r) => r.code).join(', ') : '';
      what = `${String(result['outcome'] ?? '')} ${event.decision_id ?? ''} granted [${list(result['granted_scopes'])}] (${reasons})`;
      break;
    }
    case 'token.issued':
    case 'token.revoked':
      what = `jti ${event.jti ?? ''}${d['reason'] ? ` (${String(d['reason'])})` : ''}`;
      break;
    case 'token.used':
      what = `jti ${event.jti ?? ''} ${tokenUseText(d)}`;
      break;
    case 'access_request.submitted':
      what = `${String(d['access_request_id'])} for [${list(d['scopes'])}], ${String(d['duration_seconds'])} s, approvers ${list(d['approver_groups'])}: ${String(d['reason'] ?? '')}`;
      break;
    case 'access_request.notified':
    case 'access_request.notification_failed':
      what = `${String(d['access_request_id'])} via ${String(d['destination'])} (attempt ${String(d['attempts'])})`;
      break;
    case 'access_request.approved':
      what = `${String(d['access_request_id'])} until ${String(d['approved_until'])}${d['note'] ? `: ${String(d['note'])}` : ''}`;
      break;
    case 'access_request.denied':
    case 'access_request.expired':
      what = String(d['access_request_id']);
      break;
    case 'elevation.ended':
      what = `${String(d['access_request_id'])} (${String(d['reason'])})`;
      break;
    case 'provider.credential_discarded': {
      const minted = (d['provider_credential'] ?? {}) as Record<string, unknown>;
      what = `${String(minted['provider'])} credential for ${String(d['integration'])}, request ${String(minted['request_id'])}, expires ${String(minted['expires_at'])} (${String(d['reason'])})`;
      break;
    }
    default:
      what = '';
  }
  return `${event.time}  #${event.seq}  ${event.type.padEnd(36)}${event.caller_id ? ` by ${event.caller_id}` : ''}  ${what}`.trimEnd();
}

/**
 * A token.used event's payload in a few words. An introspection: `introspect: active`. A proxied call: `github GET
 * /repos/{owner}/{repo}/pulls/{pull_number} needs pr:read on repo "acme/app": forwarded, upstream 200, 0 B in, 5120 B
 * out, 12 ms`. A reported request: `reported: crm /customers/:id needed tickets:read on customer "1234", used at
 * 2026-03-01T10:00:00.000Z`. The record id came from the request and the route from the resource server: they are
 * printed as JSON strings, so no control character of theirs reaches the terminal.
 */
function tokenUseText(d: Record<string, unknown>): string {
  if (d['action'] === 'resource_server') {
    const record = (d['record'] ?? null) as { type?: unknown; id?: unknown } | null;
    const route = d['route'] === null || d['route'] === undefined ? '(route not named)' : JSON.stringify(String(d['route']));
    const on = record === null ? '' : ` on ${String(record.type)} ${JSON.stringify(String(record.id))}`;
    return `reported: ${String(d['integration'])} ${route} needed ${String(d['scope'])}${on}, used at ${String(d['used_at'])}`;
  }
  if (d['action'] !== 'proxy') return `${String(d['action'])}: ${d['active'] === true ? 'active' : 'inactive'}`;
  const record = (d['record'] ?? null) as { type?: unknown; id?: unknown } | null;
  const target = d['path_template'] === '' ? `${String(d['method'])} (unmapped)` : `${String(d['method'])} ${String(d['path_template'])} needs ${String(d['scope'])}`;
  const on = record === null ? '' : ` on ${String(record.type)} ${JSON.stringify(String(record.id))}`;
  const outcome = `${String(d['outcome'])}${d['code'] === null ? '' : ` ${String(d['code'])}`}`;
  const upstream = d['upstream_status'] === null ? '' : `, upstream ${String(d['upstream_status'])}`;
  return `${String(d['integration'])} ${target}${on}: ${outcome}${upstream}, ${String(d['bytes_in'])} B in, ${String(d['bytes_out'])} B out, ${String(d['latency_ms'])} ms`;
}

/** The config of --config FILE (or AGENT_PDP_CONFIG). */
function configOf(values: Values): PdpConfig {
  const configPath = str(values['config']) ?? process.env['AGENT_PDP_CONFIG'];
  if (!configPath) throw new PdpError('config_invalid', 'no config: pass --config FILE (or set AGENT_PDP_CONFIG), or --file EXPORT');
  return loadConfigFile(configPath, { nodeEnv: process.env['NODE_ENV'], webhookSecrets: false }).config;
}

/** The audit public keys to check signed heads with, and where they came from (or why there are none). */
interface KeysUsed {
  keys: HeadKeys | undefined;
  /** `the audit key <kid> (from FILE)`, or why no key is used. */
  note: string;
}

/** The signed-heads file checked: what it holds, and what of it was checked against the chain or the export. */
interface HeadsFile {
  path: string;
  scan: SignedHeadsScan;
  /** The store: whether its newest head was checked against the chain (false: it is before the chain's start). */
  anchored?: boolean;
  /**
   * An export: its range (its first seq to its last event; a head at the seq before the first is checked against
   * the header's start_prev_hash) and what became of the file's heads.
   */
  range?: { from_seq: number; to_seq: number; checked: number; newest_checked: number | null; before: number; after: number };
}

/** The signed-heads file in a config's key folder: whether it is there, or why that cannot be told. */
function headsFileBeside(config: PdpConfig): { path: string; exists: boolean; problem?: string } {
  const path = signedHeadsPath(config.issuer.keys);
  try {
    return { path, exists: statSync(path, { throwIfNoEntry: false }) !== undefined };
  } catch (error) {
    return { path, exists: false, problem: `cannot tell whether it is there: ${(error as Error).message}` };
  }
}

/**
 * The heads of the (scanned, verified) signed-heads file at or after `fromSeq`, in file order. Only the first
 * `scan.count` heads are taken, the ones the scan verified: a head appended since is not one of them.
 */
async function headsFrom(heads: HeadsFile, fromSeq: number): Promise<ChainHead[]> {
  const out: ChainHead[] = [];
  let taken = 0;
  for await (const { head } of readSignedHeads(heads.path)) {
    if (taken === heads.scan.count) break;
    if (typeof head === 'string') continue;
    taken++;
    if (head.seq >= fromSeq) out.push({ seq: head.seq, hash: head.hash });
  }
  const newest = heads.scan.newest;
  const last = out.at(-1);
  if (taken !== heads.scan.count || (newest !== null && newest.seq >= fromSeq && (last?.seq !== newest.seq || last.hash !== newest.hash))) {
    throw new PdpError('invalid_request', `the signed-heads file ${heads.path} changed while it was read: run again`);
  }
  return out;
}

/**
 * The newest signed head in the chain, when it is more than STALE_HEAD_MS older than the last event; with no signed
 * head at all (`seq: null`), the first event, when the events span more than that: a chain a running PDP wrote for
 * that long holds signed heads, unless they were deleted with a rewritten chain.
 */
function staleHead(result: Extract<VerifyResult, { ok: true }>, filtered = false): { seq: number | null; time: string; last_time: string; events_after: number } | undefined {
  if (result.last_time === undefined) return undefined;
  const newest = result.signed_heads?.newest ?? null;
  if (newest === null) {
    if (filtered) return undefined;
    if (result.first_time === undefined || Date.parse(result.last_time) - Date.parse(result.first_time) <= STALE_HEAD_MS) return undefined;
    return { seq: null, time: result.first_time, last_time: result.last_time, events_after: result.count };
  }
  const after = result.last_seq - newest.event_seq;
  if (after <= 0 || Date.parse(result.last_time) - Date.parse(newest.time) <= STALE_HEAD_MS) return undefined;
  return { seq: newest.seq, time: newest.time, last_time: result.last_time, events_after: after };
}

/** --public-key FILE (a JWK, JWK set or PEM); else, with a config, the audit key in its key folder; else none. */
async function headKeysOf(publicKey: string | undefined, config: PdpConfig | undefined): Promise<KeysUsed> {
  if (publicKey !== undefined) {
    let text: string;
    try {
      text = await readFile(publicKey, 'utf8');
    } catch (cause) {
      throw new PdpError('invalid_request', `cannot read --public-key ${publicKey}`, { cause });
    }
    let jwks;
    try {
      jwks = await parseAuditPublicKeys(text);
    } catch (error) {
      throw new PdpError('invalid_request', `--public-key ${publicKey}: ${(error as Error).message}`);
    }
    const keys = new Map<string, KeyObject>(jwks.map((jwk) => [jwk.kid, publicKeyOf(jwk)]));
    return { keys, note: `the audit key${keys.size === 1 ? '' : 's'} ${[...keys.keys()].join(', ')} (from ${publicKey})` };
  }
  if (config === undefined) return { keys: undefined, note: 'no audit public key: pass --public-key FILE' };
  try {
    const key = await loadAuditKey(config.issuer.keys);
    return { keys: new Map([[key.kid, key.publicKey]]), note: `the audit key ${key.kid} (from the key folder ${config.issuer.keys})` };
  } catch (error) {
    return { keys: undefined, note: `no audit public key: ${(error as Error).message}; pass --public-key FILE` };
  }
}

/** start_seq of an export file's header (1 when it cannot be read: verification then names what is wrong). */
async function exportStartSeq(path: string): Promise<number> {
  const input = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      const seq = (JSON.parse(line) as { start_seq?: unknown }).start_seq;
      return Number.isSafeInteger(seq) ? (seq as number) : 1;
    }
  } catch {
    // not JSON: the verifier reports the file
  } finally {
    lines.close();
    input.destroy();
  }
  return 1;
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

/** What `audit verify` knows beside the result: the keys used, the signed-heads file, what it could not check. */
interface Signing {
  keys?: KeysUsed;
  heads?: HeadsFile | undefined;
  /** Why the signed-heads file in the key folder was not checked (the exit code is then EXIT_HEADS_UNCHECKED). */
  unchecked?: string | undefined;
  stale?: ReturnType<typeof staleHead>;
}

export function describeVerification(what: string, result: VerifyResult | ExportVerifyResult, signing: Signing = {}): string {
  const uncheckedLines = signing.unchecked === undefined ? [] : [`  NOT CHECKED: ${signing.unchecked}`];
  if (!result.ok) {
    return [
      `FAILED: ${what} does not verify`,
      `  ${result.kind} at seq ${result.seq}: ${result.message}`,
      `  ${result.verified} event${result.verified === 1 ? '' : 's'} verified before the break`,
      ...uncheckedLines,
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
  lines.push(...describeSignedHeads(result, signing));
  if (signing.unchecked !== undefined) {
    lines.push(...uncheckedLines, `  exit code ${EXIT_HEADS_UNCHECKED}: the chain verifies, but not against the signed-heads file; pass --public-key FILE (the published audit key) to check it`);
  }
  lines.push('  keep the head (and digest) outside the store; later, --expect-head (and --expect-digest) detect a rewritten or truncated tail', '');
  return lines.join('\n');
}

function describeSignedHeads(result: Extract<VerifyResult, { ok: true }>, { keys, heads, stale }: Signing): string[] {
  const lines: string[] = [];
  const seen = result.signed_heads;
  if (seen === undefined || seen.count === 0) {
    lines.push('  no signed heads in this chain: nothing but the chain itself vouches for it');
  } else {
    const newest = seen.newest;
    const checked = seen.verified ? `every signature verified with ${keys?.note ?? 'the audit key'}` : `signatures NOT checked: ${keys?.note ?? 'no audit public key'}`;
    lines.push(`  signed heads: ${seen.count} in the chain, each signing the event before it; ${checked}`);
    if (newest !== null) {
      const after = result.last_seq - newest.seq;
      lines.push(`  newest signed head: seq ${newest.seq} at ${newest.time} (key ${newest.kid}); ${after} event${after === 1 ? '' : 's'} after it rest on the chain alone`);
    }
  }
  if (stale !== undefined && stale.seq === null) {
    const minutes = Math.round((Date.parse(stale.last_time) - Date.parse(stale.time)) / 60_000);
    lines.push(
      `  WARNING: no signed head in a chain whose ${stale.events_after} events span ${minutes} min (${stale.time} to ${stale.last_time});` +
        ' a running PDP signs at least every 60 s while it writes. Benign if only CLI commands wrote this store;' +
        ' otherwise its signed heads may have been deleted with a rewritten chain: check against the signed-heads file or an anchor',
    );
  } else if (stale !== undefined) {
    const minutes = Math.round((Date.parse(stale.last_time) - Date.parse(stale.time)) / 60_000);
    lines.push(
      `  WARNING: the newest signed head (seq ${stale.seq}, ${stale.time}) is ${minutes} min older than the last event (${stale.last_time}), with ${stale.events_after} event${stale.events_after === 1 ? '' : 's'} after it;` +
        ' a running PDP signs at least every 60 s while it writes. Benign if the PDP crashed or was stopped before signing, or a CLI wrote them (audit prune);' +
        ' otherwise signed heads after it may have been deleted with a rewritten tail: check against the signed-heads file or an anchor',
    );
  }
  if (heads !== undefined) {
    const newest = heads.scan.newest;
    const range = heads.range;
    if (newest === null) lines.push(`  signed-heads file ${heads.path}: no signed heads yet`);
    else if (range !== undefined) lines.push(`  signed-heads file ${heads.path}: ${heads.scan.count} heads verified; ${describeRange(range)}`);
    else if (heads.anchored) lines.push(`  signed-heads file ${heads.path}: ${heads.scan.count} heads verified; the chain holds its newest, seq ${newest.seq}`);
    else lines.push(`  signed-heads file ${heads.path}: ${heads.scan.count} heads verified; its newest, seq ${newest.seq}, is before this chain's start: not checked against it`);
    if (heads.scan.incomplete !== undefined) lines.push(`  its last line (${heads.scan.incomplete}) is not JSON, an append cut short (a crash?): left out`);
  }
  return lines;
}

/** What of the signed-heads file an export was checked against. */
function describeRange(range: NonNullable<HeadsFile['range']>): string {
  const span = range.to_seq >= range.from_seq ? `seq ${range.from_seq}..${range.to_seq}` : `no events after seq ${range.to_seq}`;
  const outside = [
    ...(range.before > 0 ? [`${range.before} before it`] : []),
    ...(range.after > 0 ? [`${range.after} after its last event, seq ${range.to_seq}: out of its range (an export cut before them), not checked`] : []),
  ];
  const rest = outside.length === 0 ? '' : `; ${outside.join(', ')}`;
  if (range.checked === 0) return `none is in this file's range (${span}): the file is not checked against them${rest}`;
  const all = range.checked === 1 ? `the one in this file's range (${span}), seq ${range.newest_checked},` : `the ${range.checked} in this file's range (${span}), up to seq ${range.newest_checked},`;
  return `${all} ${range.checked === 1 ? 'matches' : 'match'} it${rest}`;
}

function describeFilter(filter: NonNullable<NonNullable<ExportVerifyResult['header']>['filter']>): string {
  return Object.entries(filter)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`)
    .join(' ');
}

/** The event count of a JSON Lines export's trailer line (`end.count`), 0 when the line is not one. */
function trailerCount(line: string): number {
  try {
    const count = (JSON.parse(line) as { end?: { count?: unknown } }).end?.count;
    return typeof count === 'number' ? count : 0;
  } catch {
    return 0;
  }
}

function describeExport(format: string, plan: ExportPlan, events: number, outPath: string | undefined, trailerLine: string | undefined): string {
  const range = plan.from_seq > plan.to_seq ? 'an empty range' : `seq ${plan.from_seq}..${plan.to_seq}`;
  const lines = [`exported ${events} event${events === 1 ? '' : 's'} of ${range} as ${format}${outPath === undefined ? '' : ` to ${outPath}`}`];
  if (trailerLine === undefined) lines.push('  no last event or digest: only the JSON Lines export (the evidence format) carries them');
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
