/**
 * Summarises a V8 `.cpuprofile` (node --cpu-prof): self time per function, self time per layer (a package
 * under node_modules, a folder of src/, node internals, WASM, GC), and inclusive time of functions, so
 * "where does a request's time go" has an answer with numbers.
 *
 *   node .build/bench/bench/cpuprofile-summary.js FILE.cpuprofile [--top 25] [--from µs --to µs] [--json]
 *
 * --from/--to keep only samples in that window of the monotonic clock (process.hrtime in µs), e.g. the
 * saturation run without the server's start-up.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isMain } from './lib/timing.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Row {
  name: string;
  layer: string;
  ms: number;
  pct: number;
}

export interface ProfileSummary {
  total_ms: number;
  /** Time the thread was busy (total minus idle). */
  busy_ms: number;
  /** Where a request's time goes: each sample charged to the most specific stage on its stack (see STAGES). */
  stages: Row[];
  self: Row[];
  layers: Row[];
  inclusive: Row[];
}

/** Samples between these monotonic timestamps (µs, the clock of process.hrtime) only; default all. */
export interface SampleWindow {
  fromUs: number;
  toUs: number;
}

type Frame = ProfileNode['callFrame'];

/**
 * Stages of a request. A sample's stack is walked from the sampled frame upwards, and the sample is charged to
 * the earliest stage in this list that any frame on the way matches (so JSON.stringify inside the SDK is
 * policy evaluation, a chain append inside a group-commit batch is the transaction). Samples matching no stage
 * go by their leaf's package (node core, GC, other).
 */
