/*
 * The sign-in form: a caller's API key (a password field, never stored by the page) exchanged for a session
 * cookie. `message` says why it is shown (signed out, session expired).
 */
import { describeError } from './status.js';
import { h, on, replace } from './dom.js';
import { signIn } from './session.js';
import type { SessionV1 } from './wire.js';

export function signInPage(message: string | null, onSignedIn: (session: SessionV1) => void): HTMLElement {
  const key = h('input', { id: 'signin-key', type: 'password', name: 'api_key', autocomplete: 'current-password', required: true, spellcheck: false, 'data-testid': 'signin-key' });
  const button = h('button', { type: 'submit', class: 'primary', 'data-testid': 'signin-submit' }, 'Sign in');
  const note = h('p', { class: 'signin-message', role: 'alert', 'data-testid': 'signin-message' }, message ?? '');
  const form = h(
    'form',
    { class: 'signin', 'data-testid': 'signin-form', autocomplete: 'off' },
    h('h1', null, 'agent-pdp console'),
    h('p', { class: 'muted' }, 'Sign in with your caller API key (role auditor, approver or admin).'),
    h('label', { for: 'signin-key' }, 'API key'),
    key,
    button,
    note,
  );
  on(form, 'submit', (event) => {
    event.preventDefault();
    const value = key.value;
    if (value === '') return;
    button.disabled = true;
    replace(note, 'signing in…');
    signIn(value)
      .then((session) => {
        key.value = '';
        onSignedIn(session);
      })
      .catch((err: unknown) => {
        replace(note, describeError(err));
        button.disabled = false;
        key.focus();
      });
  });
  queueMicrotask(() => key.focus());
  return h('main', { class: 'signin-page' }, form);
}
