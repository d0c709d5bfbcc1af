import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Logger } from 'pino';
import { accessRefusedEvent, authFailedEvent, callersReplacedEvent, compileMask, maskEmbedded, policyLoadedEvent, policyRefusedEvent, type NewAuditEvent } from './audit/index.js';
import { loadConfigFile, storeOpenOptions } from './config/config-loader.js';
import type { PdpConfig, PolicyServiceConfig } from './config/config-types.js';
import type { PolicySet } from './policy/policy-types.js';
import { BundlePoller } from './bundle-service/bundle-poller.js';
import { warnIfMissingServerFlags } from './workers/process-flags.js';
import { runSupervisor, workerChannel, workerIndex } from './workers/supervisor.js';
import { describeError, isPdpError, PdpError } from './errors/pdp-error.js';
import { AccessRequestService } from './pdp/access-requests.js';
import { AuditOverview } from './pdp/audit-overview.js';
import { AuditVerification } from './pdp/audit-verification.js';
import { AuthzenService } from './pdp/authzen-service.js';
import { DataApi } from './pdp/data-api.js';
import { Decider } from './pdp/decider.js';
import { GrantableScopes } from './pdp/grantable-scopes.js';
import { AgentViews } from './pdp/agent-views.js';
import { RefusalRecorder } from './pdp/refusal-recorder.js';
import { RuleEvaluator } from './pdp/rule-evaluator.js';
import { IssuerKeys } from './pdp/issuer-keys.js';
import { TokenService } from './pdp/token-service.js';
import { UsageService } from './pdp/usage-service.js';
import { PolicyEngine, type PolicyEngineOptions, type ReloadListener } from './pdp/policy-engine.js';
import type { BundleVerification, BundleVerificationKey } from './policy/bundle-signature.js';
import { TaskService } from './pdp/task-service.js';
import { CallerResolver, type AuthFailure } from './server/caller-auth.js';
import { ConsoleAssets } from './console/console-assets.js';
import { ConsoleSessions } from './console/console-sessions.js';
import { createApiServer, DRAIN_DEADLINE_MS, drainable } from './server/http-server.js';
import { requestPipeline, type AuthorizationRefusal } from './server/request-pipeline.js';
import type { Route } from './server/route.js';
import { routeTable } from './server/route-table.js';
import { createLogger } from './server/logger.js';
import { ProviderMinter, providerConfigProblems, RECORD_FIELDS_WITHOUT_DECISION_VALUES } from './providers/provider-minter.js';
import { aggregateMetrics, Metrics } from './server/metrics.js';
import { openStore, type Store } from './store/index.js';
import { loadPolicyFolder, SuggestionActions, SuggestionReports, SuggestionSchedule, thresholdsOf } from './suggest/index.js';
import { HeadSigner, appendSignedHead, type HeadSignerOptions } from './audit/index.js';
import { loadAuditKey, signedHeadsPath } from './issuer/audit-key.js';
import { ApprovalLinks, loadLinkKey, OutboxWorker } from './notify/index.js';
import type { EnforcementProxy } from './proxy/index.js';

/** Everything one PDP instance is made of, wired. `main.ts` is the only module that knows all of them. */
export interface Pdp {
  config: PdpConfig;
  /** Every HTTP route, as the pipeline serves them and the OpenAPI document describes them. */
  routes: readonly Route[];
  /** The node:http listener to serve: the one request pipeline in front of `routes`. */
  handler: RequestListener;
  engine: PolicyEngine;
  store: Store;
  tasks: TaskService;
  tokens: TokenService;
  /** Break-glass escalation: access requests and their approvals (docs/escalation.md). */
  accessRequests: AccessRequestService;
  /** Delivers approver notifications from the store's outbox. */
  outbox: OutboxWorker;
  /** The scheduled suggestion run, when the config has `suggestions.schedule`. */
  suggestionSchedule?: SuggestionSchedule;
  /** Pulls the compiled bundle from the bundle server, when the config has `policy.service` (docs/bundles.md). */
  bundlePoller?: BundlePoller;
  keys: IssuerKeys;
  /** Signs the audit chain's head now and then, with the audit key (docs/compliance.md, "Signed heads"). */
  heads: HeadSigner;
  metrics: Metrics;
  /** Writes refusals (auth failures, access refusals) to the trail at a bounded rate; `flush()` writes the counts now. */
  refusals: RefusalRecorder;
  logger: Logger;
  /** The `aud` of an integration's tokens: `issuer.audiences`, else the integration file's `audience`, else its name. */
  audienceFor(integration: string): string;
  /** Reloads the policy (bundle and YAML) and the issuer keys; a refused policy keeps the old one. */
  reload(): Promise<void>;
  /** Says the server is shutting down: `/readyz` answers 503 from now on (requests are still served). */
  drain(): void;
  /** Stops the watchers, flushes the store and closes it. */
  close(): Promise<void>;
}

