# Tests for the decision core (package agentpdp). Data is written as src/policy/compile.ts
# emits it (docs/architecture.md), so these cases double as examples of the contract.
package agentpdp_test

import data.agentpdp

# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------

# The seed example: a code review agent (github, slack), no task types.
code_review_agent := {
	"token_ttl": 3600,
	"per_task_downscope": true,
	"integrations": {
		"github": {
			"allowed": {"repo:read": true, "pr:read": true, "issues:read": true},
			"denied": {"repo:write": true, "admin:org": true, "delete_repo": true},
			"bindings": {},
		},
		"slack": {
			"allowed": {"channels:read": true, "chat:write": true},
			"denied": {"admin": true, "channels:manage": true},
			"bindings": {},
		},
	},
	"task_types": {},
}

# A CRM complaint resolver: tickets:write is bound to the task's customer.
support_resolver := {
	"token_ttl": 900,
	"per_task_downscope": true,
	"integrations": {"crm": {
		"allowed": {"tickets:read": true, "tickets:write": true, "customers:read": true},
		"denied": {"tickets:delete": true},
		"bindings": {"tickets:write": {"resource_type": "customer", "context_key": "customer_id"}},
	}},
	"task_types": {
		"complaint_resolution": {"crm": {"tickets:read": true, "tickets:write": true, "customers:read": true}},
		"triage": {"crm": {"tickets:read": true}},
		"email_only": {"email": {"send": true}},
	},
}

# Declares task types but does not opt in to per-task down-scoping.
reporting_agent := {
	"token_ttl": 600,
	"per_task_downscope": false,
	"integrations": {"crm": {
		"allowed": {"tickets:read": true, "customers:read": true},
		"denied": {},
		"bindings": {},
	}},
	"task_types": {"weekly_report": {"crm": {"tickets:read": true}}},
}

policies := {
	"agents": {
		"code-review-agent": code_review_agent,
		"support-resolver": support_resolver,
		"reporting-agent": reporting_agent,
	},
	"integrations": {
		"github": {"implies": {"issues:write": ["issues:read"], "repo:write": ["repo:read"]}},
		"crm": {"implies": {
			"tickets:admin": ["tickets:read", "tickets:write"],
			"tickets:write": ["tickets:read"],
		}},
	},
}

review_input := {
	"agent_id": "code-review-agent",
	"caller_id": "review-middleware",
	"task": {"id": "task-1", "type": "code_review", "context": {"repo": "acme/api"}, "registered": true},
	"integration": "github",
	"scopes": ["repo:read"],
}

crm_input := {
	"agent_id": "support-resolver",
	"caller_id": "support-middleware",
	"task": {"id": "task-42", "type": "complaint_resolution", "context": {"customer_id": "1234"}, "registered": true},
	"integration": "crm",
	"scopes": ["tickets:write"],
	"resource": {"type": "customer", "id": "1234"},
	"ttl_seconds": 300,
}

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

decide(inp) := d if {
	d := agentpdp.decision with input as inp with data.policies as policies
}

review(patch) := decide(object.union(review_input, patch))

crm(patch) := decide(object.union(crm_input, patch))

crm_task(task_type, scopes) := crm({"task": {"type": task_type}, "scopes": scopes})

codes(d) := [r.code | some r in d.reasons]

# A deny grants nothing and carries no TTL.
denied_with(d, expected_codes) if {
	d.outcome == "deny"
	d.granted_scopes == []
	d.token_ttl_seconds == 0
	d.elevated_scopes == []
	codes(d) == expected_codes
}

# ---------------------------------------------------------------------------
# Seed example: ceiling, deny list, implications
# ---------------------------------------------------------------------------

test_seed_read_within_ceiling_is_allowed if {
	review({}) == {
		"outcome": "allow",
		"granted_scopes": ["repo:read"],
		"denied_scopes": [],
		"reasons": [{"code": "allowed", "message": "granted repo:read"}],
		"token_ttl_seconds": 3600,
		"elevated_scopes": [],
	}
}

test_seed_deny_scope_denies_the_whole_request if {
	review({"scopes": ["repo:read", "repo:write"]}) == {
		"outcome": "deny",
		"granted_scopes": [],
		"denied_scopes": [{"scope": "repo:write", "reason": "deny_scope"}],
		"reasons": [{"code": "deny_scope", "message": "requested scopes on the agent's deny list: repo:write"}],
		"token_ttl_seconds": 0,
		"elevated_scopes": [],
	}
}

test_seed_deny_scope_wins_over_implication if {
	# repo:write implies repo:read, but an explicitly denied scope is never capped.
	d := review({"scopes": ["repo:write"]})
	denied_with(d, ["deny_scope", "no_scope_granted"])
	d.denied_scopes == [{"scope": "repo:write", "reason": "deny_scope"}]
}

test_seed_every_denied_scope_is_listed_sorted if {
	d := review({"scopes": ["delete_repo", "pr:read", "admin:org", "delete_repo"]})
	denied_with(d, ["deny_scope"])
	d.denied_scopes == [
		{"scope": "admin:org", "reason": "deny_scope"},
		{"scope": "delete_repo", "reason": "deny_scope"},
	]
	d.reasons[0].message == "requested scopes on the agent's deny list: admin:org, delete_repo"
}

test_seed_write_is_capped_to_implied_read if {
	review({"scopes": ["issues:write"]}) == {
		"outcome": "allow",
		"granted_scopes": ["issues:read"],
		"denied_scopes": [{"scope": "issues:write", "reason": "capped", "granted_instead": ["issues:read"]}],
		"reasons": [
			{"code": "allowed", "message": "granted issues:read"},
			{"code": "scopes_capped", "message": "capped to what the policy allows: issues:write -> issues:read"},
		],
		"token_ttl_seconds": 3600,
		"elevated_scopes": [],
	}
}

test_seed_above_ceiling_is_dropped_when_something_else_is_granted if {
	review({"scopes": ["pr:write", "pr:read"]}) == {
		"outcome": "allow",
		"granted_scopes": ["pr:read"],
		"denied_scopes": [{"scope": "pr:write", "reason": "above_ceiling"}],
		"reasons": [
			{"code": "allowed", "message": "granted pr:read"},
			{"code": "scopes_dropped", "message": "not granted: pr:write (above_ceiling)"},
		],
		"token_ttl_seconds": 3600,
		"elevated_scopes": [],
	}
}

