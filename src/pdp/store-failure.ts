import { isPdpError, PdpError } from '../errors/pdp-error.js';

/**
 * Runs a store read and keeps its failures coded: a PdpError passes as it is, anything else the store throws
 * (a closed connection, a driver TypeError) becomes `store_unavailable` (503), never an `internal` 500.
 */
export async function readStore<T>(read: () => T | Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (cause) {
    if (isPdpError(cause)) throw cause;
    throw new PdpError('store_unavailable', 'the store could not be read', { cause });
  }
}
