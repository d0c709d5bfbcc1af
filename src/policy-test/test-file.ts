/*
 * One policy test file: YAML → a checked `PolicyTestSuite`, or located errors. Never throws.
 *
 * A case's request is the suite's `defaults` with the case's own `request` fields on top: a field the case gives
 * replaces the default's, `task` field by field (id, type, context each whole), and `resource: null` or
 * `ttl_seconds: null` drops a default. The assembled request must then be a valid `DecisionRequestV1`, checked by
 * the wire's own validator, so a test can only ask what `POST /v1/decide` would accept.
 */
import { isPdpError, type ErrorDetail } from '../errors/pdp-error.js';
import { dedupeDetails as dedupe } from '../policy/error-wording.js';
import { formatPath } from '../policy/field-path.js';
import type { PathSegment } from '../policy/policy-types.js';
import { parseYamlSource, type YamlSource } from '../policy/yaml-source.js';
import type { ContextValue, DecisionRequestV1 } from '../wire/decision-v1.js';
import type { DeniedScope, Outcome } from '../wire/evaluation-v1.js';
import { parseDecisionRequest } from '../wire/request-parsers.js';
import { checkTestFileShape } from './test-file-schema.js';

/** The caller id a case is evaluated for unless it names one (`input.caller_id`, which extension rules may read). */
export const DEFAULT_TEST_CALLER = 'policy-test';
/** The task id a case is evaluated with unless it names one. */
export const DEFAULT_TEST_TASK_ID = 'policy-test';

/** Map entries and list items one test file may hold (the YAML reader's bound; test files are not served). */
const MAX_ENTRIES = 1_000_000;

/** What a case says the policy answers. Every field given is compared exactly (lists as sets); the others are not checked. */
export interface Expectation {
  outcome?: Outcome;
  granted_scopes?: string[];
  denied_scopes?: DeniedScope[];
  /** Reason codes; messages are for people and are not compared. */
  reasons?: string[];
  token_ttl_seconds?: number;
}

export interface PolicyTestCase {
  name: string;
  description?: string;
  /** Line of the case in its file. */
  line: number;
  request: DecisionRequestV1;
  callerId: string;
  /** The decision's time (`input.time`), when the case or its defaults give one; else the run's. */
  now?: Date;
  expect: Expectation;
}

export interface PolicyTestSuite {
  name: string;
  description?: string;
  /** The file, as the caller named it (relative to its base). */
  file: string;
  /** Line of the `suite` key. */
  line: number;
  cases: PolicyTestCase[];
}

export interface ParsedTestFile {
  suite?: PolicyTestSuite;
  errors: ErrorDetail[];
}

interface RequestFields {
  agent_id?: string;
  caller_id?: string;
  now?: string;
  task?: { id?: string; type?: string | null; context?: Record<string, ContextValue> };
  integration?: string;
  scopes?: string[];
  resource?: { type: string; id: string } | null;
  ttl_seconds?: number | null;
}

interface TestFileBody {
  suite: string;
  description?: string;
  defaults?: RequestFields;
  cases: Array<{ name: string; description?: string; request?: RequestFields; expect: Expectation }>;
}

/** Parses and checks one test file; `file` names it in every error. */
export function parseTestFile(text: string, file: string): ParsedTestFile {
  const source = parseYamlSource(text, file, MAX_ENTRIES);
  if (source.errors.length > 0) return { errors: source.errors };
  const at = (path: readonly PathSegment[], message: string, key = false): ErrorDetail => ({ file, ...source.locate(path, key), path: formatPath(path), message });
  if (source.value === null || source.value === undefined) {
    return { errors: [{ file, line: 1, column: 1, path: '', message: 'the file is empty; expected a test suite (suite, cases)' }] };
  }
  const issues = checkTestFileShape(source.value);
  if (issues.length > 0) return { errors: dedupe(issues.map((i) => at(i.path, i.message, i.key))) };
  const body = source.value as TestFileBody;
  const errors: ErrorDetail[] = [];
  const seen = new Map<string, number>();
  const cases: PolicyTestCase[] = [];
  body.cases.forEach((c, i) => {
    const first = seen.get(c.name);
    if (first !== undefined) errors.push(at(['cases', i, 'name'], `duplicate case name (same as cases[${first}])`));
    else seen.set(c.name, i);
    const built = buildCase(body.defaults ?? {}, c, i, source, at);
    if ('errors' in built) errors.push(...built.errors);
    else cases.push(built.testCase);
  });
  if (errors.length > 0) return { errors };
  return {
    suite: { name: body.suite, ...(body.description !== undefined ? { description: body.description } : {}), file, line: source.locate(['suite'], true).line, cases },
    errors: [],
  };
}

type Locator = (path: readonly PathSegment[], message: string, key?: boolean) => ErrorDetail;

function buildCase(defaults: RequestFields, c: TestFileBody['cases'][number], i: number, source: YamlSource, at: Locator): { testCase: PolicyTestCase } | { errors: ErrorDetail[] } {
  const own = c.request ?? {};
  const casePath: PathSegment[] = c.request === undefined ? ['cases', i] : ['cases', i, 'request'];
  const pick = <K extends keyof RequestFields>(k: K): RequestFields[K] => (Object.hasOwn(own, k) ? own[k] : defaults[k]);
  const missing = (['agent_id', 'integration', 'scopes'] as const).filter((k) => pick(k) === undefined);
  if (missing.length > 0) {
    return { errors: missing.map((k) => at(casePath, `no ${k}: give it in the case's request or under defaults`, true)) };
  }
  const task = { ...defaults.task, ...own.task };
  const resource = pick('resource');
  const ttl = pick('ttl_seconds');
  const candidate = {
    agent_id: pick('agent_id'),
    task: { id: task.id ?? DEFAULT_TEST_TASK_ID, ...(task.type !== undefined && task.type !== null ? { type: task.type } : {}), context: task.context ?? {} },
    integration: pick('integration'),
    scopes: pick('scopes'),
    ...(resource !== undefined && resource !== null ? { resource } : {}),
    ...(ttl !== undefined && ttl !== null ? { ttl_seconds: ttl } : {}),
  };
  const now = pick('now');
  if (now !== undefined && Number.isNaN(Date.parse(now))) {
    const where: PathSegment[] = Object.hasOwn(own, 'now') ? [...casePath, 'now'] : ['defaults', 'now'];
    return { errors: [at(where, `${JSON.stringify(now)} is not a date and time`)] };
  }
  let request: DecisionRequestV1;
  try {
    request = parseDecisionRequest(candidate);
  } catch (err) {
    if (!isPdpError(err)) throw err;
    return { errors: err.details.map((d) => at(casePath, `the request is not a valid decision request: ${d.path} ${d.message}`, true)) };
  }
  return {
    testCase: {
      name: c.name,
      ...(c.description !== undefined ? { description: c.description } : {}),
      line: source.locate(['cases', i], false).line,
      request,
      callerId: pick('caller_id') ?? DEFAULT_TEST_CALLER,
      ...(now !== undefined ? { now: new Date(now) } : {}),
      expect: c.expect,
    },
  };
}
