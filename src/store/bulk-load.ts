/**
 * Bulk loading for benchmarks only (bench/suggest-bench.ts): millions of well-formed rows written straight into the
 * tasks, tokens and audit_events tables of a migrated database file, in large transactions, with neither the
 * writer queue nor the chain, stored as the store stores them (a decision event's data compact, hashes as bytes). The
 * `prev_hash` / `hash` of the events are placeholders (the seq's digits), so a file loaded this way does NOT verify (`agent-pdp audit verify` fails on its first event), and no
 * decisions rows are written (a token's decision_id names none). Never used by the PDP: nothing in src/ imports it.
 */
import type { Database, Statement } from 'better-sqlite3';
import type { AuditEventType } from '../audit/index.js';
import { compactDecisionData } from './decision-codec.js';
import { migrate } from './migrations.js';
import { openSqlite } from './sqlite-connection.js';

export interface BulkTask {
  id: string;
  agent_id: string;
  type: string;
  /** Canonical JSON of the context. */
  context: string;
  registered_by: string;
  registered_at: string;
  expires_at: string;
  status: 'active' | 'completed' | 'expired';
}

export interface BulkToken {
  jti: string;
  decision_id: string;
  caller_id: string;
  agent_id: string;
  task_id: string | null;
  scopes: readonly string[];
  audience: string | null;
  issued_at: string;
  expires_at: string;
}

/** An event as a writer would hand it over, its data already canonical JSON; the loader assigns seq and hashes. */
export interface BulkEvent {
  time: string;
  type: AuditEventType;
  decision_id?: string;
  jti?: string;
  task_id?: string;
  agent_id?: string;
  caller_id?: string;
  data: string;
}

export interface BulkLoaderOptions {
  /** Rows per transaction. Default 100,000. */
  rowsPerTransaction?: number;
}

/** Appends rows after whatever the file holds; `close()` commits the rest. One loader per file at a time. */
export class BulkLoader {
  private readonly db: Database;
  private readonly insertTask: Statement;
  private readonly insertToken: Statement;
  private readonly insertEvent: Statement;
  private readonly perTransaction: number;
  private pending = 0;
  private seq: number;

  static open(path: string, options: BulkLoaderOptions = {}): BulkLoader {
    return new BulkLoader(path, options);
  }

  private constructor(path: string, options: BulkLoaderOptions) {
    this.perTransaction = options.rowsPerTransaction ?? 100_000;
    this.db = openSqlite(path);
    migrate(this.db, new Date().toISOString());
    // A benchmark's scratch file: no decisions rows (see the file comment), nothing synced until the end.
    this.db.pragma('foreign_keys = OFF');
    this.db.pragma('synchronous = OFF');
    this.db.pragma('cache_size = -262144');
    this.insertTask = this.db.prepare(`INSERT INTO tasks (id, agent_id, type, context, registered_by, registered_at, expires_at, status)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
    this.insertToken = this.db.prepare(`INSERT INTO tokens (jti, decision_id, caller_id, agent_id, task_id, scopes, audience, issued_at, expires_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.insertEvent = this.db.prepare(`INSERT INTO audit_events (seq, v, time, type, decision_id, jti, task_id, agent_id, caller_id, trace_id, data, prev_hash, hash)
      VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)`);
    this.seq = (this.db.prepare('SELECT MAX(seq) AS seq FROM audit_events').get() as { seq: number | null }).seq ?? 0;
    this.db.exec('BEGIN');
  }

  /** The seq of the last event loaded. */
  get lastSeq(): number {
    return this.seq;
  }

  task(t: BulkTask): void {
    this.insertTask.run(t.id, t.agent_id, t.type, t.context, t.registered_by, t.registered_at, t.expires_at, t.status);
    this.row();
  }

  token(t: BulkToken): void {
    this.insertToken.run(t.jti, t.decision_id, t.caller_id, t.agent_id, t.task_id, JSON.stringify(t.scopes), t.audience, t.issued_at, t.expires_at);
    this.row();
  }

  event(e: BulkEvent): void {
    const seq = ++this.seq;
    const data = e.type === 'decision' ? storedDecisionData(e) : e.data;
    this.insertEvent.run(seq, e.time, e.type, e.decision_id ?? null, e.jti ?? null, e.task_id ?? null, e.agent_id ?? null, e.caller_id ?? null, data, placeholderHash(seq - 1), placeholderHash(seq));
    this.row();
  }

  /** Commits, checkpoints the WAL into the file and closes. */
  close(): void {
    this.db.exec('COMMIT');
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.close();
  }

  private row(): void {
    if (++this.pending < this.perTransaction) return;
    this.db.exec('COMMIT');
    this.db.exec('BEGIN');
    this.pending = 0;
  }
}

/** Stored as the SQLite store stores a hash: its 32 bytes. */
function placeholderHash(seq: number): Buffer {
  return Buffer.from(seq.toString(16).padStart(64, '0'), 'hex');
}

/** A decision event's data as the store writes it (decision-codec.ts), so that what reads the trail reads real rows. */
function storedDecisionData(e: BulkEvent): string {
  const data = JSON.parse(e.data) as { input?: unknown; result?: unknown; policy_revision?: unknown; approvers?: unknown };
  if (typeof data.policy_revision !== 'string') return e.data;
  const members = Object.keys(data).filter((k) => k !== 'input' && k !== 'result' && k !== 'policy_revision' && k !== 'approvers');
  if (members.length > 0 || (data.approvers !== undefined && !Array.isArray(data.approvers))) return e.data;
  const envelope = { time: e.time, decision_id: e.decision_id ?? null, agent_id: e.agent_id ?? null, caller_id: e.caller_id ?? null, task_id: e.task_id ?? null };
  return compactDecisionData(envelope, data.input, data.result, data.policy_revision, data.approvers as string[] | undefined) ?? e.data;
}
