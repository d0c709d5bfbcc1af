import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { compileMask } from '../audit/index.js';
import { PdpError, type ErrorDetail } from '../errors/pdp-error.js';
import { describeAjvError, validateConfigShape } from './config-schema.js';
import type {
  AuthzenSubjectRoute,
  ConsoleConfig,
  CallerConfig,
  CallerRole,
  EscalationConfig,
  PdpConfig,
  PolicySigningAlgorithm,
  PolicyServiceConfig,
  PolicyVerificationConfig,
  ProviderConfig,
  ProxyConfig,
  SuggestionScheduleConfig,
  SuggestionsConfig,
  WebhookConfig,
} from './config-types.js';
import { isDevKeyHash } from './dev-keys.js';

export interface LoadedConfig {
  config: PdpConfig;
  /** Insecure settings to announce loudly at boot (never contains a key). */
  warnings: string[];
}

export interface ConfigEnvironment {
  /** `production` refuses the documented dev keys. */
  nodeEnv?: string | undefined;
  /** Where `*_env` settings (webhook URLs, secrets) are read. Default `process.env`. */
  variables?: Readonly<Record<string, string | undefined>>;
  /**
   * Read the webhooks' URLs, secrets and routing keys (default true: the server delivers with them). The CLI's
   * commands never deliver, so they skip them (left empty in the frozen config): an operator running `audit verify`
   * needs no webhook secret in the shell.
   */
  webhookSecrets?: boolean;
}

/** Reads, validates, defaults and freezes the config file. Relative paths resolve against the file's folder. */
export function loadConfigFile(path: string, env: ConfigEnvironment = {}): LoadedConfig {
  const source = resolve(path);
  let text: string;
  try {
    text = readFileSync(source, 'utf8');
  } catch (cause) {
    throw new PdpError('config_invalid', `cannot read config file ${source}`, { cause });
  }
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (cause) {
    throw new PdpError('config_invalid', `config file ${source} is not valid YAML: ${(cause as Error).message}`, {
      cause,
    });
  }
  return buildConfig(raw, source, dirname(source), env);
}

