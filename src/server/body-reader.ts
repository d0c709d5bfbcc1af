import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import { finished, type Readable, type Transform } from 'node:stream';
import { createGunzip, createInflate } from 'node:zlib';
import { isPdpError, PdpError } from '../errors/pdp-error.js';

/** The request body formats the API reads: JSON (RFC 8259: UTF-8 only), and form-encoding for the OAuth endpoints. */
export type BodyMedia = 'json' | 'form';

/** Most parameters a form body may carry; more is `invalid_request`. */
const FORM_PARAMETER_LIMIT = 20;

const tooLarge = (): PdpError =>
  new PdpError('body_too_large', 'request body exceeds the size limit', { details: [{ path: '(body)', message: 'too large' }] });
const unsupported = (what: string): PdpError => new PdpError('unsupported_media_type', `unsupported ${what}`);

/**
 * Reads, decodes and parses a request body within `limit` bytes (before and after decompression).
 * - `application/json` and `application/*+json` (when `json` is accepted): an object or array at the top
 *   (strict, as express.json was), a UTF-8 byte order mark dropped, an empty body read as `{}`;
 * - `application/x-www-form-urlencoded` (when `form` is accepted): an object of strings, a repeated name an array;
 * - a missing or other content type: no body (`undefined`), which the route's validator refuses by name;
 * - a charset other than UTF-8, or a content-encoding other than identity, gzip and deflate: 415.
 */
export async function readBody(req: IncomingMessage, accepted: readonly BodyMedia[], limit: number, optional = false): Promise<unknown> {
  const type = parseContentType(req.headers['content-type']);
  const media = mediaOf(type?.essence, accepted);
  if (media === undefined) {
    // For an optional body, undefined means "left out" (its defaults): a body that is there in another media type
    // must not be taken for that.
    if (optional && hasBody(req)) throw unsupported(`media type ${type === undefined ? '(none)' : type.essence}: send application/json, or no body`);
    return undefined;
  }
  const charset = type?.charset;
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') throw unsupported('charset: request bodies are UTF-8');
  // Refusals that need no byte of the body come before any decoder exists (a decoder left behind could fail later).
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge();
  const bytes = await readLimited(req, decoderFor(req), limit);
  // Bytes that are not UTF-8 would be read as U+FFFD and decided on as if the caller had sent that (RFC 8259 §8.1).
  if (!isUtf8(bytes)) throw new PdpError('invalid_request', 'request body is not valid UTF-8', { details: [{ path: '(body)', message: 'not valid UTF-8' }] });
  const text = bytes.toString('utf8');
  return media === 'json' ? parseJson(text) : parseForm(text);
}

/** Whether the request carries a body: a non-zero Content-Length, or a chunked one. */
function hasBody(req: IncomingMessage): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = req.headers['content-length'];
  return length !== undefined && length.trim() !== '0';
}

/** `type/subtype` lowercased and the charset parameter, or undefined for a header that is not a media type. */
export function parseContentType(header: string | undefined): { essence: string; charset?: string } | undefined {
  if (header === undefined) return undefined;
  const [essence = '', ...params] = header.split(';');
  const out: { essence: string; charset?: string } = { essence: essence.trim().toLowerCase() };
  for (const param of params) {
    const eq = param.indexOf('=');
    if (eq < 0) continue;
    if (param.slice(0, eq).trim().toLowerCase() === 'charset') out.charset = param.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1').toLowerCase();
  }
  return out;
}

/** Which of the accepted media types the request's body is in, if any. */
export function bodyMediaOf(req: IncomingMessage, accepted: readonly BodyMedia[]): BodyMedia | undefined {
  return mediaOf(parseContentType(req.headers['content-type'])?.essence, accepted);
}

function mediaOf(essence: string | undefined, accepted: readonly BodyMedia[]): BodyMedia | undefined {
  if (essence === undefined) return undefined;
  if (accepted.includes('json') && (essence === 'application/json' || /^application\/[^/]+\+json$/.test(essence))) return 'json';
  if (accepted.includes('form') && essence === 'application/x-www-form-urlencoded') return 'form';
  return undefined;
}

