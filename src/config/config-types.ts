/** The one configuration file of agent-pdp, after parsing, defaulting and freezing. Paths are absolute. */
export type CallerRole = 'pep' | 'orchestrator' | 'auditor' | 'admin' | 'resource_server' | 'approver';

export const CALLER_ROLES: readonly CallerRole[] = ['pep', 'orchestrator', 'auditor', 'admin', 'resource_server', 'approver'];

export interface CallerConfig {
  id: string;
  /** The caller's first (or only) role. */
  role: CallerRole;
  /**
   * Every role the caller holds, `role` first (the config's `role: [pep, approver]`). The loader always sets it;
   * absent means just `role`.
   */
  roles?: readonly CallerRole[];
  /** For role approver: the approver groups it answers for (policies' `escalation.approvers`). Default: none. */
  approver_groups?: readonly string[];
  /** Lowercase hex SHA-256 of the caller's API key; the key itself is never stored. */
  key_sha256: string;
  /**
   * For role pep: the agents this caller may ask decisions for: ids, or patterns where `*` stands for any run of
   * characters (`support-*`; `*` is every agent). Default: none.
   */
  agents: readonly string[];
  /** For role pep: may pass task context inline instead of naming a registered task. Default: false. */
  may_assert_context: boolean;
}

/** OPA's bundle verification settings (`opa run --verification-key`, `keys` in OPA's config). */
export interface PolicyVerificationConfig {
  /** The key to check with, whatever the signature names; null: the signature's `kid` (else its `keyid`). */
  key_id: string | null;
  /** The scope the signature must carry; null: the key's own (else none). */
  scope: string | null;
  /** Keys by id: a PEM public key or certificate (RS*, PS*, ES*) or a secret (HS*), read from `key_file` at every load. */
  keys: Readonly<Record<string, { algorithm: PolicySigningAlgorithm; key_file: string; scope: string | null }>>;
}

/** Where a replica pulls its compiled bundle from (docs/bundles.md, "From a bundle server"). */
export interface PolicyServiceConfig {
  /** `https://…` (or `http://` on a loopback host). */
  url: string;
  /** A file holding a bearer token for the bundle server, read at every poll; null: no Authorization header. */
  token_file: string | null;
  /** The next poll comes after a random delay between these. Defaults 60 and 120 s. */
  min_delay_seconds: number;
  max_delay_seconds: number;
  /** One download's time limit. Default 30 s. */
  timeout_seconds: number;
  /** Largest bundle accepted. Default 1 GiB. */
  max_bytes: number;
  /** The last good bundle, loaded at start (a restart without the server serves it). Default `data/policy-bundle.tar.gz`. */
  persist: string;
}

/** OPA's bundle signing algorithms: RS, PS, ES or HS with 256, 384 or 512 bits. */
export type PolicySigningAlgorithm = `${'RS' | 'PS' | 'ES' | 'HS'}${256 | 384 | 512}`;
/** The same, as the config schema checks it. */
export const POLICY_SIGNING_ALGORITHM_PATTERN = '^(RS|PS|ES|HS)(256|384|512)$';

