/**
 * The console's files as the build left them (`make build` compiles console-ui/ to dist/console-ui/): read once at
 * start, served from memory by name, a fixed flat set. No path from a request ever reaches the file system.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/console-ui/ of this package: this module is two folders below the package root, in src/ as in dist/. */
export const CONSOLE_ASSET_DIR = fileURLToPath(new URL('../../dist/console-ui/', import.meta.url));

const MEDIA_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** A file name the console may serve: flat, lower-case, one known extension. */
const ASSET_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export interface ConsoleAsset {
  body: Buffer;
  contentType: string;
  /** A strong validator: the content's hash. */
  etag: string;
}

/**
 * What the browser may load, and nothing else. The policy the shell is served with: scripts and styles from the
 * PDP's own origin only (no inline script or style, no eval), requests to itself, no plugins, no framing.
 */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export class ConsoleAssets {
  readonly #files: ReadonlyMap<string, ConsoleAsset>;

  private constructor(files: Map<string, ConsoleAsset>) {
    this.#files = files;
  }

  /** Reads the built files of `dir` (default dist/console-ui/); an absent folder is an empty set (the console answers 503). */
  static load(dir: string = CONSOLE_ASSET_DIR): ConsoleAssets {
    const files = new Map<string, ConsoleAsset>();
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return new ConsoleAssets(files);
    }
    for (const name of names) {
      const type = MEDIA_TYPES[extname(name)];
      const path = join(dir, name);
      if (type === undefined || !ASSET_NAME.test(name) || !statSync(path).isFile()) continue;
      const body = readFileSync(path);
      files.set(name, { body, contentType: type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` });
    }
    return new ConsoleAssets(files);
  }

  get(name: string): ConsoleAsset | undefined {
    return ASSET_NAME.test(name) ? this.#files.get(name) : undefined;
  }

  /** The shell page (index.html), or undefined when the console is not built. */
  get shell(): ConsoleAsset | undefined {
    return this.#files.get('index.html');
  }
}
