/*
 * Who else can change what the PDP loads. A policy file, a folder under the policy directory or the bundle that
 * a group or other users may write lets any of them grant an agent anything at the next reload (the watcher picks
 * it up within a second). Folders above the policy directory or the bundle matter too: whoever may write one can
 * rename the whole tree away and put their own in its place, unless the folder has the sticky bit (`/tmp`).
 *
 * A path on a read-only file system is exempt whatever its mode says (a Kubernetes ConfigMap volume): nobody
 * can write it.
 */
import type { Stats } from 'node:fs';
import { access, constants, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ErrorDetail } from '../errors/pdp-error.js';

/** Ends the message of every insecure-permission problem. */
export const INSECURE_HINT = 'any local user in that group (or any at all) could change what agents are granted; run `chmod go-w` on it';

/** The warning an insecure-permission problem becomes when the config accepts it. */
export const acceptedInsecure = (detail: ErrorDetail): ErrorDetail => ({
  ...detail,
  message: `INSECURE: ${detail.message} (loaded anyway: policy.allow_insecure_permissions is true)`,
});

/** Write permission for the group or for others. */
const GROUP_OTHER_WRITE = 0o022;
const STICKY = 0o1000;

/** `0755`-style text of a mode's permission bits. */
export const octalMode = (mode: number): string => `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;

/** True when group or others may write `path` (whose `stats` the caller already has), on a writable file system. */
export async function writableByOthers(path: string, stats: Stats): Promise<boolean> {
  if ((stats.mode & GROUP_OTHER_WRITE) === 0) return false;
  return !(await onReadOnlyFileSystem(path));
}

/**
 * Folders above `path` (an absolute path without symbolic links: a `realpath`), up to `/`, that group or others
 * may write and that lack the sticky bit, with a message each.
 */
export async function writableAncestors(path: string): Promise<Array<{ path: string; message: string }>> {
  const found: Array<{ path: string; message: string }> = [];
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const stats = await stat(dir);
    if ((stats.mode & STICKY) === 0 && (await writableByOthers(dir, stats))) {
      found.push({ path: dir, message: `${dir} is writable by group or others (mode ${octalMode(stats.mode)}): whoever can write it can replace ${path}` });
    }
    if (dirname(dir) === dir) return found;
  }
}

async function onReadOnlyFileSystem(path: string): Promise<boolean> {
  try {
    await access(path, constants.W_OK);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EROFS';
  }
}
