/*
 * The global status area (`data-testid="status"`): one line saying what just happened or what went wrong, as text.
 * `data-kind` is `error` or `info` (empty when cleared), for the end-to-end test and the style sheet.
 */
import { ApiError } from './api.js';
import { h, replace } from './dom.js';

const area = h('div', { id: 'status', class: 'status', role: 'status', 'aria-live': 'polite', 'data-testid': 'status', 'data-kind': '' });

export function statusArea(): HTMLDivElement {
  return area;
}

export function showInfo(text: string): void {
  area.setAttribute('data-kind', 'info');
  replace(area, text);
}

export function showError(err: unknown): void {
  area.setAttribute('data-kind', 'error');
  replace(area, describeError(err));
}

export function clearStatus(): void {
  area.setAttribute('data-kind', '');
  replace(area);
}

/** An error as text: the API's `code: message`, or the error's own message. */
export function describeError(err: unknown): string {
  if (err instanceof ApiError) return err.describe();
  if (err instanceof Error) return `error: ${err.message}`;
  return 'error: something went wrong';
}
