/** Builders for access requests on a real store: a denial to lift, a submission for it, events of a type. */
import type { AuditEventType, AuditEventV1 } from '../../src/audit/index.js';
import { SqliteStore } from '../../src/store/index.js';
import type { CreateAccessRequestInput, Store } from '../../src/store/index.js';
import { ENGINE, at, decision, task, tempStore } from './store-fixtures.js';

export const PEP = 'support-middleware';
export const APPROVER = 'oncall-1';

/** A real store, on a file or in memory (SQLite) or in a schema of its own (PostgreSQL), and how to dispose of it. */
export interface AnyStore {
  store: Store;
  cleanup(): Promise<void>;
}

export const STORE_KINDS: ReadonlyArray<{ kind: string; open: () => Promise<AnyStore> }> =
  ENGINE === 'postgres'
    ? ([{ kind: 'postgres', open: (): Promise<AnyStore> => tempStore() }] as const)
    : ([
        { kind: 'file', open: (): Promise<AnyStore> => tempStore() },
        {
          kind: ':memory:',
          open: async (): Promise<AnyStore> => {
            const store = SqliteStore.open(':memory:');
            return { store, cleanup: () => store.close() };
          },
        },
      ] as const);

/** Registers task `taskId` (if needed) and records a denial `id` for it, made for PEP. */
export async function denial(store: Store, id: string, taskId = 't-1'): Promise<void> {
  if ((await store.getTask(taskId)) === undefined) await store.registerTask(task(taskId, { expires_at: at(3600) }));
  await store.recordDecision(decision(id, { outcome: 'deny', task_id: taskId }));
}

/** A submission for denial `denialId`, pending until at(600), with one delivery to one webhook. */
export function ask(id: string, denialId: string, overrides: Partial<CreateAccessRequestInput> = {}): CreateAccessRequestInput {
  return {
    id,
    decision_id: denialId,
    requested_by: PEP,
    agent_id: 'support-resolver',
    task_id: 't-1',
    integration: 'crm',
    resource: { type: 'customer', id: '1234' },
    scopes: ['tickets:delete'],
    reason: 'customer asked for erasure',
    duration_seconds: 900,
    max_duration_seconds: 3600,
    approver_groups: ['platform-oncall'],
    policy_revision: 'rev-1',
    expires_at: at(600),
    idempotency_key: `key-${id}`,
    request_hash: `hash-${id}`,
    trace_id: null,
    deliveries: [{ id: `dl-${id}`, destination: 'slack-ops', approver_group: 'platform-oncall' }],
    now: at(10),
    ...overrides,
  };
}

export async function events(store: Store, ...types: AuditEventType[]): Promise<AuditEventV1[]> {
  const out: AuditEventV1[] = [];
  for await (const e of store.iterateEvents(types.length === 0 ? {} : { types })) out.push(e);
  return out;
}
