import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { PdpError } from '../errors/pdp-error.js';

/**
 * Pulls the compiled bundle from a bundle server the way OPA's bundle plugin does (OPA's "bundle service API": a GET
 * of one URL, `If-None-Match` with the last ETag, `304 Not Modified` when nothing changed, the next poll after a random
 * delay between a minimum and a maximum). A new bundle is downloaded next to the persisted one and handed to the
 * policy engine, which checks it (signature, revision, a test evaluation) and, only once it is in force, renames it
 * over the persisted file: a restart without the server serves the last good bundle. A bundle that is refused is
 * not fetched again until the server's ETag changes; the last good one keeps serving.
 */
export type PollOutcome = 'not_modified' | 'loaded' | 'refused' | 'failed';

export interface BundlePollerOptions {
  url: string;
  /** A bearer token for the bundle server, read at every poll (a file the deployment rotates); none: no header. */
  token?: () => Promise<string | undefined>;
  minDelayMs: number;
  maxDelayMs: number;
  timeoutMs: number;
  /** Largest download; a larger one is abandoned (`failed`). */
  maxBytes: number;
  /** The last good bundle (what the engine loads at start); its ETag is kept next to it as `<path>.etag`. */
  persistPath: string;
  /** Loads the downloaded file and, once it serves, renames it over `persistPath`; rejects when it is refused. */
  adopt(candidate: string): Promise<unknown>;
  /** Every poll's outcome, with the error when it failed or was refused (for logs and metrics; never a secret). */
  observed?(outcome: PollOutcome, error?: PdpError): void;
  random?: () => number;
}

export class BundlePoller {
  readonly #o: BundlePollerOptions;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** The ETag of the last bundle adopted or refused: sent as If-None-Match so neither is fetched again. */
  #etag: string | undefined;
  #polling: Promise<PollOutcome> | undefined;

  constructor(options: BundlePollerOptions) {
    if (!(options.minDelayMs > 0 && options.maxDelayMs >= options.minDelayMs)) throw new TypeError('0 < minDelayMs <= maxDelayMs');
    this.#o = options;
  }

