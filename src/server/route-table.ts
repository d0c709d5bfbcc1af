import type { PdpConfig } from '../config/config-types.js';
import type { ConsoleAssets } from '../console/console-assets.js';
import type { ConsoleSessions } from '../console/console-sessions.js';
import type { AccessRequestService } from '../pdp/access-requests.js';
import type { AgentViews } from '../pdp/agent-views.js';
import type { AuthzenService } from '../pdp/authzen-service.js';
import type { DataApi } from '../pdp/data-api.js';
import type { Decider } from '../pdp/decider.js';
import type { GrantableScopes } from '../pdp/grantable-scopes.js';
import type { IssuerKeys } from '../pdp/issuer-keys.js';
import type { PolicyEngine } from '../pdp/policy-engine.js';
import type { TaskService } from '../pdp/task-service.js';
import type { TokenService } from '../pdp/token-service.js';
import type { UsageService } from '../pdp/usage-service.js';
import type { Store } from '../store/index.js';
import type { Metrics } from './metrics.js';
import { openApiDocument } from './openapi.js';
import type { Route } from './route.js';
import { accessRequestRoutes, type LinkVerifier, type RefusalReporter } from './routes/access-requests.js';
import { adminRoutes } from './routes/admin.js';
import { agentRoutes } from './routes/agents.js';
import { authzenRoutes } from './routes/authzen.js';
import { auditRoutes, type AuditConsoleServices, type AuditStore } from './routes/audit.js';
import { consoleRoutes } from './routes/console.js';
import { decideRoutes } from './routes/decide.js';
import { discoveryRoutes } from './routes/discovery.js';
import { grantableScopesRoutes } from './routes/grantable-scopes.js';
import { healthRoutes } from './routes/health.js';
import { opaDataRoutes } from './routes/opa-data.js';
import { suggestionRoutes, type SuggestionDecisions, type SuggestionReporter } from './routes/suggestions.js';
import { taskRoutes } from './routes/tasks.js';
import { tokenRoutes } from './routes/tokens.js';
import { usageRoutes } from './routes/usage.js';

export interface RouteDeps {
  config: PdpConfig;
  engine: PolicyEngine;
  decider: Decider;
  /** OPA's data API (`/v1/data/{path}`): entrypoints through the RuleEvaluator, `agentpdp/decision` through the decider. */
  opaData: DataApi;
  /** The AuthZEN Authorization API 1.0 (`/access/v1/*`, its metadata). */
  authzen: AuthzenService;
  /** The upper bound of what decisions for a task could grant (`POST /v1/grantable-scopes`). */
  grantableScopes: GrantableScopes;
  tasks: TaskService;
  tokens: TokenService;
  /** Resource servers' usage reports (`POST /v1/usage`). */
  usage: UsageService;
  accessRequests: AccessRequestService;
  /** Stored policy suggestions as reports (src/suggest's SuggestionReports, wired by main.ts). */
  suggestions: SuggestionReporter;
  /** The agents views of the web console: ceilings from the policy, activity from the usage aggregates. */
  agents: AgentViews;
  /** Applying and dismissing suggestions (src/suggest's SuggestionActions, wired by main.ts; the CLI's code too). */
  suggestionActions: SuggestionDecisions['actions'];
  /** Checks an approval link's token (src/notify's ApprovalLinks, wired by main.ts). */
  verifyLink: LinkVerifier;
  /**
   * Where refusals a route answers itself are reported (the pipeline's `onRefusal`): those of AuthZEN batch items,
   * answered as the items' denies (the approval form's refusals are thrown: the pipeline reports them, errorPage shows them).
   */
  reportRefusal?: RefusalReporter;
  keys: IssuerKeys;
  store: AuditStore;
  /** The audit console's verifications of the stored chain (the last one kept per process) and overview. */
  auditConsole: AuditConsoleServices;
  /** The notification outbox, for admins (dead letters). */
  outbox: Pick<Store, 'listDeliveries' | 'outboxCounts'>;
  metrics: Metrics;
  /** The web console's sessions and files; absent when `console.enabled` is false. */
  console?: { sessions: ConsoleSessions; assets: ConsoleAssets };
  /** Reload policy and keys (admin endpoint, SIGHUP). */
  reload: () => Promise<void>;
  now: () => Date;
  /** True once the server is shutting down: `/readyz` answers 503 so a balancer stops sending. Default: never. */
  draining?: () => boolean;
  /** What `/metrics` answers instead of `metrics`' own registry (a worker of `serve --workers`: every worker's, added up). */
  metricsText?: () => Promise<{ text: string; contentType: string } | undefined>;
}

/**
 * Every route of the HTTP API, in one table: the request pipeline serves exactly these and the OpenAPI document
 * describes exactly these. A new route is a row here (built in `routes/`), nothing else.
 */
export function routeTable(deps: RouteDeps): Route[] {
  let document: object | undefined;
  const routes: Route[] = [
    ...decideRoutes(deps.decider),
    ...grantableScopesRoutes(deps.grantableScopes),
    ...opaDataRoutes(deps.opaData),
    ...authzenRoutes(deps.authzen, deps.reportRefusal),
    ...tokenRoutes(deps.tokens),
    ...usageRoutes(deps.usage),
    ...taskRoutes(deps.tasks),
    ...accessRequestRoutes(deps.accessRequests, deps.verifyLink, deps.now),
    ...auditRoutes(deps.store, deps.now, deps.auditConsole),
    ...agentRoutes(deps.agents),
    ...suggestionRoutes(deps.suggestions, {
      actions: deps.suggestionActions,
      reload: deps.reload,
      servesFolder: deps.config.policy.compiled === null && deps.config.policy.service === null,
      servedRevision: () => deps.engine.active?.evaluator.revisions.policies ?? null,
    }),
    ...adminRoutes(deps.engine, deps.reload, deps.outbox),
    ...(deps.console === undefined ? [] : consoleRoutes(deps.console.sessions, deps.console.assets)),
    ...discoveryRoutes(deps.keys, deps.config.issuer.issuer, () => Object.keys(deps.engine.active?.policySet.integrations ?? {})),
    ...healthRoutes(deps.engine, deps.metrics, () => (document ??= openApiDocument(deps.config.issuer.issuer, routes)), deps.draining ?? (() => false), deps.metricsText),
  ];
  return routes;
}
