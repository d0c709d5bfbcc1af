import type { ErrorDetail } from '../errors/pdp-error.js';

/*
 * Two families of types live here: the YAML documents as authors write them (after schema validation), and the
 * compiled data document the Rego reads under `data.policies` (docs/architecture.md, "Policy data document").
 */

// ---- source documents (schemas/agent-policy.schema.json) -------------------------------------------------------

/** Record binding: the scope only for the resource of `resource` type whose id equals `task.context[context]`. */
export interface BindingSource {
  resource: string;
  context: string;
}

/**
 * Break-glass (`escalation:`): scopes that may be requested above the policy, each request approved by a member
 * of one of `approvers`, for at most `max_duration` seconds.
 */
export interface EscalationSource {
  scopes: string[];
  approvers: string[];
  /** Seconds, 60..604800. Default {@link DEFAULT_ESCALATION_MAX_DURATION}. */
  max_duration?: number;
  /** Default false. */
  require_reason?: boolean;
}

/** An agent's or role's escalation: it may also lift its own document's deny_scope, scope by scope. */
export interface GrantEscalationSource extends EscalationSource {
  /** Scopes of `scopes` that are in the same document's deny_scope and may still be requested. */
  override_deny?: string[];
}

export interface IntegrationGrantSource {
  /** The ceiling. Optional on an agent that names roles (it then inherits the roles' ceiling). */
  max_scope?: string[];
  deny_scope?: string[];
  bind?: Record<string, BindingSource>;
  escalation?: GrantEscalationSource;
}

/** task type → integration → scopes. */
export type TaskTypesSource = Record<string, Record<string, string[]>>;

export interface AgentPolicySource {
  id: string;
  description?: string;
  roles?: string[];
  integrations?: Record<string, IntegrationGrantSource>;
  /** Seconds. Default {@link DEFAULT_TOKEN_TTL}; capped by every named role's token_ttl. */
  token_ttl?: number;
  /** Default false. */
  per_task_downscope?: boolean;
  task_types?: TaskTypesSource;
}

export interface RolePolicySource {
  id: string;
  description?: string;
  integrations: Record<string, IntegrationGrantSource & { max_scope: string[] }>;
  token_ttl?: number;
  task_types?: TaskTypesSource;
}

export interface IntegrationSource {
  id: string;
  description?: string;
  /** JWT `aud` for tokens of this integration; when absent the issuer uses its own default. */
  audience?: string;
  /** Known scopes; when present, every scope named for this integration must be one of them. */
  scopes?: string[];
  /** scope → scopes it implies (direct; the compiler closes it transitively). */
  implies?: Record<string, string[]>;
  /** Break-glass for every agent whose policy covers this integration (never reaching a denied scope). */
  escalation?: EscalationSource;
}

/**
 * An endpoint map (`endpoint_map:`): which scope, and which record, each call of one integration's API needs, for
 * the enforcement proxy (docs/policy-authoring.md, "Endpoint maps"). Not part of the Rego data document.
 */
export interface EndpointMapSource {
  /** The integration whose API this maps; at most one map per integration. */
  integration: string;
  description?: string;
  endpoints: EndpointSource[];
}

/** One endpoint: a method and a path template, the scope a call needs and, optionally, the record it touches. */
export interface EndpointSource {
  /** GET, HEAD, POST, PUT, PATCH or DELETE. */
  method: string;
  /** `/repos/{owner}/{repo}/pulls/{pull_number}`; `{name+}` (last segment only) takes the rest of the path. */
  path: string;
  scope: string;
  /** `id` is a template: `{param}` (a path param), `{query.field}`, `{body.field}`, and text. */
  record?: { type: string; id: string };
}

/**
 * A provider map (`provider_map:`): how the granted scopes and the bound record of one integration narrow the
 * provider credential minted for it (docs/providers.md). Not part of the Rego data document.
 */
export interface ProviderMapSource {
  integration: string;
  description?: string;
  kind: ProviderKind;
  /** google_workspace: the user the service account acts for, a template (`{task.user_email}`). */
  subject?: string;
  /** scope → aws: the session policy statements it grants; google_workspace: Google scope URLs. Every scope mapped. */
  scopes: Record<string, AwsStatementSource[] | string[] | GcsRuleSource[]>;
}

/** One Credential Access Boundary rule (gcp_storage). */
export interface GcsRuleSource {
  bucket: string;
  /** `roles/storage.objectViewer`, … */
  role: string;
  /** A template ending in `/`; none: the whole bucket. */
  object_prefix?: string;
}

