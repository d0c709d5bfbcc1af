/** Shared test material for the issuer: temp key folders, a frozen clock, a base token request, forgery helpers. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import type { JWTHeaderParameters } from 'jose';
import type { KeyRing } from '../../src/issuer/key-ring.js';
import type { IssueAccessTokenInput } from '../../src/issuer/token-issuer.js';

export const NOW = new Date('2025-06-01T12:00:00.000Z');
export const NOW_S = Math.floor(NOW.getTime() / 1000);
export const ISSUER = 'https://pdp.example.com';
export const MAX_TTL = 3600;

const roots: string[] = [];

/** A key folder path inside a fresh temp dir (the folder itself does not exist yet). */
export function tempKeyDir(): string {
  const root = mkdtempSync(join(tmpdir(), 'agent-pdp-issuer-'));
  roots.push(root);
  return join(root, 'keys');
}

export function removeTempDirs(): void {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
}

export function tokenRequest(keyRing: KeyRing, overrides: Partial<IssueAccessTokenInput> = {}): IssueAccessTokenInput {
  return {
    keyRing,
    issuer: ISSUER,
    agent_id: 'support-resolver',
    caller_id: 'support-middleware',
    integration: 'crm',
    scopes: ['tickets:write', 'tickets:read'],
    resource: { type: 'customer', id: '1234' },
    task_id: 'task-42',
    decision_id: 'dec-7',
    ttl_seconds: 300,
    now: NOW,
    ...overrides,
  };
}

/** Claims a well-formed token for `tokenRequest` would carry, for hand-signed variants. */
export function claimsFor(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: ISSUER,
    sub: 'support-resolver',
    aud: 'crm',
    client_id: 'support-middleware',
    iat: NOW_S,
    exp: NOW_S + 300,
    jti: 'AAAAAAAAAAAAAAAAAAAAAA',
    scope: 'tickets:read tickets:write',
    authorization_details: [{ type: 'crm', actions: ['tickets:read', 'tickets:write'], identifier: '1234', resource_type: 'customer' }],
    task_id: 'task-42',
    decision_id: 'dec-7',
    ...overrides,
  };
}

/** Signs `claims` with the ring's active key; the header defaults to a correct one and can be overridden. */
export async function signWith(keyRing: KeyRing, claims: Record<string, unknown>, header: Partial<JWTHeaderParameters> = {}): Promise<string> {
  const { alg, kid, key } = keyRing.signingKey;
  return new SignJWT(claims).setProtectedHeader({ alg, typ: 'at+jwt', kid, ...header }).sign(key);
}

export const b64json = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

export function decodePart(token: string, index: 0 | 1): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[index] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}