const STAGES: Array<{ stage: string; match: (f: Frame) => boolean }> = [
  // Token routes. The WebCrypto job runs on the libuv pool; on the server's one core it preempts the main thread
  // right where the job was posted, so its time lands under jose's sign/verify call in the profile.
  { stage: 'token signature: Ed25519 sign or verify (jose JWS → WebCrypto)', match: (f) => /\/jose\/dist\/.*\/jws_(sign|verify)\.js$/.test(f.url) && /^(createSignature|verifySignature|sign|verify)$/.test(f.functionName) },
  { stage: 'token JWT: jose (claims, base64url, headers)', match: (f) => f.url.includes('/node_modules/jose/') },
  { stage: 'policy evaluation: opa-wasm SDK (JSON.stringify → WASM memory, opa_eval, result JSON.parse)', match: (f) => f.url.includes('/@open-policy-agent/opa-wasm/') || f.url.startsWith('wasm://') },
  { stage: 'policy evaluation: WasmEvaluator result check', match: (f) => f.url.endsWith('/policy/wasm-evaluator.js') || f.url.endsWith('/policy/result-check.js') },
  { stage: 'task lookup (trusted task, SQLite read)', match: (f) => f.url.endsWith('/pdp/trusted-task.js') || f.url.endsWith('/store/task-ops.js') },
  { stage: 'decision record: mask, canonical JSON, hash chain prepare', match: (f) => f.url.endsWith('/store/decision-ops.js') && f.functionName === 'recordDecision' },
  { stage: 'group commit: SQLite transaction (inserts, chain append, COMMIT)', match: (f) => f.url.endsWith('/store/group-commit.js') && (f.functionName === 'runBatch' || f.functionName === 'flush') },
  { stage: 'store: other (queueing, promises)', match: (f) => /\/store\/[^/]+\.js$/.test(f.url) || f.url.includes('/better-sqlite3/') },
  { stage: 'audit: canonical JSON, masking', match: (f) => /\/audit\/[^/]+\.js$/.test(f.url) },
  { stage: 'token service and issuer (claims, checks)', match: (f) => f.url.endsWith('/pdp/token-service.js') || /\/issuer\/[^/]+\.js$/.test(f.url) },
  { stage: 'prom-client metrics', match: (f) => f.url.includes('/prom-client/') || f.url.endsWith('/server/metrics.js') },
  { stage: 'pino access log (serialise, redact, write)', match: (f) => /\/node_modules\/(pino|sonic-boom|@pinojs|pino-std-serializers|fast-redact|thread-stream)\//.test(f.url) },
  { stage: 'Decider: other (input, ids, response object)', match: (f) => f.url.endsWith('/pdp/decider.js') || f.url.endsWith('/pdp/policy-engine.js') },
  { stage: 'body validation (ajv, Unicode check)', match: (f) => f.url.endsWith('/wire/validate-body.js') || f.url.endsWith('/wire/request-parsers.js') || f.url.includes('/ajv/') },
  { stage: 'auth: API key / client credentials, SHA-256 + lookup', match: (f) => f.url.endsWith('/server/caller-auth.js') },
  { stage: 'request body: read, inflate, JSON.parse / form parse', match: (f) => f.url.endsWith('/server/body-reader.js') },
  { stage: 'routing: match method + path', match: (f) => f.url.endsWith('/server/router.js') },
  { stage: 'error mapping', match: (f) => f.url.endsWith('/server/error-writer.js') },
  { stage: 'route handlers', match: (f) => /\/server\/routes\/[^/]+\.js$/.test(f.url) },
  { stage: 'request pipeline: request id, trace context, reply write, access-log fields', match: (f) => f.url.endsWith('/server/request-pipeline.js') || f.url.endsWith('/server/trace-context.js') },
];


function fallbackStage(leaf: Frame): string {
  const layer = layerOf(leaf.url, leaf.functionName);
  if (layer === 'GC') return 'GC';
  if (layer.startsWith('node:') || layer === 'native' || layer === 'native/(program)') return 'node core: HTTP parser, sockets, streams, events, timers';
  return `other: ${layer}`;
}

/** Which layer a frame belongs to, from its URL. */
export function layerOf(url: string, functionName: string): string {
  if (url === '') {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(program)') return 'native/(program)';
    return functionName.startsWith('(') ? functionName : 'native';
  }
  if (url.startsWith('wasm://')) return 'WASM policy (opa_eval)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1] as string;
  const ours = /\/(?:dist|src)\/([^/]+)\//.exec(url);
  if (ours) return `agent-pdp ${ours[1]}/`;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0] ?? ''}`;
  return url.split('/').slice(-2).join('/');
}

function frameName(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url === '' ? '' : ` ${url.replace(/^.*\/(node_modules|dist|src)\//, '$1/').replace(/^file:\/\//, '')}:${lineNumber + 1}`;
  return `${functionName || '(anonymous)'}${file}`;
}

export function summarise(profile: CpuProfile, top = 25, window?: SampleWindow): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    if (window && (t < window.fromUs || t > window.toUs)) return;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  });
  const stages = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const leaf = byId.get(id);
    if (!leaf || leaf.callFrame.functionName === '(idle)') continue;
    let best = STAGES.length;
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)?.callFrame;
      if (!f) break;
      const i = STAGES.findIndex((s) => s.match(f));
      if (i >= 0) best = Math.min(best, i);
    }
    const stage = STAGES[best]?.stage ?? fallbackStage(leaf.callFrame);
    stages.set(stage, (stages.get(stage) ?? 0) + us);
  }
  const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0);

  const self = new Map<string, { layer: string; us: number }>();
  const layers = new Map<string, number>();
  const inclusive = new Map<string, { layer: string; us: number }>();
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const name = frameName(node);
    const layer = layerOf(node.callFrame.url, node.callFrame.functionName);
    if (layer === 'idle') idleUs += us;
    const s = self.get(name) ?? { layer, us: 0 };
    s.us += us;
    self.set(name, s);
    layers.set(layer, (layers.get(layer) ?? 0) + us);
    // Inclusive: every distinct function on the path from the root gets this sample's time once.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur);
      if (!n) break;
      const key = frameName(n);
      if (seen.has(key) || n.callFrame.functionName === '(root)') continue;
      seen.add(key);
      const e = inclusive.get(key) ?? { layer: layerOf(n.callFrame.url, n.callFrame.functionName), us: 0 };
      e.us += us;
      inclusive.set(key, e);
    }
  }
  const busyUs = totalUs - idleUs;
  const rows = (m: Map<string, { layer: string; us: number }>): Row[] =>
    [...m.entries()]
      .map(([name, v]) => ({ name, layer: v.layer, ms: Math.round(v.us / 100) / 10, pct: Math.round((v.us / busyUs) * 1000) / 10 }))
      .filter((r) => r.layer !== 'idle')
      .sort((a, b) => b.ms - a.ms);
  return {
    total_ms: Math.round(totalUs / 1000),
    busy_ms: Math.round(busyUs / 1000),
    stages: [...stages.entries()]
      .map(([name, us]) => ({ name, layer: name, ms: Math.round(us / 100) / 10, pct: Math.round((us / busyUs) * 1000) / 10 }))
      .sort((a, b) => b.ms - a.ms),
    self: rows(self).slice(0, top),
    layers: [...layers.entries()]
      .filter(([l]) => l !== 'idle')
      .map(([name, us]) => ({ name, layer: name, ms: Math.round(us / 100) / 10, pct: Math.round((us / busyUs) * 1000) / 10 }))
      .sort((a, b) => b.ms - a.ms),
    inclusive: rows(inclusive).slice(0, top * 2),
  };
}