test_seed_only_above_ceiling_is_denied if {
	d := review({"scopes": ["pr:write"]})
	denied_with(d, ["no_scope_granted"])
	d.denied_scopes == [{"scope": "pr:write", "reason": "above_ceiling"}]
}

test_seed_granted_scopes_are_sorted_and_unique if {
	# issues:read is asked for directly and also reached by capping issues:write.
	d := review({"scopes": ["repo:read", "issues:write", "repo:read", "issues:read", "pr:read"]})
	d.outcome == "allow"
	d.granted_scopes == ["issues:read", "pr:read", "repo:read"]
	d.denied_scopes == [{"scope": "issues:write", "reason": "capped", "granted_instead": ["issues:read"]}]
	codes(d) == ["allowed", "scopes_capped"]
}

test_seed_slack_integration_has_its_own_lists if {
	d := review({"integration": "slack", "scopes": ["chat:write", "channels:read"]})
	d.outcome == "allow"
	d.granted_scopes == ["channels:read", "chat:write"]

	denied_with(review({"integration": "slack", "scopes": ["chat:write", "channels:manage"]}), ["deny_scope"])

	# repo:read is github's, not slack's.
	denied_with(review({"integration": "slack", "scopes": ["repo:read"]}), ["no_scope_granted"])
}

test_seed_empty_task_types_means_no_task_restriction if {
	# per_task_downscope is true, but no task types are declared: any task type (or none) is fine.
	review({"task": {"type": "anything"}}).outcome == "allow"
	decide(object.remove(review_input, ["task"])).outcome == "allow"
}

# ---------------------------------------------------------------------------
# Record binding (CRM complaint resolver)
# ---------------------------------------------------------------------------

test_crm_own_customer_record_is_allowed if {
	crm({}) == {
		"outcome": "allow",
		"granted_scopes": ["tickets:write"],
		"denied_scopes": [],
		"reasons": [{"code": "allowed", "message": "granted tickets:write"}],
		"token_ttl_seconds": 300,
		"elevated_scopes": [],
	}
}

test_crm_other_customer_record_is_denied if {
	crm({"resource": {"type": "customer", "id": "5678"}}) == {
		"outcome": "deny",
		"granted_scopes": [],
		"denied_scopes": [{"scope": "tickets:write", "reason": "record_binding"}],
		"reasons": [{
			"code": "record_binding_mismatch",
			"message": "the resource is not the task's own record for bound scopes: tickets:write",
		}],
		"token_ttl_seconds": 0,
		"elevated_scopes": [],
	}
}

binding_cases := [
	{"note": "numeric context matches string resource id", "task_context": {"customer_id": 1234}, "resource": {"type": "customer", "id": "1234"}, "allow": true},
	{"note": "string context matches numeric resource id", "task_context": {"customer_id": "1234"}, "resource": {"type": "customer", "id": 1234}, "allow": true},
	{"note": "numeric on both sides", "task_context": {"customer_id": 1234}, "resource": {"type": "customer", "id": 1234}, "allow": true},
	{"note": "numeric context, other customer", "task_context": {"customer_id": 5678}, "resource": {"type": "customer", "id": "1234"}, "allow": false},
	{"note": "fractional ids have no text form", "task_context": {"customer_id": 1234.5}, "resource": {"type": "customer", "id": "1234.5"}, "allow": false},
	{"note": "numeric id beyond 32 bits", "task_context": {"customer_id": 12345678901234}, "resource": {"type": "customer", "id": "12345678901234"}, "allow": true},
	{"note": "largest safe integer", "task_context": {"customer_id": 9007199254740991}, "resource": {"type": "customer", "id": 9007199254740991}, "allow": true},
	{"note": "numeric id beyond 2^53 may be rounded", "task_context": {"customer_id": 9007199254740993}, "resource": {"type": "customer", "id": "9007199254740993"}, "allow": false},
	{"note": "negative integral ids are text too", "task_context": {"customer_id": -7}, "resource": {"type": "customer", "id": "-7"}, "allow": true},
	{"note": "fractional context is not truncated", "task_context": {"customer_id": 1234.5}, "resource": {"type": "customer", "id": "1234"}, "allow": false},
	{"note": "ids are not trimmed or normalised", "task_context": {"customer_id": "1234"}, "resource": {"type": "customer", "id": "01234"}, "allow": false},
	{"note": "missing resource", "task_context": {"customer_id": "1234"}, "resource": null, "allow": false},
	{"note": "resource without id", "task_context": {"customer_id": "1234"}, "resource": {"type": "customer"}, "allow": false},
	{"note": "wrong resource type", "task_context": {"customer_id": "1234"}, "resource": {"type": "order", "id": "1234"}, "allow": false},
	{"note": "missing context value", "task_context": {"order_id": "1234"}, "resource": {"type": "customer", "id": "1234"}, "allow": false},
	{"note": "empty context value", "task_context": {"customer_id": ""}, "resource": {"type": "customer", "id": ""}, "allow": false},
	{"note": "context is not an object", "task_context": "customer_id=1234", "resource": {"type": "customer", "id": "1234"}, "allow": false},
	{"note": "boolean ids never match", "task_context": {"customer_id": true}, "resource": {"type": "customer", "id": true}, "allow": false},
	{"note": "resource is not an object", "task_context": {"customer_id": "1234"}, "resource": "customer/1234", "allow": false},
]

# Notes of the binding cases whose decision is not the expected one.
binding_case_failures contains c.note if {
	some c in binding_cases
	task := object.union(object.remove(crm_input.task, ["context"]), {"context": c.task_context})
	inp := object.union(object.remove(crm_input, ["task", "resource"]), {"task": task, "resource": c.resource})
	d := decide(inp)
	not binding_case_holds(c, d)
}

binding_case_holds(c, d) if {
	c.allow
	d.outcome == "allow"
	d.granted_scopes == ["tickets:write"]
}

binding_case_holds(c, d) if {
	not c.allow
	denied_with(d, ["record_binding_mismatch"])
	d.denied_scopes == [{"scope": "tickets:write", "reason": "record_binding"}]
}

test_crm_binding_cases if {
	count(binding_cases) == 19
	count(binding_case_failures) == 0
}

test_crm_missing_resource_is_denied if {
	d := decide(object.remove(crm_input, ["resource"]))
	denied_with(d, ["record_binding_mismatch"])
}

test_crm_unbound_scope_needs_no_resource if {
	d := decide(object.union(object.remove(crm_input, ["resource"]), {"scopes": ["tickets:read"]}))
	d.outcome == "allow"
	d.granted_scopes == ["tickets:read"]
}