export interface CreatePdpOptions {
  logger?: Logger;
  now?: () => Date;
  /** Collect Node's default process metrics (off in tests that build many instances). Default true. */
  defaultMetrics?: boolean;
  /** How often the audit chain's head is signed. Default HEAD_SIGNING_DEFAULTS (60 s or 10,000 events). */
  headSigning?: Pick<HeadSignerOptions, 'intervalMs' | 'everyEvents' | 'checkMs'>;
  /**
   * Reads the config again on reload (SIGHUP, `POST /v1/admin/reload`): its callers (keys, roles, agents) replace
   * the running ones at once; a config that does not load is refused whole and the running callers stay. Default:
   * callers are fixed at start (`startServer` passes its config file).
   */
  rereadConfig?: () => PdpConfig;
  /**
   * False in the workers of `serve --workers N` but the first: they leave the jobs one process does for all
   * (the suggestion schedule, pulling bundles from policy.service: they watch the persisted bundle instead). Default true.
   */
  primaryWorker?: boolean;
  /** Called after a reload asked over HTTP (`POST /v1/admin/reload`) succeeded here: the other workers reload too. */
  onAdminReload?: () => void;
  /** `/metrics` answers this instead of the process's own registry (a worker: every worker's, added up). */
  metricsText?: () => Promise<{ text: string; contentType: string } | undefined>;
  /** How often the issuer key ring is read again from the key folder. Default KEY_RELOAD_MS (30 s). */
  keyReloadMs?: number;
}

const TASK_SWEEP_MS = 5_000;
/**
 * How often `serve` reads the issuer key ring again: `agent-pdp keys rotate` rewrites the key folder, and every
 * replica and worker picks the new ring up within this long, without a SIGHUP or `POST /v1/admin/reload`.
 */
const KEY_RELOAD_MS = 30_000;
/** How often the scheduled suggestion run looks at the clock (SuggestionSchedule's own default). */
const SUGGESTION_CHECK_MS = 60_000;

/**
 * Where the policy comes from: the bundle and the policy folder, or a compiled bundle (`policy.compiled`) checked
 * against `policy.verification`, whose key files are read at every load (and watched).
 */
function policySource(config: PdpConfig): Pick<PolicyEngineOptions, 'bundlePath' | 'policyDir' | 'compiled'> {
  const { bundle, agents, verification } = config.policy;
  // A bundle server's downloads are adopted into `persist`, the compiled bundle the engine loads.
  const compiled = config.policy.service?.persist ?? config.policy.compiled;
  if (compiled === null) return { bundlePath: bundle, policyDir: agents };
  const keyFiles = verification === null ? [] : Object.values(verification.keys).map((k) => k.key_file);
  const verify = async (): Promise<BundleVerification | undefined> => {
    if (verification === null) return undefined;
    const keys: Record<string, BundleVerificationKey> = Object.create(null) as Record<string, BundleVerificationKey>;
    for (const [id, key] of Object.entries(verification.keys)) {
      const text = await readFile(key.key_file, 'utf8').catch((cause: unknown) => {
        throw new PdpError('bundle_invalid', `cannot read the bundle verification key ${id} (${key.key_file})`, { cause });
      });
      keys[id] = { algorithm: key.algorithm, key: text.trim(), ...(key.scope === null ? {} : { scope: key.scope }) };
    }
    return { keys, ...(verification.key_id === null ? {} : { keyId: verification.key_id }), ...(verification.scope === null ? {} : { scope: verification.scope }) };
  };
  return { bundlePath: bundle, policyDir: agents, compiled: { path: compiled, verification: verify, alsoWatch: keyFiles } };
}

