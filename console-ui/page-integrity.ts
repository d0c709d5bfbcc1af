/*
 * Integrity: the chain's head and its last verification (GET /v1/audit/integrity); "Verify now" runs
 * POST /v1/audit/verify and reads its NDJSON stream (progress lines, then one result) into a <progress> and then
 * the result. The verification is the server's: the page only shows it.
 */
import { getJson, postStream } from './api.js';
import { h, on, replace } from './dom.js';
import { count, timeEl } from './format.js';
import { badge, code, empty, facts, loading, run, type Page } from './page-kit.js';
import { ndjsonLines } from './ndjson.js';
import { showError } from './status.js';
import type { IntegrityV1, VerificationV1, VerifyLine } from './wire.js';

export const integrityPage: Page = (root) => {
  root.appendChild(h('h1', null, 'Integrity'));
  const state = h('div', null, loading());
  const button = h('button', { type: 'button', class: 'primary', 'data-testid': 'verify-button' }, 'Verify now');
  const progress = h('progress', { max: 1, value: 0, hidden: true, 'data-testid': 'verify-progress' });
  const progressText = h('span', { class: 'muted', 'data-testid': 'verify-progress-text' });
  const result = h('div', { 'data-testid': 'verify-result-area' });
  root.append(state, h('h2', null, 'Verify the chain'), h('p', { class: 'muted' }, 'Re-reads every stored event and checks each hash and link, from the start of the stored chain to its head.'), h('div', { class: 'verify' }, button, progress, progressText), result);

  const load = async (): Promise<void> => {
    const integrity = await getJson<IntegrityV1>('/v1/audit/integrity');
    if (!root.isConnected) return;
    replace(state, integrityView(integrity));
  };

  on(button, 'click', () => {
    button.disabled = true;
    progress.hidden = false;
    progress.removeAttribute('value'); // indeterminate until the first progress line
    replace(progressText, 'starting…');
    replace(result);
    verify(progress, progressText, result)
      .then(() => load())
      .catch((err: unknown) => {
        if (root.isConnected) showError(err);
      })
      .finally(() => {
        button.disabled = false;
      });
  });
  run(root, load);
};

async function verify(progress: HTMLProgressElement, text: HTMLElement, out: HTMLElement): Promise<void> {
  const res = await postStream('/v1/audit/verify', {});
  let final: VerificationV1 | null = null;
  for await (const raw of ndjsonLines(res)) {
    const line = raw as VerifyLine;
    if (line.type === 'progress') {
      const total = Math.max(1, line.total);
      progress.max = total;
      progress.value = Math.min(line.verified, total);
      replace(text, `${count(line.verified)} of ${count(line.total)} events`);
    } else if (line.type === 'result') {
      final = line;
    }
  }
  if (final === null) throw new Error('the verification ended without a result (the stream was cut short)');
  progress.max = 1;
  progress.value = 1;
  replace(text, `${count(final.verified)} events verified`);
  replace(out, verificationView(final, 'verify-result'));
}

function integrityView(i: IntegrityV1): HTMLElement {
  return h(
    'div',
    { class: 'cards' },
    h(
      'section',
      { class: 'card', 'data-testid': 'integrity-head' },
      h('h2', null, 'Head of the chain'),
      i.head === null
        ? empty('The chain is empty.')
        : facts([
            ['seq', count(i.head.seq)],
            ['time', timeEl(i.head.time)],
            ['hash', h('code', { class: 'hash' }, i.head.hash)],
            ['stored chain starts at', count(i.start?.start_seq)],
            ['start prev hash', h('code', { class: 'hash' }, i.start?.start_prev_hash ?? '-')],
          ]),
    ),
    h('section', { class: 'card', 'data-testid': 'integrity-last' }, h('h2', null, 'Last verification'), i.last_verification === null ? empty('Never verified.') : verificationView(i.last_verification)),
  );
}

function verificationView(v: VerificationV1, testid?: string): HTMLElement {
  return h(
    'div',
    { class: `verification ${v.ok ? 'ok' : 'bad'}`, 'data-testid': testid, 'data-ok': String(v.ok === true) },
    h('p', null, v.ok ? badge('intact', 'ok') : badge('BROKEN', 'bad'), ' ', v.ok ? `${count(v.verified)} events verified` : `the chain breaks at seq ${v.first_bad_seq ?? '?'}`),
    facts([
      ['range', `seq ${count(v.from_seq)} to ${count(v.to_seq)}`],
      ['started', timeEl(v.started_at)],
      ['finished', timeEl(v.finished_at)],
      ['by', code(v.by)],
      ...(v.error === undefined ? [] : ([['error', v.error]] as const)),
    ]),
  );
}
