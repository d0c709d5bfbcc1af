# The scenario's required decisions (C-1.4 rules 1-8), its search requirements (C-1.5 S1-S6) as the AuthZEN router
# answers them (every catalog entry of the searched-for kind evaluated with the decision), and defined answers for
# anything else. Requests are the scenario's own (C-2, C-3, C-4), copied as the harness sends them.
package authzen.certification_test

import data.authzen.certification

alice := {"type": "user", "id": "alice"}

bob := {"type": "user", "id": "bob"}

record1 := {"type": "record", "id": "record-1"}

record2 := {"type": "record", "id": "record-2"}

harness_context := {"time": "2025-06-27T18:03-07:00", "ip": "192.168.1.1"}

decide(subject, action, resource) := d if {
	d := certification.decision with input as {"subject": subject, "action": action, "resource": resource}
}

# --- C-1.4: the eight decisions the harness validates --------------------------------------------------------------

test_rule_1_alice_reads_record_1 if decide(alice, {"name": "read"}, record1) == {"decision": true}

test_rule_2_alice_writes_record_1 if decide(alice, {"name": "write"}, record1) == {"decision": true}

test_rule_3_bob_reads_record_1 if decide(bob, {"name": "read"}, record1) == {"decision": true}

test_rule_4_bob_may_not_write_record_1 if decide(bob, {"name": "write"}, record1).decision == false

test_rule_5_alice_may_not_write_an_archived_record if {
	decide(alice, {"name": "write"}, object.union(record2, {"properties": {"status": "archived"}})).decision == false

	# the status decides, not the id
	decide(alice, {"name": "write"}, object.union(record1, {"properties": {"status": "archived"}})).decision == false
}

test_rule_6_an_admin_writes_an_archived_record if {
	decide(object.union(bob, {"properties": {"role": "admin"}}), {"name": "write"}, object.union(record2, {"properties": {"status": "archived"}})) == {"decision": true}

	# any subject with the role, any archived resource
	decide({"type": "user", "id": "carol", "properties": {"role": "admin"}}, {"name": "write"}, {"type": "record", "id": "record-9", "properties": {"status": "archived"}}) == {"decision": true}
}

test_rule_7_alice_soft_deletes_record_1 if decide(alice, {"name": "delete", "properties": {"soft": true}}, record1) == {"decision": true}

test_rule_8_alice_may_not_hard_delete_record_1 if decide(alice, {"name": "delete", "properties": {"soft": false}}, record1).decision == false

test_context_does_not_change_a_fixture_decision if {
	certification.decision.decision == true with input as {"subject": alice, "action": {"name": "read"}, "resource": record1, "context": harness_context}
	certification.decision.decision == false with input as {"subject": bob, "action": {"name": "write"}, "resource": record1, "context": harness_context}
}

# C-2.2.8: properties beyond the fixture's (alice's "role": "manager" replaces her editor role, but reading needs none)
test_additional_properties if {
	decide(
		{"type": "user", "id": "alice", "properties": {"department": "Sales", "role": "manager"}},
		{"name": "read", "properties": {"method": "GET"}},
		{"type": "record", "id": "record-1", "properties": {"status": "active", "owner": "bob"}},
	) == {"decision": true}
}

# C-2.2.9: unknown fields are ignored
test_unknown_fields if {
	certification.decision == {"decision": true} with input as {"subject": alice, "action": {"name": "read"}, "resource": record1, "foo": "bar", "futureField": {"nested": true}}
}

# C-3.2.3, C-3.2.4: what the batch tests send per item
test_batch_items if {
	decide(alice, {"name": "write"}, object.union(record1, {"properties": {"status": "active"}})).decision == true
	decide(alice, {"name": "write"}, object.union(record2, {"properties": {"status": "archived"}})).decision == false
}

# Without properties, a known id's directory properties apply: bob is an admin, record-2 archived.
test_directory_properties_apply_when_the_request_has_none if {
	decide(bob, {"name": "write"}, record2) == {"decision": true}
	decide(alice, {"name": "write"}, record2).decision == false
}

# Properties in the request win over the directory's, key by key.
test_request_properties_win if {
	decide(alice, {"name": "write"}, object.union(record2, {"properties": {"status": "active"}})).decision == true
	decide(object.union(bob, {"properties": {"role": "editor"}}), {"name": "write"}, record1).decision == true
}

test_a_denial_says_why if {
	decide(alice, {"name": "delete", "properties": {"soft": false}}, record1).context.reason_admin.en == "only a soft delete (action property soft = true) is allowed"
	decide(bob, {"name": "write"}, record1).context.reason_admin.en == "live records are written by editors only"
	decide({"type": "user", "id": "nonexistent-user"}, {"name": "read"}, record1).context.reason_admin.en == "unknown subject: not in the directory and no role given"
}

# --- Defined answers: a false decision for anything this policy does not allow, never undefined ----------------------