export async function createPdp(config: PdpConfig, options: CreatePdpOptions = {}): Promise<Pdp> {
  const logger = options.logger ?? createLogger(config.log.level);
  const now = options.now ?? (() => new Date());
  const metrics = new Metrics({ defaultMetrics: options.defaultMetrics ?? true });
  const maskKey = config.audit.mask_key_file === null ? undefined : await readMaskKey(config.audit.mask_key_file);
  const store = await openStore(config.store.url, {
    ...storeOpenOptions(config.store),
    onCheckpointFailure: (err) => logger.error({ err: describeError(err) }, 'WAL checkpoint worker failed: checkpointing inline from now on'),
    mask: config.audit.mask,
    ...(maskKey === undefined ? {} : { maskKey }),
    onWarning: (message) => logger.warn(message), // store file permissions (issue 13 item 6)
  });

  const audit = (event: Parameters<Store['appendEvents']>[0][number]): void => {
    store.appendEvents([event]).catch((err: unknown) => logger.error({ err: describeError(err) }, 'audit event not written'));
  };
  const listener: ReloadListener = {
    loaded(active, previous) {
      metrics.reloads.inc({ result: 'loaded' });
      metrics.policyActive(active.revision, active.evaluator.revisions.bundle, active.evaluator.revisions.policies);
      for (const w of active.policySet.warnings) logger.warn({ file: w.file, line: w.line, path: w.path }, w.message);
      const cap = config.issuer.max_token_ttl_seconds;
      // Every agent is read only when one exceeds the cap (a compiled bundle builds its agents as requests name them).
      const longest = active.policySet.longestTokenTtl;
      if (longest === undefined || longest > cap) void warnTokenTtlsAbove(active.policySet, cap, logger);
      // AuthZEN routes naming entrypoints this bundle lacks: every request of that subject type will fail (503).
      const exported = new Set(active.evaluator.entrypoints);
      for (const [type, route] of Object.entries(config.authzen.subjects)) {
        const missing = [route.decision, route.entities].filter((e): e is string => e !== null && !exported.has(e));
        if (missing.length > 0) logger.warn({ subject_type: type, missing }, `authzen.subjects.${type} names entrypoints the policy bundle does not export`);
      }
      for (const problem of providerConfigProblems(config.providers, active.policySet)) logger.warn(problem);
      logger.info({ revision: active.revision, previous: previous?.revision, agents: active.policySet.agents.length }, 'policy loaded');
      audit(
        policyLoadedEvent(now().toISOString(), {
          revision: active.revision,
          bundle_revision: active.evaluator.revisions.bundle,
          policies_revision: active.evaluator.revisions.policies,
          previous_revision: previous?.revision ?? null,
          agents: active.policySet.agents.length,
          files: active.policySet.files.map(({ path, sha256 }) => ({ path, sha256 })),
        }),
      );
    },
    refused(error, current) {
      metrics.reloads.inc({ result: 'refused' });
      logger.error({ code: error.code, details: error.details.slice(0, 20), active_revision: current?.revision }, `policy refused: ${error.message}`);
      audit(policyRefusedEvent(now().toISOString(), error, current?.revision ?? null));
    },
  };
  // Policy file limits and permissions (issue 13 items 5 and 10): see PolicyEngineOptions.load.
  const load = {
    allowInsecurePermissions: config.policy.allow_insecure_permissions,
    maxFileBytes: config.policy.max_file_bytes,
    maxEntriesPerFile: config.policy.max_entries_per_file,
  };
  const engine = new PolicyEngine({ ...policySource(config), load, listener, now });
  // From a bundle server (policy.service): the persisted last good bundle if there is one, else a first download.
  const primaryWorker = options.primaryWorker ?? true;
  const poller = config.policy.service === null || !primaryWorker ? undefined : bundlePoller(config.policy.service, engine, logger);
  try {
    if (poller !== undefined && config.policy.service !== null && !existsSync(config.policy.service.persist)) {
      await poller.restore();
      const first = await poller.poll();
      if (engine.active === undefined) {
        throw new PdpError('bundle_missing', `no policy: the first download from policy.service ${first === 'refused' ? 'was refused' : 'failed'}, and none is persisted`);
      }
    } else if (poller !== undefined) {
      await poller.restore();
      // A persisted bundle this server refuses now (its key was rotated, say): ask the bundle server afresh.
      await engine.reload().catch(async (err: unknown) => {
        logger.warn({ code: isPdpError(err) ? err.code : 'internal' }, 'policy.service: the persisted bundle is refused: downloading');
        poller.forget();
        await poller.poll();
        if (engine.active === undefined) throw err;
      });
    } else {
      await engine.reload();
    }
  } catch (err) {
    await store.close();
    throw err;
  }
  // Another worker pulls from policy.service: this one watches the bundle it persists.
  if ((config.policy.watch && config.policy.service === null) || (config.policy.service !== null && poller === undefined)) {
    engine.watch(config.policy.watch_interval_ms);
  }

  const tasks = new TaskService({
    store,
    defaultTtlSeconds: config.tasks.default_ttl_seconds,
    maxTtlSeconds: config.tasks.max_ttl_seconds,
    // Tasks read by callers show the context masked as the audit trail does (issue 13 item 6).
    mask: config.audit.mask,
    ...(maskKey === undefined ? {} : { maskKey }),
    now,
    observer: metrics,
  });
  const sweep = setInterval(() => {
    tasks.expireDue().catch((err: unknown) => logger.error({ err: describeError(err) }, 'task expiry sweep failed'));
  }, TASK_SWEEP_MS);
  sweep.unref();

  let keys: IssuerKeys;
  try {
    keys = await IssuerKeys.load(config.issuer.keys, { alg: config.issuer.alg, maxTokenTtlSeconds: config.issuer.max_token_ttl_seconds }, now);
  } catch (err) {
    engine.stopWatching();
    clearInterval(sweep);
    await store.close();
    throw err;
  }
  // The issuer key ring, read again now and then: a rotation reaches every replica and worker without a signal. A
  // ring that does not load keeps the one in force (the error names the file, never a key).
  const keyReload = setInterval(() => {
    const before = keys.jwks.keys.map((k) => k.kid).join();
    keys.reload().then(
      () => {
        const kids = keys.jwks.keys.map((k) => k.kid);
        if (kids.join() !== before) logger.info({ kids }, 'issuer key ring reloaded: its keys changed');
      },
      (err: unknown) => logger.error({ err: describeError(err) }, 'reading the issuer key ring failed: the ring in force stays'),
    );
  }, options.keyReloadMs ?? KEY_RELOAD_MS);
  keyReload.unref();
  // The jobs one process does for all: worker 1 of `serve --workers N`, and of the replicas on one store the one
  // holding the store's leadership lease (docs/scaling.md). Asked each time such a job acts, so a replica that takes
  // the lease over later starts doing them.
  const lease = primaryWorker ? store.leadership() : undefined;
  await lease?.check(); // known before the first job acts (never rejects: a failed try is tried again)
  let led = false;
  const leads = (): boolean => {
    const leading = lease?.leading === true;
    if (leading !== led) logger.info(leading ? 'this process leads: it signs the audit chain head and runs the scheduled jobs' : 'this process no longer leads');
    led = leading;
    return leading;
  };
  // Signed heads of the audit chain (docs/compliance.md, "Signed heads"): a timer, off the request path; the audit
  // key lives in the key folder, never in the database.
  let heads: HeadSigner;
  let auditVerification: AuditVerification;
  try {
    const auditKey = await loadAuditKey(config.issuer.keys, { create: true });
    const headsFile = signedHeadsPath(config.issuer.keys);
    // POST /v1/audit/verify: as `audit verify --config` does, with the audit public key and the signed-heads file.
    auditVerification = new AuditVerification({ store, now, headKeys: new Map([[auditKey.kid, auditKey.publicKey]]), signedHeadsFile: headsFile });
    heads = new HeadSigner({
      store,
      key: auditKey,
      now,
      publish: async (head) => {
        const written = await appendSignedHead(headsFile, head);
        if (!written.appended) {
          logger.warn({ seq: head.seq, file_seq: written.last.seq }, 'signed head not appended to the signed-heads file: it already holds a head at this seq or later');
        }
      },
      onError: (err) => logger.error({ err: describeError(err) }, 'signing the audit chain head failed'),
      leading: leads,
      ...options.headSigning,
    });
  } catch (err) {
    engine.stopWatching();
    clearInterval(sweep);
    clearInterval(keyReload);
    await store.close();
    throw err;
  }
  // One signer per store (two could append their heads out of order): it ticks in worker 1, and signs while leading.
  if (primaryWorker) heads.start();

  const audienceFor = audienceOf(config, engine);
  // Provider integrations (docs/providers.md): source credentials read here, once; a failed mint logged without them.
  const providers =
    config.providers.length === 0
      ? undefined
      : new ProviderMinter({
          providers: config.providers,
          policy: () => engine.active?.policySet,
          onFailure: (failure) => logger.warn(failure, 'provider credential not minted'),
        });
  // The trail's mask, for the values a provider credential's record embeds in its strings (docs/providers.md).
  const recordMask = compileMask(config.audit.mask, maskKey === undefined ? {} : { key: maskKey });
  const tokens = new TokenService({
    store,
    keys,
    observer: metrics,
    issuer: config.issuer.issuer,
    audienceFor,
    now,
    maskRecord: (record, sources) => maskEmbedded(recordMask, record, sources, { fixed: RECORD_FIELDS_WITHOUT_DECISION_VALUES }),
    ...(providers === undefined ? {} : { providers }),
  });
  const usage = new UsageService({ store, now });
  const callers = new CallerResolver(config.callers);
  let runningCallers = config.callers;
  const reload = async (): Promise<void> => {
    // Read and validate everything first, then swap: a refused config leaves the running callers in force.
    const next = options.rereadConfig?.();
    await keys.reload();
    await engine.reload();
    if (next !== undefined) {
      if (JSON.stringify(next.callers) !== JSON.stringify(runningCallers)) {
        audit(callersReplacedEvent(now().toISOString(), next.callers));
        runningCallers = next.callers;
      }
      callers.replace(next.callers);
      // Every section but the callers is read at start only (providers among them: their source credentials are read
      // once); a section added to the config is in this list without anyone having to remember it.
      const unchanged = (Object.keys(config) as Array<keyof PdpConfig>).filter((section) => section !== 'callers' && section !== 'source');
      const restart = unchanged.filter((section) => JSON.stringify(next[section]) !== JSON.stringify(config[section]));
      if (restart.length > 0) logger.warn({ sections: restart }, 'config reloaded: callers applied; these sections changed and apply at the next start');
      logger.info({ callers: next.callers.length }, 'config reloaded: callers replaced');
    }
  };

  const decider = new Decider({
    engine,
    store,
    redeemWindowSeconds: config.issuer.redeem_window_seconds,
    maxTokenTtlSeconds: config.issuer.max_token_ttl_seconds,
    observer: metrics,
    now,
    accessRequests: { endpoint: `${config.escalation.public_url}/v1/access-requests`, windowSeconds: config.escalation.request_window_seconds },
  });
  // Entrypoints other than the agent decision (OPA's data API): each evaluation an audit event before its answer.
  const rules = new RuleEvaluator({ engine, store, now });

  // Break-glass escalation: the outbox worker delivers what a submission committed; a timer ends what ran out.
  let links: ApprovalLinks;
  try {
    links = new ApprovalLinks(loadLinkKey(config.escalation.link_key_file, { create: true }), config.escalation.link_ttl_seconds);
  } catch (err) {
    engine.stopWatching();
    clearInterval(sweep);
    clearInterval(keyReload);
    heads.stop();
    await store.close();
    throw err;
  }
  const outbox = new OutboxWorker({
    store,
    webhooks: config.escalation.webhooks,
    links,
    publicUrl: config.escalation.public_url,
    outbox: config.escalation.outbox,
    logger,
    now,
  });
  outbox.start();
  metrics.watchOutbox(outbox, store);
  metrics.watchStore(store);
  // Policy suggestions on a schedule (config suggestions.schedule): new ones are notified through the same outbox.
  const suggestionSchedule =
    config.suggestions.schedule === null || !primaryWorker
      ? undefined
      : new SuggestionSchedule({
          store,
          schedule: config.suggestions.schedule,
          thresholds: thresholdsOf(config.suggestions),
          loadFolder: () => loadPolicyFolder(config.policy.agents, load),
          webhooks: config.escalation.webhooks,
          notified: () => outbox.wake(),
          logger,
          now,
        });
  // Not `start()`: its clock is looked at only while this process leads.
  const suggestionTimer =
    suggestionSchedule === undefined
      ? undefined
      : setInterval(() => {
          if (leads()) void suggestionSchedule.check();
        }, SUGGESTION_CHECK_MS);
  suggestionTimer?.unref();
  const accessRequests = new AccessRequestService({ store, escalation: config.escalation, onSubmitted: () => outbox.wake(), observer: metrics, now });
  const escalationSweep = setInterval(() => {
    accessRequests.sweep().catch((err: unknown) => logger.error({ err: describeError(err) }, 'access request sweep failed'));
  }, config.escalation.sweep_interval_ms);
  escalationSweep.unref();
  // Refusals reach the trail at a bounded rate, every one counted: whoever can reach the port cannot grow the
  // store faster than a small fixed rate (pdp/refusal-recorder.ts).
  const refusals = new RefusalRecorder({
    append: (events) =>
      store.appendEvents(events as NewAuditEvent[]).catch((err: unknown) => logger.error({ err: describeError(err) }, 'audit event not written')),
    now,
  });
  const onAuthFailure = (f: AuthFailure): void => {
    const failure = { reason: f.reason, route: f.route, ip: f.ip ?? null };
    refusals.record({
      key: `auth.failed\u0000${f.reason}\u0000${f.route}\u0000${f.ip ?? ''}`,
      overflowKey: `auth.failed\u0000${f.reason}`,
      event: (aggregate, time) => authFailedEvent(time, failure, aggregate),
      overflowEvent: (aggregate, time) => authFailedEvent(time, { reason: f.reason, route: '*', ip: null }, aggregate),
    });
  };
  const onRefusal = (r: AuthorizationRefusal): void => {
    const ids = { caller_id: r.caller_id, agent_id: r.agent_id ?? null, decision_id: r.decision_id ?? null, trace_id: r.trace_id };
    refusals.record({
      key: `access.refused\u0000${r.code}\u0000${r.route}\u0000${r.caller_id}\u0000${r.agent_id ?? ''}\u0000${r.decision_id ?? ''}`,
      overflowKey: `access.refused\u0000${r.code}\u0000${r.caller_id}`,
      // An aggregate keeps the ids its refusals share; a trace id belongs to one request only.
      event: (aggregate, time) => accessRefusedEvent(time, aggregate ? { ...ids, trace_id: null } : ids, { code: r.code, route: r.route }, aggregate),
      overflowEvent: (aggregate, time) => accessRefusedEvent(time, { caller_id: r.caller_id }, { code: r.code, route: '*' }, aggregate),
    });
  };
  /** Set by `drain()` when the server starts shutting down (`/readyz` then answers 503). */
  const lifecycle = { draining: false };
  // The web console (docs/console.md): its sessions live in the store, so every worker and replica knows them.
  const consoleSessions = config.console.enabled ? new ConsoleSessions(store, callers, config.console, now) : undefined;
  const routes = routeTable({
    config,
    ...(consoleSessions === undefined ? {} : { console: { sessions: consoleSessions, assets: ConsoleAssets.load() } }),
    engine,
    decider,
    opaData: new DataApi({ rules, decider }),
    authzen: new AuthzenService({ config: config.authzen, decider, rules, engine, store, now }),
    grantableScopes: new GrantableScopes({ engine, store, now }),
    tasks,
    tokens,
    usage,
    accessRequests,
    suggestions: new SuggestionReports({ store, now, windowDays: config.suggestions.window_days }),
    agents: new AgentViews({ engine, store, now }),
    // POST /v1/suggestions/{id}/apply | dismiss: the same code as `agent-pdp suggest apply | dismiss`.
    suggestionActions: new SuggestionActions({ store, policyDir: config.policy.agents, load, thresholds: thresholdsOf(config.suggestions), now }),
    verifyLink: (token, id, at) => links.verify(token, id, at),
    reportRefusal: onRefusal,
    keys,
    store,
    auditConsole: { verification: auditVerification, overview: new AuditOverview({ store, now }) },
    outbox: store,
    metrics,
    // Over HTTP, the other workers of `serve --workers` reload too (SIGHUP reaches them through the supervisor).
    reload: async () => {
      await reload();
      options.onAdminReload?.();
    },
    now,
    draining: () => lifecycle.draining,
    ...(options.metricsText === undefined ? {} : { metricsText: options.metricsText }),
  });
  const handler = requestPipeline({
    routes,
    callers,
    metrics,
    logger,
    bodyLimitBytes: config.server.body_limit_bytes,
    onAuthFailure,
    onRefusal,
    ...(consoleSessions === undefined ? {} : { sessions: consoleSessions }),
  });

  poller?.start(); // polls now, then after random delays between the minimum and the maximum
  return {
    config,
    routes,
    handler,
    engine,
    store,
    tasks,
    tokens,
    accessRequests,
    outbox,
    ...(suggestionSchedule === undefined ? {} : { suggestionSchedule }),
    ...(poller === undefined ? {} : { bundlePoller: poller }),
    keys,
    heads,
    metrics,
    refusals,
    logger,
    audienceFor,
    reload,
    drain() {
      lifecycle.draining = true;
    },
    async close() {
      lifecycle.draining = true;
      engine.stopWatching();
      await poller?.stop(); // a download being adopted finishes before the store closes
      clearInterval(sweep);
      clearInterval(keyReload);
      clearInterval(escalationSweep);
      clearInterval(suggestionTimer);
      await suggestionSchedule?.stop(); // a run in progress commits (and its notification is queued) first
      await outbox.stop(); // in-flight deliveries finish (or stay due) before the store closes
      await refusals.close(); // the counts of the last window reach the store before it closes
      // The events since the last signed head are signed before the store closes.
      heads.stop();
      if (primaryWorker) {
        await heads.signNow().catch((err: unknown) => logger.error({ err: describeError(err) }, 'signing the audit chain head failed'));
      }
      await store.close();
    },
  };
}

