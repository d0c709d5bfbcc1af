/**
 * `agent-pdp access-requests list | show | approve | deny`: break-glass access requests from a shell on the PDP's
 * box, on the store a config names. No HTTP and no API key: whoever can read the config and the database can act,
 * so `approve` / `deny` name the approver they act as (`--as CALLER_ID`, a caller of the config), and every check
 * the API makes still applies, in the same service (src/pdp/access-requests.ts): role approver, one of the
 * request's approver groups, never the caller that asked (nor the orchestrator that registered the task), the
 * policy's max_duration, still pending and not expired. The audit event names that approver.
 *
 * A running server may keep serving on the same SQLite file: reads are safe, and a decision takes its turn on the
 * write lock like any writer (the store reads the chain head inside each transaction, so nothing forks). The server
 * sees the approval at its next decision (the elevation is looked up in the store each time).
 *
 * Exit codes: 0 done, 1 refused or could not run (the refusal's code is printed), 2 usage.
 */
import { loadConfigFile } from '../config/config-loader.js';
import type { CallerConfig, PdpConfig } from '../config/config-types.js';
import { PdpError } from '../errors/pdp-error.js';
import { AccessRequestService } from '../pdp/access-requests.js';
import type { Store } from '../store/index.js';
import { openConfiguredStore } from './configured-store.js';
import { ACCESS_REQUEST_STATUSES, type AccessRequestStatus, type AccessRequestV1 } from '../wire/access-request-v1.js';
import type { Command } from './commands.js';

type Values = Parameters<Command['run']>[0];

const str = (v: string | boolean | undefined): string | undefined => (typeof v === 'string' ? v : undefined);

/**
 * Who reads on the CLI: the operator on the box sees every request, as an auditor does over the API. It never
 * decides: approve and deny act as the configured approver `--as` names.
 */
const CLI_READER: CallerConfig = Object.freeze({ id: 'agent-pdp-cli', role: 'auditor', key_sha256: '' }) as CallerConfig;

const config = { config: { type: 'string', short: 'c' } } as const;

export const ACCESS_REQUEST_COMMANDS: Command[] = [
  {
    name: 'access-requests list',
    summary: 'list break-glass access requests, oldest first: --config FILE [--status pending|approved|denied|expired] [--limit N] [--json]',
    options: { ...config, status: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } },
    async run(values) {
      const status = statusOf(str(values['status']));
      const limit = integerOption(values, 'limit', 1, 1_000_000);
      return withService(values, async (service) => {
        const items: AccessRequestV1[] = [];
        let after: string | undefined;
        do {
          const page = await service.list(CLI_READER, { ...(status ? { status } : {}), ...(after ? { after } : {}), limit: 200 });
          items.push(...page.items);
          after = page.next_after ?? undefined;
        } while (after !== undefined && (limit === undefined || items.length < limit));
        const shown = limit === undefined ? items : items.slice(0, limit);
        process.stdout.write(values['json'] ? `${JSON.stringify(shown, null, 2)}\n` : listTable(shown, status));
        return 0;
      });
    },
  },
  {
    name: 'access-requests show',
    summary: 'one access request with every fact an approver needs: show ID --config FILE [--json]',
    options: { ...config, json: { type: 'boolean' } },
    async run(values, positionals) {
      const id = oneId(positionals, 'show');
      return withService(values, async (service) => {
        const request = await service.get(CLI_READER, id);
        process.stdout.write(values['json'] ? `${JSON.stringify(request, null, 2)}\n` : details(request));
        return 0;
      });
    },
  },
  {
    name: 'access-requests approve',
    summary:
      'approve a pending request as a configured approver: approve ID --as CALLER_ID --config FILE [--duration SECONDS] [--note TEXT]; the agent must decide again to use it',
    options: { ...config, as: { type: 'string' }, duration: { type: 'string' }, note: { type: 'string' }, json: { type: 'boolean' } },
    async run(values, positionals) {
      const id = oneId(positionals, 'approve');
      const duration = integerOption(values, 'duration', 1, 604_800);
      const note = noteOf(values);
      return withService(values, async (service, cfg) => {
        const approver = approverOf(cfg, values);
        const approved = await service.approve(approver, id, { ...(duration === undefined ? {} : { duration_seconds: duration }), ...note }, null);
        process.stdout.write(
          values['json']
            ? `${JSON.stringify(approved, null, 2)}\n`
            : `approved ${approved.id} as ${approver.id}: ${approved.agent_id} may use ${approved.integration} [${approved.scopes.join(', ')}]${on(approved)} for task ${approved.task_id} until ${time(approved.approved_until)} (${durationText(secondsBetween(approved.decided_at, approved.approved_until))}); it takes effect at the agent's next decision\n`,
        );
        return 0;
      });
    },
  },
  {
    name: 'access-requests deny',
    summary: 'deny a pending request as a configured approver: deny ID --as CALLER_ID --config FILE [--note TEXT]',
    options: { ...config, as: { type: 'string' }, note: { type: 'string' }, json: { type: 'boolean' } },
    async run(values, positionals) {
      const id = oneId(positionals, 'deny');
      const note = noteOf(values);
      return withService(values, async (service, cfg) => {
        const approver = approverOf(cfg, values);
        const denied = await service.deny(approver, id, note, null);
        process.stdout.write(values['json'] ? `${JSON.stringify(denied, null, 2)}\n` : `denied ${denied.id} as ${approver.id}: ${denied.agent_id} stays within its policy\n`);
        return 0;
      });
    },
  },
];

