import express, { type Express, type Router } from 'express';
import type { Logger } from 'pino';
import type { PdpConfig } from '../config/config-types.js';
import type { Decider } from '../pdp/decider.js';
import type { PolicyEngine } from '../pdp/policy-engine.js';
import type { TaskService } from '../pdp/task-service.js';
import { authenticate, type AuthFailure } from './authenticate.js';
import { errorHandler, notFound } from './error-handler.js';
import type { Metrics } from './metrics.js';
import { openApiDocument } from './openapi.js';
import { requestLog } from './request-log.js';
import { adminRoutes } from './routes/admin.js';
import { decideRoutes } from './routes/decide.js';
import { healthRoutes } from './routes/health.js';
import { taskRoutes } from './routes/tasks.js';
import { traceContext } from './trace-context.js';

export interface AppDeps {
  config: PdpConfig;
  logger: Logger;
  metrics: Metrics;
  engine: PolicyEngine;
  decider: Decider;
  tasks: TaskService;
  /** Reload policy and keys (admin endpoint, SIGHUP). Default: the policy engine only. */
  reload?: () => Promise<void>;
  /** Routers of later modules (issuer, audit) mounted behind authentication. */
  authenticated?: Router[];
  /** Routers mounted before authentication (JWKS, discovery metadata). */
  public?: Router[];
  onAuthFailure?: (failure: AuthFailure) => void;
}

/** Builds the HTTP API on injected dependencies; it holds no business rules of its own. */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('trust proxy', false);
  app.use(requestLog(deps.logger, deps.metrics));
  app.use(traceContext);
  app.use(healthRoutes(deps.engine, deps.metrics));
  const openapi = openApiDocument(deps.config.issuer.issuer);
  app.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });
  for (const router of deps.public ?? []) app.use(router);

  app.use(
    authenticate(deps.config.callers, (failure) => {
      deps.metrics.authFailures.inc({ reason: failure.reason });
      deps.onAuthFailure?.(failure);
    }),
  );
  const limit = deps.config.server.body_limit_bytes;
  app.use(express.json({ limit, strict: true, type: ['application/json', 'application/*+json'] }));
  app.use(express.urlencoded({ limit, extended: false, parameterLimit: 20 }));
  app.use(decideRoutes(deps.decider));
  app.use(taskRoutes(deps.tasks));
  app.use(adminRoutes(deps.engine, deps.reload));
  for (const router of deps.authenticated ?? []) app.use(router);

  app.use(notFound);
  app.use(errorHandler(deps.logger));
  return app;
}
