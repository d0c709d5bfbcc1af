/**
 * The V8 flags a long-running agent-pdp process runs with (`serve`, each of its workers, `proxy`), and the one check
 * of them. They are set on node's command line by whatever starts the process: `make run`, the supervisor for its
 * workers (`runSupervisor`), the benches and the demo, and an operator's own command line (docs/scaling.md, "Process
 * flags"). V8 reads them when it sets a heap up, so a process cannot set them for itself once it runs, and
 * `NODE_OPTIONS` carries no V8 flags but the few node lists. The bin keeps a plain `#!/usr/bin/env node`: a flag in a
 * shebang needs `env -S`, which BusyBox (Alpine), OpenBSD and older coreutils refuse, and every subcommand would
 * then fail there. A process started without them says so at start (a warning naming the flag) and serves as before.
 *
 * `--no-memory-reducer`. V8's memory reducer starts a memory-reducing full collection when the heap has gone 100 s
 * without one (its watchdog), busy or not: it compacts the old generation and shrinks the young one to its minimum,
 * after which scavenges come several times as often until it has grown back. A server at a steady load allocates
 * young garbage and promotes little, so it may go minutes without a full collection, and the watchdog then fires
 * under full load: in the soak (`bench/soak-bench.ts`, 1,500 decides/s), at about 100 s of the server's life, the
 * longest event-loop stall of a 10-minute run (57.9 and 118 ms in two runs, whose other 10 s windows mostly read
 * 4–10 ms). A server's heap is sized by its load, not by idle time: there is nothing for the reducer to give back.
 * Full collections still run when the old generation needs one.
 */
export const SERVER_NODE_FLAGS: readonly string[] = Object.freeze(['--no-memory-reducer']);

/** A V8 switch as V8 reads it: dashes and underscores alike; `--no-x` and `--nox` turn x off, `--x` on. */
function switchOf(arg: string): { name: string; on: boolean } | undefined {
  if (!arg.startsWith('--') || arg.includes('=')) return undefined;
  const name = arg.slice(2).replaceAll('_', '-');
  if (name.startsWith('no-')) return { name: name.slice(3), on: false };
  if (name.startsWith('no')) return { name: name.slice(2), on: false };
  return { name, on: true };
}

/**
 * The server flags `execArgv` (node's own arguments, before the script) lacks, in SERVER_NODE_FLAGS order. The last
 * word on a switch wins, as with V8: `--no-memory-reducer --memory-reducer` leaves the reducer on.
 */
export function missingServerFlags(execArgv: readonly string[] = process.execArgv): string[] {
  const last = new Map<string, boolean>();
  for (const arg of execArgv) {
    const flag = switchOf(arg);
    if (flag !== undefined) last.set(flag.name, flag.on);
  }
  return SERVER_NODE_FLAGS.filter((flag) => {
    const wanted = switchOf(flag) as { name: string; on: boolean };
    return last.get(wanted.name) !== wanted.on;
  });
}

/**
 * At a serving process's start: one warning when node was started without the server flags, naming them and where
 * the docs say why (the process serves as before).
 */
export function warnIfMissingServerFlags(logger: { warn(fields: object, msg: string): void }, execArgv: readonly string[] = process.execArgv): void {
  const missing = missingServerFlags(execArgv);
  if (missing.length === 0) return;
  logger.warn(
    { missing_node_flags: missing },
    `node was started without ${missing.join(' ')}: V8 may pause this server for a memory-reducing collection under load (start it as \`node ${SERVER_NODE_FLAGS.join(' ')} dist/cli/main.js …\`; docs/scaling.md, "Process flags")`,
  );
}
