/**
 * The export file: JSON Lines, UTF-8. Line 1 is a header saying where the chain starts; every other line is
 * one AuditEventV1 in canonical JSON, in seq order. Verifying a file needs nothing but the file (and, to
 * detect a rewritten or truncated tail, a head recorded elsewhere).
 *
 *   {"format":"agent-pdp-audit-export","start_prev_hash":"<hex>","start_seq":1,"v":1}
 *   {"data":{...},"hash":"<hex>","prev_hash":"<hex>","seq":1,"time":"...","type":"decision","v":1,...}
 *
 * Only an unfiltered run of consecutive events verifies: export with a seq range, not with type or agent filters.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { AuditEventV1 } from './audit-event.js';
import { canonicalJson } from './canonical-json.js';
import { ChainVerifier } from './chain-verifier.js';
import type { VerifyOptions, VerifyResult } from './chain-verifier.js';
import { isHash } from './hash-chain.js';

export const EXPORT_FORMAT = 'agent-pdp-audit-export';

export interface ExportHeaderV1 {
  format: typeof EXPORT_FORMAT;
  v: 1;
  /** seq of the first event in the file. */
  start_seq: number;
  /** prev_hash of the first event: GENESIS_HASH, the pruning checkpoint's hash, or the hash of start_seq - 1. */
  start_prev_hash: string;
}

/** The lines of an export file, each ending in "\n": the header, then one per event. */
export async function* exportJsonl(
  start: { start_seq: number; start_prev_hash: string },
  events: AsyncIterable<AuditEventV1> | Iterable<AuditEventV1>,
): AsyncGenerator<string> {
  const header: ExportHeaderV1 = { format: EXPORT_FORMAT, v: 1, ...start };
  yield canonicalJson(header) + '\n';
  for await (const event of events) yield canonicalJson(event) + '\n';
}

export type ExportVerifyResult = VerifyResult & { header?: ExportHeaderV1 };

/** Verifies the lines of an export (header first). Blank lines are ignored. */
export async function verifyExportLines(
  lines: AsyncIterable<string> | Iterable<string>,
  options: Pick<VerifyOptions, 'expectedLast'> = {},
): Promise<ExportVerifyResult> {
  let header: ExportHeaderV1 | undefined;
  let verifier: ChainVerifier | undefined;
  let lineNo = 0;
  for await (const line of lines) {
    lineNo++;
    if (line.trim() === '') continue;
    if (verifier === undefined) {
      header = parseHeader(line);
      if (header === undefined) {
        return { ok: false, kind: 'malformed', seq: 0, message: `line ${lineNo} is not an export header`, verified: 0 };
      }
      verifier = new ChainVerifier({ ...options, startSeq: header.start_seq, startPrevHash: header.start_prev_hash });
      continue;
    }
    let event: unknown;
    try {
      event = JSON.parse(line);
    } catch {
      event = `line ${lineNo} is not JSON`;
    }
    verifier.push(event);
    if (verifier.settled) break;
  }
  if (verifier === undefined) return { ok: false, kind: 'malformed', seq: 0, message: 'empty export', verified: 0 };
  return header === undefined ? verifier.end() : { ...verifier.end(), header };
}

/** Verifies an export file on disk, streaming it line by line. */
export async function verifyExportFile(
  path: string,
  options: Pick<VerifyOptions, 'expectedLast'> = {},
): Promise<ExportVerifyResult> {
  const input = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  try {
    return await verifyExportLines(lines, options);
  } finally {
    lines.close();
    input.destroy();
  }
}

function parseHeader(line: string): ExportHeaderV1 | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const h = value as Record<string, unknown>;
  if (h['format'] !== EXPORT_FORMAT || h['v'] !== 1) return undefined;
  if (!Number.isSafeInteger(h['start_seq']) || (h['start_seq'] as number) < 1) return undefined;
  if (!isHash(h['start_prev_hash'])) return undefined;
  return { format: EXPORT_FORMAT, v: 1, start_seq: h['start_seq'] as number, start_prev_hash: h['start_prev_hash'] };
}