/** The decompressor of the body's content-encoding, or undefined for identity. */
function decoderFor(req: IncomingMessage): Transform | undefined {
  const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  switch (encoding) {
    case 'identity':
      return undefined;
    case 'gzip':
    case 'x-gzip':
      return createGunzip();
    case 'deflate':
      return createInflate();
    default:
      throw unsupported('content-encoding');
  }
}

/**
 * Collects the body, decoded, up to `limit` bytes (after decoding). Every way the read can end settles it once: the
 * end of the body, an error or abort of the request (`finished`), an error of the decoder (its listener is never
 * removed: a decoder error nobody hears would end the process), the limit. On any early end the decoder is
 * unpiped and destroyed, never the request: the socket must still carry the error answer. Listeners rather than
 * for-await: leaving an async iterator early destroys that socket.
 */
function readLimited(req: IncomingMessage, decoder: Transform | undefined, limit: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const source: Readable = decoder ?? req;
    const settle = (err: Error | undefined): void => {
      if (settled) return;
      settled = true;
      source.off('data', onData);
      stopWatchingRequest();
      if (decoder !== undefined && err !== undefined) {
        req.unpipe(decoder);
        decoder.destroy();
      }
      if (err === undefined) resolve(Buffer.concat(chunks, size));
      else reject(isPdpError(err) ? err : new PdpError('invalid_request', 'request body could not be read', { cause: err, details: [{ path: '(body)', message: 'unreadable' }] }));
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        // Stop reading: the answer closes the connection (the rest of the body is not worth reading).
        req.pause();
        settle(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    // The request's end settles an identity read; its error or premature close settles any read.
    const stopWatchingRequest = finished(req, { readable: true, writable: false }, (err) => {
      if (err !== undefined && err !== null) settle(err);
      else if (decoder === undefined) settle(undefined);
    });
    source.on('data', onData);
    if (decoder !== undefined) {
      decoder.on('error', (err) => settle(err));
      decoder.on('end', () => settle(undefined));
      req.pipe(decoder);
    }
  });
}

function parseJson(text: string): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  if (body.length === 0) return {};
  const first = /^[\x20\x09\x0a\x0d]*(.)/.exec(body)?.[1];
  if (first !== '{' && first !== '[') {
    throw new PdpError('invalid_request', 'request body must be a JSON object or array', { details: [{ path: '(body)', message: 'not a JSON object or array' }] });
  }
  let value: unknown;
  try {
    value = JSON.parse(body) as unknown;
  } catch {
    throw new PdpError('invalid_request', 'request body is not valid JSON', { details: [{ path: '(body)', message: 'not valid JSON' }] });
  }
  return value;
}

/** Form fields as own properties (a field named `__proto__` is just a field); a repeated name is an array. */
export function parseForm(text: string): Record<string, string | string[]> {
  const fields = new Map<string, string | string[]>();
  let count = 0;
  for (const [name, value] of new URLSearchParams(text)) {
    // URLSearchParams reads a percent-encoded byte sequence that is not UTF-8 as U+FFFD: refused, as a JSON body's is.
    if ((name.includes('\ufffd') || value.includes('\ufffd')) && !strictlyDecodable(text)) {
      throw new PdpError('invalid_request', 'a form parameter is not valid UTF-8 once decoded', { details: [{ path: '(body)', message: 'not valid UTF-8' }] });
    }
    if (++count > FORM_PARAMETER_LIMIT) {
      throw new PdpError('invalid_request', 'too many form parameters', { details: [{ path: '(body)', message: `more than ${FORM_PARAMETER_LIMIT} parameters` }] });
    }
    const seen = fields.get(name);
    fields.set(name, seen === undefined ? value : [...(Array.isArray(seen) ? seen : [seen]), value]);
  }
  return Object.fromEntries(fields);
}

/** Whether every name and value of a form decodes as UTF-8 (`%FF` does not; a literal U+FFFD does). */
function strictlyDecodable(text: string): boolean {
  for (const piece of text.split(/[&=]/)) {
    try {
      decodeURIComponent(piece.replace(/\+/g, ' ').replace(/%(?![0-9a-f]{2})/gi, '%25'));
    } catch {
      return false;
    }
  }
  return true;
}
