/**
 * OPA's REST data API (`POST` and `GET /v1/data/{path}`), so an existing OPA client (an SDK, an Envoy or gateway
 * plugin configured with OPA's URL) evaluates the entrypoints of our bundle unchanged: same paths, same bodies, same
 * `{ result, decision_id }` answers, `{ decision_id }` alone when the rule is undefined (OPA's `{}`; OPA adds the id
 * when decision logging is on, and ours always is: every answer is an audit event first).
 *
 * Role `pep`: a data-API client is a policy enforcement point asking for a policy's answer, and it authenticates as
 * OPA clients send a token (`Authorization: Bearer <API key>`, OPA's `--authentication=token`). Only entrypoints are
 * exposed: never the whole data document (`/v1/data`), never `data.policies` or another document that is not an
 * entrypoint of the bundle (404 `entrypoint_not_found`). `agentpdp/decision` is decided as a decision request
 * (`pdp/data-api.ts`). What is refused and what is ignored of OPA's API: docs/pep-integration.md, "OPA's data API".
 */
import type { DataApi, DataAnswer } from '../../pdp/data-api.js';
import { isPdpError, PdpError } from '../../errors/pdp-error.js';
import { ENTRYPOINT_PATTERN } from '../../wire/entrypoint.js';
import { MISSING_INPUT_WARNING, opaDataResponseSchema, parseOpaDataRequest, type OpaDataRequestV1, type OpaDataResponseV1 } from '../../wire/opa-data-v1.js';
import { errorResponse, errors } from '../openapi.js';
import { route, type PublicContext, type RequestContext, type Route } from '../route.js';

const ENTRYPOINT = new RegExp(ENTRYPOINT_PATTERN);

/**
 * OPA's query options that ask for something we do not produce (explanations, metrics, profiling, provenance) or
 * for evaluation semantics we do not promise (strict builtin errors): set, they are refused rather than silently
 * dropped, since the client is waiting for them. `pretty` only formats, so it is ignored; so is any other
 * parameter (OPA ignores unknown ones).
 */
const REFUSED_OPTIONS = ['explain', 'metrics', 'instrument', 'provenance', 'strict-builtin-errors'] as const;

const badPath = (message: string): PdpError =>
  new PdpError('invalid_request', `the data path is not an entrypoint: ${message}`, { details: [{ path: 'path', message }] });

/**
 * The entrypoint a raw `{path}` tail names (`authzen/certification/decision`). Each segment is checked before it is
 * decoded (empty, `.`, `..`) and after (an encoded `/` or `.`/`..`), then the whole against the entrypoint grammar
 * (`wire/entrypoint.ts`): the path can only name an entrypoint, never walk anywhere.
 */
export function entrypointOf(raw: string): string {
  if (raw === '') throw badPath('is empty: the whole data document is not exposed, name an entrypoint');
  const decoded = raw.split('/').map((segment) => {
    if (segment === '') throw badPath('has an empty segment');
    let text: string;
    try {
      text = decodeURIComponent(segment);
    } catch {
      throw badPath('has a malformed percent-encoding');
    }
    if (text.includes('/') || text.includes('\\')) throw badPath('has an encoded slash');
    if (text === '.' || text === '..') throw badPath('has a dot segment');
    return text;
  });
  const path = decoded.join('/');
  if (!ENTRYPOINT.test(path)) throw badPath('must be slash-separated Rego identifiers (letters, digits, _), at most 32 of them');
  return path;
}

/** Refuses the OPA query options we cannot honour, read as OPA reads them (a bare `?metrics` is true). */
function refuseOptions(query: PublicContext['query']): void {
  for (const name of REFUSED_OPTIONS) {
    const value = query[name];
    if (value === undefined) continue;
    const values = Array.isArray(value) ? value : [value];
    const set = name === 'explain' ? values.some((v) => v !== 'off') : values.some((v) => v === '' || v.toLowerCase() === 'true');
    if (set) {
      throw new PdpError('invalid_request', `OPA's ${name} option is not supported`, { details: [{ path: `query.${name}`, message: 'not supported by agent-pdp' }] });
    }
  }
}