export const PROVIDER_KINDS = ['aws', 'google_workspace', 'gcp_storage'] as const;
export type ProviderKind = (typeof PROVIDER_KINDS)[number];

/** One Allow statement; resources and condition values are templates (`{record.id}`, `{task.<key>}`). */
export interface AwsStatementSource {
  actions: string[];
  resources: string[];
  /** operator → condition key → values. */
  conditions?: Record<string, Record<string, string[]>>;
}

export interface PolicySourceKinds {
  agent_policy: AgentPolicySource;
  role_policy: RolePolicySource;
  integration: IntegrationSource;
  endpoint_map: EndpointMapSource;
  provider_map: ProviderMapSource;
}
export type PolicyKind = keyof PolicySourceKinds;
export const POLICY_KINDS: readonly PolicyKind[] = ['agent_policy', 'role_policy', 'integration', 'endpoint_map', 'provider_map'];

/** One step of a field path: a map key or a list index. */
export type PathSegment = string | number;

export interface SourceLocation {
  line: number;
  column: number;
}

/** A schema-valid document with a way back to its source text. */
export interface PolicyDocument<K extends PolicyKind = PolicyKind> {
  kind: K;
  /** Path relative to the policy directory, `/`-separated. */
  file: string;
  body: PolicySourceKinds[K];
  /** Line and column of the value at `path` (of its key when `key` is set); the nearest existing ancestor otherwise. */
  locate(path: readonly PathSegment[], key?: boolean): SourceLocation;
}

/** Used when an agent sets no token_ttl. Roles may lower it; they never raise it. */
export const DEFAULT_TOKEN_TTL = 3600;

/** Used when an escalation sets no max_duration. */
export const DEFAULT_ESCALATION_MAX_DURATION = 3600;

// ---- compiled data document (docs/architecture.md) -------------------------------------------------------------

export type ScopeSet = Readonly<Record<string, true>>;

export interface CompiledBinding {
  readonly resource_type: string;
  readonly context_key: string;
}

export interface CompiledAgentIntegration {
  /** Effective ceiling: agent max_scope ∩ (∪ roles' max_scope), minus denied. */
  readonly allowed: ScopeSet;
  /** Agent deny_scope ∪ every named role's deny_scope. */
  readonly denied: ScopeSet;
  readonly bindings: Readonly<Record<string, CompiledBinding>>;
  /** Requestable scopes (break-glass): scope → who approves, for how long; `{}` when none. */
  readonly escalation: Readonly<Record<string, CompiledEscalation>>;
}

/**
 * One requestable scope of one agent and integration, merged from the most specific source that lists it (the
 * agent, else its named roles, else the integration file).
 */
export interface CompiledEscalation {
  /** Approver group ids, sorted, non-empty. */
  readonly approvers: readonly string[];
  /** Seconds. */
  readonly max_duration: number;
  readonly require_reason: boolean;
  /** The scope is in `denied` and its author lifted that for approved requests (`override_deny`). */
  readonly override_deny: boolean;
}

export interface CompiledAgent {
  readonly token_ttl: number;
  readonly per_task_downscope: boolean;
  readonly integrations: Readonly<Record<string, CompiledAgentIntegration>>;
  /** task type → integration → scopes; `{}` when none are declared. */
  readonly task_types: Readonly<Record<string, Readonly<Record<string, ScopeSet>>>>;
}

export interface CompiledIntegration {
  /** scope → every scope it implies, transitively; sorted, without the scope itself. */
  readonly implies: Readonly<Record<string, readonly string[]>>;
}

/**
 * The OPA data document: set as `data`, so the Rego reads `data.policies.agents[...]`. A type literal (not an
 * interface) so that it is assignable to `Record<string, unknown>` without a cast.
 */
export type PolicyData = {
  readonly policies: {
    readonly agents: Readonly<Record<string, CompiledAgent>>;
    readonly integrations: Readonly<Record<string, CompiledIntegration>>;
  };
};

/** One parsed path segment of a template. */
export type TemplateSegment = { literal: string } | { param: string; rest: boolean };

/** One part of a record id template: text, or a path param / query field / body field. */
export type IdPart = { text: string } | { from: 'path' | 'query' | 'body'; name: string };

/** One compiled endpoint map entry (`src/policy/endpoint-map-compiler.ts`), matched by `src/proxy/request-target.ts`. */
export interface CompiledEndpoint {
  /** Upper case. */
  readonly method: string;
  /** The template as written: what audit events record (`path_template`). */
  readonly path: string;
  readonly segments: readonly TemplateSegment[];
  readonly scope: string;
  readonly record: { readonly type: string; readonly id: readonly IdPart[] } | null;
  /** Query fields the record reads, sorted, unique. */
  readonly readsQuery: readonly string[];
  /** Body fields the record reads, sorted, unique (the proxy buffers the body only then). */
  readonly readsBody: readonly string[];
}

