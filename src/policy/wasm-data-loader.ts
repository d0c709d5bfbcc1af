import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Worker } from 'node:worker_threads';
import { evalThread } from '../threads/eval-thread.js';

/**
 * Sets a large data document into an opa-wasm policy without holding the event loop.
 *
 * OPA's `setData` parses the JSON inside the WASM in one synchronous call (`opa_json_parse`), building a value tree
 * of about 9.6 bytes per byte of JSON: 530 MB for the 55 MB of 100,000 agents. On this VM most of its 3 s is the
 * first touch of those pages (about 6 ms per MB; writing the same 530 MB again takes 0.05 s), and the parse itself
 * 0.8 s; a reloading server answered nothing meanwhile.
 *
 * Here the policy's memory is shared (the module's memory import is declared shared, {@link withSharedMemory}), and
 * a worker thread runs exactly the calls `setData` makes (`opa_heap_ptr_set` to the SDK's base, `opa_malloc`, the
 * copy, `opa_json_parse`) on a second instance of the module over the same memory. This thread only copies the JSON
 * into pages the worker has already touched, then points the SDK at the value the worker built.
 *
 * Why the worker's instance may stand in for this one: all of the module's mutable state is in linear memory (the
 * heap's pointers and free lists are C statics; the only mutable global is the stack pointer, back at its start
 * between calls). Instantiating the module again re-applies its data segments to that memory, so the worker first
 * writes back this instance's bytes below its heap pointer, as they were after the SDK's constructor: from there,
 * the same calls leave the same memory as `setData` here would. `test/policy/wasm-data-loader.test.ts` checks the
 * answers against an in-process `setData`.
 */
export interface SdkPolicyState {
  mem: { readonly buffer: ArrayBufferLike; grow(pages: number): number };
  wasmInstance: { exports: Record<string, unknown> };
  dataAddr: number;
  dataHeapPtr: number;
  baseHeapPtr: number;
}

/** Bytes of JSON copied per event-loop turn (into pages already touched: a few milliseconds). */
const COPY_SLICE_BYTES = 8 * 1024 * 1024;

type WorkerReply = { malloced: number } | { parsed: { dataAddr: number; dataHeapPtr: number } } | { error: string };

/**
 * The nice value of the loader's thread on Linux (0 normal, 19 lowest): under contention it gets about a tenth of a
 * core against a busy thread at 0, so a reload under saturating traffic takes longer rather than stalling answers;
 * alone on a core (a cold start) it runs at full speed.
 */
const LOADER_NICE = 10;

/**
 * The worker, evaluated from this string (CommonJS), so the same code runs from `dist/` and under the tests'
 * TypeScript loader. Its imports are the SDK's: `opa_abort` throws the C string, as the SDK's does; builtins are
 * never called while JSON is parsed. It errs as `setData` would in-process (opa_abort's message, the SDK's "failed
 * to parse json value", a RangeError when the memory cannot grow), as a message.
 */
const WORKER_SOURCE = `
const { parentPort, workerData: w } = require('node:worker_threads');
const memory = w.memory;
const cString = (addr) => {
  const i8 = new Int8Array(memory.buffer);
  let s = '';
  while (i8[addr] !== 0) s += String.fromCharCode(i8[addr++]);
  return s;
};
const describe = (thrown) => typeof thrown === 'string' ? thrown : thrown instanceof Error ? thrown.message : String(thrown);
const noBuiltins = () => { throw 'opa-wasm: a builtin was called while data was parsed'; };
// A reload runs beside the decisions the main thread answers: this thread yields the CPU to them. On Linux the nice
// value is a thread's own, and setpriority(0) is the calling thread's; elsewhere it would be the whole process'.
if (process.platform === 'linux') {
  try {
    require('node:os').setPriority(0, ${LOADER_NICE});
  } catch {}
}
try {
  const instance = new WebAssembly.Instance(w.module, { env: {
    memory, opa_abort: (addr) => { throw cString(addr); }, opa_println: () => undefined,
    opa_builtin0: noBuiltins, opa_builtin1: noBuiltins, opa_builtin2: noBuiltins, opa_builtin3: noBuiltins, opa_builtin4: noBuiltins,
  } });
  const ex = instance.exports;
  new Uint8Array(memory.buffer).set(w.before, 0);
  ex.opa_heap_ptr_set(w.base);
  const addr = ex.opa_malloc(w.length);
  // Touch the pages the JSON goes to here, so the main thread's copy into them is fast.
  new Uint8Array(memory.buffer, addr, w.length).fill(0);
  parentPort.once('message', () => {
    try {
      const dataAddr = ex.opa_json_parse(addr, w.length);
      if (dataAddr === 0) throw 'failed to parse json value';
      parentPort.postMessage({ parsed: { dataAddr, dataHeapPtr: ex.opa_heap_ptr_get() } });
    } catch (thrown) {
      parentPort.postMessage({ error: describe(thrown) });
    }
  });
  parentPort.postMessage({ malloced: addr });
} catch (thrown) {
  parentPort.postMessage({ error: describe(thrown) });
}
`;

/**
 * `policy.setData(data)`, with the parse in a worker thread. `policy` was loaded from `module` (a module of
 * {@link withSharedMemory}) with a shared memory, and nothing has been evaluated in it yet. Rejects with the SDK's
 * error text as the message.
 */
