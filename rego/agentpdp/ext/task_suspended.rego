# Example extension: deny while the task is suspended.
#
# Harmless by default: it fires only when the registered task context says
# "suspended": true (exactly the boolean, not the string "true").
package agentpdp.ext

deny contains {
	"code": "task_suspended",
	"message": "the task is suspended; no token is issued until it is resumed",
} if {
	input.task.context.suspended == true
}
