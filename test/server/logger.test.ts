import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, REDACTED, redactLogObject } from '../../src/server/logger.js';

/** A logger writing into an array of parsed lines (pino's own serialisation, synchronously). */
function capture(): { lines: Array<Record<string, unknown>>; logger: ReturnType<typeof createLogger> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, logger: createLogger('info', sink) };
}

describe('logger redaction (the second belt behind allowlisted log fields)', () => {
  it('replaces credentials at the top level and one level down, keeps everything else', async () => {
    const { lines, logger } = capture();
    const req = { method: 'POST', authorization: 'Bearer sk-live-secret', nested: { api_key: 'k-123', token: 'eyJ.secret', keep: 1 } };
    logger.info({ request: req, headers: { authorization: 'Basic abc' }, access_token: 'at-1', route: '/v1/decide' }, 'x');
    logger.info({ request_id: 'r1', method: 'POST', route: '/v1/decide', status: 200, duration_ms: 1.2, caller_id: 'pep' }, 'request');
    await new Promise((r) => setImmediate(r));
    const [first, second] = lines;
    expect(first?.['headers']).toBe(REDACTED);
    expect(first?.['access_token']).toBe(REDACTED);
    expect(first?.['route']).toBe('/v1/decide');
    expect(first?.['request']).toEqual({ method: 'POST', authorization: REDACTED, nested: { api_key: 'k-123', token: 'eyJ.secret', keep: 1 } });
    const text = JSON.stringify(first);
    for (const secret of ['sk-live-secret', 'Basic abc', 'at-1']) expect(text).not.toContain(secret);
    // The caller's object is unchanged.
    expect(req.authorization).toBe('Bearer sk-live-secret');
    expect(second).toMatchObject({ request_id: 'r1', method: 'POST', route: '/v1/decide', status: 200, duration_ms: 1.2, caller_id: 'pep', msg: 'request' });
  });

  it("redacts a child logger's bindings, and keeps an error's message and stack when one of its members is redacted", async () => {
    const { lines, logger } = capture();
    logger.child({ token: 'child-secret', worker: 2 }).info('bound');
    const err = Object.assign(new Error('upstream refused'), { headers: { authorization: 'Bearer leaked' } });
    logger.error({ err }, 'failed');
    await new Promise((r) => setImmediate(r));
    const [bound, failed] = lines;
    expect(bound).toMatchObject({ token: REDACTED, worker: 2, msg: 'bound' });
    expect(JSON.stringify(bound)).not.toContain('child-secret');
    expect(failed?.['err']).toMatchObject({ type: 'Error', message: 'upstream refused', headers: REDACTED });
    expect(String((failed?.['err'] as { stack?: unknown }).stack)).toContain('upstream refused');
    expect(JSON.stringify(failed)).not.toContain('leaked');
  });

  it('passes an object with nothing to redact through as it is (no copy)', () => {
    const fields = { request_id: 'r1', route: '/v1/decide', status: 200, nested: { a: 1 }, list: [{ token: 'x' }] };
    expect(redactLogObject(fields)).toBe(fields);
    const tokenLine = { token: 't', nested: { headers: { a: 1 } } };
    expect(redactLogObject(tokenLine)).toEqual({ token: REDACTED, nested: { headers: REDACTED } });
    expect(tokenLine.token).toBe('t');
  });
});
