import type { AccessRequestService } from '../../pdp/access-requests.js';
import { isPdpError, PdpError } from '../../errors/pdp-error.js';
import {
  ACCESS_REQUEST_STATUSES,
  IDEMPOTENCY_KEY_PATTERN,
  type AccessRequestApproveV1,
  type AccessRequestDenyV1,
  type AccessRequestStatus,
  type AccessRequestSubmissionV1,
} from '../../wire/access-request-v1.js';
import {
  parseAccessRequestApprove,
  parseAccessRequestDeny,
  parseAccessRequestSubmission,
  parseReviewForm,
  type ReviewFormV1,
} from '../../wire/request-parsers.js';
import { errors, json } from '../openapi.js';
import type { AuthorizationRefusal } from '../request-pipeline.js';
import { optionalJsonBody, publicRoute, route, type PublicContext, type Route } from '../route.js';
import { HTML, REVIEW_PAGE_HEADERS, resultPage, reviewPage } from './review-page.js';

/** Checks an approval link's token for a request: its group, or approval_link_invalid / approval_link_expired. */
export type LinkVerifier = (token: string, requestId: string, now: Date) => { group: string };

/**
 * Reports an authorisation refusal the approval page answered as a page (the pipeline reports only what is thrown
 * through it): the same `access.refused` event as the API's 403 (wired to the pipeline's `onRefusal` by main.ts).
 */
export type RefusalReporter = (refusal: AuthorizationRefusal) => void;


const idParameter = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const idempotencyKey = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  schema: { type: 'string', pattern: IDEMPOTENCY_KEY_PATTERN.source },
  description: 'the same key with the same body answers the request made the first time; with another body, 409 duplicate_request',
};
const htmlContent = { 'text/html': { schema: { type: 'string' } } };

/**
 * Break-glass escalation (docs/escalation.md): the PEP asks for access a denial said can be requested, an approver
 * answers (API or the notification's approval page), the PEP polls and decides again.
 */