test_crm_binding_applies_to_scopes_granted_by_capping if {
	# tickets:admin is above the ceiling and is capped to tickets:read and tickets:write;
	# the capped-in tickets:write is granted only for the task's own customer.
	ok := crm({"scopes": ["tickets:admin"]})
	ok.outcome == "allow"
	ok.granted_scopes == ["tickets:read", "tickets:write"]
	ok.denied_scopes == [{"scope": "tickets:admin", "reason": "capped", "granted_instead": ["tickets:read", "tickets:write"]}]

	# Another customer: tickets:write is not a substitute there; capping grants tickets:read alone
	# (issue 14, bug 2: it used to refuse the request over a scope nobody asked for).
	other := crm({"scopes": ["tickets:admin"], "resource": {"type": "customer", "id": "5678"}})
	other == {
		"outcome": "allow",
		"granted_scopes": ["tickets:read"],
		"denied_scopes": [{"scope": "tickets:admin", "reason": "capped", "granted_instead": ["tickets:read"]}],
		"reasons": [
			{"code": "allowed", "message": "granted tickets:read"},
			{"code": "scopes_capped", "message": "capped to what the policy allows: tickets:admin -> tickets:read"},
		],
		"token_ttl_seconds": 300,
		"elevated_scopes": [],
	}
}

test_crm_deny_scope_and_binding_are_both_reported if {
	d := crm({"scopes": ["tickets:write", "tickets:delete"], "resource": {"type": "customer", "id": "5678"}})
	denied_with(d, ["deny_scope", "record_binding_mismatch"])
	d.denied_scopes == [
		{"scope": "tickets:delete", "reason": "deny_scope"},
		{"scope": "tickets:write", "reason": "record_binding"},
	]
}

# ---------------------------------------------------------------------------
# Task-type down-scoping
# ---------------------------------------------------------------------------

test_task_type_scope_within_type_is_allowed if {
	d := crm_task("triage", ["tickets:read"])
	d.outcome == "allow"
	d.granted_scopes == ["tickets:read"]
}

test_task_type_excludes_scope_within_ceiling if {
	d := crm_task("triage", ["customers:read"])
	denied_with(d, ["no_scope_granted"])
	d.denied_scopes == [{"scope": "customers:read", "reason": "task_type"}]
}

test_task_type_drop_is_reported_on_allow if {
	d := crm_task("triage", ["customers:read", "tickets:read", "tickets:merge"])
	d.outcome == "allow"
	d.granted_scopes == ["tickets:read"]
	d.denied_scopes == [
		{"scope": "customers:read", "reason": "task_type"},
		{"scope": "tickets:merge", "reason": "above_ceiling"},
	]
	d.reasons == [
		{"code": "allowed", "message": "granted tickets:read"},
		{"code": "scopes_dropped", "message": "not granted: customers:read (task_type), tickets:merge (above_ceiling)"},
	]
}

test_task_type_caps_through_implication if {
	# tickets:write is in the ceiling but not in triage; it implies tickets:read, which is.
	d := crm_task("triage", ["tickets:write"])
	d.outcome == "allow"
	d.granted_scopes == ["tickets:read"]
	d.denied_scopes == [{"scope": "tickets:write", "reason": "capped", "granted_instead": ["tickets:read"]}]
}

test_undeclared_task_type_is_denied if {
	d := crm_task("refund", ["tickets:read"])
	denied_with(d, ["no_scope_granted", "task_type_not_allowed"])
	d.denied_scopes == [{"scope": "tickets:read", "reason": "task_type"}]
}

test_missing_or_mistyped_task_type_is_denied if {
	denied_with(decide(object.remove(crm_input, ["task"])), ["no_scope_granted", "task_type_not_allowed"])
	denied_with(crm({"task": {"type": null}}), ["no_scope_granted", "task_type_not_allowed"])
	denied_with(crm({"task": {"type": ["triage"]}}), ["no_scope_granted", "task_type_not_allowed"])
	denied_with(crm({"task": "triage"}), ["no_scope_granted", "task_type_not_allowed"])
}

test_task_type_without_the_integration_grants_nothing if {
	d := crm_task("email_only", ["tickets:read"])
	denied_with(d, ["no_scope_granted"])
	d.denied_scopes == [{"scope": "tickets:read", "reason": "task_type"}]
}

test_task_types_ignored_without_per_task_downscope if {
	inp := {
		"agent_id": "reporting-agent",
		"task": {"type": "not_declared"},
		"integration": "crm",
		"scopes": ["customers:read", "tickets:read"],
	}
	d := decide(inp)
	d.outcome == "allow"
	d.granted_scopes == ["customers:read", "tickets:read"]
}

# ---------------------------------------------------------------------------
# Token TTL
# ---------------------------------------------------------------------------

ttl_cases := [
	{"note": "shorter request wins", "ttl_seconds": 300, "want": 300},
	{"note": "fractional request is a positive number", "ttl_seconds": 0.5, "want": 0.5},
	{"note": "longer request is capped to the agent", "ttl_seconds": 5000, "want": 900},
	{"note": "equal", "ttl_seconds": 900, "want": 900},
	{"note": "zero is ignored", "ttl_seconds": 0, "want": 900},
	{"note": "negative is ignored", "ttl_seconds": -5, "want": 900},
	{"note": "string is ignored", "ttl_seconds": "300", "want": 900},
	{"note": "null is ignored", "ttl_seconds": null, "want": 900},
	{"note": "object is ignored", "ttl_seconds": {"seconds": 300}, "want": 900},
]

ttl_case_failures contains c.note if {
	some c in ttl_cases
	d := crm({"ttl_seconds": c.ttl_seconds})
	d.token_ttl_seconds != c.want
}

test_ttl_is_min_of_agent_and_positive_request if {
	count(ttl_cases) == 9
	count(ttl_case_failures) == 0
}

test_ttl_defaults_to_agent_ttl_when_not_requested if {
	decide(object.remove(crm_input, ["ttl_seconds"])).token_ttl_seconds == 900
}

test_ttl_is_zero_on_deny if {
	crm({"scopes": ["tickets:delete"], "ttl_seconds": 300}).token_ttl_seconds == 0
}

# ---------------------------------------------------------------------------
# Unknown agent, unknown integration, empty requests
# ---------------------------------------------------------------------------

test_unknown_agent_is_denied if {
	review({"agent_id": "nobody"}) == {
		"outcome": "deny",
		"granted_scopes": [],
		"denied_scopes": [],
		"reasons": [{"code": "unknown_agent", "message": "the agent is not registered"}],
		"token_ttl_seconds": 0,
		"elevated_scopes": [],
	}
}