export interface PdpConfig {
  /** Absolute path of the file this came from, or `<defaults>`. */
  source: string;
  server: {
    /** `host:port`. Default `127.0.0.1:8181`. */
    host: string;
    port: number;
    /** Largest accepted request body. Default 64 KiB. */
    body_limit_bytes: number;
    /** Server processes on the one port (`serve --workers`): a number, or `auto` for the cores available. Default 1. */
    workers: number | 'auto';
  };
  policy: {
    bundle: string;
    agents: string;
    /** Poll the bundle and the policy folder for changes and reload. Default true. */
    watch: boolean;
    /** Poll interval. Default 1000 ms. */
    watch_interval_ms: number;
    /**
     * Load policy files, policy folders and the bundle that group or others may write (or that sit below a folder
     * they may write without the sticky bit), with a warning at every load, instead of refusing them. Default
     * false; a warning at boot when true, refused with NODE_ENV=production.
     */
    allow_insecure_permissions: boolean;
    /** Largest policy file; a larger one refuses the set before it is parsed. Default 1 MiB (1048576). */
    max_file_bytes: number;
    /** Map entries plus list items in one policy file, at every depth. Default 10,000. */
    max_entries_per_file: number;
    /**
     * A compiled bundle (`agent-pdp bundle build`) served instead of `bundle` and `agents`: no YAML is read. Null
     * (default): the files.
     */
    compiled: string | null;
    /** The signature a compiled bundle must carry (docs/bundles.md). Null (default): none is checked. */
    verification: PolicyVerificationConfig | null;
    /** Pull the compiled bundle from a bundle server (OPA's bundle service API). Null (default): local files. */
    service: PolicyServiceConfig | null;
  };
  store: {
    /** `sqlite:<path>` (embedded, the default) or `postgres://…` (several replicas on one database). */
    url: string;
    /** SQLite `synchronous`: `normal` survives a process crash, `full` also a power loss. Default `normal`. */
    synchronous: 'normal' | 'full';
    /** PostgreSQL: the schema of the store's tables (created if missing). Null: the connection's search path. */
    schema: string | null;
    /** PostgreSQL: most connections of the read pool (the writer has one more). Default 8. */
    pool_size: number;
  };
  issuer: {
    issuer: string;
    keys: string;
    /** Signing algorithm. Default EdDSA (Ed25519). */
    alg: 'EdDSA' | 'ES256';
    /** How long after an allow its decision may be redeemed for a token. Default 60 s. */
    redeem_window_seconds: number;
    /** Upper bound of any token's lifetime; keys stay published this long after retiring. Default 3600 s. */
    max_token_ttl_seconds: number;
    /** Token `aud` per integration; default is the integration's `audience` in its policy file, else its name. */
    audiences: Readonly<Record<string, string>>;
  };
  tasks: {
    /** Lifetime of a registered task when the orchestrator names none. Default 3600 s. */
    default_ttl_seconds: number;
    /** Longest task lifetime an orchestrator may ask for. Default 86400 s. */
    max_ttl_seconds: number;
  };
  audit: {
    /**
     * Dotted paths in event data (`input.task.context.ssn`, `**.ssn`) stored as their digest
     * (src/audit/masking.ts). Default none.
     */
    mask: readonly string[];
    /** File holding the HMAC key of mask digests (absolute). Default none: plain SHA-256, reversible by enumeration. */
    mask_key_file: string | null;
    /** Events older than this many days may be pruned (`agent-pdp audit prune`). Default: keep forever. */
    retention_days: number | null;
  };
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
  escalation: EscalationConfig;
  /** The AuthZEN Authorization API 1.0 door (docs/doors.md). */
  authzen: AuthzenConfig;
  /** The web console at `/console` (docs/console.md). */
  console: ConsoleConfig;
  /** Policy suggestions from the usage aggregates (`agent-pdp suggest`, docs/suggestions.md). */
  suggestions: SuggestionsConfig;
  /** The enforcement proxy (docs/proxy.md); null when the config has no `proxy` section. */
  proxy: ProxyConfig | null;
  /** Integrations whose redeemed allows also mint a provider credential (docs/providers.md); `[]` when none. */
  providers: readonly ProviderConfig[];
  callers: readonly CallerConfig[];
}

/**
 * One integration minted by a provider (docs/providers.md). The source credential is only named here (a variable or
 * a file, checked at load); `src/providers/source-credentials.ts` reads it, and it is never logged or returned.
 */
export type ProviderConfig = AwsProviderConfig | GoogleWorkspaceProviderConfig | GcsProviderConfig;

interface ProviderConfigBase {
  integration: string;
  /** One minting call, connection included. Default 5000 ms. */
  timeout_ms: number;
  /**
   * The source credential in a variable or a file (absolute); exactly one is non-null. aws: JSON `{"access_key_id",
   * "secret_access_key", "session_token"?}`; google_workspace: the service account's JSON key.
   */
  credential: { env: string | null; file: string | null };
}