/** `requests`: how many requests the window served, for a µs-per-request column. */
export function summaryMarkdown(s: ProfileSummary, top = 25, requests?: number): string {
  const perRequest = (r: Row): string => (requests ? ` ${Math.round((r.ms * 1000) / requests)} |` : '');
  const table = (rows: Row[], head: string): string =>
    [`| ${head} | layer | ms | % of busy |`, '| --- | --- | ---: | ---: |', ...rows.map((r) => `| \`${r.name}\` | ${r.layer} | ${r.ms} | ${r.pct} |`)].join('\n');
  return [
    `Profile: ${s.total_ms} ms sampled, ${s.busy_ms} ms busy (not idle). Percentages are of busy time.`,
    '',
    '### Where the time goes, by stage',
    '',
    'Each sample is charged to the most specific stage on its stack (bench/cpuprofile-summary.ts, STAGES); what a middleware runs under next() is not charged to it.',
    '',
    [
      `| stage | ms | % of busy |${requests ? ' µs per request |' : ''}`,
      `| --- | ---: | ---: |${requests ? ' ---: |' : ''}`,
      ...s.stages.map((r) => `| ${r.name} | ${r.ms} | ${r.pct} |${perRequest(r)}`),
      ...(requests ? [`| **total busy** | ${s.busy_ms} | 100 | ${Math.round((s.busy_ms * 1000) / requests)} |`] : []),
    ].join('\n'),
    '',
    '### Self time by layer',
    '',
    ['| layer | ms | % of busy |', '| --- | ---: | ---: |', ...s.layers.map((r) => `| ${r.name} | ${r.ms} | ${r.pct} |`)].join('\n'),
    '',
    `### Top ${top} functions by self time`,
    '',
    table(s.self.slice(0, top), 'function'),
    '',
    `### Top ${top} functions by inclusive time`,
    '',
    table(s.inclusive.slice(0, top), 'function'),
    '',
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' }, json: { type: 'boolean' }, from: { type: 'string' }, to: { type: 'string' } } });
  const file = positionals[0];
  if (!file) throw new Error('usage: cpuprofile-summary FILE.cpuprofile [--top N] [--json]');
  const summary = summarise(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, Number(values.top), values.from && values.to ? { fromUs: Number(values.from), toUs: Number(values.to) } : undefined);
  process.stdout.write(values.json ? `${JSON.stringify(summary)}\n` : summaryMarkdown(summary, Number(values.top)));
}