/** GET's `input` query parameter: one JSON value, URL-encoded (OPA's form). Absent: no input. */
function queryInput(query: PublicContext['query']): unknown {
  const value = query['input'];
  if (value === undefined) return undefined;
  const invalid = (message: string): PdpError => new PdpError('invalid_request', `the input query parameter ${message}`, { details: [{ path: 'query.input', message }] });
  if (Array.isArray(value)) throw invalid('is given more than once');
  let input: unknown;
  try {
    input = JSON.parse(value) as unknown;
  } catch {
    throw invalid('is not JSON');
  }
  try {
    return parseOpaDataRequest({ input }).input;
  } catch (err) {
    // Nesting too deep, or not text (a lone surrogate): said of the parameter, as it was sent.
    const why = isPdpError(err) ? err.details[0]?.message : undefined;
    throw invalid(why ?? 'is not valid');
  }
}

const answer = (a: DataAnswer, warning: boolean): { status: 200; json: OpaDataResponseV1 } => ({
  status: 200,
  json: { decision_id: a.decision_id, ...('result' in a ? { result: a.result } : {}), ...(warning ? { warning: MISSING_INPUT_WARNING } : {}) },
});

const pathParameter = {
  name: 'path',
  in: 'path',
  required: true,
  // OpenAPI has no multi-segment path parameter: this one takes the rest of the path (the router's `tail`).
  'x-multi-segment': true,
  schema: { type: 'string', pattern: ENTRYPOINT_PATTERN },
  description:
    'An entrypoint of the policy bundle, slash-separated as OPA spells data paths (`authzen/certification/decision`), ' +
    'several segments. `..`, `.`, empty segments, encoded slashes (`%2F`) and anything else outside the grammar are 400 invalid_request (details: `path`), ' +
    'and so is no path at all (`/v1/data`, `/v1/data/`: the whole data document is not exposed).',
};

const optionParameters = [
  ...REFUSED_OPTIONS.map((name) => ({
    name,
    in: 'query',
    required: false,
    schema: { type: 'string' },
    description: `OPA's ${name} option: refused (400 invalid_request, details \`query.${name}\`) when set; agent-pdp does not produce it`,
  })),
  { name: 'pretty', in: 'query', required: false, schema: { type: 'string' }, description: 'ignored: answers are compact JSON' },
];

const traceparent = { name: 'traceparent', in: 'header', required: false, schema: { type: 'string' }, description: 'W3C Trace Context; kept with the audit event' };

const DESCRIPTION =
  "OPA's v1 data API over the bundle in force. The answer is OPA's: `result` is the rule's value, absent when the rule is " +
  'undefined for the input; `decision_id` is the id of the audit event written before the answer (an `evaluation` ' +
  'event). `agentpdp/decision` is different: its input must be a decision request (DecisionRequestV1, as POST /v1/decide ' +
  'takes; faults named under `input.`), decided exactly as POST /v1/decide decides it (the caller must speak for the ' +
  'agent, a registered task\'s context comes from its registration and never from the input, inline context only from a ' +
  'caller allowed to assert it), recorded as a `decision` event, and `result` is the DecisionResponseV1 (its ' +
  '`decision_id` redeemable for a token), not the rule\'s raw value.';

const responses = {
  '200': { description: 'evaluated (defined or undefined)', content: { 'application/json': { schema: opaDataResponseSchema } } },
  '404': errorResponse(404, 'the bundle has no such entrypoint (code entrypoint_not_found)'),
  ...errors(503),
};

/** OPA's POST / body: the input itself, any JSON object or array (an empty body is `{}`, as OPA reads it). */
const parseDefaultInput = (body: unknown): unknown => {
  if (body === undefined) throw new PdpError('invalid_request', 'a JSON body is required: the input', { details: [{ path: '(body)', message: 'missing' }] });
  return parseOpaDataRequest({ input: body }).input;
};

