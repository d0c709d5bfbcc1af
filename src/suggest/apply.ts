/*
 * Applying a stored suggestion to its agent's policy file (`agent-pdp suggest apply`), or showing what that would do.
 *
 * In order, each step refusing with the file untouched:
 * 1. the file is read with the rest of the folder (the same reader, permission checks and limits as the server's);
 *    its SHA-256 must be the one the suggestion was made on (`suggestion_stale` otherwise: someone edited it since);
 * 2. the suggestion's edits are made to its text (`yaml-edit.ts`: only the lines of the change move);
 * 3. the folder is compiled with the new text in place of the old, as `policy check` would compile it once written
 *    (`policy_invalid` with every problem otherwise), and the result must not grant anything the folder grants
 *    today (`narrowing.ts`);
 * 4. the new text is written to a temporary file beside it (same mode, flushed), the file is checked once more to
 *    be the one the suggestion was made on, and the temporary file is renamed over it: a reader (the server's
 *    watcher) sees the old file or the new one, never a part.
 * A dry run stops before 4.
 */
import { randomBytes } from 'node:crypto';
import { lstat, open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { PdpError, type ErrorDetail } from '../errors/pdp-error.js';
import type { PolicyLoadOptions } from '../policy/policy-loader.js';
import type { SuggestionRecord } from '../store/index.js';
import { widenings } from './narrowing.js';
import { loadPolicyFolder } from './policy-folder.js';
import { sha256 } from './suggestion-identity.js';
import { unifiedDiff } from './unified-diff.js';
import { EditError, editYaml, type YamlEdit } from './yaml-edit.js';

export interface ApplyOptions {
  /** Compute and check the change, write nothing. Default false. */
  dryRun?: boolean;
  /** How the folder is loaded: the server's settings (config `policy`). Default: `policy check`'s defaults. */
  load?: PolicyLoadOptions;
}

export interface ApplyResult {
  /** The file, relative to the policy folder. */
  file: string;
  /** Unified diff of the change. */
  diff: string;
  sha256_before: string;
  sha256_after: string;
  /** False on a dry run. */
  written: boolean;
  /** The policy revision before and after (the same when the change does not alter the compiled document). */
  revision_before: string;
  revision_after: string;
  /** Compile warnings the new text has that the folder did not have before. */
  new_warnings: ErrorDetail[];
}

export async function applySuggestion(record: SuggestionRecord, policyDir: string, options: ApplyOptions = {}): Promise<ApplyResult> {
  const edits = editsOf(record);
  const root = resolve(policyDir);
  const file = record.file;
  if (file === null || record.file_sha256 === null) throw new PdpError('invalid_request', `suggestion ${record.id} names no policy file`);
  const path = resolve(root, file);
  const rel = relative(root, path);
  if (rel === '' || rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) throw new PdpError('invalid_request', `suggestion ${record.id} names a file outside the policy folder`);

  const before = await loadPolicyFolder(root, options.load);
  const source = before.sources.find((s) => s.file === file);
  if (source === undefined) throw new PdpError('suggestion_stale', `${file} is no longer in the policy folder: run agent-pdp suggest again`);
  const shaBefore = source.sha256 ?? sha256(source.text);
  if (shaBefore !== record.file_sha256) {
    throw new PdpError('suggestion_stale', `${file} changed since the suggestion was made (SHA-256 ${shaBefore.slice(0, 12)}…, the suggestion's ${record.file_sha256.slice(0, 12)}…): nothing written; run agent-pdp suggest again`);
  }
  let text: string;
  try {
    text = editYaml(source.text, edits);
  } catch (error) {
    if (!(error instanceof EditError)) throw error;
    throw new PdpError('suggestion_stale', `suggestion ${record.id} cannot be made to ${file}: ${error.message}`);
  }
  const after = await loadPolicyFolder(root, { ...options.load, override: { file, text } });
  const widened = widenings(before.set, after.set);
  if (widened.length > 0) {
    throw new PdpError('internal', `suggestion ${record.id} would widen the policy (${widened.slice(0, 3).join('; ')}): nothing written`);
  }
  const known = new Set(before.set.warnings.map(warningKey));
  const result: ApplyResult = {
    file,
    diff: unifiedDiff(file, source.text, text),
    sha256_before: shaBefore,
    sha256_after: sha256(text),
    written: false,
    revision_before: before.set.revision,
    revision_after: after.set.revision,
    new_warnings: after.set.warnings.filter((w) => w.file === file && !known.has(warningKey(w))),
  };
  if (options.dryRun === true) return result;
  await replaceFile(path, text, shaBefore);
  return { ...result, written: true };
}

/** The stored proposal's edits, checked: the record comes from the store, whose content is not ours to trust blindly. */
function editsOf(record: SuggestionRecord): YamlEdit[] {
  const edits = (record.proposal as { edits?: unknown } | null)?.edits;
  const valid =
    Array.isArray(edits) &&
    edits.length > 0 &&
    edits.every((e: unknown) => {
      if (typeof e !== 'object' || e === null) return false;
      const { op, path, durationComment } = e as { op?: unknown; path?: unknown; durationComment?: unknown };
      const pathOk = Array.isArray(path) && path.length > 1 && path[0] === 'agent_policy' && path.every((p) => typeof p === 'string');
      // A comment the edit writes is one short line of words (never a newline that could add YAML).
      const commentOk = durationComment === undefined || (op === 'set' && typeof durationComment === 'string' && /^[\w .,-]{1,40}$/.test(durationComment));
      return pathOk && commentOk && (op === 'remove_item' || op === 'remove_key' || op === 'set');
    });
  if (!valid) throw new PdpError('invalid_request', `suggestion ${record.id} has no edits this version can make`);
  return edits as YamlEdit[];
}

const warningKey = (w: ErrorDetail): string => `${w.file ?? ''}\u0000${w.path}\u0000${w.message}`;

/** Temp file beside it (a dot name: the policy loader skips it), same mode, flushed; checked again; renamed over it. */
async function replaceFile(path: string, text: string, expectedSha: string): Promise<void> {
  const stat = await lstat(path);
  if (stat.isSymbolicLink()) throw new PdpError('invalid_request', `${basename(path)} is a symbolic link: edit the file it points to`);
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', stat.mode & 0o7777);
  try {
    try {
      await handle.writeFile(text, 'utf8');
      await handle.chmod(stat.mode & 0o7777);
      await handle.sync();
    } finally {
      await handle.close();
    }
    // The check and the rename under a lock file beside it: two processes (`serve --workers`, replicas, the CLI)
    // applying suggestions made on the same text cannot both pass the check and the later rename silently undo the
    // earlier edit.
    const release = await lockFile(path);
    try {
      if (sha256(await readFile(path)) !== expectedSha) {
        throw new PdpError('suggestion_stale', `${basename(path)} changed while the suggestion was being applied: nothing written`);
      }
      await rename(temp, path);
    } finally {
      await release();
    }
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}

/** A lock file older than this was left by a process that died holding it: it is taken over. */
const STALE_LOCK_MS = 60_000;

/**
 * Takes `.<file>.apply-lock` beside the file (a dot name: the policy loader skips it) with O_EXCL, or refuses with
 * suggestion_stale while another apply holds it. Returns its release.
 */
async function lockFile(path: string): Promise<() => Promise<void>> {
  const lock = join(dirname(path), `.${basename(path)}.apply-lock`);
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(lock, 'wx', 0o600);
      await handle.close();
      return () => unlink(lock).catch(() => undefined);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const held = await lstat(lock).catch(() => undefined);
      if (attempt === 0 && held !== undefined && Date.now() - held.mtimeMs > STALE_LOCK_MS) {
        await unlink(lock).catch(() => undefined);
        continue;
      }
      throw new PdpError('suggestion_stale', `${basename(path)} is being rewritten by another apply: nothing written (try again)`);
    }
  }
}
