# The agent-pdp decision core. Entrypoint: agentpdp/decision.
#
# Contracts (data.policies, input, result): docs/architecture.md.
#
# Reading guide for reviewers:
#   * Every lookup is keyed (agents[input.agent_id], integrations[input.integration]).
#     Nothing iterates over all agents: the WASM target has no rule indexing, so a scan
#     would make evaluation cost grow with the number of agents.
#   * Default deny. `outcome` is "allow" only through one rule listing every condition.
#     Reasons and messages are reporting; they never decide.
#   * `decision` is defined for every input: each of its fields is a comprehension, a
#     set rule or a rule with a default, so a missing or mistyped input field makes a
#     condition false, never the decision undefined.
#   * Sets from the data document are maps {"<scope>": true}; only the value `true` counts.
#   * An elevation (input.elevation, an approved access request the PDP looked up by key) is
#     read only for requested scopes, and grants a scope only while the policy still lists it
#     as requestable for this agent and integration, on the elevation's own record, with its
#     binding holding. It lifts the ceiling and task types, never the deny list (unless the
#     author set override_deny), a record binding or an extension denial.
package agentpdp

# ---------------------------------------------------------------------------
# The result
# ---------------------------------------------------------------------------

# The value the PDP reads: docs/architecture.md, "Evaluation result (v1)". `access_request`
# is present only on a requestable deny. Its members are written out again rather than
# object.union(core_decision, ...): the union merges recursively, copying every member of the
# decision on each requestable deny.
decision := {
	"outcome": outcome,
	"granted_scopes": granted_scopes,
	"denied_scopes": denied_scopes,
	"reasons": reasons,
	"token_ttl_seconds": token_ttl_seconds,
	"elevated_scopes": elevated_scopes,
	"access_request": access_request,
} if {
	requestable
} else := core_decision

core_decision := {
	"outcome": outcome,
	"granted_scopes": granted_scopes,
	"denied_scopes": denied_scopes,
	"reasons": reasons,
	"token_ttl_seconds": token_ttl_seconds,
	"elevated_scopes": elevated_scopes,
}

# The only way to allow: every condition below holds. Anything else is a deny.
default outcome := "deny"

outcome := "allow" if {
	agent_known
	integration_known
	count(requested_denied) == 0
	not task_type_rejected # also leaves E empty; stated here so the list is complete
	count(binding_violations) == 0
	count(extension_denials) == 0
	count(approval_needed) == 0
	count(grants) > 0
}

# Granted scopes are reported only on allow: a deny grants nothing.
granted_scopes := sort(grants) if {
	outcome == "allow"
} else := []

# The granted scopes only the elevation made grantable (all asked for by name): only on allow.
elevated_scopes := sort(elevated & grants) if {
	outcome == "allow"
} else := []

# Every requested scope that was not granted as asked, sorted by scope; nothing that was not
# requested. Each scope appears once: deny_scope, capped and dropped scopes lie outside E,
# record_binding scopes (bound scopes asked for by name, on another record) inside it.
denied_scopes := [pair[1] | some pair in sort({[e.scope, e] | some e in denied_entries})]

# Reasons sorted by code (then by message, for stable output).
reasons := [pair[1] | some pair in sort({[r.code, r] | some r in reason_set})]

reason_set := allow_reasons if {
	outcome == "allow"
} else := deny_reasons

# min(agent TTL, requested TTL when a positive number); 0 on deny.
default token_ttl_seconds := 0

token_ttl_seconds := min(ttl_candidates) if {
	outcome == "allow"
	is_number(agent.token_ttl)
}

ttl_candidates contains agent.token_ttl

ttl_candidates contains input.ttl_seconds if {
	is_number(input.ttl_seconds)
	input.ttl_seconds > 0
}

# ---------------------------------------------------------------------------
# Keyed lookups into data.policies
# ---------------------------------------------------------------------------

# The calling agent's compiled policy.
agent := data.policies.agents[input.agent_id] if is_string(input.agent_id)

agent_known if is_object(agent)

# The agent's policy for the requested integration (only when the agent is known).
integration_policy := agent.integrations[input.integration] if is_string(input.integration)

integration_known if {
	agent_known
	is_object(integration_policy)
}

# The ceiling and the explicit deny list for this agent and integration.
allowed := {s | some s, v in integration_policy.allowed; v == true}

