/* A unified diff as text in a <pre>, one span per line with a class for added, removed and hunk lines. */
import { h } from './dom.js';

export function diffView(diff: string, testid?: string): HTMLPreElement {
  const lines = diff.replace(/\n$/, '').split('\n');
  return h(
    'pre',
    { class: 'diff', 'data-testid': testid },
    lines.map((line) => {
      const cls = line.startsWith('@@') ? 'hunk' : line.startsWith('+') && !line.startsWith('+++') ? 'add' : line.startsWith('-') && !line.startsWith('---') ? 'del' : 'ctx';
      return h('span', { class: cls }, `${line}\n`);
    }),
  );
}