export function buildConfig(raw: unknown, source: string, baseDir: string, env: ConfigEnvironment = {}): LoadedConfig {
  if (!validateConfigShape(raw)) {
    // One detail per field: a field with alternatives (`role`: one role or a list) fails each; the first says it.
    const details: ErrorDetail[] = [];
    for (const d of (validateConfigShape.errors ?? []).map(describeAjvError)) if (!details.some((e) => e.path === d.path)) details.push(d);
    throw new PdpError('config_invalid', `config ${source} is invalid: ${summarize(details)}`, { details });
  }
  const r = raw as RawConfig;
  const at = (p: string): string => resolve(baseDir, p);
  const details: ErrorDetail[] = [];
  const warnings: string[] = [];

  const listen = r.server?.listen ?? '127.0.0.1:8181';
  const colon = listen.lastIndexOf(':');
  const port = Number(listen.slice(colon + 1));
  if (port > 65535) details.push({ path: 'server.listen', message: 'port must be at most 65535' });

  const seen = new Set<string>();
  const callers: CallerConfig[] = r.callers.map((c, i) => {
    if (seen.has(c.id)) details.push({ path: `callers[${i}].id`, message: `duplicate caller id "${c.id}"` });
    seen.add(c.id);
    const roles: CallerRole[] = Array.isArray(c.role) ? [...c.role] : [c.role];
    if (!roles.includes('pep') && (c.agents !== undefined || c.may_assert_context !== undefined)) {
      details.push({ path: `callers[${i}]`, message: 'agents and may_assert_context apply to role pep only' });
    }
    if (!roles.includes('approver') && c.approver_groups !== undefined) {
      details.push({ path: `callers[${i}].approver_groups`, message: 'applies to role approver only' });
    }
    if (roles.includes('approver') && c.approver_groups === undefined) {
      details.push({ path: `callers[${i}].approver_groups`, message: 'an approver needs the groups it answers for' });
    }
    if (isDevKeyHash(c.key_sha256)) {
      if (env.nodeEnv === 'production') {
        details.push({ path: `callers[${i}].key_sha256`, message: 'a documented dev key is refused in production' });
      } else {
        warnings.push(`caller "${c.id}" uses a documented DEV KEY: anyone can authenticate as it. Never deploy this.`);
      }
    }
    return Object.freeze({
      id: c.id,
      role: roles[0] as CallerRole,
      roles: Object.freeze(roles),
      ...(c.approver_groups === undefined ? {} : { approver_groups: Object.freeze([...c.approver_groups]) }),
      key_sha256: c.key_sha256.toLowerCase(),
      agents: Object.freeze([...(c.agents ?? [])]),
      may_assert_context: c.may_assert_context ?? false,
    });
  });
  const hashes = new Set(callers.map((c) => c.key_sha256));
  if (hashes.size !== callers.length) details.push({ path: 'callers', message: 'two callers share one API key' });

  const tasks = { default_ttl_seconds: r.tasks?.default_ttl_seconds ?? 3600, max_ttl_seconds: r.tasks?.max_ttl_seconds ?? 86400 };
  if (tasks.default_ttl_seconds > tasks.max_ttl_seconds) {
    details.push({ path: 'tasks.default_ttl_seconds', message: 'exceeds tasks.max_ttl_seconds' });
  }
  const storeUrl = r.store?.url;
  if (storeUrl !== undefined && /^postgres(ql)?:\/\//i.test(storeUrl) && !postgresUrlReadable(storeUrl)) {
    // Never quoted: the URL may hold the database password.
    details.push({ path: 'store.url', message: 'is not a URL that can be read (postgres://user@host:5432/database; a password with reserved characters must be percent-encoded)' });
  }
  const issuerUrl = r.issuer?.issuer ?? `http://${listen}`;
  if (r.issuer?.issuer === undefined && /:0$/.test(listen)) {
    // Port 0 is picked when the server binds; the default issuer cannot know it, and tokens would name port 0.
    warnings.push(`server.listen ${listen} picks a free port at start, but issuer.issuer defaults to http://${listen}: set issuer.issuer to the URL clients reach the PDP at`);
  }
  if (issuerUrl.startsWith('http://') && !isLoopbackUrl(issuerUrl)) {
    if (env.nodeEnv === 'production') details.push({ path: 'issuer.issuer', message: 'must be https in production' });
    else warnings.push(`issuer ${issuerUrl} is plain http on a non-loopback address`);
  }
  if (r.policy?.allow_insecure_permissions === true) {
    if (env.nodeEnv === 'production') {
      details.push({ path: 'policy.allow_insecure_permissions', message: 'group/other-writable policy files are refused in production: fix their permissions (chmod go-w)' });
    } else {
      warnings.push('policy.allow_insecure_permissions is on: policy files, folders and the bundle that other local users can write are LOADED (with a warning each). Whoever can write them can grant any agent anything.');
    }
  }
  const mask = r.audit?.mask ?? [];
  mask.forEach((path, i) => {
    try {
      compileMask([path]);
    } catch (error) {
      details.push({ path: `audit.mask[${i}]`, message: (error as Error).message });
    }
  });
  if (mask.length > 0 && r.audit?.mask_key_file === undefined) {
    warnings.push('audit.mask without audit.mask_key_file: masked values are plain SHA-256 digests, which anyone can reverse for low-entropy values (SSNs, phone numbers) by trying them all');
  }
  const issuerKeys = at(r.issuer?.keys ?? 'data/keys');
  const escalation = buildEscalation(r.escalation ?? {}, issuerUrl.replace(/\/+$/, ''), issuerKeys, at, env.webhookSecrets === false ? null : (env.variables ?? process.env), details, warnings);
  if (escalation.public_url.startsWith('http://') && !isLoopbackUrl(escalation.public_url) && r.escalation?.webhooks?.length) {
    if (env.nodeEnv === 'production') details.push({ path: 'escalation.public_url', message: 'must be https in production (approval links carry approver keys to it)' });
    else warnings.push(`escalation.public_url ${escalation.public_url} is plain http on a non-loopback address: approvers would send their keys in clear`);
  }
  const proxy = r.proxy === undefined ? null : buildProxy(r.proxy, at, env, details, warnings);
  const providers = buildProviders(r.providers ?? [], at, env, details, warnings);
  const suggestions: SuggestionsConfig = {
    min_days: r.suggestions?.min_days ?? 30,
    min_tokens: r.suggestions?.min_tokens ?? 20,
    window_days: r.suggestions?.window_days ?? 90,
    ttl_factor: r.suggestions?.ttl_factor ?? 4,
    schedule: buildSuggestionSchedule(r.suggestions?.schedule, escalation.webhooks, details),
  };
  const service = r.policy?.service;
  if (r.policy?.compiled !== undefined || service !== undefined) {
    const by = service !== undefined ? 'policy.service' : 'policy.compiled';
    for (const key of ['agents', 'bundle', ...(service !== undefined ? (['compiled'] as const) : [])] as const) {
      if (r.policy?.[key] !== undefined) details.push({ path: `policy.${key}`, message: `${by} replaces policy.${key}: set one or the other` });
    }
  } else if (r.policy?.verification !== undefined) {
    details.push({ path: 'policy.verification', message: 'checks the signature of policy.compiled or policy.service, neither of which is set' });
  }
  if (r.suggestions?.schedule !== undefined && (r.policy?.compiled !== undefined || service !== undefined)) {
    details.push({
      path: 'suggestions.schedule',
      message: 'needs the YAML policy folder, which a server on policy.compiled or policy.service does not read: run agent-pdp suggest where the policies are kept',
    });
  }
  if (service !== undefined && r.policy?.verification === undefined) {
    if (env.nodeEnv === 'production') {
      details.push({ path: 'policy.verification', message: 'is required with policy.service in production: sign the bundles (agent-pdp bundle build --signing-key) and configure the key' });
    } else {
      warnings.push('policy.service without policy.verification: whoever can change the file the bundle server serves decides every authorization. Sign the bundles and configure the key.');
    }
  }
  if (service !== undefined) {
    if ((service.max_delay_seconds ?? 120) < (service.min_delay_seconds ?? 60)) {
      details.push({ path: 'policy.service.max_delay_seconds', message: 'is below policy.service.min_delay_seconds' });
    }
    if (/^http:/i.test(service.url) && !isLoopbackUrl(service.url)) {
      details.push({ path: 'policy.service.url', message: 'must be https (plain http only on a loopback host)' });
    }
  }
  if (suggestions.min_days > suggestions.window_days) {
    details.push({ path: 'suggestions.min_days', message: 'exceeds suggestions.window_days: nothing could ever be suggested' });
  }
  for (const [type, route] of Object.entries(r.authzen?.subjects ?? {})) {
    if (type === 'agent') details.push({ path: 'authzen.subjects.agent', message: 'type agent is built in (the agent decision) and cannot be routed' });
    for (const key of ['decision', 'entities'] as const) {
      const entrypoint = route[key];
      if (entrypoint === undefined) continue;
      // The agent decision and its data are reached through the Decider only, never as a pack's answer.
      if (/^(agentpdp|agentpdp_compiled|policies)(\/|$)/.test(entrypoint)) {
        details.push({ path: `authzen.subjects.${type}.${key}`, message: `${entrypoint} is the agent decision's own: route a subject type to a Rego pack's entrypoint` });
      }
    }
  }
  if (!URL.canParse(escalation.public_url)) {
    details.push({ path: r.escalation?.public_url === undefined ? 'issuer.issuer' : 'escalation.public_url', message: 'is not a URL (its host or port cannot be read)' });
  }
  const consoleConfig = consoleOf(r.console, escalation.public_url, details);
  if (consoleConfig.enabled && !consoleConfig.secure_cookie && env.nodeEnv === 'production') {
    warnings.push('console.secure_cookie is off in production: the console session cookie goes without Secure and __Host- (serve the console over https)');
  }
  if (details.length > 0) {
    throw new PdpError('config_invalid', `config ${source} is invalid: ${summarize(details)}`, { details });
  }

  const config: PdpConfig = {
    source,
    server: { host: listen.slice(0, colon), port, body_limit_bytes: r.server?.body_limit_bytes ?? 65536, workers: r.server?.workers ?? 1 },
    policy: {
      bundle: at(r.policy?.bundle ?? 'opa-bundle/bundle.tar.gz'),
      agents: at(r.policy?.agents ?? 'policies'),
      watch: r.policy?.watch ?? true,
      watch_interval_ms: r.policy?.watch_interval_ms ?? 1000,
      allow_insecure_permissions: r.policy?.allow_insecure_permissions ?? false,
      max_file_bytes: r.policy?.max_file_bytes ?? 1048576,
      max_entries_per_file: r.policy?.max_entries_per_file ?? 10000,
      compiled: r.policy?.compiled === undefined ? null : at(r.policy.compiled),
      verification: policyVerification(r.policy?.verification, at),
      service: policyService(r.policy?.service, at),
    },
    store: {
      url: resolveStoreUrl(r.store?.url ?? 'sqlite:data/agent-pdp.db', at),
      synchronous: r.store?.synchronous ?? 'normal',
      schema: r.store?.schema ?? null,
      pool_size: r.store?.pool_size ?? 8,
    },
    issuer: {
      issuer: issuerUrl.replace(/\/+$/, ''),
      keys: issuerKeys,
      alg: r.issuer?.alg ?? 'EdDSA',
      redeem_window_seconds: r.issuer?.redeem_window_seconds ?? 60,
      max_token_ttl_seconds: r.issuer?.max_token_ttl_seconds ?? 3600,
      // No prototype: integrations may be named `constructor` or `toString` (a plain object would answer those).
      audiences: Object.assign(Object.create(null) as Record<string, string>, r.issuer?.audiences ?? {}),
    },
    tasks,
    audit: {
      mask: Object.freeze([...mask]),
      mask_key_file: r.audit?.mask_key_file === undefined ? null : at(r.audit.mask_key_file),
      retention_days: r.audit?.retention_days ?? null,
    },
    log: { level: r.log?.level ?? 'info' },
    escalation,
    authzen: {
      // The default is the public URL's origin: the metadata is served at the root's well-known URI only, and its
      // endpoint URLs are the PDP's own routes (an explicit pdp_url may not have a path either).
      pdp_url: r.authzen?.pdp_url === undefined ? originOf(escalation.public_url) : r.authzen.pdp_url.replace(/\/+$/, ''),
      max_evaluations: r.authzen?.max_evaluations ?? 100,
      max_page_size: r.authzen?.max_page_size ?? 100,
      // No prototype: a subject type may be named `constructor` (a plain object would answer it).
      subjects: Object.assign(
        Object.create(null) as Record<string, AuthzenSubjectRoute>,
        Object.fromEntries(Object.entries(r.authzen?.subjects ?? {}).map(([type, route]) => [type, { decision: route.decision, entities: route.entities ?? null }])),
      ),
    },
    console: consoleConfig,
    suggestions,
    proxy,
    providers: Object.freeze(providers),
    callers: Object.freeze(callers),
  };
  if (config.authzen.pdp_url.startsWith('http://') && !isLoopbackUrl(config.authzen.pdp_url) && Object.keys(config.authzen.subjects).length > 0) {
    warnings.push(`authzen.pdp_url ${config.authzen.pdp_url} is plain http: AuthZEN's metadata names an https policy_decision_point`);
  }
  return { config: deepFreeze(config), warnings };
}