/**
 * The poller of `policy.service`: downloads next to the persisted bundle, hands each new one to the engine (which
 * renames it into place only once it serves), logs what failed (never the token), and polls on its own from the
 * first poll on.
 */
function bundlePoller(service: PolicyServiceConfig, engine: PolicyEngine, logger: Logger): BundlePoller {
  const tokenFile = service.token_file;
  return new BundlePoller({
    url: service.url,
    ...(tokenFile === null ? {} : { token: async () => (await readFile(tokenFile, 'utf8')).trim() || undefined }),
    minDelayMs: service.min_delay_seconds * 1000,
    maxDelayMs: service.max_delay_seconds * 1000,
    timeoutMs: service.timeout_seconds * 1000,
    maxBytes: service.max_bytes,
    persistPath: service.persist,
    adopt: (candidate) => engine.adopt(candidate),
    observed(outcome, error) {
      if (outcome === 'failed') logger.warn({ code: error?.code }, `policy.service: ${error?.message ?? 'the poll failed'}; the policy in force stays`);
      else if (outcome === 'loaded') logger.info('policy.service: a new bundle is in force');
    },
  });
}

/** One rule for a token's audience, for the issuer and the proxy alike. */
function audienceOf(config: PdpConfig, engine: PolicyEngine): (integration: string) => string {
  return (integration) => config.issuer.audiences[integration] ?? engine.active?.policySet.integrations[integration]?.audience ?? integration;
}