test_never_undefined if {
	inputs := [
		{},
		{"subject": alice},
		{"subject": "alice", "action": {"name": "read"}, "resource": record1},
		{"subject": alice, "action": {"name": 123}, "resource": record1},
		{"subject": alice, "action": {"name": "read"}, "resource": {"type": "record"}},
		{"subject": alice, "action": {"name": "read"}, "resource": record1, "context": "x"},
		{"subject": {"type": "user", "id": "alice", "properties": "admin"}, "action": {"name": "read", "properties": []}, "resource": {"type": "record", "id": "record-1", "properties": 7}},
		{"subject": {"type": "spaceship", "id": "alice"}, "action": {"name": "read"}, "resource": record1},
		{"subject": alice, "action": {"name": "approve"}, "resource": record1},
		{"subject": alice, "action": {"name": "delete"}, "resource": record1},
	]
	answers := [d | some i in inputs; d := certification.decision with input as i]
	count(answers) == count(inputs)
	every a in answers {
		is_boolean(a.decision)
	}
}

test_never_undefined_for_a_non_object_input if {
	certification.decision.decision == false with input as "alice"
	certification.decision.decision == false with input as null
}

# Malformed properties are ignored (not merged), so alice's request with a string for properties still reads.
test_malformed_properties_are_ignored if {
	certification.decision.decision == true with input as {"subject": {"type": "user", "id": "alice", "properties": "admin"}, "action": {"name": "read", "properties": []}, "resource": {"type": "record", "id": "record-1", "properties": 7}}
}

# --- C-1.5: the searches, as the router answers them from the catalog -----------------------------------------------

catalog := c if {
	c := certification.entities with input as {}
}

# The request's properties over the catalog entry's, for the searched-for entity.
candidate(entry, requested) := object.union(entry, {"properties": object.union(object.get(entry, "properties", {}), object.get(requested, "properties", {}))})

subject_search(request) := {s.id |
	some s in catalog.subjects
	s.type == request.subject.type
	certification.decision.decision == true with input as object.union(request, {"subject": candidate(s, request.subject)})
}

resource_search(request) := {r.id |
	some r in catalog.resources
	r.type == request.resource.type
	certification.decision.decision == true with input as object.union(request, {"resource": candidate(r, request.resource)})
}

action_search(request) := {a.name |
	some a in catalog.actions
	certification.decision.decision == true with input as object.union(request, {"action": {"name": a.name}})
}

test_catalog_shape if {
	{s.id | some s in catalog.subjects; s.type == "user"} == {"alice", "bob"}
	{r.id | some r in catalog.resources; r.type == "record"} == {"record-1", "record-2"}
	{a.name | some a in catalog.actions} == {"read", "write", "delete"}
	every s in catalog.subjects {
		is_string(s.type)
		is_string(s.id)
	}
	every r in catalog.resources {
		is_string(r.type)
		is_string(r.id)
	}
}

test_catalog_ignores_input if {
	certification.entities == catalog with input as {"subject": bob}
}

test_s1_subject_search_read_record_1 if {
	{"alice", "bob"} - subject_search({"subject": {"type": "user"}, "action": {"name": "read"}, "resource": record1}) == set()

	# C-4.2.2 with context; C-4.2.3 with a subject id, which the router ignores (the candidate's id replaces it)
	{"alice", "bob"} - subject_search({"subject": {"type": "user"}, "action": {"name": "read"}, "resource": record1, "context": harness_context}) == set()
	{"alice", "bob"} - subject_search({"subject": alice, "action": {"name": "read"}, "resource": record1}) == set()
}

test_s2_resource_search_alice_reads if {
	"record-1" in resource_search({"subject": alice, "action": {"name": "read"}, "resource": {"type": "record"}})
	"record-1" in resource_search({"subject": alice, "action": {"name": "read"}, "resource": record1})
}

test_s3_action_search_alice_record_1 if {
	{"read", "write"} - action_search({"subject": alice, "resource": record1}) == set()
	{"read", "write"} - action_search({"subject": alice, "resource": record1, "context": harness_context}) == set()
}

test_s4_subject_search_write_archived_record_2 if {
	"bob" in subject_search({"subject": {"type": "user"}, "action": {"name": "write"}, "resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}}})
}

test_s5_resource_search_admin_bob_writes if {
	"record-2" in resource_search({"subject": {"type": "user", "id": "bob", "properties": {"role": "admin"}}, "action": {"name": "write"}, "resource": {"type": "record"}})
}

test_s6_action_search_admin_bob_archived_record_2 if {
	"write" in action_search({"subject": {"type": "user", "id": "bob", "properties": {"role": "admin"}}, "resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}}})
}

# C-4.6: an unknown subject id finds no action; an unknown type finds no subject.
test_empty_results if {
	action_search({"subject": {"type": "user", "id": "nonexistent-user"}, "resource": record1}) == set()
	subject_search({"subject": {"type": "spaceship"}, "action": {"name": "read"}, "resource": record1}) == set()
	resource_search({"subject": {"type": "user", "id": "nonexistent-user"}, "action": {"name": "read"}, "resource": {"type": "record"}}) == set()
}