test_unknown_agent_without_any_policies_is_denied if {
	d := agentpdp.decision with input as review_input with data.policies as {}
	denied_with(d, ["unknown_agent"])
}

test_integration_not_in_agent_policy_is_denied if {
	# jira is unknown everywhere; crm is known, but not to this agent.
	review({"integration": "jira"}) == {
		"outcome": "deny",
		"granted_scopes": [],
		"denied_scopes": [],
		"reasons": [{
			"code": "integration_not_allowed",
			"message": "the agent's policy does not cover the requested integration",
		}],
		"token_ttl_seconds": 0,
		"elevated_scopes": [],
	}
	denied_with(review({"integration": "crm", "scopes": ["tickets:read"]}), ["integration_not_allowed"])
}

test_empty_or_missing_scopes_grant_nothing if {
	denied_with(review({"scopes": []}), ["no_scope_granted"])
	denied_with(decide(object.remove(review_input, ["scopes"])), ["no_scope_granted"])
	review({"scopes": []}).denied_scopes == []
}

test_non_string_scope_entries_are_ignored if {
	d := review({"scopes": [1, null, {"scope": "repo:write"}, ["repo:write"], "pr:read"]})
	d.outcome == "allow"
	d.granted_scopes == ["pr:read"]
	d.denied_scopes == []
}

# ---------------------------------------------------------------------------
# Defensive reading of the data document
# ---------------------------------------------------------------------------

test_only_true_marks_a_scope_allowed if {
	d := agentpdp.decision with input as review_input with data.policies as policies
		with data.policies.agents["code-review-agent"].integrations.github.allowed as {"repo:read": "yes"}
	denied_with(d, ["no_scope_granted"])
}

test_scope_both_allowed_and_denied_is_denied if {
	d := agentpdp.decision with input as review_input with data.policies as policies
		with data.policies.agents["code-review-agent"].integrations.github.denied as {"repo:read": true}
	denied_with(d, ["deny_scope", "no_scope_granted"])
}

test_implied_scope_on_the_deny_list_is_never_granted if {
	# Inconsistent data (the compiler removes denied scopes from allowed): denied still wins,
	# with and without task-type restriction.
	unrestricted := agentpdp.decision with input as object.union(review_input, {"scopes": ["issues:write"]})
		with data.policies as policies
		with data.policies.agents["code-review-agent"].integrations.github.denied as {"issues:read": true}
	denied_with(unrestricted, ["no_scope_granted"])
	unrestricted.denied_scopes == [{"scope": "issues:write", "reason": "above_ceiling"}]

	restricted := agentpdp.decision with input as object.union(crm_input, {"task": {"type": "triage"}})
		with data.policies as policies
		with data.policies.agents["support-resolver"].integrations.crm.denied as {"tickets:read": true}
	denied_with(restricted, ["no_scope_granted"])
	restricted.denied_scopes == [{"scope": "tickets:write", "reason": "task_type"}]
}

test_malformed_binding_fails_closed if {
	d := agentpdp.decision with input as crm_input with data.policies as policies
		with data.policies.agents["support-resolver"].integrations.crm.bindings as {"tickets:write": {"resource_type": "customer"}}
	denied_with(d, ["record_binding_mismatch"])

	# Any value under a scope's key binds it, even one that is not an object.
	not_an_object := agentpdp.decision with input as crm_input with data.policies as policies
		with data.policies.agents["support-resolver"].integrations.crm.bindings as {"tickets:write": false}
	denied_with(not_an_object, ["record_binding_mismatch"])
}

# ---------------------------------------------------------------------------
# Extension rules (package agentpdp.ext)
# ---------------------------------------------------------------------------

test_extension_deny_overrides_an_allow if {
	d := crm({"task": {"context": {"customer_id": "1234", "suspended": true}}})
	d == {
		"outcome": "deny",
		"granted_scopes": [],
		"denied_scopes": [],
		"reasons": [{
			"code": "task_suspended",
			"message": "the task is suspended; no token is issued until it is resumed",
		}],
		"token_ttl_seconds": 0,
		"elevated_scopes": [],
	}
}

test_extension_codes_are_reported_with_core_reasons_sorted if {
	d := crm({"scopes": ["tickets:delete", "tickets:write"]}) with data.agentpdp.ext.deny as {
		{"code": "after_hours", "message": "outside business hours"},
		{"code": "zz_freeze", "message": "change freeze"},
	}
	denied_with(d, ["after_hours", "deny_scope", "zz_freeze"])
	d.reasons[0] == {"code": "after_hours", "message": "outside business hours"}
}

test_malformed_extension_denial_still_denies if {
	d := crm({}) with data.agentpdp.ext.deny as {"not an object", {"code": 7}}
	denied_with(d, ["extension_deny"])

	empty_code := crm({}) with data.agentpdp.ext.deny as {{"code": "", "message": "m"}}
	denied_with(empty_code, ["extension_deny"])

	no_message := crm({}) with data.agentpdp.ext.deny as {{"code": "quota"}}
	no_message.reasons == [{"code": "quota", "message": "denied by an extension rule in package agentpdp.ext"}]
}

test_core_decides_without_an_extension_package if {
	crm({}).outcome == "allow" with data.agentpdp.ext as {}
	denied_with(crm({"resource": null}), ["record_binding_mismatch"]) with data.agentpdp.ext as {}
}

# ---------------------------------------------------------------------------
# The decision is always an object of the contract's shape
# ---------------------------------------------------------------------------

malformed_inputs := [
	{"note": "empty object", "input": {}},
	{"note": "input is a string", "input": "support-resolver"},
	{"note": "input is an array", "input": [crm_input]},
	{"note": "input is null", "input": null},
	{"note": "agent_id is a number", "input": object.union(crm_input, {"agent_id": 7})},
	{"note": "agent_id is an array", "input": object.union(crm_input, {"agent_id": ["support-resolver"]})},
	{"note": "agent_id is an object", "input": object.union(crm_input, {"agent_id": {"id": "support-resolver"}})},
	{"note": "integration is null", "input": object.union(crm_input, {"integration": null})},
	{"note": "integration is an object", "input": object.union(crm_input, {"integration": {"crm": true}})},
	{"note": "scopes is a string", "input": object.union(crm_input, {"scopes": "tickets:write"})},
	{"note": "scopes is an object", "input": object.union(crm_input, {"scopes": {"tickets:write": true}})},
	{"note": "scopes has only non-strings", "input": object.union(crm_input, {"scopes": [1, true, null]})},
	{"note": "task is null", "input": object.union(crm_input, {"task": null})},
	{"note": "task context is an array", "input": object.union(crm_input, {"task": {"context": ["1234"]}})},
	{"note": "resource id is an object", "input": object.union(crm_input, {"resource": {"type": "customer", "id": {"v": "1234"}}})},
	{"note": "ttl_seconds is a string with a denied scope", "input": object.union(crm_input, {"ttl_seconds": "9", "scopes": ["tickets:delete"]})},
]