/** The HMAC key of audit mask digests: the file's content without surrounding whitespace, at least 16 bytes. */
async function readMaskKey(path: string): Promise<string> {
  let key: string;
  try {
    key = (await readFile(path, 'utf8')).trim();
  } catch (cause) {
    throw new PdpError('config_invalid', `cannot read audit.mask_key_file ${path}`, { cause });
  }
  if (Buffer.byteLength(key, 'utf8') < 16) {
    throw new PdpError('config_invalid', `audit.mask_key_file ${path} holds less than 16 bytes: use e.g. \`openssl rand -hex 32\``);
  }
  return key;
}

export interface RunningServer {
  pdp: Pdp;
  server: Server;
  url: string;
  /** The enforcement proxy's listener, when the config says `proxy.serve: true`. */
  proxy?: EnforcementProxy;
  /** Resolves when the server has shut down (SIGTERM, SIGINT or close()). */
  closed: Promise<void>;
  close(): Promise<void>;
}

/** Loads the config, builds the PDP, listens, and handles SIGHUP (reload) and SIGTERM/SIGINT (graceful stop). */
export async function startServer(opts: { configPath: string; nodeEnv?: string | undefined }): Promise<RunningServer> {
  const { config, warnings } = loadConfigFile(opts.configPath, { nodeEnv: opts.nodeEnv });
  const logger = createLogger(config.log.level);
  for (const warning of warnings) logger.warn(warning);
  if (warnings.length > 0) {
    const banner = warnings.map((w) => `  !!! ${w}`).join('\n');
    process.stderr.write(`\n  !!! agent-pdp is running with INSECURE settings:\n${banner}\n\n`);
  }
  const rereadConfig = (): PdpConfig => {
    const reread = loadConfigFile(opts.configPath, { nodeEnv: opts.nodeEnv });
    for (const warning of reread.warnings) logger.warn(warning);
    return reread.config;
  };
  // A worker of `serve --workers N` (src/workers/): the first one also runs the jobs one process does for all.
  const worker = workerIndex();
  const log = worker === undefined ? logger : logger.child({ worker });
  warnIfMissingServerFlags(log);
  // A worker whose supervisor dies while it starts leaves at once (once listening, it stops as on SIGTERM, below).
  const orphaned = (): never => process.exit(1);
  if (worker !== undefined) process.once('disconnect', orphaned);
  let channel: ReturnType<typeof workerChannel> | undefined;
  const pdp = await createPdp(config, {
    logger: log,
    rereadConfig,
    ...(worker === undefined
      ? {}
      : { primaryWorker: worker === 1, onAdminReload: () => channel?.announce(), metricsText: () => channel?.clusterMetrics() ?? Promise.resolve(undefined) }),
  });
  if (worker !== undefined) channel = workerChannel(() => pdp.reload(), log, () => pdp.metrics.values());
  /** A process that cannot serve lets go of what would keep it alive: the PDP, a worker's channel to its supervisor. */
  const letGo = async (): Promise<void> => {
    await pdp.close().catch(() => undefined);
    channel?.close();
    if (worker !== undefined) {
      process.off('disconnect', orphaned);
      if (process.connected) process.disconnect();
    }
  };
  const server = createApiServer(pdp.handler).listen(config.server.port, config.server.host);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
  } catch (err) {
    // Nothing is listening (the port is taken): let go of everything that would keep the process alive, so it ends
    // with the error (a worker's channel too: the supervisor then sees a worker that cannot start).
    await letGo();
    throw err;
  }
  const address = server.address() as AddressInfo;
  const url = `http://${address.address}:${address.port}`;
  log.info({ url, revision: pdp.engine.active?.revision, pid: process.pid }, 'agent-pdp listening');
  // Once shutting down, every answer closes its connection (a keep-alive client would otherwise hold the server open
  // for as long as it keeps asking); connections that go idle are closed as they do, and any left at the deadline cut.
  const onDeadline = (): void => log.warn({ after_ms: DRAIN_DEADLINE_MS }, 'shutting down: connections still open at the deadline are cut');
  const drainApi = drainable(server, { onDeadline });
  let proxy: EnforcementProxy | undefined;
  let drainProxy: (() => Promise<void>) | undefined;
  if (config.proxy?.serve === true) {
    try {
      proxy = await startPdpProxy(pdp);
      drainProxy = drainable(proxy.server, { onDeadline });
    } catch (err) {
      // As for the API's port: nothing may keep a process that cannot serve alive.
      server.close();
      await letGo();
      throw err;
    }
  }

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      log.info('shutting down: finishing in-flight requests');
      pdp.drain();
      await Promise.all([drainApi(), drainProxy?.().then(() => proxy?.close())]);
      await pdp.close();
      channel?.close();
      log.info('stopped');
      // A worker's channel to the supervisor would keep it alive: let go of it, and the process ends.
      if (worker !== undefined && process.connected) process.disconnect();
    })();
    return closing;
  };
  const onHup = (): void =>
    void pdp.reload().catch((err: unknown) => log.error({ err: describeError(err) }, 'reload failed'));
  const onStop = (): void => void close();
  process.on('SIGHUP', onHup);
  process.once('SIGTERM', onStop);
  process.once('SIGINT', onStop);
  // A worker whose supervisor is gone stops too (it would serve on, unsupervised, after the primary was killed).
  if (worker !== undefined) {
    process.off('disconnect', orphaned);
    process.once('disconnect', onStop);
  }
  const closed = new Promise<void>((resolve) => {
    server.once('close', () => {
      process.off('SIGHUP', onHup);
      void (closing ?? Promise.resolve()).then(resolve);
    });
  });
  return { pdp, server, url, ...(proxy === undefined ? {} : { proxy }), closed, close };
}