export interface AwsProviderConfig extends ProviderConfigBase {
  kind: 'aws';
  /** The role assumed for every credential of this integration; its policies are the outer bound. */
  role_arn: string;
  region: string;
  /** STS's origin; null: the AWS SDK's regional endpoint. */
  endpoint: string | null;
  /**
   * The role's maximum session duration (IAM `MaxSessionDuration`): no credential is asked for longer, since STS
   * refuses a `DurationSeconds` above it. 900 to 43200; default 3600 (a new role's).
   */
  max_session_seconds: number;
}

export interface GcsProviderConfig extends ProviderConfigBase {
  kind: 'gcp_storage';
  /** Where the service account's own token is obtained (an assertion without `sub`). Default Google's. */
  token_endpoint: string;
  /** Google's Security Token Service, where that token is downscoped (RFC 8693). Default `https://sts.googleapis.com/v1/token`. */
  sts_endpoint: string;
}

export interface GoogleWorkspaceProviderConfig extends ProviderConfigBase {
  kind: 'google_workspace';
  /** Where the assertion is exchanged (and its `aud`). Default `https://oauth2.googleapis.com/token`. */
  token_endpoint: string;
}

/** One fixed upstream of the enforcement proxy. Its credential is resolved at load and never logged. */
export interface ProxyUpstreamConfig {
  /** The integration whose calls it serves: `/<integration>/...` on the proxy's listener. */
  integration: string;
  /** `scheme://host[:port]` (https, or http on a loopback host). */
  origin: string;
  /** Prepended to every forwarded path (`/api` for Slack). Default ''. */
  base_path: string;
  credential: {
    /** Default `authorization`. */
    header: string;
    /** Default `Bearer `. */
    prefix: string;
    /** Read from `credential.env` at load (null when the value is read from a file, or not resolved by the CLI). */
    value: string | null;
    /** Absolute path of a file holding it, re-read when it changes; null when it comes from `env`. */
    file: string | null;
  };
  /** Request headers forwarded beyond the proxy's allowlist (lower case). Default none. */
  forward_headers: readonly string[];
  /** Default 5000 ms. */
  connect_timeout_ms: number;
  /** Time to the upstream's response headers. Default 30000 ms. */
  headers_timeout_ms: number;
  /** Longest pause between two chunks of the upstream's body. Default 30000 ms. */
  body_timeout_ms: number;
  /** Keep-alive connections to the upstream. Default 32. */
  connections: number;
}

export interface ProxyConfig {
  host: string;
  port: number;
  /** Also start the proxy's listener inside `agent-pdp serve`. Default false (`agent-pdp proxy` runs it alone). */
  serve: boolean;
  /** The caller id its audit events carry. Default `proxy`. */
  id: string;
  /**
   * How often the revocation list is refreshed from the store, 50 – 500 ms. A revocation is seen within this plus one
   * read, and never later than 900 ms (docs/proxy.md, "Revocation: the bound"). Default 200 ms.
   */
  revocation_poll_ms: number;
  /** Verified tokens kept in memory until they expire. Default 10,000. */
  token_cache_entries: number;
  /** Largest request body forwarded. Default 10 MiB. */
  max_request_bytes: number;
  /** Largest response body passed back. Default 100 MiB. */
  max_response_bytes: number;
  upstreams: readonly ProxyUpstreamConfig[];
}

export type WebhookFormat = 'generic' | 'slack' | 'pagerduty';

/** One notification destination. Its URL, secret and routing key are resolved at load and are never logged. */
export interface WebhookConfig {
  id: string;
  /** The approver groups whose requests it is notified of. */
  groups: readonly string[];
  format: WebhookFormat;
  /** The receiver (a Slack incoming-webhook URL is itself a secret). */
  url: string;
  /** HMAC-SHA256 key of the `X-AgentPDP-Signature` header. */
  secret: string;
  /** PagerDuty Events API v2 integration key (format pagerduty only). */
  routing_key: string | null;
}

export interface OutboxConfig {
  /** Deliveries tried this many times before the dead letter. Default 10. */
  max_attempts: number;
  /** First retry delay; doubles per attempt, with jitter. Default 500 ms. */
  initial_backoff_ms: number;
  /** Longest retry delay. Default 300000 ms. */
  max_backoff_ms: number;
  /** One delivery's timeout. Default 5000 ms. */
  timeout_ms: number;
  /** Deliveries in flight at once. Default 32. */
  concurrency: number;
}