denied := {s | some s, v in integration_policy.denied; v == true}

# Scopes that scope s implies (already a transitive closure, resolved at compile time).
implied(s) := {x | some x in data.policies.integrations[input.integration].implies[s]}

# ---------------------------------------------------------------------------
# Task-type down-scoping
# ---------------------------------------------------------------------------

# Applies only when the agent opts in and declares at least one task type.
task_restricted if {
	agent.per_task_downscope == true
	is_object(agent.task_types)
	count(agent.task_types) > 0
}

task_type_declared if is_object(agent.task_types[input.task.type])

task_type_rejected if {
	task_restricted
	not task_type_declared
}

# Scopes the task type grants on this integration (empty when the type or integration is missing).
task_scopes := {s | some s, v in agent.task_types[input.task.type][input.integration]; v == true}

# What the policy grants without an elevation. Never contains a denied scope.
base_effective := (allowed & task_scopes) - denied if {
	task_restricted
} else := allowed - denied

# The effective set E: what may be granted for this request. A denied scope only when elevated
# under override_deny.
effective := base_effective | elevated

# ---------------------------------------------------------------------------
# Escalation (break-glass): requestable scopes and the elevation of an approved request
# ---------------------------------------------------------------------------

# The escalatable requested scopes, with their policy entries (keyed by scope, computed once per
# evaluation): those that may be requested (and, approved, elevated). An entry counts only when
# well formed (non-empty approvers, all strings, a positive max_duration): a malformed entry makes
# nothing requestable. A denied scope counts only when its author lifted the deny for approved
# requests (override_deny).
escalation_entries[s] := e if {
	some s in requested
	e := integration_policy.escalation[s]
	is_array(e.approvers)
	count(e.approvers) > 0
	every a in e.approvers {
		is_string(a)
	}
	is_number(e.max_duration)
	e.max_duration > 0
	deny_lifted_or_absent(s, e)
}

deny_lifted_or_absent(s, e) if {
	not s in denied
} else if {
	e.override_deny == true
}

# Requested scopes the input's elevation grants: named by it, still requestable, on its record,
# and with their binding holding. Only scopes the policy does not grant anyway.
elevated := {s |
	elevation_applies
	some s in requested
	input.elevation.scopes[s] == true
	not s in base_effective
	escalation_entries[s]
	binding_holds(s)
}

elevation_applies if {
	is_string(input.elevation.access_request_id)
	elevation_on_this_record
}

# The elevation's record is the request's: both absent (or null), or the same type and the same
# id as text.
elevation_on_this_record if {
	object.get(input, "resource", null) == null
	object.get(input.elevation, "resource", null) == null
} else if {
	is_string(input.resource.type)
	input.elevation.resource.type == input.resource.type
	id := id_text(input.resource.id)
	id != ""
	id_text(input.elevation.resource.id) == id
}

# Requested scopes the policy would grant only with an approver's approval.
approval_candidates := {s |
	some s, _ in escalation_entries
	not s in effective
}

# Those whose binding holds on this record: a bound one on another record cannot be approved
# here (it is a binding violation, below), and a denied one stays denied (requested_denied).
approval_needed := {s | some s in approval_candidates; binding_holds(s)}

# The approver groups that may approve every scope needing approval: an approver answers for the
# whole request, so a scope reserved to one group is never approved by another group's member
# because the request also names a scope that group may approve.
common_approvers := intersection({{a | some a in escalation_entries[s].approvers} | some s in approval_needed})

# Some approver group may approve every scope needing approval. One scope (nearly every request)
# has its entry's groups, never none (escalation_entries): no sets to intersect.
approvers_agree if {
	count(approval_needed) == 1
} else if {
	count(common_approvers) > 0
}

# A deny an access request could lift: scopes need approval, one approver group may approve them
# all, and nothing else refuses the request.
requestable if {
	count(approval_needed) > 0
	approvers_agree
	agent_known
	integration_known
	count(requested_denied) == 0
	not task_type_rejected
	count(binding_violations) == 0
	count(extension_denials) == 0
}

