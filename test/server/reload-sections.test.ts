/**
 * A reload (SIGHUP, POST /v1/admin/reload) applies the config's callers at once; every other section is read at start
 * only, and a reload that finds one changed says so: "these sections changed and apply at the next start", naming
 * them. The providers section among them: its source credentials are read once, at start.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PdpConfig } from '../../src/config/config-types.js';
import { createLogger } from '../../src/server/logger.js';
import { startTestPdp, type TestPdp } from '../support/pdp-harness.js';

const lines: string[] = [];
let t: TestPdp;
let next: ((started: PdpConfig) => PdpConfig) | undefined;

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  t = await startTestPdp({ logger: createLogger('info', sink), rereadConfig: (started) => (next === undefined ? started : next(started)) });
});
afterAll(async () => {
  await t?.close();
});

/** The sections the reload warned about, or null when it did not warn. */
async function reloadWarns(change: ((started: PdpConfig) => PdpConfig) | undefined): Promise<string[] | null> {
  next = change;
  const before = lines.length;
  await t.pdp.reload();
  const warned = lines.slice(before).map((l) => JSON.parse(l) as { msg: string; sections?: string[] }).find((l) => l.msg.includes('apply at the next start'));
  return warned?.sections ?? null;
}

const AWS = { integration: 'crm', kind: 'aws', role_arn: 'arn:aws:iam::123456789012:role/r', region: 'eu-west-1', endpoint: null, max_session_seconds: 3600, timeout_ms: 5000, credential: { env: null, file: '/etc/agent-pdp/aws.json' } } as const;

describe('a config reload that changes a section other than the callers', () => {
  it.each([
    { note: 'nothing changed: no warning', change: undefined, sections: null },
    { note: 'a provider added', change: (c: PdpConfig): PdpConfig => ({ ...c, providers: [AWS] }), sections: ['providers'] },
    { note: "a provider's role changed", change: (c: PdpConfig): PdpConfig => ({ ...c, providers: [{ ...AWS, role_arn: 'arn:aws:iam::123456789012:role/other' }] }), sections: ['providers'] },
    { note: 'the log level and the tasks section', change: (c: PdpConfig): PdpConfig => ({ ...c, log: { level: 'debug' }, tasks: { ...c.tasks, default_ttl_seconds: c.tasks.default_ttl_seconds + 1 } }), sections: ['tasks', 'log'] },
    { note: 'the callers only: applied, no warning', change: (c: PdpConfig): PdpConfig => ({ ...c, callers: c.callers.slice(1) }), sections: null },
  ])('$note', async ({ change, sections }) => {
    expect(await reloadWarns(change)).toEqual(sections);
  });
});
