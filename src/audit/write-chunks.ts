/**
 * Writing an export to a socket or a file with backpressure: whenever `write()` says the destination's buffer is
 * full, stop reading the source until it drains. A slow reader then holds up the store cursor (one page of 500
 * events at a time), never the process's memory.
 */
import type { Writable } from 'node:stream';

/**
 * Writes every chunk to `out`, waiting for 'drain' when its buffer is full. Returns false, having stopped reading
 * `chunks` (its generator is closed), when `out` is closed or destroyed first (a client that went away). Errors of
 * the source propagate. Does not end `out`.
 */
export async function writeChunks(chunks: AsyncIterable<string>, out: Writable): Promise<boolean> {
  for await (const chunk of chunks) {
    if (isGone(out)) return false;
    if (!out.write(chunk) && !(await drained(out))) return false;
  }
  return !isGone(out);
}

function isGone(out: Writable): boolean {
  return out.destroyed || out.writableEnded || out.closed;
}

function drained(out: Writable): Promise<boolean> {
  return new Promise((resolve) => {
    const settle = (ok: boolean): void => {
      out.off('drain', onDrain);
      out.off('close', onClose);
      out.off('error', onClose);
      resolve(ok);
    };
    const onDrain = (): void => settle(true);
    const onClose = (): void => settle(false);
    out.on('drain', onDrain);
    out.on('close', onClose);
    out.on('error', onClose);
  });
}
