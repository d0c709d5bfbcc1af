import { createHash, randomUUID } from 'node:crypto';
import type { CallerConfig, EscalationConfig } from '../config/config-types.js';
import { PdpError } from '../errors/pdp-error.js';
import type { AccessRequestRecord, Store, TaskRecord } from '../store/index.js';
import type {
  AccessRequestApproveV1,
  AccessRequestDenyV1,
  AccessRequestListV1,
  AccessRequestStatus,
  AccessRequestSubmissionV1,
  AccessRequestV1,
} from '../wire/access-request-v1.js';
import { hasRole } from './caller-agents.js';
import type { EscalationGrantSource } from './decider.js';

export interface AccessRequestServiceOptions {
  store: Pick<
    Store,
    'getDecision' | 'getTask' | 'createAccessRequest' | 'getAccessRequest' | 'getAccessRequestByKey' | 'listAccessRequests' | 'decideAccessRequest' | 'sweepAccessRequests'
  >;
  escalation: Pick<EscalationConfig, 'public_url' | 'pending_ttl_seconds' | 'webhooks'>;
  /** Called after a request and its notifications committed (the outbox worker delivers them at once). */
  onSubmitted?: () => void;
  /** Told of each event once committed (`Metrics` counts them). */
  observer?: { accessRequestEvent(event: AccessRequestEvent, count?: number): void };
  now?: () => Date;
  newId?: () => string;
}

export type AccessRequestEvent = 'submitted' | 'approved' | 'denied' | 'expired' | 'elevation_ended';

export interface Submitted {
  request: AccessRequestV1;
  /** False when an `Idempotency-Key` replay returned the request made before. */
  created: boolean;
}

/**
 * Break-glass escalation: a requestable denial → an access request → an approver's verdict. The service checks who
 * may do what (the PEP the denial was made for submits; an approver of one of the request's groups, never the one
 * who asked, decides); the store makes each step atomic and writes its audit event. An approval changes nothing by
 * itself: the PEP decides again, and the policy in force decides with the elevation as input (`Decider`).
 */
export class AccessRequestService {
  readonly #o: AccessRequestServiceOptions;

  constructor(options: AccessRequestServiceOptions) {
    this.#o = options;
  }

  async submit(caller: CallerConfig, body: AccessRequestSubmissionV1, idempotencyKey: string | null, traceId: string | null): Promise<Submitted> {
    const now = this.#now();
    // A replay answers what the first submission got, whatever has changed since (the denial's window, the task):
    // the key is looked up before anything else. The store checks it again inside its transaction.
    if (idempotencyKey !== null) {
      const prior = await this.#o.store.getAccessRequestByKey(caller.id, idempotencyKey);
      if (prior !== undefined) {
        if (prior.request_hash !== requestHash(body)) {
          throw new PdpError('duplicate_request', 'this Idempotency-Key was used with another body', {
            details: [{ path: 'Idempotency-Key', message: 'already used for another submission' }],
          });
        }
        return { request: this.toWire(asSubmitted(prior), false), created: false };
      }
    }
    const decision = await this.#o.store.getDecision(body.decision_id);
    if (decision === undefined) {
      throw new PdpError('decision_not_found', `decision ${body.decision_id} not found`, { details: [{ path: 'decision_id', message: 'no such decision' }] });
    }
    if (decision.caller_id !== caller.id) {
      throw new PdpError('decision_wrong_caller', `decision ${body.decision_id} was made for another caller`, {
        details: [{ path: 'decision_id', message: 'made for another caller' }],
      });
    }
    const grant = (decision.token_grant as EscalationGrantSource | null)?.access_request;
    if (decision.outcome !== 'deny' || grant === undefined) {
      throw new PdpError('not_requestable', `decision ${body.decision_id} is not a denial an approver can lift`, {
        details: [{ path: 'decision_id', message: 'not a requestable denial (its answer carries no access_request hint)' }],
      });
    }
    if (Date.parse(grant.expires_at) <= now.getTime()) {
      throw new PdpError('expired_denial', `access may be requested for decision ${body.decision_id} until ${grant.expires_at} only`, {
        details: [{ path: 'decision_id', message: `the denial's access_request.expires_at (${grant.expires_at}) has passed: decide again` }],
      });
    }
    if (grant.require_reason && (body.reason === undefined || body.reason.trim() === '')) {
      throw new PdpError('invalid_request', 'the policy requires a reason for this access request', {
        details: [{ path: 'reason', message: 'is required by the policy (escalation.require_reason)' }],
      });
    }
    const task = await this.#o.store.getTask(decision.task_id ?? grant.task_id);
    if (task !== undefined && task.status !== 'active') {
      throw new PdpError('task_not_active', `task ${task.id} is ${task.status}: nothing is left to elevate`, {
        details: [{ path: 'decision_id', message: `its task is ${task.status}` }],
      });
    }
    const duration = body.duration_seconds ?? grant.max_duration;
    if (duration > grant.max_duration) {
      throw new PdpError('invalid_request', `duration_seconds exceeds the policy's max_duration of ${grant.max_duration}`, {
        details: [{ path: 'duration_seconds', message: `must be at most ${grant.max_duration}` }],
      });
    }
    const id = this.#o.newId?.() ?? `ar_${randomUUID()}`;
    const groups = [...grant.approvers].sort();
    const { request, created } = await this.#o.store.createAccessRequest({
      id,
      decision_id: decision.decision_id,
      requested_by: caller.id,
      agent_id: decision.agent_id,
      task_id: decision.task_id ?? grant.task_id,
      integration: decision.integration,
      resource: grant.resource,
      scopes: [...grant.scopes],
      reason: body.reason ?? null,
      duration_seconds: duration,
      max_duration_seconds: grant.max_duration,
      approver_groups: groups,
      policy_revision: decision.policy_revision,
      now: now.toISOString(),
      expires_at: new Date(now.getTime() + this.#o.escalation.pending_ttl_seconds * 1000).toISOString(),
      idempotency_key: idempotencyKey,
      request_hash: requestHash(body),
      trace_id: traceId,
      deliveries: deliveriesFor(groups, this.#o.escalation.webhooks),
    });
    if (created) {
      this.#o.observer?.accessRequestEvent('submitted');
      this.#o.onSubmitted?.();
    }
    return { request: created ? this.toWire(request) : this.toWire(asSubmitted(request), false), created };
  }

