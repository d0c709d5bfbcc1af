import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson, compileMask, maskEmbedded } from '../../src/audit/index.js';

const sha = (value: unknown) => 'sha256:' + createHash('sha256').update(canonicalJson(value)).digest('hex');

const event = {
  input: {
    task: { id: 't-1', context: { ssn: '123-45-6789', customer_id: '1234' } },
    scopes: ['a', 'b'],
    contacts: [{ ssn: '111' }, { ssn: '222', name: 'x' }],
  },
  request: { task: { context: { ssn: '123-45-6789' } } },
};

describe('compileMask', () => {
  it.each([
    {
      note: 'one field',
      paths: ['input.task.context.ssn'],
      expected: { ...event, input: { ...event.input, task: { id: 't-1', context: { ssn: sha('123-45-6789'), customer_id: '1234' } } } },
    },
    {
      note: 'a whole object, digested as its canonical JSON',
      paths: ['input.task.context'],
      expected: { ...event, input: { ...event.input, task: { id: 't-1', context: sha(event.input.task.context) } } },
    },
    {
      note: 'every element with *',
      paths: ['input.contacts.*.ssn'],
      expected: { ...event, input: { ...event.input, contacts: [{ ssn: sha('111') }, { ssn: sha('222'), name: 'x' }] } },
    },
    {
      note: 'an array index',
      paths: ['input.scopes.1'],
      expected: { ...event, input: { ...event.input, scopes: ['a', sha('b')] } },
    },
    {
      note: 'any depth with **',
      paths: ['**.ssn'],
      expected: {
        input: {
          task: { id: 't-1', context: { ssn: sha('123-45-6789'), customer_id: '1234' } },
          scopes: ['a', 'b'],
          contacts: [{ ssn: sha('111') }, { ssn: sha('222'), name: 'x' }],
        },
        request: { task: { context: { ssn: sha('123-45-6789') } } },
      },
    },
    { note: 'a path that does not exist', paths: ['input.task.context.phone', 'nothing.here'], expected: event },
  ])('masks $note', ({ paths, expected }) => {
    const before = structuredClone(event);
    expect(compileMask(paths)(event)).toEqual(expected);
    expect(event).toEqual(before);
  });

  it('returns the same object when nothing matched, and for no paths', () => {
    expect(compileMask(['missing'])(event)).toBe(event);
    expect(compileMask([])(event)).toBe(event);
  });

  it('gives equal values equal digests, so masked events can still be correlated', () => {
    const masked = compileMask(['**.ssn'])(event);
    expect(masked.input.task.context.ssn).toBe(masked.request.task.context.ssn);
  });

  it('uses HMAC when a key is configured', () => {
    const masked = compileMask(['request.task.context.ssn'], { key: 'k1' })(event);
    const mac = createHmac('sha256', 'k1').update(canonicalJson('123-45-6789')).digest('hex');
    expect(masked.request.task.context.ssn).toBe(`hmac-sha256:${mac}`);
  });

  it('keeps a JSON "__proto__" key an own property', () => {
    const value = JSON.parse('{"__proto__":{"ssn":"1"},"a":{"ssn":"2"}}') as Record<string, unknown>;
    const masked = compileMask(['a.ssn'])(value);
    expect(Object.getPrototypeOf(masked)).toBe(Object.prototype);
    expect(Object.keys(masked)).toEqual(['__proto__', 'a']);
    expect(canonicalJson(masked)).toBe(`{"__proto__":{"ssn":"1"},"a":{"ssn":"${sha('2')}"}}`);
  });

  it.each([
    { note: 'empty path', path: '' },
    { note: 'empty segment', path: 'input..ssn' },
    { note: 'trailing **', path: 'input.**' },
    { note: 'double **', path: '**.**.ssn' },
  ])('refuses $note', ({ path }) => {
    expect(() => compileMask([path])).toThrow(TypeError);
  });
});

describe('maskEmbedded: values a record holds inside its strings (a provider credential\'s session policy, subject)', () => {
  const record = { subject: 'ana@example.com', policy: '{"Resource":"arn:aws:s3:::r/customers/1234/*"}', list: ['customers/1234/', 'other'], n: 7 };
  const sources = { resource: { type: 'customer', id: '1234' }, task_context: { user_email: 'ana@example.com', region: 'eu' } };

  it('replaces each value the paths mask by its digest, wherever it appears in a string', () => {
    const mask = compileMask(['**.resource.id', 'input.task.context.user_email']);
    const out = maskEmbedded(mask, record, sources);
    const id = mask({ resource: { id: '1234' } }).resource.id;
    const email = mask({ input: { task: { context: { user_email: 'ana@example.com' } } } }).input.task.context.user_email;
    expect(out).toEqual({ subject: email, policy: `{"Resource":"arn:aws:s3:::r/customers/${id}/*"}`, list: [`customers/${id}/`, 'other'], n: 7 });
    expect(record.subject).toBe('ana@example.com'); // never changes its input
  });

  it('a short id is masked only where it stands whole (never inside a digest, an account number or a request id), and never in a fixed member (a time)', () => {
    const mask = compileMask(['**.resource.id']);
    const short = { resource: { type: 'customer', id: '25' }, task_context: null };
    const rec = { arn: 'arn:aws:iam::123425678901:role/r', policy: 'arn:aws:s3:::r/customers/25/*', expires_at: '2026-12-25T10:25:00.000Z', request_id: 'a25b-25c', list: ['25'] };
    const out = maskEmbedded(mask, rec, short, { fixed: ['expires_at'] });
    const digest = mask({ resource: { id: '25' } }).resource.id;
    expect(out).toEqual({ arn: rec.arn, policy: `arn:aws:s3:::r/customers/${digest}/*`, expires_at: rec.expires_at, request_id: rec.request_id, list: [digest] });
    // Two values, one a part of the other's digest text: one pass, so no digest is searched again.
    const two = compileMask(['**.resource.id', 'input.task.context.n']);
    const out2 = maskEmbedded(two, { p: 'x/25/7' }, { resource: { type: 'c', id: '25' }, task_context: { n: '7' } });
    expect(out2.p).toMatch(/^x\/sha256:[0-9a-f]{64}\/sha256:[0-9a-f]{64}$/);
  });

  it('a whole context masked as one digest masks each of its values', () => {
    const out = maskEmbedded(compileMask(['input.task.context']), record, sources);
    expect(JSON.stringify(out)).not.toContain('ana@example.com');
    expect(out.policy).toContain('customers/1234/'); // the record id is not in the context
  });

  it('no mask, or paths that select none of the sources: the record itself', () => {
    expect(maskEmbedded(compileMask([]), record, sources)).toBe(record);
    expect(maskEmbedded(compileMask(['input.task.context.ssn']), record, sources)).toBe(record);
  });
});