/**
 * POST and GET /v1/data/{path} (role pep; `/v1/data` itself, the whole data document, reaches them with an empty path
 * and is refused), and OPA's default decision (POST /).
 */
export function opaDataRoutes(data: DataApi): Route[] {
  const evaluate = async (ctx: RequestContext<unknown>, input: unknown): Promise<DataAnswer> => {
    const path = entrypointOf(ctx.params['path'] ?? '');
    refuseOptions(ctx.query);
    const a = await data.evaluate(ctx.caller, path, input, ctx.traceId, (agentId) => (ctx.log.agentId = agentId));
    ctx.log.decisionId = a.decision_id;
    return a;
  };
  return [
    route<OpaDataRequestV1>({
      method: 'POST',
      path: '/v1/data/{path}',
      tail: true,
      roles: ['pep'],
      errors: 'opa',
      body: { media: ['json'], parse: parseOpaDataRequest },
      async handle(ctx) {
        const given = Object.hasOwn(ctx.body, 'input');
        return answer(await evaluate(ctx, given ? ctx.body.input : undefined), !given);
      },
      openapi: {
        operationId: 'opaDataPost',
        summary: "Evaluate an entrypoint with an input (OPA's data API)",
        description: DESCRIPTION,
        parameters: [pathParameter, ...optionParameters, traceparent],
        requestBody: {
          required: true,
          description: '`{ "input": <any JSON> }`; other members are ignored, as OPA ignores them. Without `input` the answer carries OPA\'s `api_usage_warning`.',
          content: { 'application/json': { schema: { type: 'object', properties: { input: { description: 'the input document' } } } } },
        },
        responses,
      },
    }),
    route({
      method: 'GET',
      path: '/v1/data/{path}',
      tail: true,
      roles: ['pep'],
      errors: 'opa',
      async handle(ctx) {
        return answer(await evaluate(ctx, queryInput(ctx.query)), false);
      },
      openapi: {
        operationId: 'opaDataGet',
        summary: "Evaluate an entrypoint (OPA's data API, GET form)",
        description: DESCRIPTION,
        parameters: [
          pathParameter,
          { name: 'input', in: 'query', required: false, schema: { type: 'string' }, description: 'the input document as URL-encoded JSON (OPA\'s GET form); 400 (details `query.input`) when it is not JSON' },
          ...optionParameters,
          traceparent,
        ],
        responses,
      },
    }),
    route<unknown>({
      method: 'POST',
      path: '/',
      roles: ['pep'],
      errors: 'opa',
      body: { media: ['json'], parse: parseDefaultInput },
      async handle(ctx) {
        refuseOptions(ctx.query);
        const a = await data.defaultDecision(ctx.caller, ctx.body, ctx.traceId);
        ctx.log.decisionId = a.decision_id;
        return { status: 200, json: a.result };
      },
      openapi: {
        operationId: 'opaDefaultDecision',
        summary: "OPA's default decision: system/main with the body as input",
        description:
          "OPA's `POST /`: the body is the input itself and the answer is the value of `system/main` alone (no `result` " +
          "wrapper, no `decision_id` in the body; the audit event has one). `system/main` is OPA's default " +
          '`default_decision`, and the only one here (not configurable). A bundle without that entrypoint: 404 ' +
          'entrypoint_not_found; undefined for the input: 404 not_found (OPA\'s undefined_document).',
        parameters: [...optionParameters, traceparent],
        requestBody: { required: true, content: { 'application/json': { schema: { type: ['object', 'array'], description: 'the input document' } } } },
        responses: {
          '200': { description: 'the value of system/main', content: { 'application/json': { schema: {} } } },
          '404': errorResponse(404, 'no system/main entrypoint (entrypoint_not_found), or it is undefined for the input (not_found)'),
          ...errors(503),
        },
      },
    }),
  ];
}
