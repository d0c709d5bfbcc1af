/**
 * Verifying the stored audit chain from the server (`POST /v1/audit/verify`), as `agent-pdp audit verify --config`
 * does from a shell: the whole chain from its start, every signed head in it checked with the audit public key, and
 * the newest head of the signed-heads file as an anchor the chain must still hold.
 *
 * The last verification is kept here, in memory: it is PER PROCESS (a restart forgets it; another worker of
 * `serve --workers N`, or another replica, has its own). One verification at a time per process: a second one asked
 * for while one runs is refused with `verification_running` (409).
 */
import { existsSync } from 'node:fs';
import { scanSignedHeads, type HeadKeys, type VerifyResult } from '../audit/index.js';
import { PdpError } from '../errors/pdp-error.js';
import type { Store } from '../store/index.js';
import type { VerificationV1, VerifyLineV1 } from '../wire/audit-console-v1.js';

export interface AuditVerificationOptions {
  store: Pick<Store, 'verifyStoredChain' | 'chainStart' | 'chainHead'>;
  now: () => Date;
  /** The audit public keys: each signed head in the chain is checked with them. Default: none (signed heads are then checked as events only). */
  headKeys?: HeadKeys;
  /** The signed-heads file (audit-signed-heads.jsonl of the key folder): its newest head anchors the chain. Default: none. */
  signedHeadsFile?: string;
}

/** Progress lines sent at most every this many events (and at the end), so a long chain is not a flood of lines. */
const PROGRESS_EVERY = 5_000;

/** The last verification and the running one, of this process (see the file comment). */
export class AuditVerification {
  private lastResult: VerificationV1 | null = null;
  private running = false;

  constructor(private readonly options: AuditVerificationOptions) {}

  /** The last verification this process finished, or null. */
  get last(): VerificationV1 | null {
    return this.lastResult;
  }

  /**
   * Starts a verification now, for `by` (a caller id), and returns its lines: progress lines, then the result line.
   * It runs to the end and is kept as the last verification even if nobody reads the lines. verification_running
   * when one is running already.
   */
  start(by: string): AsyncGenerator<VerifyLineV1> {
    if (this.running) throw new PdpError('verification_running', 'a verification of the audit chain is running already; try again when it has finished');
    this.running = true;
    const lines: VerifyLineV1[] = [];
    let wake: (() => void) | undefined;
    let finished = false;
    const push = (line: VerifyLineV1): void => {
      lines.push(line);
      wake?.();
    };
    const settle = (result: VerificationV1): void => {
      this.lastResult = result;
      this.running = false;
      finished = true;
      push({ type: 'result', ...result });
    };
    const startedAt = this.options.now().toISOString();
    this.run(by, startedAt, (verified, total) => push({ type: 'progress', verified, total })).then(settle, () =>
      // run() answers every failure itself; this is the last guard that the process is never left "running".
      settle({ ok: false, verified: 0, from_seq: 1, to_seq: 0, started_at: startedAt, finished_at: this.options.now().toISOString(), by, error: 'the verification did not finish: internal' }),
    );
    return (async function* () {
      for (;;) {
        const line = lines.shift();
        if (line !== undefined) {
          yield line;
          continue;
        }
        if (finished) return;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    })();
  }

  private async run(by: string, startedAt: string, progress: (verified: number, total: number) => void): Promise<VerificationV1> {
    let fromSeq = 1;
    let toSeq = 0;
    const finish = (fields: Pick<VerificationV1, 'ok' | 'verified'> & Partial<VerificationV1>): VerificationV1 => ({
      from_seq: fromSeq,
      to_seq: toSeq,
      started_at: startedAt,
      finished_at: this.options.now().toISOString(),
      by,
      ...fields,
    });
    try {
      const { store, headKeys, signedHeadsFile } = this.options;
      const start = await store.chainStart();
      fromSeq = start.start_seq;
      toSeq = Math.max(start.start_seq - 1, (await store.chainHead()).seq);
      // The signed-heads file, as `audit verify --config` reads it: every line a verifying head, seqs never going back.
      let anchors: Array<{ seq: number; hash: string }> = [];
      if (signedHeadsFile !== undefined && headKeys !== undefined && existsSync(signedHeadsFile)) {
        const scan = await scanSignedHeads(signedHeadsFile, headKeys);
        if (scan.problem !== undefined) {
          return finish({ ok: false, verified: 0, error: `line ${scan.problem.line} of the signed-heads file ${scan.problem.message}` });
        }
        // A head before the chain's start cannot be checked against it (pruned since): the chain's own records are.
        if (scan.newest !== null && scan.newest.seq >= start.start_seq - 1) anchors = [{ seq: scan.newest.seq, hash: scan.newest.hash }];
      }
      let reported = -1;
      const result: VerifyResult = await store.verifyStoredChain({
        anchors,
        ...(headKeys === undefined ? {} : { headKeys }),
        onProgress: (verified, total) => {
          if (reported < 0 || verified - reported >= PROGRESS_EVERY || verified === total) {
            reported = verified;
            progress(verified, total);
          }
        },
      });
      if (result.ok) {
        toSeq = Math.max(toSeq, result.last_seq);
        return finish({ ok: true, verified: result.count });
      }
      return finish({ ok: false, verified: result.verified, first_bad_seq: result.seq, error: result.message });
    } catch (err) {
      // A store that failed half-way: the chain was not verified, which is not the same as a break. No detail leaks.
      const code = err instanceof PdpError ? err.code : 'internal';
      return finish({ ok: false, verified: 0, error: `the verification did not finish: ${code}` });
    }
  }
}
