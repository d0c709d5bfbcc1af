# The fixture's directory (scenario C-1.1 to C-1.3): who and what this pack knows by id, with the properties it
# applies when a request names them without properties. The AuthZEN router enumerates it for the search APIs.
package authzen.certification

# alice has no properties in the scenario's table; the role `editor` is this pack's own way of letting her write
# live records (C-1.4 rules 2 and 4: alice may write record-1, bob may not). bob's `admin` is the scenario's.
subjects := [
	{"type": "user", "id": "alice", "properties": {"role": "editor"}},
	{"type": "user", "id": "bob", "properties": {"role": "admin"}},
]

resources := [
	{"type": "record", "id": "record-1", "properties": {"status": "active"}},
	{"type": "record", "id": "record-2", "properties": {"status": "archived"}},
]

actions := [{"name": "read"}, {"name": "write"}, {"name": "delete"}]

# Entrypoint authzen/certification/entities: the catalog. Input ignored.
entities := {"subjects": subjects, "resources": resources, "actions": actions}