/**
 * The escalation section with its defaults; each webhook's URL, secret and routing key read from the config, an
 * environment variable or a file. A missing or empty one is an error naming the setting, never its value.
 */
function buildEscalation(
  e: NonNullable<RawConfig['escalation']>,
  issuerUrl: string,
  issuerKeys: string,
  at: (p: string) => string,
  variables: Readonly<Record<string, string | undefined>> | null,
  details: ErrorDetail[],
  warnings: string[],
): EscalationConfig {
  const ids = new Set<string>();
  const webhooks: WebhookConfig[] = (e.webhooks ?? []).map((w, i) => {
    const path = `escalation.webhooks[${i}]`;
    if (ids.has(w.id)) details.push({ path: `${path}.id`, message: `duplicate webhook id "${w.id}"` });
    ids.add(w.id);
    const secretOf = (name: string, inline: string | undefined, envName: string | undefined, file: string | undefined, required: boolean): string | null => {
      const given = [inline, envName, file].filter((x) => x !== undefined).length;
      if (given > 1) {
        details.push({ path: `${path}.${name}`, message: `give one of ${name}, ${name}_env, ${name}_file` });
        return null;
      }
      if (given === 0) {
        if (required) details.push({ path: `${path}.${name}`, message: `is required (${name}_env or ${name}_file${name === 'url' ? `, or ${name}` : ''})` });
        return null;
      }
      if (inline !== undefined) return inline;
      if (variables === null) return null; // not resolved (the CLI): the shape was checked, the values are not needed
      if (envName !== undefined) {
        const value = variables[envName]?.trim();
        if (!value) details.push({ path: `${path}.${name}_env`, message: `environment variable ${envName} is unset or empty` });
        return value || null;
      }
      const filePath = at(file as string);
      try {
        const value = readFileSync(filePath, 'utf8').trim();
        if (value === '') details.push({ path: `${path}.${name}_file`, message: `${filePath} is empty` });
        if ((statSync(filePath).mode & 0o077) !== 0) warnings.push(`${path}.${name}_file ${filePath} is readable by group or others: chmod 600 it`);
        return value || null;
      } catch {
        details.push({ path: `${path}.${name}_file`, message: `cannot read ${filePath}` });
        return null;
      }
    };
    const url = secretOf('url', w.url, w.url_env, w.url_file, true);
    if (url !== null && !/^https?:\/\/[^\s]+$/.test(url)) details.push({ path: `${path}.url`, message: 'is not an http(s) URL' });
    const secret = secretOf('secret', undefined, w.secret_env, w.secret_file, true);
    if (secret !== null && secret.length < 16) details.push({ path: `${path}.secret`, message: 'must be at least 16 characters' });
    const routingKey = secretOf('routing_key', undefined, w.routing_key_env, w.routing_key_file, w.format === 'pagerduty');
    if (w.format !== 'pagerduty' && routingKey !== null) details.push({ path: `${path}.routing_key`, message: 'applies to format pagerduty only' });
    return Object.freeze({ id: w.id, groups: Object.freeze([...w.groups]), format: w.format, url: url ?? '', secret: secret ?? '', routing_key: routingKey });
  });
  const o = e.outbox ?? {};
  const outbox = {
    max_attempts: o.max_attempts ?? 10,
    initial_backoff_ms: o.initial_backoff_ms ?? 500,
    max_backoff_ms: o.max_backoff_ms ?? 300000,
    timeout_ms: o.timeout_ms ?? 5000,
    concurrency: o.concurrency ?? 32,
  };
  if (outbox.initial_backoff_ms > outbox.max_backoff_ms) {
    details.push({ path: 'escalation.outbox.initial_backoff_ms', message: 'exceeds escalation.outbox.max_backoff_ms' });
  }
  return {
    public_url: (e.public_url ?? issuerUrl).replace(/\/+$/, ''),
    request_window_seconds: e.request_window_seconds ?? 600,
    pending_ttl_seconds: e.pending_ttl_seconds ?? 3600,
    link_ttl_seconds: e.link_ttl_seconds ?? 900,
    link_key_file: e.link_key_file === undefined ? resolve(issuerKeys, 'approval-link.key') : at(e.link_key_file),
    sweep_interval_ms: e.sweep_interval_ms ?? 1000,
    outbox,
    webhooks,
  };
}