export async function setDataOffThread(policy: SdkPolicyState, module: object, data: Uint8Array): Promise<void> {
  const exports = policy.wasmInstance.exports as { opa_heap_ptr_get(): number };
  const before = new Uint8Array(policy.mem.buffer, 0, exports.opa_heap_ptr_get()).slice();
  const worker = evalThread(WORKER_SOURCE, {
    workerData: { module, memory: policy.mem, before, base: policy.baseHeapPtr, length: data.byteLength },
  });
  try {
    const replies = workerReplies(worker);
    const addr = await replies.next();
    if (!('malloced' in addr)) throw new Error('error' in addr ? addr.error : 'the data loader thread did not answer');
    for (let offset = 0; offset < data.byteLength; offset += COPY_SLICE_BYTES) {
      if (offset > 0) await nextTurn();
      // The buffer is taken again for every slice: the worker may have grown the memory.
      new Uint8Array(policy.mem.buffer).set(data.subarray(offset, offset + COPY_SLICE_BYTES), addr.malloced + offset);
    }
    worker.postMessage('parse');
    const parsed = await replies.next();
    if (!('parsed' in parsed)) throw new Error('error' in parsed ? parsed.error : 'the data loader thread did not answer');
    policy.dataAddr = parsed.parsed.dataAddr;
    policy.dataHeapPtr = parsed.parsed.dataHeapPtr;
  } finally {
    await worker.terminate();
  }
}

/** The worker's messages in order; an error or an early exit ends them with an `{ error }`. */
function workerReplies(worker: Worker): { next(): Promise<WorkerReply> } {
  const queue: WorkerReply[] = [];
  let waiting: ((reply: WorkerReply) => void) | undefined;
  const push = (reply: WorkerReply): void => {
    if (waiting) {
      const resolve = waiting;
      waiting = undefined;
      resolve(reply);
    } else queue.push(reply);
  };
  worker.on('message', push);
  worker.once('error', (err: Error) => push({ error: err.message }));
  worker.once('exit', (code) => push({ error: `the data loader thread exited with code ${code}` }));
  return {
    next: () => {
      const queued = queue.shift();
      return queued !== undefined ? Promise.resolve(queued) : new Promise((resolve) => (waiting = resolve));
    },
  };
}

/** The project's TypeScript libraries do not describe WebAssembly; only this is used of it here. */
declare const WebAssembly: { compile(bytes: Uint8Array): Promise<object> };

/** The module of {@link withSharedMemory}, compiled once for this thread's instance and the worker's. */
export function compileWithSharedMemory(wasm: Uint8Array, maximumPages: number): Promise<object> {
  return WebAssembly.compile(withSharedMemory(wasm, maximumPages));
}

/**
 * The module's bytes with its memory import (`env.memory`) declared shared, with `maximumPages` as its maximum (a
 * shared memory must have one). Nothing else changes: OPA's code does not use atomics, and plain loads and stores
 * behave the same on shared memory. Throws if the module imports no memory.
 */
export function withSharedMemory(wasm: Uint8Array, maximumPages: number): Uint8Array {
  const bytes = Buffer.from(wasm.buffer, wasm.byteOffset, wasm.byteLength);
  let p = 8;
  const leb = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[p++] as number;
      result += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) return result;
    }
  };
  const name = (): string => {
    const length = leb();
    p += length;
    return bytes.toString('utf8', p - length, p);
  };
  const limits = (): { flags: number; initial: number } => {
    const flags = bytes[p++] as number;
    const initial = leb();
    if ((flags & 1) !== 0) leb();
    return { flags, initial };
  };
  while (p < bytes.length) {
    const sectionAt = p;
    const id = bytes[p++];
    const size = leb();
    const start = p;
    const end = p + size;
    if (id !== IMPORT_SECTION) {
      p = end;
      continue;
    }
    const count = leb();
    for (let i = 0; i < count; i++) {
      const module = name();
      const field = name();
      const kind = bytes[p++];
      if (kind === 0) leb(); // function: type index
      else if (kind === 1) { // table: element type, limits
        p++;
        limits();
      } else if (kind === 3) p += 2; // global: value type, mutability
      else if (kind === 2) {
        const limitsAt = p;
        const { flags, initial } = limits();
        if (module !== 'env' || field !== 'memory') continue;
        if ((flags & 2) !== 0) return wasm;
        const shared = Buffer.concat([Buffer.from([0x03]), encodeLeb(initial), encodeLeb(maximumPages)]);
        const section = Buffer.concat([bytes.subarray(start, limitsAt), shared, bytes.subarray(p, end)]);
        return Buffer.concat([bytes.subarray(0, sectionAt), Buffer.from([IMPORT_SECTION]), encodeLeb(section.length), section, bytes.subarray(end)]);
      } else break;
    }
    break;
  }
  throw new Error('the wasm module imports no memory env.memory');
}

const IMPORT_SECTION = 2;

function encodeLeb(value: number): Buffer {
  const out: number[] = [];
  let rest = value;
  do {
    let b = rest & 0x7f;
    rest = Math.floor(rest / 128);
    if (rest !== 0) b |= 0x80;
    out.push(b);
  } while (rest !== 0);
  return Buffer.from(out);
}
