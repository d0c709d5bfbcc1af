import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildEvaluationInput, evaluationTime } from '../../src/pdp/evaluation-input.js';
import { sharedEvaluationTime } from '../../src/wire/evaluation-time.js';
import { OPA_BIN } from '../support/opa-cli.js';

describe('input.time: the decision instant as the policy sees it', () => {
  it.each([
    {
      note: 'the Unix epoch was a Thursday',
      at: '1970-01-01T00:00:00.000Z',
      time: { now_ns: 0, rfc3339: '1970-01-01T00:00:00.000Z', weekday: 'Thursday', date: [1970, 1, 1], clock: [0, 0, 0] },
    },
    {
      note: 'every field in UTC, months and days from 1',
      at: '2026-01-05T14:03:07.123Z',
      time: { now_ns: 1767621787123000000, rfc3339: '2026-01-05T14:03:07.123Z', weekday: 'Monday', date: [2026, 1, 5], clock: [14, 3, 7] },
    },
    {
      note: 'a leap day, one millisecond before midnight',
      at: '2028-02-29T23:59:59.999Z',
      time: { now_ns: 1835481599999000000, rfc3339: '2028-02-29T23:59:59.999Z', weekday: 'Tuesday', date: [2028, 2, 29], clock: [23, 59, 59] },
    },
  ])('$note', ({ at, time }) => {
    expect(evaluationTime(new Date(at))).toStrictEqual(time);
  });

  it('now_ns is above 2^53 yet written as its exact digits, for OPA and WASM alike', () => {
    for (const ms of [1767621787123, 4102444799999, 946684800001]) {
      expect(JSON.stringify(evaluationTime(new Date(ms)))).toContain(`"now_ns":${ms}000000,`);
    }
  });

  it('refuses an invalid Date rather than passing NaN to the policy', () => {
    expect(() => evaluationTime(new Date(Number.NaN))).toThrow(TypeError);
  });

  it('is on the input exactly when the builder is given the time', () => {
    const request = { agent_id: 'a', task: { id: 't' }, integration: 'crm', scopes: ['x'] };
    const task = { id: 't', context: {}, registered: false };
    const at = new Date('2026-01-05T14:03:07.123Z');
    expect(buildEvaluationInput(request, 'pep', task, at).time).toStrictEqual(evaluationTime(at));
    expect(buildEvaluationInput(request, 'pep', task)).not.toHaveProperty('time');
  });
});

describe('make test-rego checks rules against the bundle capabilities', () => {
  const recipe = (): string => {
    const makefile = readFileSync('Makefile', 'utf8');
    const start = makefile.indexOf('\ntest-rego:');
    expect(start).toBeGreaterThan(-1);
    const end = makefile.indexOf('\n\n', start + 1);
    return makefile.slice(start, end === -1 ? undefined : end);
  };

  it('passes opa-bundle/capabilities.json to both opa check and opa test', () => {
    const lines = recipe().split('\n');
    const check = lines.find((l) => l.includes('$(OPA) check'));
    const test = lines.find((l) => l.includes('$(OPA) test'));
    expect(check).toContain('--capabilities opa-bundle/capabilities.json');
    expect(test).toContain('--capabilities opa-bundle/capabilities.json');
  });

  it('so a rule calling time.now_ns fails there, as it fails the bundle build; input.time passes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-caps-'));
    try {
      const check = (rule: string): string => {
        writeFileSync(join(dir, 'late.rego'), `package agentpdp.ext\n\ndeny contains {"code": "late", "message": "late"} if ${rule}\n`);
        try {
          execFileSync(OPA_BIN, ['check', '--strict', '--capabilities', resolve('opa-bundle/capabilities.json'), dir], { stdio: 'pipe' });
          return 'ok';
        } catch (err) {
          return String((err as { stderr?: Buffer }).stderr);
        }
      };
      expect(check('time.now_ns() > 0')).toContain('undefined function time.now_ns');
      expect(check('time.weekday(input.time.now_ns) == "Saturday"')).toContain('undefined function time.weekday');
      expect(check('input.time.weekday == "Saturday"')).toBe('ok');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('sharedEvaluationTime: the decide path shares one frozen input.time per millisecond', () => {
  it('is evaluationTime, frozen to its leaves, the same object within a millisecond and a new one after', () => {
    const at = new Date('2026-12-01T22:40:00.123Z');
    const first = sharedEvaluationTime(at);
    expect(first).toEqual(evaluationTime(at));
    expect(sharedEvaluationTime(new Date(at.getTime()))).toBe(first);
    expect(Object.isFrozen(first) && Object.isFrozen(first.date) && Object.isFrozen(first.clock)).toBe(true);
    const next = sharedEvaluationTime(new Date(at.getTime() + 1));
    expect(next).not.toBe(first);
    expect(next.rfc3339).toBe('2026-12-01T22:40:00.124Z');
    // Another millisecond in between: the earlier one is built again, equal to what it was.
    expect(sharedEvaluationTime(at)).toEqual(first);
    // A decision's input carries it; evaluationTime still gives a value of one's own.
    expect(buildEvaluationInput({ agent_id: 'a', task: { id: 't' }, integration: 'i', scopes: ['s'] }, 'c', { id: 't', type: 'x', context: {}, registered: true }, at).time).toBe(
      sharedEvaluationTime(at),
    );
    expect(Object.isFrozen(evaluationTime(at))).toBe(false);
  });
});
