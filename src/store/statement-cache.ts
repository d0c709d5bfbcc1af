/**
 * Statements an operation module prepares on first use, once per connection (the ones `sql.ts` does not hold:
 * migration 7's notifications, suggestion withdrawal, the outbox claim with its notification column).
 */
import type { Database, Statement } from 'better-sqlite3';

const cache = new WeakMap<Database, Map<string, Statement>>();

export function statement(db: Database, sql: string): Statement {
  let byText = cache.get(db);
  if (byText === undefined) {
    byText = new Map();
    cache.set(db, byText);
  }
  let prepared = byText.get(sql);
  if (prepared === undefined) {
    prepared = db.prepare(sql);
    byText.set(sql, prepared);
  }
  return prepared;
}
