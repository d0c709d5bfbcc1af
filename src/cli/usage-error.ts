import { PdpError } from '../errors/pdp-error.js';

/**
 * A command line the command cannot run as given (a missing or extra argument, an option's value out of its
 * range or format): exit 2, as for an option parseArgs refuses, rather than 1 (refused or failed while running).
 */
export class UsageError extends PdpError {
  constructor(message: string) {
    super('invalid_request', message);
  }
}