/**
 * The proxy section with its defaults. Each upstream's origin is fixed here (https, or http on a loopback host) and
 * its credential read from an environment variable (at load) or named as a file (read by the proxy, re-read when
 * it changes). A missing credential is an error naming the setting, never its value.
 */
function buildProxy(p: NonNullable<RawConfig['proxy']>, at: (p: string) => string, env: ConfigEnvironment, details: ErrorDetail[], warnings: string[]): ProxyConfig {
  const colon = p.listen.lastIndexOf(':');
  const port = Number(p.listen.slice(colon + 1));
  if (port > 65535) details.push({ path: 'proxy.listen', message: 'port must be at most 65535' });
  const variables = env.webhookSecrets === false ? null : (env.variables ?? process.env);
  const seen = new Set<string>();
  const upstreams = p.upstreams.map((u, i) => {
    const path = `proxy.upstreams[${i}]`;
    if (seen.has(u.integration)) details.push({ path: `${path}.integration`, message: `a second upstream for "${u.integration}"` });
    seen.add(u.integration);
    if (u.origin.startsWith('http://') && !isLoopbackUrl(u.origin)) {
      if (env.nodeEnv === 'production') details.push({ path: `${path}.origin`, message: 'must be https in production (the provider credential travels to it)' });
      else warnings.push(`${path}.origin ${u.origin} is plain http on a non-loopback address: the provider credential would travel in clear`);
    }
    const c = u.credential;
    let value: string | null = null;
    if ((c.env === undefined) === (c.file === undefined)) {
      details.push({ path: `${path}.credential`, message: 'give exactly one of env, file' });
    } else if (c.env !== undefined && variables !== null) {
      value = variables[c.env]?.trim() || null;
      if (value === null) details.push({ path: `${path}.credential.env`, message: `environment variable ${c.env} is unset or empty` });
    }
    const file = c.file === undefined ? null : at(c.file);
    if (file !== null) {
      try {
        if ((statSync(file).mode & 0o077) !== 0) warnings.push(`${path}.credential.file ${file} is readable by group or others: chmod 600 it`);
      } catch {
        details.push({ path: `${path}.credential.file`, message: `cannot read ${file}` });
      }
    }
    return {
      integration: u.integration,
      origin: u.origin,
      base_path: u.base_path ?? '',
      credential: { header: (c.header ?? 'authorization').toLowerCase(), prefix: c.prefix ?? 'Bearer ', value, file },
      forward_headers: Object.freeze((u.forward_headers ?? []).map((h) => h.toLowerCase())),
      connect_timeout_ms: u.connect_timeout_ms ?? 5000,
      headers_timeout_ms: u.headers_timeout_ms ?? 30000,
      body_timeout_ms: u.body_timeout_ms ?? 30000,
      connections: u.connections ?? 32,
    };
  });
  return {
    host: p.listen.slice(0, colon),
    port,
    serve: p.serve ?? false,
    id: p.id ?? 'proxy',
    revocation_poll_ms: p.revocation_poll_ms ?? 200,
    token_cache_entries: p.token_cache_entries ?? 10000,
    max_request_bytes: p.max_request_bytes ?? 10485760,
    max_response_bytes: p.max_response_bytes ?? 104857600,
    upstreams,
  };
}

