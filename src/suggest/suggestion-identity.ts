/*
 * What makes a suggestion the same suggestion from one run to the next (its id), what makes its evidence the same
 * evidence (its evidence_hash: a dismissed suggestion stays dismissed until this changes), and how confident it is.
 */
import { createHash } from 'node:crypto';
import { canonicalJson, sha256Hex } from '../audit/index.js';
import type { Confidence, SuggestionKind, SuggestionThresholds, UseSource } from './suggestion-types.js';
import type { YamlEdit } from './yaml-edit.js';

/** `sg_` and 24 hex digits of SHA-256 over (agent, integration, kind, target): stable across runs. */
export function suggestionId(agent: string, integration: string, kind: SuggestionKind, target: string): string {
  return `sg_${sha256(canonicalJson([agent, integration, kind, target])).slice(0, 24)}`;
}

/**
 * SHA-256 of what the operator decided on: the edit it proposes, how confident it is and which sources of use
 * evidence it rests on. Counts and dates are left out on purpose: every day adds tokens, and a suggestion someone
 * dismissed must not come back for that alone. It comes back when the proposal changes (another task type, another
 * TTL, the policy it edits changed), when its confidence rises or falls, or when a new source of evidence appears.
 */
export function evidenceHash(input: { kind: SuggestionKind; target: string; integration: string; edits: readonly YamlEdit[]; confidence: Confidence; sources: readonly UseSource[] }): string {
  return sha256(canonicalJson({ ...input, edits: [...input.edits], sources: [...input.sources] }));
}

/**
 * `high` from twice `min_days` and five times `min_tokens` up, `medium` from one and a half times and twice, else
 * `low` (which still meets the thresholds: below them nothing is suggested). One step lower when the integration's
 * only use evidence is resource servers' reports: they are best effort, so a dropped report reads as no use.
 */
export function confidenceOf(days: number, samples: number, sources: readonly UseSource[], t: SuggestionThresholds): Confidence {
  const dayLevel = days >= 2 * t.min_days ? 2 : days >= 1.5 * t.min_days ? 1 : 0;
  const sampleLevel = samples >= 5 * t.min_tokens ? 2 : samples >= 2 * t.min_tokens ? 1 : 0;
  let level = Math.min(dayLevel, sampleLevel);
  if (!sources.includes('proxy')) level = Math.max(0, level - 1);
  return (['low', 'medium', 'high'] as const)[level] as Confidence;
}

/** Lowercase hex SHA-256 of a text's UTF-8 bytes, or of bytes. */
export function sha256(data: string | Uint8Array): string {
  return typeof data === 'string' ? sha256Hex(data) : createHash('sha256').update(data).digest('hex');
}