# The policy's terms for such a request: the groups that may approve all its scopes, the shortest
# max_duration, a reason when any scope requires one. One scope with one approver group (nearly
# every request) takes its entry's terms as they are, with no sets to build: the same terms.
access_request := {
	"scopes": [s],
	"approvers": e.approvers,
	"max_duration": e.max_duration,
	"require_reason": e.require_reason,
} if {
	count(approval_needed) == 1
	some s in approval_needed
	e := escalation_entries[s]
	count(e.approvers) == 1
	is_boolean(e.require_reason)
} else := {
	"scopes": sorted_approval_needed,
	"approvers": sort(common_approvers),
	"max_duration": min({escalation_entries[s].max_duration | some s in approval_needed}),
	"require_reason": any_reason_required,
}

default any_reason_required := false

any_reason_required if {
	some s in approval_needed
	escalation_entries[s].require_reason == true
}

# ---------------------------------------------------------------------------
# Per requested scope: deny_scope, granted, capped, or dropped (first match wins)
# ---------------------------------------------------------------------------

# Requested scopes, deduplicated. Entries that are not strings are ignored.
requested contains s if {
	is_array(input.scopes)
	some s in input.scopes
	is_string(s)
}

# Requested scopes on the explicit deny list: they deny the whole request. A scope whose deny
# its author lifted (override_deny) is left to the elevation or to approval instead.
requested_denied := ((requested & denied) - elevated) - approval_needed

# Requested scopes granted as asked (a bound one only on its record: see binding_violations).
granted_directly := requested & effective

# Substitutes for s: the scopes s implies that are inside E and, when bound, bound to this
# request's record. A substitute was never asked for, so one whose record does not match is
# left out rather than refusing the request (implication grants less; it never refuses).
substitutes(s) := {x | some x in implied(s); x in effective; binding_holds(x)}

# capped[s]: s is outside E, but it has substitutes; those are granted instead.
capped[s] := sort(instead) if {
	some s in requested
	not s in denied
	not s in effective
	not s in approval_candidates
	instead := substitutes(s)
	count(instead) > 0
}

# dropped[s]: neither s nor any substitute for it can be granted.
dropped[s] := drop_reason(s) if {
	integration_known
	some s in requested
	not s in denied
	not s in effective
	not s in approval_candidates
	not capped[s]
}

# Within the ceiling but excluded by the task type, or above the ceiling.
drop_reason(s) := "task_type" if {
	s in allowed
} else := "above_ceiling"

# Everything the request would receive if no whole-request deny applies.
grants := granted_directly | {x | some instead in capped; some x in instead}

# ---------------------------------------------------------------------------
# Record binding: a bound scope is granted only for the task's own record
# ---------------------------------------------------------------------------

# Bound scopes asked for by name whose record does not match: they refuse the whole request.
# (Substitutes need no check here: substitutes() only yields scopes whose binding holds.)
binding_violations contains g if {
	some g in granted_directly
	not binding_holds(g)
}

# A requestable scope asked for on a record its binding does not allow: no approval could lift it.
# (A denied one whose deny is lifted only for approved requests stays a deny_scope.)
binding_violations contains g if some g in unbound_requestable

unbound_requestable := {g |
	some g in approval_candidates
	not g in denied
	not binding_holds(g)
}

# Scope g may be granted for this request's record: it is unbound, or its binding is satisfied.
binding_holds(g) if not is_bound(g)

binding_holds(g) if binding_satisfied(integration_policy.bindings[g])

# Present at all counts as bound, whatever the value: a malformed binding fails closed.
is_bound(g) if {
	_ = integration_policy.bindings[g]
}

# The resource is of the bound type and its id equals the task context value, as text.
binding_satisfied(binding) if {
	input.resource.type == binding.resource_type
	expected := id_text(input.task.context[binding.context_key])
	expected != ""
	id_text(input.resource.id) == expected
}

# Record ids compare as text: strings as they are, integral numbers as JSON writes them.
# Numbers beyond 2^53 never match: a JSON parser may already have rounded them onto a
# neighbouring id. Fractions, booleans, objects have no text form and never match.
# (Not format_int: in WASM it aborts the evaluation for numbers beyond 32 bits.)
id_text(v) := v if is_string(v)

id_text(v) := json.marshal(v) if {
	is_number(v)
	v == round(v)
	abs(v) <= 9007199254740991
}

# ---------------------------------------------------------------------------
# Extensions: package agentpdp.ext may define `deny contains {"code": ..., "message": ...}`
# ---------------------------------------------------------------------------

# Read through a comprehension so that a missing extension package means "no denials".
extension_denials := {d | some d in data.agentpdp.ext.deny}

