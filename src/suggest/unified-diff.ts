/*
 * A unified diff (`diff -u`, three lines of context) of two versions of one file, for people and for `git apply`.
 * Lines are compared whole; the changed middle (after the common head and tail) is aligned by a longest common
 * subsequence, which a suggestion's few changed lines keep small. A middle too large for that (more than
 * {@link MAX_CELLS} line pairs) is shown as all removed, then all added: still a correct diff.
 */

const CONTEXT = 3;
const MAX_CELLS = 4_000_000;

type Op = { kind: ' ' | '-' | '+'; line: string };

/** `--- a/<file>` / `+++ b/<file>` and the hunks; '' when the texts are equal. */
export function unifiedDiff(file: string, before: string, after: string): string {
  if (before === after) return '';
  const a = lines(before);
  const b = lines(after);
  const ops = align(a, b);
  const hunks: string[] = [];
  let i = 0;
  while (i < ops.length) {
    if ((ops[i] as Op).kind === ' ') {
      i++;
      continue;
    }
    // A hunk: from CONTEXT lines before this change to CONTEXT lines after the last change within 2 × CONTEXT of it.
    const start = Math.max(0, i - CONTEXT);
    let end = i;
    for (let j = i; j < ops.length; j++) {
      if ((ops[j] as Op).kind !== ' ') end = j;
      else if (j - end > 2 * CONTEXT) break;
    }
    const stop = Math.min(ops.length, end + CONTEXT + 1);
    hunks.push(hunk(ops, start, stop));
    i = stop;
  }
  return `--- a/${file}\n+++ b/${file}\n${hunks.join('')}`;
}

/** The last line of a text without a final newline carries this, so it never matches one with a newline. */
const NO_NEWLINE = '\u0000';

function lines(text: string): string[] {
  if (text === '') return [];
  const parts = text.split('\n');
  if (parts[parts.length - 1] === '') parts.pop();
  else parts[parts.length - 1] += NO_NEWLINE;
  return parts;
}

function align(a: readonly string[], b: readonly string[]): Op[] {
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const midA = a.slice(head, a.length - tail);
  const midB = b.slice(head, b.length - tail);
  const ops: Op[] = a.slice(0, head).map((line) => ({ kind: ' ', line }));
  ops.push(...middle(midA, midB));
  ops.push(...a.slice(a.length - tail).map((line): Op => ({ kind: ' ', line })));
  return ops;
}

/** Longest common subsequence of the changed middle; removals before additions within a change. */
function middle(a: readonly string[], b: readonly string[]): Op[] {
  if (a.length * b.length > MAX_CELLS || a.length === 0 || b.length === 0) {
    return [...a.map((line): Op => ({ kind: '-', line })), ...b.map((line): Op => ({ kind: '+', line }))];
  }
  const width = b.length + 1;
  const table = new Uint32Array((a.length + 1) * width);
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      table[i * width + j] =
        a[i] === b[j] ? (table[(i + 1) * width + j + 1] as number) + 1 : Math.max(table[(i + 1) * width + j] as number, table[i * width + j + 1] as number);
    }
  }
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      ops.push({ kind: ' ', line: a[i] as string });
      i++;
      j++;
    } else if ((table[(i + 1) * width + j] as number) >= (table[i * width + j + 1] as number)) {
      ops.push({ kind: '-', line: a[i++] as string });
    } else {
      ops.push({ kind: '+', line: b[j++] as string });
    }
  }
  while (i < a.length) ops.push({ kind: '-', line: a[i++] as string });
  while (j < b.length) ops.push({ kind: '+', line: b[j++] as string });
  return ops;
}

function hunk(ops: readonly Op[], start: number, stop: number): string {
  // Line numbers (1-based) of the hunk's first line in each file: count what precedes it.
  let lineA = 1;
  let lineB = 1;
  for (const op of ops.slice(0, start)) {
    if (op.kind !== '+') lineA++;
    if (op.kind !== '-') lineB++;
  }
  const body = ops.slice(start, stop);
  const countA = body.filter((op) => op.kind !== '+').length;
  const countB = body.filter((op) => op.kind !== '-').length;
  const out = body.map(({ kind, line }) =>
    line.endsWith(NO_NEWLINE) ? `${kind}${line.slice(0, -1)}\n\\ No newline at end of file\n` : `${kind}${line}\n`,
  );
  const range = (line: number, count: number): string => `${count === 0 ? line - 1 : line}${count === 1 ? '' : `,${count}`}`;
  return `@@ -${range(lineA, countA)} +${range(lineB, countB)} @@\n${out.join('')}`;
}