/** Opens the configured store, runs `body` with the service on it, and closes the store whatever happens. */
async function withService(values: Values, body: (service: AccessRequestService, config: PdpConfig) => Promise<number>): Promise<number> {
  const configPath = str(values['config']) ?? process.env['AGENT_PDP_CONFIG'];
  if (!configPath) throw new PdpError('config_invalid', 'no config: pass --config FILE (or set AGENT_PDP_CONFIG)');
  const { config } = loadConfigFile(configPath, { nodeEnv: process.env['NODE_ENV'], webhookSecrets: false });
  const store = await openConfiguredStore(config);
  try {
    return await body(new AccessRequestService({ store, escalation: config.escalation }), config);
  } finally {
    await store.close();
  }
}

/** The caller `--as` names. The service checks the rest (role approver, group, not its own request). */
function approverOf(config: PdpConfig, values: Values): CallerConfig {
  const id = str(values['as']);
  if (id === undefined || id === '') throw new PdpError('invalid_request', 'pass --as CALLER_ID: the approver (a caller of the config with role approver) you act as');
  const caller = config.callers.find((c) => c.id === id);
  if (caller === undefined) {
    throw new PdpError('invalid_request', `there is no caller "${id}" in the config`, { details: [{ path: '--as', message: 'names no caller of the config' }] });
  }
  return caller;
}

function oneId(positionals: string[], verb: string): string {
  if (positionals.length !== 1 || positionals[0] === '') {
    const extra = verb === 'approve' ? ' --as CALLER_ID [--duration SECONDS] [--note TEXT]' : verb === 'deny' ? ' --as CALLER_ID [--note TEXT]' : ' [--json]';
    throw new PdpError('invalid_request', `usage: agent-pdp access-requests ${verb} ID --config FILE${extra}`);
  }
  return positionals[0] as string;
}

function statusOf(value: string | undefined): AccessRequestStatus | undefined {
  if (value === undefined) return undefined;
  if (!(ACCESS_REQUEST_STATUSES as readonly string[]).includes(value)) {
    throw new PdpError('invalid_request', `--status must be one of ${ACCESS_REQUEST_STATUSES.join(', ')}`);
  }
  return value as AccessRequestStatus;
}

function integerOption(values: Values, name: string, min: number, max: number): number | undefined {
  const text = str(values[name]);
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^[0-9]+$/.test(text) || n < min || n > max) throw new PdpError('invalid_request', `--${name} must be an integer from ${min} to ${max}`);
  return n;
}