# A well-formed denial is reported as given; a malformed one still denies, with a fixed code.
extension_reason(d) := {"code": d.code, "message": extension_message(d)} if {
	is_string(d.code)
	d.code != ""
} else := {
	"code": "extension_deny",
	"message": "an extension rule in package agentpdp.ext denied the request with a malformed reason",
}

extension_message(d) := d.message if {
	is_string(d.message)
} else := "denied by an extension rule in package agentpdp.ext"

# ---------------------------------------------------------------------------
# Denied-scope entries (the per-scope rules above make each scope appear once)
# ---------------------------------------------------------------------------

denied_entries contains {"scope": s, "reason": "deny_scope"} if some s in requested_denied

# granted_instead names what was granted in place of s, so it appears only on an allow; on a
# deny a capped scope is listed without it.
denied_entries contains {"scope": s, "reason": "capped", "granted_instead": instead} if {
	outcome == "allow"
	some s, instead in capped
}

denied_entries contains {"scope": s, "reason": "capped"} if {
	outcome != "allow"
	some s, _ in capped
}

denied_entries contains {"scope": s, "reason": reason} if some s, reason in dropped

denied_entries contains {"scope": g, "reason": "record_binding"} if some g in binding_violations

denied_entries contains {"scope": s, "reason": "approval_required"} if some s in approval_needed

# ---------------------------------------------------------------------------
# Reasons
# ---------------------------------------------------------------------------

allow_reasons contains {"code": "allowed", "message": concat("", ["granted ", concat(", ", sort(grants))])}

allow_reasons contains {"code": "elevated", "message": msg} if {
	count(elevated_scopes) > 0
	msg := concat("", [
		"granted by access request ", input.elevation.access_request_id, ": ",
		concat(", ", elevated_scopes),
	])
}

allow_reasons contains {"code": "scopes_capped", "message": concat("", ["capped to what the policy allows: ", msg])} if {
	count(capped) > 0
	msg := concat("; ", sort({concat("", [s, " -> ", concat(", ", instead)]) | some s, instead in capped}))
}

allow_reasons contains {"code": "scopes_dropped", "message": concat("", ["not granted: ", msg])} if {
	count(dropped) > 0
	msg := concat(", ", sort({concat("", [s, " (", reason, ")"]) | some s, reason in dropped}))
}

deny_reasons contains {"code": "unknown_agent", "message": "the agent is not registered"} if not agent_known

deny_reasons contains {
	"code": "integration_not_allowed",
	"message": "the agent's policy does not cover the requested integration",
} if {
	agent_known
	not integration_known
}

deny_reasons contains {
	"code": "deny_scope",
	"message": concat("", ["requested scopes on the agent's deny list: ", concat(", ", sort(requested_denied))]),
} if {
	count(requested_denied) > 0
}

deny_reasons contains {
	"code": "task_type_not_allowed",
	"message": "the task type is not one the agent's policy declares",
} if {
	task_type_rejected
}

deny_reasons contains {
	"code": "record_binding_mismatch",
	"message": concat("", [
		"the resource is not the task's own record for bound scopes: ",
		concat(", ", sort(binding_violations)),
	]),
} if {
	count(binding_violations) > 0
}

deny_reasons contains extension_reason(d) if some d in extension_denials

# The message names the scopes, not the approver groups: the PEP learns how to ask (the hint),
# not who decides (the groups reach the notification, not the answer).
deny_reasons contains {"code": "approval_required", "message": msg} if {
	requestable
	msg := concat("", ["requested scopes need an approver's approval: ", concat(", ", access_request.scopes)])
}

sorted_approval_needed := sort(approval_needed)

# Scopes that need approval from different approver groups cannot be asked for in one request.
deny_reasons contains {"code": "approval_required", "message": msg} if {
	count(approval_needed) > 0
	not approvers_agree
	msg := concat("", [
		"requested scopes need approvals of different approver groups: ", concat(", ", sort(approval_needed)),
		"; request them in separate decisions",
	])
}

# Not when requestable scopes were asked for: approval_required or a binding says why.
deny_reasons contains {
	"code": "no_scope_granted",
	"message": "no requested scope is within the agent's policy for this integration and task",
} if {
	integration_known
	count(grants) == 0
	count(approval_needed) == 0
	count(unbound_requestable) == 0
}