/** One integration's endpoint map; entries in file order. */
export interface CompiledEndpointMap {
  readonly integration: string;
  readonly endpoints: readonly CompiledEndpoint[];
}

/** A template compiled: literal text and the values it puts in (`record.id`, `record.type`, `task.<key>`). */
export type MapTemplatePart = { readonly text: string } | { readonly from: 'record'; readonly name: 'id' | 'type' } | { readonly from: 'task'; readonly name: string };

export interface CompiledAwsStatement {
  /** Sorted, unique. */
  readonly actions: readonly string[];
  readonly resources: readonly (readonly MapTemplatePart[])[];
  readonly conditions: Readonly<Record<string, Readonly<Record<string, readonly (readonly MapTemplatePart[])[]>>>>;
}

/** One integration's provider map: every scope of its integration's list mapped. */
export type CompiledProviderMap = CompiledAwsMap | CompiledGoogleWorkspaceMap | CompiledGcsMap;

export interface CompiledGcsMap {
  readonly integration: string;
  readonly kind: 'gcp_storage';
  readonly scopes: Readonly<Record<string, readonly { readonly bucket: string; readonly role: string; readonly object_prefix: readonly MapTemplatePart[] | null }[]>>;
}

export interface CompiledAwsMap {
  readonly integration: string;
  readonly kind: 'aws';
  readonly scopes: Readonly<Record<string, readonly CompiledAwsStatement[]>>;
}

export interface CompiledGoogleWorkspaceMap {
  readonly integration: string;
  readonly kind: 'google_workspace';
  /** The user the assertion's `sub` names. */
  readonly subject: readonly MapTemplatePart[];
  /** scope → Google scope URLs, sorted, unique. */
  readonly scopes: Readonly<Record<string, readonly string[]>>;
}

/** What the issuer needs to know about an integration beyond the data document. */
export interface IntegrationInfo {
  readonly audience?: string;
}

/** A loaded, compiled and deeply frozen policy directory. */
export interface PolicySet {
  /** First 16 hex digits of sha256 over the canonical (sorted-key) JSON of `data`. */
  readonly revision: string;
  readonly data: PolicyData;
  /** Agent ids, sorted. */
  readonly agents: readonly string[];
  /** Every integration in `data.policies.integrations`, with its audience when its file declares one. */
  readonly integrations: Readonly<Record<string, IntegrationInfo>>;
  /** Compile warnings (scopes dropped by a role ceiling, ...), each with file, line, column and path. */
  readonly warnings: readonly ErrorDetail[];
  /**
   * The policy files this set was built from, sorted by path: what an audit needs to tell which bytes were in force
   * (endpoint map files included, though the maps are not in `data` and do not change the revision).
   */
  readonly files: readonly PolicyFile[];
  /** Endpoint maps by integration, for the enforcement proxy; `{}` when none. Not part of `data`. */
  readonly endpointMaps: Readonly<Record<string, CompiledEndpointMap>>;
  /**
   * Provider maps by integration (docs/providers.md); not part of `data`. Absent from a compiled bundle built before
   * they were recorded (then no integration mints a provider credential).
   */
  readonly providerMaps?: Readonly<Record<string, CompiledProviderMap>>;
  /**
   * The roles each agent names (`roles:`, as written), for the agents that name any: what `GET /v1/agents` shows
   * beside the effective ceilings (which `data` holds with the roles already applied). Not part of `data`, so it does
   * not change the revision. Absent from a compiled bundle built before it was recorded.
   */
  readonly agentRoles?: Readonly<Record<string, readonly string[]>>;
  /**
   * The longest `token_ttl` of any agent (0 with no agent): whether any exceeds the issuer's cap is known without
   * reading every agent (a compiled bundle's are built only as requests name them). Absent from a compiled bundle
   * built before it was recorded.
   */
  readonly longestTokenTtl?: number;
}

/** One policy file of a loaded set. */
export interface PolicyFile {
  /** Relative to the policy directory, `/`-separated (a symbolic link is named by its own path). */
  readonly path: string;
  /** Lowercase hex SHA-256 of the bytes that were parsed. */
  readonly sha256: string;
}

/** One policy file's text, named by its path relative to the policy directory (`/`-separated). */
export interface PolicySource {
  file: string;
  text: string;
  /** SHA-256 of the file's bytes; computed from `text` (UTF-8) when absent. */
  sha256?: string;
}
