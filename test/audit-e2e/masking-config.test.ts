/**
 * Masking from the config: `audit.mask` paths (with `*` and `**`) are stored as digests, keyed with the HMAC key
 * in `audit.mask_key_file`; the decision is still made on the real value.
 */
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import type { AuditEventV1 } from '../../src/audit/index.js';
import { buildConfig } from '../../src/config/config-loader.js';
import { sha256Hex } from '../../src/config/dev-keys.js';
import { PdpError } from '../../src/errors/pdp-error.js';
import { decide, registerTask } from '../issuer-http/flow.js';
import { auth, KEYS, startTestPdp } from '../support/pdp-harness.js';

const keyDir = mkdtempSync(join(tmpdir(), 'agent-pdp-maskkey-'));
afterAll(() => rmSync(keyDir, { recursive: true, force: true }));

function keyFile(name: string, content: string): string {
  const path = join(keyDir, name);
  writeFileSync(path, content);
  return path;
}

const KEY = 'b1946ac92492d2347c6235b4d2611184';
const hmac = (value: unknown): string => `hmac-sha256:${createHmac('sha256', KEY).update(JSON.stringify(value)).digest('hex')}`;

describe('audit.mask with audit.mask_key_file', () => {
  it('stores every customer id as its HMAC digest, in every event, while the decision uses the real value', async () => {
    // Masking is by field: the customer number is also the decision's resource id, so both paths are masked.
    const mask = ['**.customer_id', '**.resource.id'];
    const t = await startTestPdp({ config: { audit: { mask, mask_key_file: keyFile('key', `${KEY}\n`) } } });
    try {
      const taskId = await registerTask(t);
      const allowed = await decide(t, taskId);
      expect(allowed.outcome).toBe('allow'); // the policy binds the token to customer 1234: it saw the real value
      expect((await decide(t, taskId, { customer: '9999' })).outcome).toBe('deny');

      const res = await request(t.url).get('/v1/audit/export?type=task.registered,decision').set(auth(KEYS.auditor)).expect(200);
      const events = res.text.split('\n').filter((l) => l.includes('"seq"')).map((l) => JSON.parse(l) as AuditEventV1);
      expect(events.map((e) => e.type)).toEqual(['task.registered', 'decision', 'decision']);
      expect(events[0]?.data).toMatchObject({ context: { customer_id: hmac('1234') } });
      expect(events[1]?.data).toMatchObject({
        input: { task: { context: { customer_id: hmac('1234') } }, resource: { type: 'customer', id: hmac('1234') } },
        result: { outcome: 'allow', resource: { id: hmac('1234') } },
      });
      expect(events[2]?.data).toMatchObject({ input: { resource: { id: hmac('9999') } }, result: { outcome: 'deny' } });
      expect(res.text).not.toMatch(/"(1234|9999)"/);
      // The task record the PDP evaluates against keeps the real value.
      expect((await t.pdp.store.getTask(taskId))?.context).toEqual({ customer_id: '1234' });
    } finally {
      await t.close();
    }
  });

  it.each([
    { note: 'a key file that does not exist', path: () => join(keyDir, 'missing'), message: 'cannot read audit.mask_key_file' },
    { note: 'a key shorter than 16 bytes', path: () => keyFile('short', 'tooshort\n'), message: 'holds less than 16 bytes' },
  ])('refuses to start with $note (config_invalid)', async ({ path, message }) => {
    const err = await startTestPdp({ config: { audit: { mask: ['**.ssn'], mask_key_file: path() } } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PdpError);
    expect((err as PdpError).code).toBe('config_invalid');
    expect((err as PdpError).message).toContain(message);
  });
});

describe('audit config', () => {
  const CALLERS = [{ id: 'ops', role: 'admin', key_sha256: sha256Hex('config-admin') }];
  const build = (audit: object) => buildConfig({ callers: CALLERS, audit }, '/srv/agent-pdp.yaml', '/srv');

  it.each(['input.task.context.ssn', 'input.*', '**.ssn', 'input.scopes.0', 'input.**.*', 'result.reasons', 'context.customer-id'])('accepts the mask path %s', (path) => {
    expect(build({ mask: [path], mask_key_file: 'mask.key' }).config.audit).toMatchObject({ mask: [path], mask_key_file: '/srv/mask.key' });
  });

  it.each([
    { note: 'a path ending in **', path: 'input.**', message: '"**" must be followed by a field name or "*"' },
    { note: 'two ** in a row', path: '**.**.ssn', message: '"**" must be followed by a field name or "*"' },
    { note: 'an empty segment', path: 'input..ssn', message: 'must match pattern' },
    { note: 'a partial wildcard', path: 'input.ss*', message: 'must match pattern' },
    ...['result.outcome', '**.outcome', 'result', '*', '**.*', '*.outcome'].map((path) => ({
      note: `a path that reaches a decision's outcome (${path})`,
      path,
      message: "would mask a decision's result.outcome",
    })),
  ])('refuses $note with config_invalid naming audit.mask[0]', ({ path, message }) => {
    let error: unknown;
    try {
      build({ mask: [path] });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(PdpError);
    expect((error as PdpError).code).toBe('config_invalid');
    expect((error as PdpError).details).toContainEqual({ path: 'audit.mask[0]', message: expect.stringContaining(message) });
  });

  it('warns at boot when fields are masked without a key, and not with one', () => {
    expect(build({ mask: ['**.ssn'] }).warnings).toEqual([expect.stringContaining('audit.mask without audit.mask_key_file')]);
    expect(build({ mask: ['**.ssn'], mask_key_file: 'k' }).warnings).toEqual([]);
    expect(build({}).config.audit).toEqual({ mask: [], mask_key_file: null, retention_days: null });
  });
});
