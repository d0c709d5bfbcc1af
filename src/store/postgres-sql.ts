/**
 * The statements that differ on PostgreSQL: the usage rollup's, which read inside `data` (sql.ts has SQLite's, with
 * its JSON functions), and the combined task read of the decide path (`selectTasksByIds`, read-batcher.ts). Positional `?` parameters like every statement (the driver renumbers them); a JavaScript array
 * is passed as a PostgreSQL array. No `?` operator of jsonb: the driver would renumber it.
 *
 * `data` is TEXT holding canonical JSON, read as `json` (`data::json`), not `jsonb`: json keeps the text as it is and
 * reads a member's value without unescaping it, so a payload whose strings hold `\u0000` (which jsonb refuses) is
 * read like any other; `->` gives a member as JSON, which is what the fold parses. A payload that is not JSON (no
 * writer makes one) fails the cast: the range is read again without it (`skip`, usage-rollup-ops.ts), as SQLite's
 * `json_valid` leaves it out; a lookup that meets one before the range (a token's earlier use, a task's earlier
 * decision) fails the rollup with store_unavailable, where SQLite skips it.
 */
export const PG_SQL = {
  /** The tasks of the given ids (a JavaScript array), for the decide path's combined read (postgres-store.ts). */
  selectTasksByIds: 'SELECT * FROM tasks WHERE id = ANY(?::text[])',
  /**
   * selectRollupGrants: seq, kind (1 token.issued, 0 decision), time, agent_id, task_id, jti and the members as the
   * text of one JSON array (`[integration, scopes, resource.type, issued_at]`, `[input.integration, input.scopes,
   * input.resource.type, input.task.type, result.denied_scopes]`); parameters: after, through, seqs to skip.
   */
  selectRollupGrants: `SELECT seq, kind, time, agent_id, task_id, jti, (CASE kind
      WHEN 1 THEN json_build_array(d -> 'integration', d -> 'scopes', d #> '{resource,type}', d -> 'issued_at')
      ELSE json_build_array(d #> '{input,integration}', d #> '{input,scopes}', d #> '{input,resource,type}', d #> '{input,task,type}',
        d #> '{result,denied_scopes}') END)::text AS members
    FROM (SELECT seq, CASE WHEN type = 'token.issued' THEN 1 ELSE 0 END AS kind, time, agent_id, task_id, jti, data::json AS d
      FROM audit_events WHERE seq > ? AND seq <= ? AND type IN ('token.issued', 'decision') AND agent_id IS NOT NULL
        AND seq <> ALL(?::bigint[])
      ORDER BY seq OFFSET 0) AS e
    ORDER BY seq`,
  /**
   * selectRollupUses: every token.used event's seq, time, jti, agent_id, task_id, `use` (`[action, outcome,
   * integration, scope, record.type]` as JSON text) and used_at (JSON); the fold's key is built in JavaScript (no NUL
   * in PostgreSQL text). Parameters: after, through, seqs to skip.
   */
  selectRollupUses: `SELECT seq, time, jti, agent_id, task_id,
      json_build_array(d -> 'action', d -> 'outcome', d -> 'integration', d -> 'scope', d #> '{record,type}')::text AS use,
      d -> 'used_at' AS used_at
    FROM (SELECT seq, time, jti, agent_id, task_id, data::json AS d FROM audit_events
      WHERE seq > ? AND seq <= ? AND type = 'token.used' AND agent_id IS NOT NULL AND seq <> ALL(?::bigint[])
      ORDER BY seq OFFSET 0) AS e
    ORDER BY seq`,
  /** The payloads of a range the rollup reads, to find those that are not JSON. Parameters: after, through. */
  selectRollupPayloads: `SELECT seq, data FROM audit_events
    WHERE seq > ? AND seq <= ? AND type IN ('token.issued', 'decision', 'token.used') AND agent_id IS NOT NULL`,
  /** The tokens table's issued_at of each jti of an array. */
  selectTokensIssuedAt: 'SELECT jti, issued_at FROM tokens WHERE jti = ANY(?::text[])',
  /**
   * For each jti of an array, the seq of its first use that counts (a resource server's report, a call the proxy
   * forwarded) up to a seq (null if none): whether a use was counted before any seq of the range follows from it.
   * Parameters: through, seqs to skip, jtis.
   */
  selectFirstCountedUses: `SELECT q.jti, (SELECT seq FROM audit_events WHERE jti = q.jti AND seq <= ? AND type = 'token.used'
      AND seq <> ALL(?::bigint[])
      AND (data::json ->> 'action' = 'resource_server' OR (data::json ->> 'action' = 'proxy' AND data::json ->> 'outcome' = 'forwarded'))
      ORDER BY seq LIMIT 1) AS seq
    FROM unnest(?::text[]) AS q(jti)`,
  /**
   * For each task of an array, the decisions whose `input.task.type` is a string: the last one up to `after`, and
   * every one in (after, through]; so the last one before any seq of the range is known. Parameters: tasks, after,
   * tasks, after, through, seqs to skip.
   */
  selectAssertedTaskTypes: `SELECT q.id AS task_id, b.seq, b.task_type FROM unnest(?::text[]) AS q(id)
      CROSS JOIN LATERAL (SELECT seq, data::json #> '{input,task,type}' AS task_type FROM audit_events
        WHERE task_id = q.id AND seq <= ? AND type = 'decision' AND json_typeof(data::json #> '{input,task,type}') = 'string'
        ORDER BY seq DESC LIMIT 1) AS b
    UNION ALL
    SELECT task_id, seq, data::json #> '{input,task,type}' FROM audit_events
      WHERE task_id = ANY(?::text[]) AND seq > ? AND seq <= ? AND type = 'decision' AND seq <> ALL(?::bigint[])
        AND json_typeof(data::json #> '{input,task,type}') = 'string'`,
  /** The tasks table's type of each id of an array. */
  selectTaskTypes: 'SELECT id, type FROM tasks WHERE id = ANY(?::text[])',
} as const;
