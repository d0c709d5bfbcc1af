/**
 * The V8 flags a long-running agent-pdp process runs with (`serve`, each of its workers, `proxy`), and the one check
 * of them. They are set on node's command line by whatever starts the process: the `agent-pdp` bin's shebang,
 * `make run`, the supervisor for its workers (`runSupervisor`), the benches. V8 reads them when it sets a heap up, so
 * a process cannot set them for itself once it runs; one started without them says so at start (a warning naming the
 * flag), and serves as before.
 *
 * `--no-memory-reducer`. V8's memory reducer starts a memory-reducing full collection when the heap has gone 100 s
 * without one (its watchdog), busy or not: it compacts the old generation and shrinks the young one to its minimum,
 * after which scavenges come several times as often until it has grown back. A server at a steady load allocates
 * young garbage and promotes little, so it may go minutes without a full collection, and the watchdog then fires
 * under full load: in the soak (`bench/soak-bench.ts`, 1,500 decides/s), at about 100 s of the server's life, the
 * longest event-loop stall of a 10-minute run (57.9 and 118 ms in two runs; the other 10 s windows 4–10 ms). A
 * server's heap is sized by its load, not by idle time: there is nothing for the reducer to give back. Full
 * collections still run when the old generation needs one.
 */
export const SERVER_NODE_FLAGS: readonly string[] = Object.freeze(['--no-memory-reducer']);

/** `--no_memory_reducer` and `--no-memory-reducer` are one flag to V8: compared with dashes. */
const normalised = (flag: string): string => {
  const eq = flag.indexOf('=');
  const name = eq === -1 ? flag : flag.slice(0, eq);
  return name.replaceAll('_', '-') + (eq === -1 ? '' : flag.slice(eq));
};

/** The server flags `execArgv` (node's own arguments, before the script) lacks, in SERVER_NODE_FLAGS order. */
export function missingServerFlags(execArgv: readonly string[] = process.execArgv): string[] {
  const given = new Set(execArgv.map(normalised));
  return SERVER_NODE_FLAGS.filter((flag) => !given.has(flag));
}

/** The warning a process started without them logs once at start (the message names them and the docs). */
export function missingFlagsWarning(missing: readonly string[]): { msg: string; fields: { missing_node_flags: readonly string[] } } {
  return {
    fields: { missing_node_flags: missing },
    msg: `node was started without ${missing.join(' ')}: V8 may pause this server for a memory-reducing collection under load (start it as \`node ${SERVER_NODE_FLAGS.join(' ')} dist/cli/main.js …\` or through the agent-pdp bin; docs/scaling.md, "Process flags")`,
  };
}