/**
 * The providers section. The source credential is checked to be there (the variable set, the file present), never
 * read into the config: src/providers/ reads it at start. An error names the setting, never a value.
 */
function buildProviders(list: NonNullable<RawConfig['providers']>, at: (p: string) => string, env: ConfigEnvironment, details: ErrorDetail[], warnings: string[]): ProviderConfig[] {
  const variables = env.webhookSecrets === false ? null : (env.variables ?? process.env);
  const seen = new Set<string>();
  return list.map((p, i) => {
    const path = `providers[${i}]`;
    if (seen.has(p.integration)) details.push({ path: `${path}.integration`, message: `a second provider for "${p.integration}"` });
    seen.add(p.integration);
    const endpoint = p.endpoint ?? null;
    // Refused whatever NODE_ENV says, as policy.service.url is: minted credentials (and, for GCS, the service
    // account's own unscoped token) would travel in clear.
    if (endpoint !== null && endpoint.startsWith('http://') && !isLoopbackUrl(endpoint)) {
      details.push({ path: `${path}.endpoint`, message: 'must be https (plain http only on a loopback host): minted credentials come back from it' });
    }
    const c = p.credential;
    if ((c.env === undefined) === (c.file === undefined)) details.push({ path: `${path}.credential`, message: 'give exactly one of env, file' });
    else if (c.env !== undefined && variables !== null && !variables[c.env]?.trim()) {
      details.push({ path: `${path}.credential.env`, message: `environment variable ${c.env} is unset or empty` });
    }
    const file = c.file === undefined ? null : at(c.file);
    if (file !== null) {
      try {
        if ((statSync(file).mode & 0o077) !== 0) warnings.push(`${path}.credential.file ${file} is readable by group or others: chmod 600 it`);
      } catch {
        details.push({ path: `${path}.credential.file`, message: `cannot read ${file}` });
      }
    }
    const base = { integration: p.integration, timeout_ms: p.timeout_ms ?? 5000, credential: { env: c.env ?? null, file } };
    const plain = (key: 'token_endpoint' | 'sts_endpoint', url: string): void => {
      if (!url.startsWith('http://') || isLoopbackUrl(url)) return;
      details.push({ path: `${path}.${key}`, message: 'must be https (plain http only on a loopback host): tokens travel to and from it' });
    };
    if (p.kind === 'google_workspace' || p.kind === 'gcp_storage') {
      for (const key of ['role_arn', 'region', 'endpoint', 'max_session_seconds'] as const) if (p[key] !== undefined) details.push({ path: `${path}.${key}`, message: 'is for kind aws' });
      const tokenEndpoint = p.token_endpoint ?? 'https://oauth2.googleapis.com/token';
      plain('token_endpoint', tokenEndpoint);
      if (p.kind === 'google_workspace') {
        if (p.sts_endpoint !== undefined) details.push({ path: `${path}.sts_endpoint`, message: 'is for kind gcp_storage' });
        return { ...base, kind: 'google_workspace' as const, token_endpoint: tokenEndpoint };
      }
      const stsEndpoint = p.sts_endpoint ?? 'https://sts.googleapis.com/v1/token';
      plain('sts_endpoint', stsEndpoint);
      return { ...base, kind: 'gcp_storage' as const, token_endpoint: tokenEndpoint, sts_endpoint: stsEndpoint };
    }
    for (const key of ['token_endpoint', 'sts_endpoint'] as const) if (p[key] !== undefined) details.push({ path: `${path}.${key}`, message: 'is for the Google kinds' });
    if (p.role_arn === undefined) details.push({ path: `${path}.role_arn`, message: 'is required for kind aws' });
    if (p.region === undefined) details.push({ path: `${path}.region`, message: 'is required for kind aws' });
    return { ...base, kind: 'aws' as const, role_arn: p.role_arn ?? '', region: p.region ?? '', endpoint, max_session_seconds: p.max_session_seconds ?? 3600 };
  });
}