function noteOf(values: Values): { note?: string } {
  const note = str(values['note']);
  if (note === undefined) return {};
  if (note.length > 1000) throw new PdpError('invalid_request', '--note must be at most 1000 characters');
  return { note };
}

const on = (r: AccessRequestV1): string => (r.resource === null ? '' : ` on ${r.resource.type} ${r.resource.id}`);

function secondsBetween(from: string | null, to: string | null): number {
  return from === null || to === null ? 0 : Math.round((Date.parse(to) - Date.parse(from)) / 1000);
}

/** 3600 → `1h`, 5400 → `1h30m`, 90 → `1m30s`. */
export function durationText(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return [d ? `${d}d` : '', h ? `${h}h` : '', m ? `${m}m` : '', s ? `${s}s` : ''].join('');
}

/** `2026-01-05T14:03:07.123Z` → `2026-01-05 14:03:07Z`: compact and still UTC. */
const time = (iso: string | null): string => (iso === null ? '-' : iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z'));

/** What the status column shows: an approval says whether its elevation still runs. */
function statusText(r: AccessRequestV1): string {
  if (r.status !== 'approved') return r.status;
  return r.ended_at === null ? 'approved' : `approved, ended (${r.ended_reason ?? '?'})`;
}

function listTable(items: AccessRequestV1[], status: AccessRequestStatus | undefined): string {
  if (items.length === 0) return `no ${status === undefined ? '' : `${status} `}access requests\n`;
  const head = ['ID', 'STATUS', 'AGENT', 'TASK', 'INTEGRATION', 'SCOPES', 'RECORD', 'APPROVERS', 'FOR', 'CREATED', 'UNTIL'];
  const rows = items.map((r) => [
    r.id,
    statusText(r),
    r.agent_id,
    r.task_id,
    r.integration,
    r.scopes.join(','),
    r.resource === null ? '-' : `${r.resource.type}:${r.resource.id}`,
    r.approver_groups.join(','),
    durationText(r.status === 'approved' ? secondsBetween(r.decided_at, r.approved_until) : r.duration_seconds),
    time(r.created_at),
    // Pending: until when it can be answered; approved: the end of its window; otherwise when it was decided.
    time(r.status === 'pending' ? r.expires_at : r.status === 'approved' ? r.approved_until : r.status === 'expired' ? r.expires_at : r.decided_at),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  const count = items.length === 1 ? '1 access request' : `${items.length} access requests`;
  return `${[line(head), ...rows.map(line)].join('\n')}\n${count}\n`;
}

function details(r: AccessRequestV1): string {
  const rows: Array<[string, string]> = [
    ['id', r.id],
    ['status', statusText(r)],
    ['agent', r.agent_id],
    ['task', r.task_id],
    ['integration', r.integration],
    ['scopes', r.scopes.join(', ')],
    ['record', r.resource === null ? '(none)' : `${r.resource.type} ${r.resource.id}`],
    ['reason', r.reason ?? '(none given)'],
    ['duration', `${durationText(r.duration_seconds)} asked (policy max ${durationText(r.max_duration_seconds)})`],
    ['approvers', r.approver_groups.join(', ')],
    ['requested by', r.requested_by],
    ['denial', `${r.decision_id} (its audit chain: GET /v1/audit/decisions/${r.decision_id})`],
    ['policy', r.policy_revision],
    ['created', time(r.created_at)],
    ['pending until', time(r.expires_at)],
  ];
  if (r.decided_at !== null) rows.push(['decided', `${time(r.decided_at)} by ${r.decided_by ?? '?'}`]);
  if (r.note !== null) rows.push(['note', r.note]);
  if (r.approved_until !== null) rows.push(['approved until', time(r.approved_until)]);
  if (r.ended_at !== null) rows.push(['ended', `${time(r.ended_at)} (${r.ended_reason ?? '?'})`]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return `${rows.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${v}`).join('\n')}\n`;
}