result_keys := {"outcome", "granted_scopes", "denied_scopes", "reasons", "token_ttl_seconds", "elevated_scopes"}

well_formed_deny(d) if {
	is_object(d)
	{k | some k, _ in d} == result_keys
	denied_with(d, codes(d))
	is_array(d.denied_scopes)
	count(d.reasons) > 0
	every r in d.reasons {
		is_string(r.code)
		is_string(r.message)
	}
}

malformed_input_failures contains c.note if {
	some c in malformed_inputs
	not well_formed_deny(decide(c.input))
}

test_malformed_input_always_yields_a_deny_decision if {
	count(malformed_inputs) == 16
	count(malformed_input_failures) == 0
}

test_decision_is_defined_without_any_data if {
	d := agentpdp.decision with input as crm_input with data.policies as null
	denied_with(d, ["unknown_agent"])
}

# ---------------------------------------------------------------------------
# Issue 14: capping and bound substitutes; scopes as plain text; task types narrowed per integration
# ---------------------------------------------------------------------------

# max_scope [svc:read, svc:write], bind {svc:write: customer}; svc:admin implies both, svc:owner only svc:write.
svc_agent := {
	"token_ttl": 600,
	"per_task_downscope": false,
	"integrations": {"svc": {
		"allowed": {"svc:read": true, "svc:write": true},
		"denied": {"svc:delete": true},
		"bindings": {"svc:write": {"resource_type": "customer", "context_key": "customer_id"}},
	}},
	"task_types": {},
}

svc_policies := {
	"agents": {"svc-agent": svc_agent},
	"integrations": {"svc": {"implies": {"svc:admin": ["svc:read", "svc:write"], "svc:owner": ["svc:write"]}}},
}

svc(scopes, resource) := d if {
	base := {
		"agent_id": "svc-agent",
		"task": {"id": "t", "context": {"customer_id": "1234"}, "registered": true},
		"integration": "svc",
		"scopes": scopes,
	}
	inp := object.union(base, {k: v | some k, v in {"resource": resource}; v != null})
	d := agentpdp.decision with input as inp with data.policies as svc_policies
}

customer_1234 := {"type": "customer", "id": "1234"}

test_capping_skips_a_bound_substitute_without_its_record if {
	# The issue's example: no resource, so svc:write cannot be a substitute; svc:read is granted.
	svc(["svc:admin"], null) == {
		"outcome": "allow",
		"granted_scopes": ["svc:read"],
		"denied_scopes": [{"scope": "svc:admin", "reason": "capped", "granted_instead": ["svc:read"]}],
		"reasons": [
			{"code": "allowed", "message": "granted svc:read"},
			{"code": "scopes_capped", "message": "capped to what the policy allows: svc:admin -> svc:read"},
		],
		"token_ttl_seconds": 600,
		"elevated_scopes": [],
	}
}

test_capping_keeps_a_bound_substitute_on_its_record if {
	d := svc(["svc:admin"], customer_1234)
	d.outcome == "allow"
	d.granted_scopes == ["svc:read", "svc:write"]
	d.denied_scopes == [{"scope": "svc:admin", "reason": "capped", "granted_instead": ["svc:read", "svc:write"]}]
}

test_a_scope_whose_only_substitute_fails_its_binding_is_dropped if {
	# Nothing to grant instead: svc:owner is dropped as above the ceiling; svc:write, never asked for,
	# is not listed, and there is no granted_instead.
	svc(["svc:owner"], null) == {
		"outcome": "deny",
		"granted_scopes": [],
		"denied_scopes": [{"scope": "svc:owner", "reason": "above_ceiling"}],
		"reasons": [{
			"code": "no_scope_granted",
			"message": "no requested scope is within the agent's policy for this integration and task",
		}],
		"token_ttl_seconds": 0,
		"elevated_scopes": [],
	}

	with_read := svc(["svc:owner", "svc:read"], null)
	with_read.outcome == "allow"
	with_read.granted_scopes == ["svc:read"]
	with_read.denied_scopes == [{"scope": "svc:owner", "reason": "above_ceiling"}]
	codes(with_read) == ["allowed", "scopes_dropped"]
}

test_a_requested_bound_scope_still_refuses_the_request if {
	# svc:write asked for by name on another record refuses the whole request; svc:admin is
	# still reported as capped, without granted_instead since nothing is granted.
	d := svc(["svc:admin", "svc:write"], {"type": "customer", "id": "5678"})
	denied_with(d, ["record_binding_mismatch"])
	d.denied_scopes == [
		{"scope": "svc:admin", "reason": "capped"},
		{"scope": "svc:write", "reason": "record_binding"},
	]
}

test_granted_instead_only_on_allow if {
	d := svc(["svc:admin", "svc:delete"], customer_1234)
	denied_with(d, ["deny_scope"])
	d.denied_scopes == [
		{"scope": "svc:admin", "reason": "capped"},
		{"scope": "svc:delete", "reason": "deny_scope"},
	]

	extension := svc(["svc:admin"], customer_1234) with data.agentpdp.ext.deny as {{"code": "freeze", "message": "m"}}
	denied_with(extension, ["freeze"])
	extension.denied_scopes == [{"scope": "svc:admin", "reason": "capped"}]
}

test_scopes_are_plain_text_whatever_their_characters if {
	# The scope grammar (letters, digits and _ . : / * + @ = -) gives no character a meaning:
	# "*" is not a wildcard and "+" or "=" are matched as they are.
	agent := {
		"token_ttl": 60,
		"per_task_downscope": false,
		"integrations": {"api": {"allowed": {"a+b": true, "role=admin": true, "*": true, "mail@x/y:z": true}, "denied": {}, "bindings": {}}},
		"task_types": {},
	}
	inp := {"agent_id": "g", "task": {"id": "t", "context": {}}, "integration": "api", "scopes": ["a+b", "role=admin", "*", "a*", "mail@x/y:z"]}
	d := agentpdp.decision with input as inp with data.policies as {"agents": {"g": agent}, "integrations": {"api": {"implies": {}}}}
	d.outcome == "allow"
	d.granted_scopes == ["*", "a+b", "mail@x/y:z", "role=admin"]
	d.denied_scopes == [{"scope": "a*", "reason": "above_ceiling"}]
}

