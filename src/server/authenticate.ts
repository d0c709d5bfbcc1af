import { createHash } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { CallerConfig, CallerRole } from '../config/config-types.js';
import { PdpError } from '../errors/pdp-error.js';

declare module 'express-serve-static-core' {
  interface Request {
    caller?: CallerConfig;
  }
}

export interface AuthFailure {
  reason: 'missing' | 'malformed' | 'unknown_key';
  path: string;
  ip: string | undefined;
}

/**
 * `Authorization: Bearer <api key>`. Only the SHA-256 of each key is configured; the presented key is hashed
 * and looked up, and never logged, echoed or stored.
 */
export function authenticate(callers: readonly CallerConfig[], onFailure: (f: AuthFailure) => void): RequestHandler {
  const resolve = callerResolver(callers);
  return (req, _res, next) => {
    const result = resolve(req.headers.authorization);
    if (typeof result === 'string') {
      onFailure({ reason: result, path: req.path, ip: req.ip });
      return next(new PdpError('unauthenticated', 'missing or invalid API key'));
    }
    req.caller = result;
    next();
  };
}

/** The caller an `Authorization` header names, or why it names none. Shared by every HTTP entry point. */
export function callerResolver(callers: readonly CallerConfig[]): (header: string | undefined) => CallerConfig | AuthFailure['reason'] {
  const byHash = new Map(callers.map((c) => [c.key_sha256, c]));
  return (header) => {
    if (header === undefined) return 'missing';
    const match = /^Bearer ([\x21-\x7e]{1,512})$/.exec(header);
    if (!match?.[1]) return 'malformed';
    return byHash.get(createHash('sha256').update(match[1], 'utf8').digest('hex')) ?? 'unknown_key';
  };
}

/** Gate a route to callers of the given roles; authenticate() must run first. */
export function requireRole(...roles: CallerRole[]): RequestHandler {
  const allowed = new Set(roles);
  return (req, _res, next) => {
    const caller = req.caller;
    if (!caller) return next(new PdpError('unauthenticated', 'missing or invalid API key'));
    if (!allowed.has(caller.role)) {
      return next(new PdpError('forbidden_role', `role ${caller.role} may not use this endpoint`));
    }
    next();
  };
}

export function callerOf(req: { caller?: CallerConfig }): CallerConfig {
  if (!req.caller) throw new PdpError('unauthenticated', 'missing or invalid API key');
  return req.caller;
}