/**
 * `agent-pdp serve --workers N` (N > 1), in the primary: everything a first start creates (the store and its
 * migrations, the key folder, the approval link key, the audit key) is created once here, by a PDP started and
 * stopped before any worker, so N workers starting together never race to create them; then the supervisor
 * (src/workers/supervisor.ts) keeps N workers running until SIGTERM/SIGINT. Resolves with the exit code.
 */
export async function superviseServer(opts: { configPath: string; nodeEnv?: string | undefined; workers: number }): Promise<number> {
  const { config } = loadConfigFile(opts.configPath, { nodeEnv: opts.nodeEnv });
  const logger = createLogger(config.log.level).child({ worker: 0 });
  const first = await createPdp(config, { logger, defaultMetrics: false });
  await first.close();
  return runSupervisor({ workers: opts.workers, logger, aggregateMetrics: (parts) => aggregateMetrics(parts as Parameters<typeof aggregateMetrics>[0]) });
}

/**
 * The enforcement proxy's listener on a running PDP's parts (`proxy.serve: true` in `serve`; tests): its store,
 * keys, policy and metrics. The caller closes it before the PDP.
 */
export async function startPdpProxy(pdp: Pdp, options: { now?: () => Date } = {}): Promise<EnforcementProxy> {
  const config = pdp.config.proxy;
  if (config === null) throw new PdpError('config_invalid', 'the config has no proxy section', { details: [{ path: 'proxy', message: 'is required' }] });
  const { startEnforcementProxy } = await loadProxy();
  return startEnforcementProxy({
    config,
    issuer: pdp.config.issuer.issuer,
    jwks: () => pdp.keys.resolver,
    policy: () => pdp.engine.active?.policySet,
    audienceFor: pdp.audienceFor,
    store: pdp.store,
    maxTokenTtlSeconds: pdp.config.issuer.max_token_ttl_seconds,
    logger: pdp.logger,
    observer: pdp.metrics,
    ...(options.now === undefined ? {} : { now: options.now }),
  });
}