test_a_task_type_integration_narrowed_to_nothing_grants_nothing if {
	# What the compiler emits when an agent lists an integration its role's task type does not
	# (issue 14, bug 3): the integration is present with an empty set, so the type grants nothing there.
	agent := {
		"token_ttl": 900,
		"per_task_downscope": true,
		"integrations": {
			"crm": {"allowed": {"tickets:read": true}, "denied": {}, "bindings": {}},
			"slack": {"allowed": {"chat:write": true}, "denied": {}, "bindings": {}},
		},
		"task_types": {"triage": {"crm": {"tickets:read": true}, "slack": {}}},
	}
	inp := {"agent_id": "r", "task": {"id": "t", "type": "triage", "context": {}}, "integration": "slack", "scopes": ["chat:write"]}
	d := agentpdp.decision with input as inp with data.policies as {"agents": {"r": agent}, "integrations": {}}
	denied_with(d, ["no_scope_granted"])
	d.denied_scopes == [{"scope": "chat:write", "reason": "task_type"}]
}

# ---------------------------------------------------------------------------
# Issue 16: escalation (break-glass). Requestable scopes, access_request, elevations
# ---------------------------------------------------------------------------

# github: pr:write and issues:write requestable (issues:write bound to the task's repo),
# repo:write on the deny list but lifted for approved requests (override_deny); delete_repo
# denied and not requestable. Task types: review (repo:read, pr:read), triage (repo:read).
break_glass_agent := {
	"token_ttl": 900,
	"per_task_downscope": true,
	"integrations": {
		"github": {
			"allowed": {"repo:read": true, "pr:read": true, "issues:read": true},
			"denied": {"repo:write": true, "delete_repo": true},
			"bindings": {"issues:write": {"resource_type": "repo", "context_key": "repo"}},
			"escalation": {
				"pr:write": {"approvers": ["platform-oncall"], "max_duration": 3600, "require_reason": true, "override_deny": false},
				"issues:write": {"approvers": ["security", "platform-oncall"], "max_duration": 900, "require_reason": false, "override_deny": false},
				"repo:write": {"approvers": ["security"], "max_duration": 600, "require_reason": false, "override_deny": true},
			},
		},
		"slack": {
			"allowed": {"chat:write": true},
			"denied": {},
			"bindings": {},
			"escalation": {"channels:manage": {"approvers": ["it"], "max_duration": 300, "require_reason": false, "override_deny": false}},
		},
	},
	"task_types": {
		"review": {"github": {"repo:read": true, "pr:read": true, "issues:read": true}, "slack": {"chat:write": true}},
		"triage": {"github": {"repo:read": true}},
	},
}

bg_policies := object.union(policies, {
	"agents": {"break-glass-agent": break_glass_agent},
	"integrations": {"github": {"implies": {"pr:write": ["pr:read"]}}},
})

bg_input := {
	"agent_id": "break-glass-agent",
	"caller_id": "review-middleware",
	"task": {"id": "task-7", "type": "review", "context": {"repo": "acme/api"}, "registered": true},
	"integration": "github",
	"scopes": ["pr:write"],
	"resource": {"type": "repo", "id": "acme/api"},
}

# An approved access request for the given scopes on the request's record.
elevation(scopes) := {
	"access_request_id": "ar-1",
	"scopes": {s: true | some s in scopes},
	"resource": {"type": "repo", "id": "acme/api"},
	"approved_until": "2026-01-05T15:00:00.000Z",
}

# The same on another record (object.union would merge the two resources).
elevation_on(scopes, resource) := object.union(object.remove(elevation(scopes), ["resource"]), {"resource": resource})

bg(patch) := d if {
	d := agentpdp.decision with input as object.union(bg_input, patch) with data.policies as bg_policies
}

# With the given input patch and a replaced escalation map for github.
bg_with_escalation(patch, escalation) := d if {
	d := agentpdp.decision with input as object.union(bg_input, patch)
		with data.policies as bg_policies
		with data.policies.agents["break-glass-agent"].integrations.github.escalation as escalation
}

test_escalation_a_requestable_scope_is_denied_with_an_access_request if {
	bg({}) == {
		"outcome": "deny",
		"granted_scopes": [],
		"denied_scopes": [{"scope": "pr:write", "reason": "approval_required"}],
		"reasons": [{
			"code": "approval_required",
			"message": "requested scopes need an approver's approval: pr:write",
		}],
		"token_ttl_seconds": 0,
		"elevated_scopes": [],
		"access_request": {"scopes": ["pr:write"], "approvers": ["platform-oncall"], "max_duration": 3600, "require_reason": true},
	}
}

test_escalation_a_requestable_scope_is_not_capped_and_denies_the_fine_ones_too if {
	# pr:write implies pr:read (in E), but a requestable scope is asked for, not capped.
	d := bg({"scopes": ["pr:write", "repo:read"]})
	denied_with(d, ["approval_required"])
	d.denied_scopes == [{"scope": "pr:write", "reason": "approval_required"}]
	d.access_request.scopes == ["pr:write"]
}

test_escalation_terms_merge_over_the_requested_scopes if {
	d := bg({"scopes": ["pr:write", "issues:write", "repo:read"]})
	denied_with(d, ["approval_required"])
	d.denied_scopes == [
		{"scope": "issues:write", "reason": "approval_required"},
		{"scope": "pr:write", "reason": "approval_required"},
	]
	d.access_request == {
		"scopes": ["issues:write", "pr:write"],
		"approvers": ["platform-oncall"], # the groups that may approve both
		"max_duration": 900, # the shortest
		"require_reason": true, # any
	}
}

test_escalation_scopes_of_different_approver_groups_are_not_requestable_together if {
	# pr:write is platform-oncall's to approve, repo:write security's: no approver may approve both, so one
	# request for both would let one group's member approve the other group's scope.
	d := bg({"scopes": ["pr:write", "repo:write"]})
	d.outcome == "deny"
	not d.access_request
	[r.code | some r in d.reasons] == ["approval_required"]
	contains(d.reasons[0].message, "request them in separate decisions")
	d.denied_scopes == [
		{"scope": "pr:write", "reason": "approval_required"},
		{"scope": "repo:write", "reason": "approval_required"},
	]
}

