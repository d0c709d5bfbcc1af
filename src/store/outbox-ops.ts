/**
 * The notification outbox: rows written with their access request (createAccessRequest) or with a notification of
 * the store's own (saveSuggestions' `notify`: the scheduled run's new suggestions), claimed under a lease by the
 * outbox worker (src/notify/), completed as delivered, retried or dead. Delivery is at-least-once: a worker that
 * dies after sending but before completeDelivery commits leaves the row to be sent again once its lease runs out,
 * so receivers dedupe on the delivery id. An access request's outcome is an audit event
 * (access_request.notified / .notification_failed); a suggestion notification's is its row only.
 */
import { accessRequestNotificationFailedEvent, accessRequestNotifiedEvent } from '../audit/index.js';
import { PdpError } from '../errors/pdp-error.js';
import { requireLimit } from './access-request-ops.js';
import { deliveryFromRow } from './rows.js';
import type { AccessRequestRow, DeliveryRow } from './rows.js';
import { SQL, deliveryListSql } from './sql.js';
import { all, get, run } from './sql-program.js';
import type {
  ClaimDeliveriesInput,
  ClaimedDelivery,
  CompleteDeliveryInput,
  DeliveryRecord,
  ListDeliveriesQuery,
  OutboxCounts,
} from './store.js';
import { requireId, requireTime } from './store-context.js';
import type { StoreContext } from './store-context.js';

const STATUSES = new Set(['pending', 'delivered', 'dead']);
/** sql.ts's selectDueDeliveries with the notification column (migration 7). */
const SELECT_DUE = `SELECT id, access_request_id, notification_id, destination, approver_group, attempts FROM outbox
  WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?`;

export async function claimDeliveries(ctx: StoreContext, input: ClaimDeliveriesInput): Promise<ClaimedDelivery[]> {
  requireTime('now', input.now);
  requireTime('lease_until', input.lease_until);
  if (input.lease_until <= input.now) throw new TypeError('lease_until must be after now');
  const limit = requireLimit(input.limit);
  return ctx.write(function* () {
    const rows = yield* all<ClaimedDelivery>(SELECT_DUE, input.now, limit);
    for (const row of rows) yield* run(SQL.leaseDelivery, input.lease_until, row.id);
    return rows;
  });
}

export async function completeDelivery(ctx: StoreContext, input: CompleteDeliveryInput): Promise<DeliveryRecord> {
  requireId('id', input.id);
  requireTime('at', input.at);
  const { outcome } = input;
  if (outcome !== 'delivered' && outcome !== 'retry' && outcome !== 'dead') throw new TypeError(`unknown outcome ${String(outcome)}`);
  const nextAttempt = outcome === 'retry' ? requireTime('next_attempt_at', input.next_attempt_at) : undefined;
  const error = input.error ?? null;
  if (error !== null && typeof error !== 'string') throw new TypeError('error must be a string or null');
  const statusCode = input.status_code ?? null;
  if (statusCode !== null && !Number.isSafeInteger(statusCode)) throw new TypeError('status_code must be an integer or null');
  return ctx.write(function* () {
    const row = yield* get<DeliveryRow>(SQL.selectDelivery, input.id);
    if (row === undefined) throw new TypeError(`delivery ${input.id} does not exist`);
    // Finished by another worker after this one's lease ran out: at-least-once, the first completion stands.
    if (row.status !== 'pending') return deliveryFromRow(row);
    const next: DeliveryRow = {
      ...row,
      status: outcome === 'retry' ? 'pending' : outcome,
      attempts: row.attempts + 1,
      next_attempt_at: nextAttempt ?? row.next_attempt_at,
      last_error: error,
      last_status: statusCode,
      delivered_at: outcome === 'delivered' ? input.at : null,
    };
    yield* run(SQL.completeDelivery, next.status, next.attempts, next.next_attempt_at, next.last_error, next.last_status, next.delivered_at, row.id);
    if (outcome !== 'retry' && row.access_request_id !== null) {
      const request = yield* get<AccessRequestRow>(SQL.selectAccessRequest, row.access_request_id);
      if (request === undefined) throw new PdpError('internal', `access request ${row.access_request_id} of delivery ${row.id} is missing`);
      const ids = { decision_id: request.decision_id, agent_id: request.agent_id, task_id: request.task_id };
      const data = {
        access_request_id: request.id,
        delivery_id: row.id,
        destination: row.destination,
        approver_group: row.approver_group,
        attempts: next.attempts,
      };
      const event =
        outcome === 'delivered'
          ? accessRequestNotifiedEvent(input.at, ids, { ...data, status_code: statusCode })
          : accessRequestNotificationFailedEvent(input.at, ids, { ...data, last_error: error });
      yield* ctx.chain.append(ctx.chain.prepare(event));
    }
    return deliveryFromRow(next);
  });
}

export async function listDeliveries(ctx: StoreContext, query: ListDeliveriesQuery): Promise<DeliveryRecord[]> {
  const limit = requireLimit(query.limit);
  if (query.status !== undefined && !STATUSES.has(query.status)) throw new TypeError(`unknown delivery status ${String(query.status)}`);
  const { sql, params } = deliveryListSql({
    ...(query.status === undefined ? {} : { status: query.status }),
    ...(query.access_request_id === undefined ? {} : { access_request_id: query.access_request_id }),
  });
  return ctx.read(function* () {
    return (yield* all<DeliveryRow>(sql, ...params, limit)).map(deliveryFromRow);
  });
}

export async function outboxCounts(ctx: StoreContext): Promise<OutboxCounts> {
  return ctx.read(function* () {
    const counts: OutboxCounts = { pending: 0, delivered: 0, dead: 0 };
    for (const { status, n } of yield* all<{ status: string; n: number }>(SQL.countDeliveries)) {
      if (STATUSES.has(status)) counts[status as keyof OutboxCounts] = n;
    }
    return counts;
  });
}
