import { sha256Hex } from '../audit/index.js';

/**
 * The API keys of the shipped dev config (`agent-pdp.dev.yaml`), documented in the README. Anyone can read them,
 * so the server warns loudly when a caller uses one, and refuses to start with one when NODE_ENV=production.
 */
export const DEV_KEYS = [
  'dev-pep-key',
  'dev-trusted-pep-key',
  'dev-orchestrator-key',
  'dev-auditor-key',
  'dev-admin-key',
  'dev-resource-key',
  'dev-approver-key',
] as const;

/** How a caller's key is stored (`key_sha256`): the one SHA-256 of text the audit chain uses too. */
export { sha256Hex };

const DEV_KEY_HASHES: ReadonlySet<string> = new Set(DEV_KEYS.map(sha256Hex));

export function isDevKeyHash(keySha256: string): boolean {
  return DEV_KEY_HASHES.has(keySha256.toLowerCase());
}