test_escalation_the_elevation_grants_its_scope_on_its_record if {
	bg({"elevation": elevation(["pr:write"])}) == {
		"outcome": "allow",
		"granted_scopes": ["pr:write"],
		"denied_scopes": [],
		"reasons": [
			{"code": "allowed", "message": "granted pr:write"},
			{"code": "elevated", "message": "granted by access request ar-1: pr:write"},
		],
		"token_ttl_seconds": 900,
		"elevated_scopes": ["pr:write"],
	}
}

test_escalation_elevated_scopes_name_only_what_the_elevation_added if {
	d := bg({"scopes": ["pr:write", "repo:read"], "elevation": elevation(["pr:write", "repo:read", "issues:write"])})
	d.outcome == "allow"
	d.granted_scopes == ["pr:write", "repo:read"] # issues:write was approved but not asked for
	d.elevated_scopes == ["pr:write"] # repo:read is the policy's own
}

test_escalation_an_elevation_for_another_record_grants_nothing if {
	other := {"type": "repo", "id": "acme/other"}
	d := bg({"elevation": elevation_on(["pr:write"], other)})
	denied_with(d, ["approval_required"])
	d.access_request.scopes == ["pr:write"] # it can be asked for here, again

	# Another record type with the same id, an elevation without a record, a request without one.
	denied_with(bg({"elevation": elevation_on(["pr:write"], {"type": "org", "id": "acme/api"})}), ["approval_required"])
	denied_with(bg({"elevation": elevation_on(["pr:write"], null)}), ["approval_required"])
	denied_with(bg({"resource": null, "elevation": elevation(["pr:write"])}), ["approval_required"])
}

test_escalation_records_compare_as_text_and_both_absent_is_equal if {
	bg({"resource": null, "elevation": elevation_on(["pr:write"], null)}).outcome == "allow"
	no_resource := agentpdp.decision with input as object.union(object.remove(bg_input, ["resource"]), {"elevation": object.remove(elevation(["pr:write"]), ["resource"])})
		with data.policies as bg_policies
	no_resource.elevated_scopes == ["pr:write"]

	numeric := {"type": "repo", "id": 42}
	bg({"resource": {"type": "repo", "id": "42"}, "elevation": elevation_on(["pr:write"], numeric)}).outcome == "allow"
	denied_with(bg({"resource": {"type": "repo", "id": "042"}, "elevation": elevation_on(["pr:write"], numeric)}), ["approval_required"])
}

test_escalation_an_elevation_for_another_scope_grants_nothing if {
	d := bg({"elevation": elevation(["issues:write"])})
	denied_with(d, ["approval_required"])
	d.denied_scopes == [{"scope": "pr:write", "reason": "approval_required"}]
}

test_escalation_an_elevation_reaches_no_other_integration if {
	# slack lists no escalation for pr:write: the elevation's scope is an ordinary unknown scope there.
	d := bg({"integration": "slack", "elevation": elevation(["pr:write"])})
	denied_with(d, ["no_scope_granted"])
	d.denied_scopes == [{"scope": "pr:write", "reason": "above_ceiling"}]
	not d.access_request

	# slack's own requestable scope is not github's.
	g := bg({"scopes": ["channels:manage"], "elevation": elevation(["channels:manage"])})
	denied_with(g, ["no_scope_granted"])
	g.denied_scopes == [{"scope": "channels:manage", "reason": "above_ceiling"}]
}

test_escalation_an_elevation_ends_when_the_policy_no_longer_lists_the_scope if {
	d := bg_with_escalation({"elevation": elevation(["pr:write"])}, {})
	d.outcome == "allow" # capped, as before escalation existed
	d.granted_scopes == ["pr:read"]
	d.elevated_scopes == []
	d.denied_scopes == [{"scope": "pr:write", "reason": "capped", "granted_instead": ["pr:read"]}]

	# An agent or integration without any escalation key at all: the same.
	no_key := agentpdp.decision with input as object.union(review_input, {"scopes": ["issues:write"], "elevation": elevation(["issues:write"])})
		with data.policies as bg_policies
	no_key.granted_scopes == ["issues:read"]
	no_key.elevated_scopes == []
}

test_escalation_a_deny_scope_without_override_is_never_requestable if {
	# What a compiler would never emit: a denied scope listed without override_deny.
	entry := {"approvers": ["security"], "max_duration": 600, "require_reason": false, "override_deny": false}
	d := bg_with_escalation({"scopes": ["delete_repo"]}, {"delete_repo": entry})
	denied_with(d, ["deny_scope", "no_scope_granted"])
	d.denied_scopes == [{"scope": "delete_repo", "reason": "deny_scope"}]
	not d.access_request

	elevated := bg_with_escalation({"scopes": ["delete_repo"], "elevation": elevation(["delete_repo"])}, {"delete_repo": entry})
	denied_with(elevated, ["deny_scope", "no_scope_granted"])

	# override_deny must be exactly true.
	loose := object.union(entry, {"override_deny": "true"})
	denied_with(bg_with_escalation({"scopes": ["delete_repo"], "elevation": elevation(["delete_repo"])}, {"delete_repo": loose}), ["deny_scope", "no_scope_granted"])
}

test_escalation_override_deny_makes_a_denied_scope_requestable if {
	d := bg({"scopes": ["repo:write"]})
	denied_with(d, ["approval_required"])
	d.denied_scopes == [{"scope": "repo:write", "reason": "approval_required"}]
	d.access_request == {"scopes": ["repo:write"], "approvers": ["security"], "max_duration": 600, "require_reason": false}

	ok := bg({"scopes": ["repo:write"], "elevation": elevation(["repo:write"])})
	ok.outcome == "allow"
	ok.granted_scopes == ["repo:write"]
	ok.elevated_scopes == ["repo:write"]

	# Other denied scopes still refuse the request, and make nothing requestable.
	both := bg({"scopes": ["repo:write", "delete_repo"]})
	denied_with(both, ["deny_scope"])
	both.denied_scopes == [
		{"scope": "delete_repo", "reason": "deny_scope"},
		{"scope": "repo:write", "reason": "approval_required"},
	]
	not both.access_request
}

test_escalation_a_deny_scope_elsewhere_in_the_request_makes_it_unrequestable if {
	d := bg({"scopes": ["pr:write", "delete_repo"], "elevation": elevation(["pr:write"])})
	denied_with(d, ["deny_scope"])
	d.denied_scopes == [{"scope": "delete_repo", "reason": "deny_scope"}]
	not d.access_request

	r := bg({"scopes": ["pr:write", "delete_repo"]})
	denied_with(r, ["deny_scope"])
	r.denied_scopes == [
		{"scope": "delete_repo", "reason": "deny_scope"},
		{"scope": "pr:write", "reason": "approval_required"},
	]
	not r.access_request
}

