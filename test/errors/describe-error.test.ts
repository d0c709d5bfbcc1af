import { describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { describeError, PdpError } from '../../src/errors/pdp-error.js';

/** Log lines name a failure readably (never `[object Object]`) and never dump the thrown object itself. */
describe('describeError', () => {
  it.each([
    { note: 'an Error', err: new TypeError('bad input'), text: 'TypeError: bad input' },
    { note: 'a PdpError', err: new PdpError('store_unavailable', 'the store could not be written'), text: 'PdpError: the store could not be written' },
    { note: 'a driver error cloned across a thread (a plain object)', err: { code: 'SQLITE_CANTOPEN', message: 'unable to open database file' }, text: 'SQLITE_CANTOPEN: unable to open database file' },
    { note: 'an object with a secret and no message', err: { apiKey: 'dev-pep-key' }, text: 'an error object without a message' },
    { note: 'a string', err: 'opa_abort', text: 'opa_abort' },
    { note: 'a number', err: 42, text: 'a thrown number' },
  ])('$note → $text', ({ err, text }) => {
    expect(describeError(err)).toBe(text);
    expect(describeError(err)).not.toContain('[object Object]');
  });

  it("describes what a worker thread's 'error' event really delivers when the worker throws a plain object", async () => {
    const worker = new Worker("throw { code: 'SQLITE_IOERR', message: 'disk I/O error' };", { eval: true });
    const delivered = await new Promise<unknown>((resolve) => worker.once('error', resolve));
    expect(String(delivered)).toBe('[object Object]'); // what the log said before
    expect(describeError(delivered)).toBe('SQLITE_IOERR: disk I/O error');
  });
});
