import { createHash } from 'node:crypto';

/**
 * What a provider refuses, checked here before anything is sent (docs/providers.md, "Refused before sending"): a
 * request the provider would turn down is refused locally (`provider_failed`, the reason in the failure log), and an
 * identifier STS would refuse is put in a form it takes. The policy compiler warns about maps that can exceed the
 * size limits (`src/policy/provider-map-compiler.ts` keeps its own copy of the numbers: `policy/` imports nothing
 * of ours).
 */
export const PROVIDER_LIMITS = {
  /** AssumeRole `Policy`: the plaintext of the session policy (AssumeRole API reference). */
  stsPolicyChars: 2048,
  /** AssumeRole `Tags`: at most 50; a key 1 to 128 characters, a value 0 to 256, of `[\p{L}\p{Z}\p{N}_.:/=+\-@]`. */
  stsTags: 50,
  stsTagKeyChars: 128,
  stsTagValueChars: 256,
  /** `RoleSessionName` and `SourceIdentity`: 2 to 64 characters of `[\w+=,.@-]`. */
  stsNameChars: 64,
  /** A Credential Access Boundary: at most 10 rules (STS REST reference, `AccessBoundary`). */
  gcsBoundaryRules: 10,
  /** An access boundary rule's `availabilityCondition.expression`. */
  celExpressionChars: 2048,
} as const;

const STS_TAG_TEXT = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;
const STS_NAME = /^[\w+=,.@-]{2,64}$/;
/** Hex digits of SHA-256 in a derived STS name: 128 bits, no collision to fear. */
const HASH_HEX = 32;

/** Thrown for a request the provider would refuse, before it is sent; the message names the limit, never a secret. */
export class ProviderLimitRefused extends Error {
  override readonly name = 'ProviderLimitRefused';
}

/** Session tags STS takes (their number, each key and value), or a refusal naming the tag (never its value). */
export function checkStsTags(tags: Readonly<Record<string, string>>): void {
  const entries = Object.entries(tags);
  if (entries.length > PROVIDER_LIMITS.stsTags) throw new ProviderLimitRefused(`${entries.length} session tags: STS takes at most ${PROVIDER_LIMITS.stsTags}`);
  for (const [key, value] of entries) {
    if (key === '' || key.length > PROVIDER_LIMITS.stsTagKeyChars || !STS_TAG_TEXT.test(key)) throw new ProviderLimitRefused(`session tag key ${JSON.stringify(key.slice(0, 40))} is not what STS takes`);
    if (value.length > PROVIDER_LIMITS.stsTagValueChars || !STS_TAG_TEXT.test(value)) {
      throw new ProviderLimitRefused(`session tag ${key}'s value is not what STS takes (at most ${PROVIDER_LIMITS.stsTagValueChars} characters of [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@])`);
    }
  }
}

/**
 * `value` as a `RoleSessionName` or `SourceIdentity`: itself when STS takes it (2 to 64 characters of `[\w+=,.@-]`)
 * and it holds no `+`; otherwise a readable prefix (the characters STS takes, others as `-`, at most 31), `+`, and the
 * first 32 hex digits of the value's SHA-256. Deterministic (the same agent, the same identity in every CloudTrail
 * event), and two values never share one: a value used as is has no `+`, a derived one always has, and two derived
 * ones differ in their hash (cutting `agent_id` to 64 characters gave two agents with one prefix one identity).
 */
export function stsName(value: string): string {
  if (STS_NAME.test(value) && !value.includes('+')) return value;
  const hash = createHash('sha256').update(value, 'utf8').digest('hex').slice(0, HASH_HEX);
  const prefix = value.replace(/[^\w=,.@-]/g, '-').slice(0, PROVIDER_LIMITS.stsNameChars - 1 - HASH_HEX);
  return `${prefix}+${hash}`;
}