/** The host itself must be loopback: `http://127.0.0.1.nip.io` only starts like one. */
const LOOPBACK_HOST = /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])$/;

/** A URL's scheme, host and port (checked to parse before the config is built). */
function originOf(url: string): string {
  return new URL(url).origin;
}

function isLoopbackUrl(url: string): boolean {
  return URL.canParse(url) && LOOPBACK_HOST.test(new URL(url).hostname);
}

/** What the store is opened with, from the config's store section (either engine reads its own). */
export function storeOpenOptions(store: PdpConfig['store']): { synchronous: 'normal' | 'full'; schema?: string; poolSize: number } {
  return { synchronous: store.synchronous, poolSize: store.pool_size, ...(store.schema === null ? {} : { schema: store.schema }) };
}

/**
 * Whether node-postgres can read a connection URL, as pg-connection-string reads it (not loaded here: the config of
 * a SQLite deployment never needs it): spaces and stray `%` encoded first, and an empty host after the user (`user@/db?host=/var/run/postgresql`, a Unix socket) read with a stand-in host.
 */
function postgresUrlReadable(url: string): boolean {
  const text = / |%[^a-f0-9]|%[a-f0-9][^a-f0-9]/i.test(url) ? encodeURI(url).replace(/%25(\d\d)/g, '%$1') : url;
  return URL.canParse(text, 'postgres://base') || URL.canParse(text.replace('@/', '@___DUMMY___/'), 'postgres://base');
}

