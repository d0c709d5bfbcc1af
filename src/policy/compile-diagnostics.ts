import type { ErrorDetail } from '../errors/pdp-error.js';
import { formatPath } from './field-path.js';
import type { PathSegment, PolicyDocument } from './policy-types.js';

/** Collects compile errors and warnings, each located in the document it is about. */
export class Diagnostics {
  readonly errors: ErrorDetail[] = [];
  readonly warnings: ErrorDetail[] = [];

  /** `key`: point at the key at `path` (a name that is wrong) rather than at its value. */
  error(doc: PolicyDocument, path: readonly PathSegment[], message: string, key = false): void {
    this.errors.push(locate(doc, path, message, key));
  }

  warning(doc: PolicyDocument, path: readonly PathSegment[], message: string, key = false): void {
    this.warnings.push(locate(doc, path, message, key));
  }
}

function locate(doc: PolicyDocument, path: readonly PathSegment[], message: string, key: boolean): ErrorDetail {
  return { file: doc.file, ...doc.locate(path, key), path: formatPath(path), message };
}

/** `agents/a.yaml:3` — how one detail names another place in a message. */
export function where(doc: PolicyDocument, path: readonly PathSegment[]): string {
  return `${doc.file}:${doc.locate(path, true).line}`;
}

/** Orders details by file, line, column (the order an author fixes them in), then path and message: a total order. */
export function byLocation(a: ErrorDetail, b: ErrorDetail): number {
  return (
    compareText(a.file ?? '', b.file ?? '') ||
    (a.line ?? 0) - (b.line ?? 0) ||
    (a.column ?? 0) - (b.column ?? 0) ||
    compareText(a.path, b.path) ||
    compareText(a.message, b.message)
  );
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
