/**
 * `agent-pdp`: the PDP as a library. Embed one in a process (`buildConfig` or `loadConfigFile`, then `createPdp`,
 * then serve `pdp.handler` on a node:http server) or run the whole server (`startServer`, what `agent-pdp serve`
 * does). Everything else here is types: the config, the error type, and the v1 wire format. What is not exported
 * from this file has no stable contract. The client SDK for enforcement points is `agent-pdp/pep`.
 */
export { createPdp, startServer } from './main.js';
export type { CreatePdpOptions, Pdp, RunningServer } from './main.js';

export { buildConfig, loadConfigFile } from './config/config-loader.js';
export type { ConfigEnvironment, LoadedConfig } from './config/config-loader.js';
export type { CallerConfig, CallerRole, PdpConfig } from './config/config-types.js';

export { isPdpError, PdpError } from './errors/pdp-error.js';
export type { ErrorDetail, PdpErrorCode, PdpErrorOptions } from './errors/pdp-error.js';

export type { ContextValue, DecisionRequestV1, DecisionResponseV1, TaskRegistrationV1, TaskV1 } from './wire/decision-v1.js';
export type { DeniedScope, DeniedScopeReason, Outcome, Reason, ResourceRef } from './wire/evaluation-v1.js';
export type {
  AccessTokenClaims,
  AuthorizationDetail,
  AuthorizationServerMetadataV1,
  IntrospectionResponseV1,
  TokenResponseV1,
} from './wire/token-v1.js';
