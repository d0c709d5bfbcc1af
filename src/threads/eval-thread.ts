/**
 * A worker thread from source text, the one way this codebase starts one (the WAL checkpointer, the usage rollup's
 * folds, the policy data loader). Their sources are scripts that call `require`, so they run in test (TypeScript, no
 * compiled worker file) and in dist alike.
 *
 * `new Worker(source, { eval: true })` runs the source as the main script would be run: under `node
 * --input-type=module` (an embedder's `-e` or stdin script) it is an ES module, with no `require`. Passing the thread
 * an execArgv without that flag is not the way out: an explicit execArgv refuses per-process flags such as
 * `--max-old-space-size`, which the inherited one lets through. So the source is wrapped to get its `require` itself,
 * from a dynamic `import()` of node:module: a module and a script alike have that.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

export function evalThread(source: string, options: Omit<WorkerOptions, 'eval'> = {}): Worker {
  return new Worker(evalThreadSource(source), { ...options, eval: true });
}

/**
 * `source` (a script using `require`) run with a `require` of its own, whether the thread reads it as a script or a
 * module. What it throws is thrown again outside the promise, as an uncaught exception: the Worker's 'error' event
 * fires with it whatever `--unhandled-rejections` the thread inherited (as a rejection, `warn` would only print it).
 */
export function evalThreadSource(source: string): string {
  return `import('node:module').then(({ createRequire }) => {
const require = createRequire(${JSON.stringify(import.meta.url)});
${source}
}).catch((error) => { setImmediate(() => { throw error; }); });`;
}