  /** A PEP reads the requests it made; an approver those of its groups; an auditor or admin any. */
  async get(caller: CallerConfig, id: string): Promise<AccessRequestV1> {
    const record = await this.#o.store.getAccessRequest(id);
    if (record === undefined || !this.#mayRead(caller, record)) {
      // Someone else's request is as absent as a missing one: its id tells the caller nothing.
      throw new PdpError('access_request_not_found', `access request ${id} not found`);
    }
    return this.toWire(record);
  }

  /** The denial a request is bound to (for the access log and a refusal's audit event), or undefined. */
  async denialOf(id: string): Promise<string | undefined> {
    return (await this.#o.store.getAccessRequest(id))?.decision_id;
  }

  /**
   * The request as the approval page shows it to whoever holds a valid link for it (the route checks the link):
   * the facts the notification already carried.
   */
  async forLink(id: string): Promise<AccessRequestV1> {
    const record = await this.#o.store.getAccessRequest(id);
    if (record === undefined) throw new PdpError('access_request_not_found', `access request ${id} not found`);
    return this.toWire(record);
  }

  /** The approver's inbox (its groups only) or, for an auditor or admin, every request. Oldest first. */
  async list(caller: CallerConfig, query: { status?: AccessRequestStatus; after?: string; limit?: number }): Promise<AccessRequestListV1> {
    const everything = hasRole(caller, 'auditor') || hasRole(caller, 'admin');
    const page = await this.#o.store.listAccessRequests({
      ...(query.status === undefined ? {} : { status: query.status, now: this.#now().toISOString() }),
      ...(query.after === undefined ? {} : { after: query.after }),
      limit: query.limit ?? 50,
      ...(everything ? {} : { approver_groups: [...(caller.approver_groups ?? [])] }),
    });
    // A request past its expires_at is expired before the sweeper marks it: the store pages by that (`now`).
    return { items: page.items.map((r) => this.toWire(r)), next_after: page.next_after };
  }

  async approve(caller: CallerConfig, id: string, body: AccessRequestApproveV1, traceId: string | null): Promise<AccessRequestV1> {
    const now = this.#now();
    const { record, task } = await this.#eligible(caller, id);
    if (task !== undefined && task.status !== 'active') {
      throw new PdpError('task_not_active', `task ${task.id} is ${task.status}: approving would elevate nothing`);
    }
    const duration = body.duration_seconds ?? record.duration_seconds;
    if (duration > record.max_duration_seconds) {
      throw new PdpError('invalid_request', `duration_seconds exceeds the policy's max_duration of ${record.max_duration_seconds}`, {
        details: [{ path: 'duration_seconds', message: `must be at most ${record.max_duration_seconds}` }],
      });
    }
    const decided = await this.#o.store.decideAccessRequest({
      id,
      verdict: 'approved',
      by: caller.id,
      at: now.toISOString(),
      note: body.note ?? null,
      approved_until: new Date(now.getTime() + duration * 1000).toISOString(),
      duration_seconds: duration,
      trace_id: traceId,
    });
    this.#o.observer?.accessRequestEvent('approved');
    return this.toWire(decided);
  }

  async deny(caller: CallerConfig, id: string, body: AccessRequestDenyV1, traceId: string | null): Promise<AccessRequestV1> {
    const now = this.#now();
    await this.#eligible(caller, id);
    const decided = await this.#o.store.decideAccessRequest({
      id,
      verdict: 'denied',
      by: caller.id,
      at: now.toISOString(),
      note: body.note ?? null,
      trace_id: traceId,
    });
    this.#o.observer?.accessRequestEvent('denied');
    return this.toWire(decided);
  }

  /** Expires pending requests and ends elevation windows that are over (each an audit event). Returns how many. */
  async sweep(): Promise<{ expired: number; ended: number }> {
    let expired = 0;
    let ended = 0;
    const now = this.#now().toISOString();
    for (;;) {
      const swept = await this.#o.store.sweepAccessRequests({ now, limit: 500 });
      expired += swept.expired.length;
      ended += swept.ended.length;
      this.#o.observer?.accessRequestEvent('expired', swept.expired.length);
      this.#o.observer?.accessRequestEvent('elevation_ended', swept.ended.length);
      if (swept.expired.length + swept.ended.length < 500) return { expired, ended };
    }
  }

  /**
   * The request as the API shows it: its status endpoint and, once approved, the profile's `result`. `live`: a
   * pending request past its expires_at reads as expired (false: the record's own status, e.g. a replay's).
   */
  toWire(r: AccessRequestRecord, live = true): AccessRequestV1 {
    const wire: AccessRequestV1 = {
      id: r.id,
      // Expired as soon as its expires_at passes, whether or not the sweeper has marked it (and written its event).
      status: live && r.status === 'pending' && r.expires_at <= this.#now().toISOString() ? 'expired' : r.status,
      status_endpoint: `${this.#o.escalation.public_url}/v1/access-requests/${encodeURIComponent(r.id)}`,
      expires_at: r.expires_at,
      decision_id: r.decision_id,
      requested_by: r.requested_by,
      agent_id: r.agent_id,
      task_id: r.task_id,
      integration: r.integration,
      resource: r.resource,
      scopes: [...r.scopes],
      reason: r.reason,
      duration_seconds: r.duration_seconds,
      max_duration_seconds: r.max_duration_seconds,
      approver_groups: [...r.approver_groups],
      policy_revision: r.policy_revision,
      created_at: r.created_at,
      decided_at: r.decided_at,
      decided_by: r.decided_by,
      note: r.note,
      approved_until: r.approved_until,
      ended_at: r.ended_at,
      ended_reason: r.ended_reason,
    };
    if (r.status === 'approved' && r.decided_at !== null && r.approved_until !== null) {
      wire.result = { mode: 'reevaluate', approval: { id: r.id, approved_at: r.decided_at, approved_until: r.approved_until } };
    }
    return wire;
  }

  /**
   * The request, if this caller may decide it: an approver of one of its groups who is neither the PEP that asked
   * nor the orchestrator that registered the task (no one approves their own request).
   */
  async #eligible(caller: CallerConfig, id: string): Promise<{ record: AccessRequestRecord; task: TaskRecord | undefined }> {
    const record = await this.#o.store.getAccessRequest(id);
    if (record === undefined) throw new PdpError('access_request_not_found', `access request ${id} not found`);
    if (!hasRole(caller, 'approver')) throw new PdpError('forbidden_role', 'only an approver may decide an access request');
    const task = await this.#o.store.getTask(record.task_id);
    if (caller.id === record.requested_by) {
      throw new PdpError('self_approval', `caller ${caller.id} asked for access request ${id} and may not decide it`);
    }
    if (caller.id === task?.registered_by) {
      throw new PdpError('self_approval', `caller ${caller.id} registered the task of access request ${id} and may not decide it`);
    }
    const groups = caller.approver_groups ?? [];
    if (!record.approver_groups.some((g) => groups.includes(g))) {
      throw new PdpError('forbidden_approver_group', `access request ${id} is for approver groups this caller is not in`);
    }
    return { record, task };
  }

  #mayRead(caller: CallerConfig, record: AccessRequestRecord): boolean {
    if (hasRole(caller, 'auditor') || hasRole(caller, 'admin')) return true;
    if (hasRole(caller, 'approver') && record.approver_groups.some((g) => (caller.approver_groups ?? []).includes(g))) return true;
    return record.requested_by === caller.id;
  }

  #now(): Date {
    return (this.#o.now ?? (() => new Date()))();
  }
}

/** One notification per webhook that serves any of the request's groups (named after the first such group). */
function deliveriesFor(groups: readonly string[], webhooks: EscalationConfig['webhooks']): Array<{ id: string; destination: string; approver_group: string }> {
  const out: Array<{ id: string; destination: string; approver_group: string }> = [];
  for (const w of webhooks) {
    const group = groups.find((g) => w.groups.includes(g));
    if (group !== undefined) out.push({ id: `dl_${randomUUID()}`, destination: w.id, approver_group: group });
  }
  return out;
}

/** What makes two submissions "the same body" for an `Idempotency-Key` replay. */
function requestHash(body: AccessRequestSubmissionV1): string {
  const canonical = JSON.stringify([body.decision_id, body.reason ?? null, body.duration_seconds ?? null]);
  return createHash('sha256').update(canonical).digest('hex');
}

/**
 * A request as its submission answered it (pending, undecided): what a replay of that submission answers again,
 * whatever has happened to the request since (its status endpoint tells that).
 */
function asSubmitted(r: AccessRequestRecord): AccessRequestRecord {
  return { ...r, status: 'pending', decided_at: null, decided_by: null, note: null, approved_until: null, ended_at: null, ended_reason: null };
}
