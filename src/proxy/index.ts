/** The enforcement proxy (docs/proxy.md): what `main.ts` and the CLI use of `src/proxy/`. */
export { startEnforcementProxy, type EnforcementProxy, type EnforcementProxyParts } from './enforcement-proxy.js';
export { PROXY_REFUSALS, type ProxyRefusalCode } from './proxy-refusal.js';
export type { ProxyObserver, ProxyOutcome } from './proxy-server.js';
export { RevocationCache } from './revocation-cache.js';