/**
 * One warning naming the agents whose `token_ttl` exceeds the issuer's cap. The agents are read in one pass without a
 * [key, value] pair each (at 100,000 agents Object.entries allocated 100,000 arrays while a reload's traffic waited),
 * and past 8 ms of it the pass yields to the event loop between agents: a compiled bundle builds each agent on its
 * first read. A small set is read, and warned about, at once.
 */
async function warnTokenTtlsAbove(set: PolicySet, cap: number, logger: Logger): Promise<void> {
  const agents = set.data.policies.agents;
  const above: string[] = [];
  let lastYield = performance.now();
  try {
    for (const id of set.agents) {
      if ((agents[id] as { token_ttl: number }).token_ttl > cap) above.push(id);
      if (performance.now() - lastYield > 8) {
        await nextTurn();
        lastYield = performance.now();
      }
    }
  } catch (err) {
    logger.error({ err: describeError(err) }, 'the agents\' token_ttl could not be checked against issuer.max_token_ttl_seconds');
    return;
  }
  if (above.length > 0) {
    logger.warn(
      { agents: above.slice(0, 20), agents_above: above.length, max_token_ttl_seconds: cap },
      `token_ttl of ${above.length} agent(s) exceeds issuer.max_token_ttl_seconds: their decisions and tokens get ${cap} s`,
    );
  }
}