export function accessRequestRoutes(service: AccessRequestService, verifyLink: LinkVerifier, now: () => Date): Route[] {
  return [
    route<AccessRequestSubmissionV1>({
      method: 'POST',
      path: '/v1/access-requests',
      roles: ['pep'],
      body: { media: ['json'], parse: parseAccessRequestSubmission },
      async handle({ caller, body, headers, traceId, log }) {
        log.decisionId = body.decision_id;
        const key = headerValue(headers['idempotency-key']);
        if (key !== null && !IDEMPOTENCY_KEY_PATTERN.test(key)) {
          throw new PdpError('invalid_request', 'Idempotency-Key must be 1 to 255 printable ASCII characters', {
            details: [{ path: 'Idempotency-Key', message: 'must be 1 to 255 printable ASCII characters' }],
          });
        }
        const { request } = await service.submit(caller, body, key, traceId);
        return { status: 202, json: request, headers: { location: request.status_endpoint } };
      },
      openapi: {
        operationId: 'submitAccessRequest',
        summary: 'Ask an approver to lift a requestable denial',
        description:
          'For a denial whose answer holds `access_request` (reason `approval_required`), by the PEP it was made for, before `access_request.expires_at`. The approvers are notified; poll `status_endpoint`, then decide again.',
        parameters: [idempotencyKey],
        requestBody: { required: true, content: json('AccessRequestSubmissionV1') },
        responses: {
          '202': { description: 'pending (or, replayed with the same Idempotency-Key, the request made the first time)', content: json('AccessRequestV1') },
          ...errors(404, 409, 503),
        },
      },
    }),
    route({
      method: 'GET',
      path: '/v1/access-requests',
      roles: ['approver', 'auditor', 'admin'],
      async handle({ caller, query }) {
        return { status: 200, json: await service.list(caller, listQuery(query)) };
      },
      openapi: {
        operationId: 'listAccessRequests',
        summary: "The approver's inbox (its groups' requests), or every request for an auditor or admin",
        parameters: [
          { name: 'status', in: 'query', required: false, schema: { enum: [...ACCESS_REQUEST_STATUSES] } },
          { name: 'after', in: 'query', required: false, schema: { type: 'string' }, description: '`next_after` of the previous page' },
          { name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
        ],
        responses: { '200': { description: 'oldest first', content: json('AccessRequestListV1') }, ...errors(400, 503) },
      },
    }),
    route({
      method: 'GET',
      path: '/v1/access-requests/{id}',
      roles: ['pep', 'approver', 'auditor', 'admin'],
      async handle({ caller, params }) {
        return { status: 200, json: await service.get(caller, params['id'] ?? '') };
      },
      openapi: {
        operationId: 'getAccessRequest',
        summary: "An access request's status (the PEP's poll)",
        description: 'A PEP sees the requests it made, an approver those of its groups; any other id is 404.',
        parameters: [idParameter],
        responses: { '200': { description: 'the request', content: json('AccessRequestV1') }, ...errors(404, 503) },
      },
    }),
    route<AccessRequestApproveV1>({
      method: 'POST',
      path: '/v1/access-requests/{id}/approve',
      roles: ['approver'],
      body: optionalJsonBody(parseAccessRequestApprove),
      async handle({ caller, params, body, traceId, log }) {
        // The denial's id names the refusal's audit event (self-approval, another group) and the access log line.
        log.decisionId = await service.denialOf(params['id'] ?? '');
        return { status: 200, json: await service.approve(caller, params['id'] ?? '', body, traceId) };
      },
      openapi: {
        operationId: 'approveAccessRequest',
        summary: 'Approve a pending request: an elevation window for exactly its agent, task, record and scopes',
        description:
          'By an approver of one of its groups that did not ask for it (403 self_approval, forbidden_approver_group). `duration_seconds` defaults to the requested one and may not exceed the policy\'s max_duration. 409 when it is no longer pending or has expired.',
        parameters: [idParameter],
        requestBody: { required: false, content: json('AccessRequestApproveV1') },
        responses: { '200': { description: 'approved', content: json('AccessRequestV1') }, ...errors(404, 409, 503) },
      },
    }),
    route<AccessRequestDenyV1>({
      method: 'POST',
      path: '/v1/access-requests/{id}/deny',
      roles: ['approver'],
      body: optionalJsonBody(parseAccessRequestDeny),
      async handle({ caller, params, body, traceId, log }) {
        log.decisionId = await service.denialOf(params['id'] ?? '');
        return { status: 200, json: await service.deny(caller, params['id'] ?? '', body, traceId) };
      },
      openapi: {
        operationId: 'denyAccessRequest',
        summary: 'Deny a pending request',
        parameters: [idParameter],
        requestBody: { required: false, content: json('AccessRequestDenyV1') },
        responses: { '200': { description: 'denied', content: json('AccessRequestV1') }, ...errors(404, 409, 503) },
      },
    }),
    publicRoute({
      method: 'GET',
      path: '/v1/access-requests/{id}/review',
      async handle(ctx) {
        return htmlReply(async () => {
          const id = ctx.params['id'] ?? '';
          const token = firstOf(ctx.query['t']);
          const { group } = verifyLink(token, id, now());
          const request = await service.forLink(id);
          return { status: 200, html: reviewPage(request, token, group) };
        });
      },
      openapi: {
        operationId: 'reviewAccessRequest',
        summary: "The approval page a notification links to (changes nothing; its form's POST decides)",
        description:
          'Needs the link token `t` from the notification: 403 approval_link_invalid for a tampered or foreign one, 410 approval_link_expired. Shows the request and a form asking for the approver\'s API key.',
        parameters: [idParameter, { name: 't', in: 'query', required: true, schema: { type: 'string' } }],
        responses: {
          '200': { description: 'the page', content: htmlContent },
          '403': { description: 'the link is not valid for this request', content: htmlContent },
          '404': { description: 'no such request', content: htmlContent },
          '410': { description: 'the link expired', content: htmlContent },
        },
      },
    }),
    route<ReviewFormV1>({
      method: 'POST',
      path: '/v1/access-requests/{id}/review',
      roles: ['approver'],
      formKey: true,
      // An approver who mistypes the key, or posts with a pep key, sees a page like every other outcome of the form.
      errorPage: (_status, code, message) => ({ text: resultPage(`Not done: ${code}`, message), contentType: HTML, headers: { ...REVIEW_PAGE_HEADERS } }),
      body: { media: ['form'], parse: parseReviewForm },
      async handle({ caller, params, body, traceId, log }) {
        const id = params['id'] ?? '';
        // The denial's id: a refusal here (audited by the pipeline, shown as the page by errorPage) joins its chain.
        log.decisionId = await service.denialOf(id);
        verifyLink(body.t, id, now());
        if (body.action === 'approve') {
          const approved = await service.approve(caller, id, body.duration_seconds === undefined ? { ...note(body) } : { duration_seconds: body.duration_seconds, ...note(body) }, traceId);
          return page(200, resultPage('Approved', `Approved until ${approved.approved_until ?? ''}. The agent may now decide again for this task, record and these scopes.`));
        }
        await service.deny(caller, id, note(body), traceId);
        return page(200, resultPage('Denied', 'Denied. The agent stays within its policy.'));
      },
      openapi: {
        operationId: 'answerAccessRequestFromPage',
        summary: "The approval page's form: approve or deny with the approver's API key",
        description:
          'A form post (`application/x-www-form-urlencoded`) with the link token `t`, `api_key` (an approver\'s key; no `Authorization` header), `action` (`approve` | `deny`), optional `duration_seconds` and `note`. The same checks as the API: role approver, its group, never its own request, the cap, still pending.',
        parameters: [idParameter],
        requestBody: {
          required: true,
          content: {
            'application/x-www-form-urlencoded': {
              schema: {
                type: 'object',
                required: ['t', 'api_key', 'action'],
                properties: {
                  t: { type: 'string' },
                  api_key: { type: 'string', format: 'password' },
                  action: { enum: ['approve', 'deny'] },
                  duration_seconds: { type: 'string', pattern: '^[1-9][0-9]{0,5}$' },
                  note: { type: 'string', maxLength: 1000 },
                },
              },
            },
          },
        },
        responses: {
          '200': { description: 'done', content: htmlContent },
          '400': { description: 'a malformed form, or a duration above the cap', content: htmlContent },
          '401': { description: 'no approver key in the form, or an unknown one', content: htmlContent },
          '403': { description: 'link invalid, self-approval, another group, or a key without role approver', content: htmlContent },
          '404': { description: 'no such request', content: htmlContent },
          '409': { description: 'no longer pending, or expired', content: htmlContent },
          '410': { description: 'the link expired', content: htmlContent },
        },
      },
    }),
  ];
}

function page(status: number, html: string): { status: number; text: string; contentType: string; headers: Record<string, string> } {
  return { status, text: html, contentType: HTML, headers: { ...REVIEW_PAGE_HEADERS } };
}

/**
 * The public approval page (GET: no caller, so no errorPage of the pipeline's): its refusals (a bad or expired link,
 * no such request) are pages naming their code, with the error's status.
 */
async function htmlReply(render: () => Promise<{ status: number; html: string }>): Promise<{ status: number; text: string; contentType: string; headers: Record<string, string> }> {
  try {
    const { status, html } = await render();
    return page(status, html);
  } catch (err) {
    if (!isPdpError(err) || err.status >= 500) throw err;
    return page(err.status, resultPage(`Not done: ${err.code}`, err.message));
  }
}

function note(body: ReviewFormV1): { note?: string } {
  return body.note === undefined ? {} : { note: body.note };
}

function headerValue(value: string | string[] | undefined): string | null {
  if (value === undefined) return null;
  if (Array.isArray(value)) {
    throw new PdpError('invalid_request', 'one Idempotency-Key header only', { details: [{ path: 'Idempotency-Key', message: 'sent more than once' }] });
  }
  return value;
}

function firstOf(value: string | string[] | undefined): string {
  return (Array.isArray(value) ? value[0] : value) ?? '';
}

function listQuery(query: PublicContext['query']): { status?: AccessRequestStatus; after?: string; limit?: number } {
  const single = (name: string): string | undefined => {
    const v = query[name];
    if (Array.isArray(v)) throw new PdpError('invalid_request', `${name} given twice`, { details: [{ path: name, message: 'given more than once' }] });
    return v;
  };
  const out: { status?: AccessRequestStatus; after?: string; limit?: number } = {};
  const status = single('status');
  if (status !== undefined) {
    if (!(ACCESS_REQUEST_STATUSES as readonly string[]).includes(status)) {
      throw new PdpError('invalid_request', `status must be one of ${ACCESS_REQUEST_STATUSES.join(', ')}`, { details: [{ path: 'status', message: 'unknown status' }] });
    }
    out.status = status as AccessRequestStatus;
  }
  const after = single('after');
  if (after !== undefined) out.after = after;
  const limit = single('limit');
  if (limit !== undefined) {
    if (!/^[1-9][0-9]{0,2}$/.test(limit) || Number(limit) > 200) {
      throw new PdpError('invalid_request', 'limit must be an integer from 1 to 200', { details: [{ path: 'limit', message: 'must be an integer from 1 to 200' }] });
    }
    out.limit = Number(limit);
  }
  return out;
}
