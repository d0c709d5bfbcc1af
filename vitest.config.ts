import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    // One temp folder per run (TMPDIR for every worker and child process), removed at the end.
    globalSetup: ['test/support/temp-root.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: keep the pool small so server tests on loopback are not starved.
    maxWorkers: 2,
  },
});