/** The enforcement proxy's module, loaded when a proxy starts: undici is about 0.1 s of a start that serves none. */
function loadProxy(): Promise<typeof import('./proxy/index.js')> {
  return import('./proxy/index.js');
}

export interface RunningProxy {
  proxy: EnforcementProxy;
  url: string;
  /** Resolves when the proxy has shut down (SIGTERM, SIGINT or close()). */
  closed: Promise<void>;
  close(): Promise<void>;
}

/**
 * `agent-pdp proxy`: the enforcement proxy alone, on the PDP's store (its revocations, its audit trail), key folder
 * (read, never created or rotated here) and policy folder (the endpoint maps, reloaded as they change). Several
 * proxies and the PDP may share one store: every write takes the store's write lock and reads the chain head in
 * its transaction.
 */
export async function startProxy(opts: { configPath: string; nodeEnv?: string | undefined }): Promise<RunningProxy> {
  const { config, warnings } = loadConfigFile(opts.configPath, { nodeEnv: opts.nodeEnv });
  const logger = createLogger(config.log.level);
  for (const warning of warnings) logger.warn(warning);
  if (config.proxy === null) throw new PdpError('config_invalid', `config ${config.source} has no proxy section`, { details: [{ path: 'proxy', message: 'is required by agent-pdp proxy' }] });
  warnIfMissingServerFlags(logger);
  const proxyConfig = config.proxy;
  const maskKey = config.audit.mask_key_file === null ? undefined : await readMaskKey(config.audit.mask_key_file);
  const store = await openStore(config.store.url, {
    ...storeOpenOptions(config.store),
    mask: config.audit.mask,
    ...(maskKey === undefined ? {} : { maskKey }),
    onWarning: (message) => logger.warn(message),
  });
  const metrics = new Metrics();
  metrics.watchStore(store); // its writer and WAL checkpointer on /-/metrics, as `serve` has them on /metrics
  let engine: PolicyEngine | undefined;
  let proxy: EnforcementProxy;
  try {
    engine = new PolicyEngine({
      ...policySource(config),
      load: { allowInsecurePermissions: config.policy.allow_insecure_permissions, maxFileBytes: config.policy.max_file_bytes, maxEntriesPerFile: config.policy.max_entries_per_file },
      listener: {
        loaded: (active) => logger.info({ revision: active.revision, endpoint_maps: Object.keys(active.policySet.endpointMaps) }, 'proxy: policy loaded'),
        refused: (error, current) => logger.error({ code: error.code, active_revision: current?.revision }, `proxy: policy refused: ${error.message}`),
      },
    });
    await engine.reload();
    if (config.policy.watch) engine.watch(config.policy.watch_interval_ms);
    const keys = await IssuerKeys.load(config.issuer.keys, { alg: config.issuer.alg, maxTokenTtlSeconds: config.issuer.max_token_ttl_seconds }, () => new Date());
    const active = engine;
    const { startEnforcementProxy } = await loadProxy();
    proxy = await startEnforcementProxy({
      config: proxyConfig,
      issuer: config.issuer.issuer,
      jwks: () => keys.resolver,
      policy: () => active.active?.policySet,
      audienceFor: audienceOf(config, active),
      store,
      maxTokenTtlSeconds: config.issuer.max_token_ttl_seconds,
      logger,
      observer: metrics,
      metrics: async () => ({ contentType: metrics.registry.contentType, text: await metrics.registry.metrics() }),
    });
    const reloadKeys = setInterval(() => {
      keys.reload().catch((err: unknown) => logger.error({ err: describeError(err) }, 'proxy: reading the issuer keys failed'));
    }, 60_000);
    reloadKeys.unref();
    proxy.server.once('close', () => clearInterval(reloadKeys));
  } catch (err) {
    engine?.stopWatching();
    await store.close();
    throw err;
  }
  const running = proxy;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      await running.close();
      engine?.stopWatching();
      await store.close();
      logger.info('proxy stopped');
    })();
    return closing;
  };
  const onStop = (): void => void close();
  process.once('SIGTERM', onStop);
  process.once('SIGINT', onStop);
  const closed = new Promise<void>((resolve) => {
    running.server.once('close', () => void (closing ?? Promise.resolve()).then(resolve));
  });
  return { proxy: running, url: running.url, closed, close };
}