test_escalation_a_binding_still_applies_to_an_elevated_scope if {
	ok := bg({"scopes": ["issues:write"], "elevation": elevation(["issues:write"])})
	ok.outcome == "allow"
	ok.elevated_scopes == ["issues:write"]

	# The elevation's record is the request's, but the task is about another repository.
	other_task := {"task": {"context": {"repo": "acme/other"}}, "scopes": ["issues:write"], "elevation": elevation(["issues:write"])}
	d := bg(other_task)
	denied_with(d, ["record_binding_mismatch"])
	d.denied_scopes == [{"scope": "issues:write", "reason": "record_binding"}]
	not d.access_request

	# Without an elevation, a bound requestable scope on the wrong record is not requestable.
	r := bg({"scopes": ["issues:write"], "resource": {"type": "repo", "id": "acme/other"}})
	denied_with(r, ["record_binding_mismatch"])
	r.denied_scopes == [{"scope": "issues:write", "reason": "record_binding"}]
	not r.access_request

	# A bound override_deny scope on the wrong record stays a denied scope.
	bound := {"repo:write": {"resource_type": "repo", "context_key": "repo"}}
	w := agentpdp.decision with input as object.union(bg_input, {"scopes": ["repo:write"], "resource": {"type": "repo", "id": "acme/other"}})
		with data.policies as bg_policies
		with data.policies.agents["break-glass-agent"].integrations.github.bindings as bound
	denied_with(w, ["deny_scope", "no_scope_granted"])
	w.denied_scopes == [{"scope": "repo:write", "reason": "deny_scope"}]
}

test_escalation_an_extension_denial_still_denies if {
	ext := {{"code": "change_freeze", "message": "no writes during the freeze"}}
	d := bg({"elevation": elevation(["pr:write"])}) with data.agentpdp.ext.deny as ext
	denied_with(d, ["change_freeze"])
	not d.access_request

	r := bg({}) with data.agentpdp.ext.deny as ext
	denied_with(r, ["change_freeze"])
	r.denied_scopes == [{"scope": "pr:write", "reason": "approval_required"}]
	not r.access_request
}

test_escalation_bypasses_task_types_but_not_an_undeclared_type if {
	# triage allows repo:read only; the approved pr:write is granted anyway.
	ok := bg({"task": {"type": "triage"}, "elevation": elevation(["pr:write"])})
	ok.outcome == "allow"
	ok.granted_scopes == ["pr:write"]

	# Without the elevation, triage asking for pr:write may ask for approval.
	denied_with(bg({"task": {"type": "triage"}}), ["approval_required"])

	# A type the policy does not declare refuses the request, elevation or not.
	d := bg({"task": {"type": "deploy"}, "elevation": elevation(["pr:write"])})
	denied_with(d, ["task_type_not_allowed"])
	not d.access_request
}

test_escalation_ttl_is_the_policy_s if {
	bg({"elevation": elevation(["pr:write"]), "ttl_seconds": 60}).token_ttl_seconds == 60
	bg({"elevation": elevation(["pr:write"])}).token_ttl_seconds == 900
}

test_escalation_nothing_for_an_unknown_agent_or_integration if {
	denied_with(bg({"agent_id": "nobody", "elevation": elevation(["pr:write"])}), ["unknown_agent"])
	d := bg({"integration": "jira", "elevation": elevation(["pr:write"])})
	denied_with(d, ["integration_not_allowed"])
	not d.access_request
}

malformed_elevations := [
	{"note": "elevation is a string", "elevation": "ar-1"},
	{"note": "scopes is a list", "elevation": object.union(elevation([]), {"scopes": ["pr:write"]})},
	{"note": "scope value is not true", "elevation": object.union(elevation([]), {"scopes": {"pr:write": "true"}})},
	{"note": "no access request id", "elevation": object.remove(elevation(["pr:write"]), ["access_request_id"])},
	{"note": "access request id is a number", "elevation": object.union(elevation(["pr:write"]), {"access_request_id": 1})},
	{"note": "resource is a string", "elevation": elevation_on(["pr:write"], "repo/acme/api")},
	{"note": "resource has no id", "elevation": elevation_on(["pr:write"], {"type": "repo"})},
]

malformed_elevation_failures contains c.note if {
	some c in malformed_elevations
	d := bg({"elevation": c.elevation})
	not malformed_elevation_denied(d)
}

malformed_elevation_denied(d) if {
	denied_with(d, ["approval_required"])
	d.access_request.scopes == ["pr:write"]
}

test_escalation_a_malformed_elevation_grants_nothing if {
	count(malformed_elevations) == 7
	count(malformed_elevation_failures) == 0
}

test_escalation_a_malformed_entry_makes_nothing_requestable if {
	base := break_glass_agent.integrations.github.escalation["pr:write"]
	entries := [
		object.union(base, {"approvers": []}),
		object.union(base, {"approvers": "platform-oncall"}),
		object.union(base, {"approvers": [1]}),
		object.remove(base, ["max_duration"]),
		object.union(base, {"max_duration": 0}),
		"pr:write",
	]
	every e in entries {
		d := bg_with_escalation({"elevation": elevation(["pr:write"])}, {"pr:write": e})
		d.granted_scopes == ["pr:read"] # capped as if not requestable
		d.elevated_scopes == []
		not d.access_request
	}
}

test_escalation_require_reason_defaults_to_false if {
	base := object.remove(break_glass_agent.integrations.github.escalation["pr:write"], ["require_reason"])
	bg_with_escalation({}, {"pr:write": base}).access_request.require_reason == false
}

test_escalation_one_scope_offers_its_approver_groups_sorted_and_once if {
	# One group: as written. Several, however written: sorted, each once (a compiled entry is already).
	one := object.union(break_glass_agent.integrations.github.escalation["pr:write"], {"approvers": ["platform-oncall"]})
	bg_with_escalation({}, {"pr:write": one}).access_request.approvers == ["platform-oncall"]
	many := object.union(one, {"approvers": ["security", "platform-oncall", "security"]})
	d := bg_with_escalation({}, {"pr:write": many})
	d.access_request == {"scopes": ["pr:write"], "approvers": ["platform-oncall", "security"], "max_duration": 3600, "require_reason": true}
}
