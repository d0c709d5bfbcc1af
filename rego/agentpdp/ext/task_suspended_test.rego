package agentpdp.ext_test

import data.agentpdp.ext

suspended := {"code": "task_suspended", "message": "the task is suspended; no token is issued until it is resumed"}

test_suspended_task_is_denied if {
	ext.deny == {suspended} with input as {"task": {"context": {"suspended": true}}}
}

test_active_task_is_not_denied if {
	count(ext.deny) == 0 with input as {"task": {"context": {"suspended": false}}}
}

test_only_the_boolean_true_suspends if {
	count(ext.deny) == 0 with input as {"task": {"context": {"suspended": "true"}}}
}

test_missing_context_is_not_denied if {
	count(ext.deny) == 0 with input as {"agent_id": "a"}
}
