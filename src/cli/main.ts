#!/usr/bin/env node
import { runCli } from './run-cli.js';

/** `agent-pdp <command> [options]`: the process around `runCli`; no business rules live here. */
runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`agent-pdp: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
