import { defineConfig } from 'vitest/config';

/** The store test files that test the `Store` contract (not SQLite's own behaviour): run on both engines. */
const POSTGRES_STORE_SUITE = [
  'test/store/access-requests.test.ts',
  'test/store/audit-listing.test.ts',
  'test/store/audit-tamper.test.ts',
  'test/store/console-sessions.test.ts',
  'test/store/decision-once.test.ts',
  'test/store/decision-search.test.ts',
  'test/store/group-commit.test.ts',
  'test/store/outbox.test.ts',
  'test/store/proxy-use.test.ts',
  'test/store/redemption.test.ts',
  'test/store/revocation-feed.test.ts',
  'test/store/signed-heads.test.ts',
  'test/store/store-lifecycle.test.ts',
  'test/store/suggestions.test.ts',
  'test/store/tasks.test.ts',
  'test/store/usage-batch.test.ts',
  'test/store/usage-rollup.test.ts',
  'test/store/usage-strategies.test.ts',
];

export default defineConfig({
  test: {
    environment: 'node',
    // One temp folder per run (TMPDIR for every worker and child process), removed at the end; one PostgreSQL cluster
    // per run (AGENT_PDP_TEST_PG_URL), stopped at the end.
    globalSetup: ['test/support/temp-root.ts', 'test/support/postgres-cluster.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: keep the pool small so server tests on loopback are not starved.
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'sqlite', include: ['test/**/*.test.ts'] } },
      // The store's contract again, on PostgreSQL: the same test files, the fixtures open a PostgreSQL store
      // (test/store/store-fixtures.ts). Files about SQLite itself (WAL, file permissions, the usage fold's worker
      // threads reading the file) are left out.
      {
        extends: true,
        test: {
          name: 'postgres',
          include: POSTGRES_STORE_SUITE,
          env: { AGENT_PDP_TEST_STORE_ENGINE: 'postgres' },
        },
      },
    ],
  },
});