/** Where AuthZEN requests about one subject type go: a Rego pack's entrypoints (docs/doors.md). */
export interface AuthzenSubjectRoute {
  /** The entrypoint deciding an Access Evaluation request (input: the request; value: `{ decision, context? }` or a boolean). */
  decision: string;
  /** The entrypoint listing the entities the search APIs enumerate (`{ subjects, resources, actions }`); null: no search. */
  entities: string | null;
}

/** The web console's sessions (docs/console.md, src/console/). */
export interface ConsoleConfig {
  /** Serve `/console` and accept console sessions. Default true. */
  enabled: boolean;
  /** A session unused this long ends. Default 900 s (15 min), 60 to 86400. */
  session_idle_seconds: number;
  /** A session ends this long after sign-in, used or not. Default 28800 s (8 h), at least the idle timeout. */
  session_max_seconds: number;
  /**
   * The session cookie's `Secure` attribute (and its `__Host-` name): `auto` (default) sets it when
   * `escalation.public_url` is https, where the console is reached through TLS in front of the PDP.
   */
  secure_cookie: boolean;
}

export interface AuthzenConfig {
  /** The `policy_decision_point` of the metadata: the base URL PEPs reach the PDP at. Default: `escalation.public_url`. */
  pdp_url: string;
  /** Largest `evaluations` array of one Access Evaluations request. Default 100, at most 1000. */
  max_evaluations: number;
  /** Largest page of a search (`page.limit` is capped to it; the default page size). Default 100. */
  max_page_size: number;
  /**
   * Subject type → the pack entrypoints that answer for it. Type `agent` is built in (the agent decision: a
   * decision request, a decision event, a redeemable decision id) and cannot be routed elsewhere. Default: none.
   */
  subjects: Readonly<Record<string, AuthzenSubjectRoute>>;
}

export interface EscalationConfig {
  /** Base URL of links and endpoints given to PEPs and approvers. Default: the issuer URL. */
  public_url: string;
  /** How long after a requestable denial an access request for it is accepted. Default 600 s. */
  request_window_seconds: number;
  /** How long a submitted request stays pending before it expires. Default 3600 s. */
  pending_ttl_seconds: number;
  /** Lifetime of an approval link in a notification (capped by the request's expiry). Default 900 s. */
  link_ttl_seconds: number;
  /** HMAC key of approval links (absolute). Default `<issuer.keys>/approval-link.key`, created on first start. */
  link_key_file: string;
  /** How often pending requests and elevation windows are checked for their end. Default 1000 ms. */
  sweep_interval_ms: number;
  outbox: OutboxConfig;
  webhooks: readonly WebhookConfig[];
}

/**
 * When the suggestion engine (src/suggest/) may suggest anything: it never does below `min_days` observed or
 * `min_tokens` issued. `agent-pdp suggest`'s flags override each.
 */
export interface SuggestionsConfig {
  /** Fewest days from the first to the last token a suggestion rests on (inclusive, UTC days). Default 30. */
  min_days: number;
  /** Fewest tokens a suggestion rests on. Default 20. */
  min_tokens: number;
  /** The window read, in days back from now (`--since` overrides it). Default 90. */
  window_days: number;
  /** A token_ttl above this many times the longest observed use of a token is suggested shorter. Default 4. */
  ttl_factor: number;
  /** The server's own run (roll up, suggest, record, notify of new ones); null (the default): none, `agent-pdp suggest` only. */
  schedule: SuggestionScheduleConfig | null;
}

/**
 * The server's scheduled suggestion run (docs/suggestions.md, "Schedule"): the first at the next `at` (UTC) after
 * the server starts, then every `every_days` days; the config's window and thresholds; new suggestions notified to
 * the `notify` groups through the escalation webhooks that serve them (the same signed outbox).
 */
export interface SuggestionScheduleConfig {
  /** Days between runs. Default 7. */
  every_days: number;
  /** Time of day of a run, `HH:MM` in UTC. Default `03:00`. */
  at: string;
  /** Groups notified of new suggestions: each served by at least one generic or slack webhook in `escalation.webhooks`. Default none (recorded only). */
  notify: readonly string[];
}
