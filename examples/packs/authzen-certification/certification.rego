# Entrypoint authzen/certification/decision: the input is an AuthZEN Access Evaluation request
# ({subject, action, resource, context?}); the value is {"decision": true|false}, with a reason in "context" when
# it is false. It is defined for every input: anything this policy does not allow is a false decision.
#
# The policy (it implements the eight decisions of scenario C-1.4, and nothing in it depends on `context`):
#   - a subject's properties are its directory entry's (entities.rego) with the request's over them, key by key;
#     the same for a resource. A subject is recognised when the directory knows it or the request gives it a role;
#     a resource when the directory knows it or the request gives it a status. Anything else is denied.
#   - read: any recognised subject, any recognised resource.
#   - write: an editor on a record that is not archived; an admin on an archived one (admins keep the archive,
#     editors the live records: bob, an admin, may not write record-1, rule 4).
#   - delete: only a soft delete (action property soft = true), by whoever may write the record. A hard delete, or
#     a delete that does not say, is denied.
package authzen.certification

# The directory entries of the request's subject and resource, by type and id: one, or none.
subject_entries := [s | some s in subjects; s.type == input.subject.type; s.id == input.subject.id]

resource_entries := [r | some r in resources; r.type == input.resource.type; r.id == input.resource.id]

# The directory's properties with the request's over them, key by key (the request wins).
subject_properties := object.union({k: v | some e in subject_entries; some k, v in e.properties}, request_properties("subject"))

resource_properties := object.union({k: v | some e in resource_entries; some k, v in e.properties}, request_properties("resource"))

action_properties := request_properties("action")

# The `properties` of input[key] when it is an object; {} when absent or anything else.
request_properties(key) := p if {
	p := input[key].properties
	is_object(p)
} else := {}

recognised_subject if count(subject_entries) > 0

recognised_subject if is_string(subject_properties.role)

recognised_resource if count(resource_entries) > 0

recognised_resource if is_string(resource_properties.status)

archived if resource_properties.status == "archived"

may_write if {
	not archived
	subject_properties.role == "editor"
}

may_write if {
	archived
	subject_properties.role == "admin"
}

default allowed := false

allowed if {
	recognised_subject
	recognised_resource
	input.action.name == "read"
}

allowed if {
	recognised_subject
	recognised_resource
	input.action.name == "write"
	may_write
}

allowed if {
	recognised_subject
	recognised_resource
	input.action.name == "delete"
	action_properties.soft == true
	may_write
}

# Why a request is denied, first match wins (for the response's context; the decision does not depend on it).
default reason := "the policy does not allow this action"

reason := "unknown subject: not in the directory and no role given" if {
	not recognised_subject
} else := "unknown resource: not in the directory and no status given" if {
	not recognised_resource
} else := "unknown action" if {
	not input.action.name in {"read", "write", "delete"}
} else := "only a soft delete (action property soft = true) is allowed" if {
	input.action.name == "delete"
	not action_properties.soft == true
} else := "archived records are written by admins only" if {
	input.action.name in {"write", "delete"}
	archived
} else := "live records are written by editors only" if {
	input.action.name in {"write", "delete"}
}

decision := {"decision": true} if {
	allowed
} else := {"decision": false, "context": {"reason_admin": {"en": reason}}}