  /**
   * At start: removes downloads a crash left behind, and picks up the ETag to send: that of a bundle refused last
   * time (so it is not fetched and refused again after a restart), else that of the persisted bundle, when there is
   * one, so the first poll of a restart can be a 304. `forget()` drops it (the persisted bundle was refused).
   */
  async restore(): Promise<void> {
    const dir = dirname(this.#o.persistPath);
    // The folder of the persisted bundle is made like the SQLite store makes its own (a replica whose store is
    // PostgreSQL may have no data folder at all); if it cannot be, the first poll says so.
    await mkdir(dir, { recursive: true, mode: 0o700 }).catch(() => undefined);
    const prefix = `${basename(this.#o.persistPath)}.download-`;
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (name.startsWith(prefix)) await rm(join(dir, name), { force: true });
    }
    const read = async (path: string): Promise<string | undefined> => (await readFile(path, 'utf8').catch(() => ''))?.trim() || undefined;
    const persisted = existsSync(this.#o.persistPath) ? await read(`${this.#o.persistPath}.etag`) : undefined;
    this.#etag = (await read(`${this.#o.persistPath}.refused-etag`)) ?? persisted;
  }

  /** The next poll asks without If-None-Match: whatever the server serves now is downloaded. */
  forget(): void {
    this.#etag = undefined;
  }

  /** Polls now, then keeps polling after random delays until `stop()`. */
  start(): void {
    this.#stopped = false;
    void this.poll().finally(() => this.#schedule());
  }

  /** Stops polling; resolves once a poll in flight (a download being adopted) has finished. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#polling;
  }

  /** One poll; concurrent calls share it. */
  poll(): Promise<PollOutcome> {
    this.#polling ??= this.#poll().finally(() => (this.#polling = undefined));
    return this.#polling;
  }

  #schedule(): void {
    if (this.#stopped) return;
    const { minDelayMs, maxDelayMs } = this.#o;
    const delay = minDelayMs + Math.floor((this.#o.random ?? Math.random)() * (maxDelayMs - minDelayMs + 1));
    this.#timer = setTimeout(() => void this.poll().finally(() => this.#schedule()), delay);
    this.#timer.unref();
  }

  async #poll(): Promise<PollOutcome> {
    let downloaded: { etag: string | undefined; body: Buffer } | undefined;
    try {
      downloaded = await this.#download();
    } catch (err) {
      return this.#observe('failed', asFailure(err));
    }
    if (downloaded === undefined) return this.#observe('not_modified');
    const candidate = `${this.#o.persistPath}.download-${randomBytes(6).toString('hex')}`;
    try {
      await writeFile(candidate, downloaded.body, { mode: 0o600 });
    } catch (err) {
      await rm(candidate, { force: true });
      // Downloaded, but not kept: the local folder is the problem, not the bundle server.
      const code = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : 'an error';
      return this.#observe('failed', new PdpError('bundle_missing', `the bundle was downloaded but cannot be written next to policy.service.persist (${this.#o.persistPath}): ${code}`, { cause: err }));
    }
    try {
      await this.#o.adopt(candidate);
    } catch (err) {
      // Not fetched again while the server serves the same bytes (a restart included); the refusal stays reported
      // by the engine.
      this.#etag = downloaded.etag;
      if (downloaded.etag !== undefined) await writeFile(`${this.#o.persistPath}.refused-etag`, `${downloaded.etag}\n`, { mode: 0o600 }).catch(() => undefined);
      return this.#observe('refused', asFailure(err));
    }
    this.#etag = downloaded.etag;
    await rm(`${this.#o.persistPath}.refused-etag`, { force: true });
    if (downloaded.etag === undefined) await rm(`${this.#o.persistPath}.etag`, { force: true });
    else await writeFile(`${this.#o.persistPath}.etag`, `${downloaded.etag}\n`, { mode: 0o600 }).catch(() => undefined);
    return this.#observe('loaded');
  }

  /** The new bundle, or undefined for 304. Throws on any other status, a timeout or a body over the limit. */
  async #download(): Promise<{ etag: string | undefined; body: Buffer } | undefined> {
    const headers: Record<string, string> = { accept: 'application/gzip, application/octet-stream' };
    if (this.#etag !== undefined) headers['if-none-match'] = this.#etag;
    const token = await this.#o.token?.();
    if (token !== undefined) {
      // Checked here, so a malformed token never reaches an error message (the HTTP client quotes a bad header value).
      if (!/^[\x21-\x7e]+$/.test(token)) throw new PdpError('config_invalid', 'policy.service.token_file holds characters a bearer token cannot have (one token, printable ASCII, no spaces)');
      headers['authorization'] = `Bearer ${token}`;
    }
    const res = await fetch(this.#o.url, { headers, signal: AbortSignal.timeout(this.#o.timeoutMs), redirect: 'error' });
    if (res.status === 304) {
      await res.body?.cancel();
      return undefined;
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new PdpError('bundle_missing', `the bundle server answered ${res.status}`);
    }
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (declared > this.#o.maxBytes) {
      await res.body?.cancel();
      throw new PdpError('bundle_invalid', `the bundle is larger than policy.service.max_bytes (${this.#o.maxBytes})`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body ?? []) {
      size += (chunk as Uint8Array).byteLength;
      if (size > this.#o.maxBytes) throw new PdpError('bundle_invalid', `the bundle is larger than policy.service.max_bytes (${this.#o.maxBytes})`);
      chunks.push(Buffer.from(chunk as Uint8Array));
    }
    return { etag: res.headers.get('etag') ?? undefined, body: Buffer.concat(chunks) };
  }

  #observe(outcome: PollOutcome, error?: PdpError): PollOutcome {
    this.#o.observed?.(outcome, error);
    return outcome;
  }
}

/** What a poll failed with, as a PdpError whose message says nothing secret (no token, no response body). */
function asFailure(err: unknown): PdpError {
  if (err instanceof PdpError) return err;
  const name = err instanceof Error ? err.name : 'Error';
  // Only messages known to hold nothing of the request: a TypeError of the HTTP client may quote a header value.
  const reason = name === 'TimeoutError' ? 'timed out' : err instanceof Error && err.message === 'fetch failed' ? 'the connection failed' : 'the request failed';
  return new PdpError('bundle_missing', `the bundle server could not be reached: ${reason}`, { cause: err });
}