function resolveStoreUrl(url: string, at: (p: string) => string): string {
  if (!url.startsWith('sqlite:')) return url;
  const path = url.slice('sqlite:'.length);
  return path === ':memory:' ? url : `sqlite:${at(path)}`;
}

function summarize(details: ErrorDetail[]): string {
  return details.map((d) => `${d.path}: ${d.message}`).join('; ');
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * `suggestions.schedule`: absent → null (no scheduled run). Each group it notifies must be served by a webhook that
 * can carry a suggestions notification (generic or slack: a suggestion is not a PagerDuty incident).
 */
function buildSuggestionSchedule(
  raw: NonNullable<NonNullable<RawConfig['suggestions']>['schedule']> | undefined,
  webhooks: readonly WebhookConfig[],
  details: ErrorDetail[],
): SuggestionScheduleConfig | null {
  if (raw === undefined) return null;
  const notify = raw.notify ?? [];
  notify.forEach((group, i) => {
    if (!webhooks.some((w) => w.format !== 'pagerduty' && w.groups.includes(group))) {
      details.push({ path: `suggestions.schedule.notify[${i}]`, message: `no generic or slack webhook in escalation.webhooks serves group "${group}"` });
    }
  });
  return Object.freeze({ every_days: raw.every_days ?? 7, at: raw.at ?? '03:00', notify: Object.freeze([...notify]) });
}

interface RawConfig {
  server?: { listen?: string; body_limit_bytes?: number; workers?: number | 'auto' };
  policy?: {
    bundle?: string;
    agents?: string;
    watch?: boolean;
    watch_interval_ms?: number;
    allow_insecure_permissions?: boolean;
    max_file_bytes?: number;
    max_entries_per_file?: number;
    compiled?: string;
    service?: {
      url: string;
      token_file?: string;
      min_delay_seconds?: number;
      max_delay_seconds?: number;
      timeout_seconds?: number;
      max_bytes?: number;
      persist?: string;
    };
    verification?: {
      key_id?: string;
      scope?: string;
      keys: Record<string, { algorithm: PolicySigningAlgorithm; key_file: string; scope?: string }>;
    };
  };
  store?: { url?: string; synchronous?: 'normal' | 'full'; schema?: string; pool_size?: number };
  issuer?: {
    issuer?: string;
    keys?: string;
    alg?: 'EdDSA' | 'ES256';
    redeem_window_seconds?: number;
    max_token_ttl_seconds?: number;
    audiences?: Record<string, string>;
  };
  tasks?: { default_ttl_seconds?: number; max_ttl_seconds?: number };
  audit?: { mask?: string[]; mask_key_file?: string; retention_days?: number | null };
  log?: { level?: PdpConfig['log']['level'] };
  suggestions?: {
    min_days?: number;
    min_tokens?: number;
    window_days?: number;
    ttl_factor?: number;
    schedule?: { every_days?: number; at?: string; notify?: string[] };
  };
  proxy?: {
    listen: string;
    serve?: boolean;
    id?: string;
    revocation_poll_ms?: number;
    token_cache_entries?: number;
    max_request_bytes?: number;
    max_response_bytes?: number;
    upstreams: Array<{
      integration: string;
      origin: string;
      base_path?: string;
      credential: { header?: string; prefix?: string; env?: string; file?: string };
      forward_headers?: string[];
      connect_timeout_ms?: number;
      headers_timeout_ms?: number;
      body_timeout_ms?: number;
      connections?: number;
    }>;
  };
  providers?: Array<{
    integration: string;
    kind: 'aws' | 'google_workspace' | 'gcp_storage';
    role_arn?: string;
    region?: string;
    endpoint?: string;
    max_session_seconds?: number;
    token_endpoint?: string;
    sts_endpoint?: string;
    timeout_ms?: number;
    credential: { env?: string; file?: string };
  }>;
  console?: {
    enabled?: boolean;
    session_idle_seconds?: number;
    session_max_seconds?: number;
    secure_cookie?: boolean | 'auto';
  };
  authzen?: {
    pdp_url?: string;
    max_evaluations?: number;
    max_page_size?: number;
    subjects?: Record<string, { decision: string; entities?: string }>;
  };
  escalation?: {
    public_url?: string;
    request_window_seconds?: number;
    pending_ttl_seconds?: number;
    link_ttl_seconds?: number;
    link_key_file?: string;
    sweep_interval_ms?: number;
    outbox?: Partial<EscalationConfig['outbox']>;
    webhooks?: Array<{
      id: string;
      groups: string[];
      format: WebhookConfig['format'];
      url?: string;
      url_env?: string;
      url_file?: string;
      secret_env?: string;
      secret_file?: string;
      routing_key_env?: string;
      routing_key_file?: string;
    }>;
  };
  callers: Array<{
    id: string;
    role: CallerRole | CallerRole[];
    approver_groups?: string[];
    key_sha256: string;
    agents?: string[];
    may_assert_context?: boolean;
  }>;
}

/** `policy.verification` with its key files resolved; null when absent. Keys by id without a prototype. */
function policyVerification(
  raw: NonNullable<RawConfig['policy']>['verification'],
  at: (path: string) => string,
): PolicyVerificationConfig | null {
  if (raw === undefined) return null;
  const keys = Object.create(null) as Record<string, PolicyVerificationConfig['keys'][string]>;
  for (const [id, key] of Object.entries(raw.keys)) keys[id] = { algorithm: key.algorithm, key_file: at(key.key_file), scope: key.scope ?? null };
  return { key_id: raw.key_id ?? null, scope: raw.scope ?? null, keys };
}

/** `policy.service` with its defaults and paths resolved; null when absent. */
function policyService(raw: NonNullable<RawConfig['policy']>['service'], at: (path: string) => string): PolicyServiceConfig | null {
  if (raw === undefined) return null;
  return {
    url: raw.url,
    token_file: raw.token_file === undefined ? null : at(raw.token_file),
    min_delay_seconds: raw.min_delay_seconds ?? 60,
    max_delay_seconds: raw.max_delay_seconds ?? 120,
    timeout_seconds: raw.timeout_seconds ?? 30,
    max_bytes: raw.max_bytes ?? 67108864,
    persist: at(raw.persist ?? 'data/policy-bundle.tar.gz'),
  };
}

/** The console's session settings (docs/console.md): defaults, and a max below the idle timeout refused. */
function consoleOf(raw: RawConfig['console'], publicUrl: string, details: ErrorDetail[]): ConsoleConfig {
  const idle = raw?.session_idle_seconds ?? 900;
  const max = raw?.session_max_seconds ?? Math.max(28800, idle);
  if (max < idle) details.push({ path: 'console.session_max_seconds', message: 'is below console.session_idle_seconds' });
  const secure = raw?.secure_cookie ?? 'auto';
  return {
    enabled: raw?.enabled ?? true,
    session_idle_seconds: idle,
    session_max_seconds: max,
    secure_cookie: secure === 'auto' ? publicUrl.startsWith('https://') : secure,
  };
}
