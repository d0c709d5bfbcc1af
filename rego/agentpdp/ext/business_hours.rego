# Example extension: deny an agent tokens outside its business hours.
#
# Harmless by default: it fires only for the agents listed in `business_hours`
# below, which ships empty. To use it, list agents here and rebuild the bundle
# (`make bundle`), for example:
#
#   business_hours := {"support-resolver": {
#   	"from": "09:00", # local time, inclusive (required)
#   	"until": "17:30", # local time, exclusive, later than "from" (required)
#   	"weekdays": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"], # the default
#   	"utc_offset_minutes": 60, # local time is UTC plus this; default 0
#   }}
#
# The offset is fixed (no daylight saving: change it and rebuild, or list UTC
# hours). A window cannot cross midnight. The time is the decision's, from
# input.time.now_ns: the PDP reads its clock once per decision and the decision
# event records the input, time included, so `opa eval` replays it. A listed
# agent is denied when the input carries no time, and a malformed entry denies
# its agent: this rule fails closed.
package agentpdp.ext

business_hours := {}

deny contains {"code": "outside_business_hours", "message": msg} if {
	hours := business_hours[input.agent_id]
	business_hours_time_given
	not business_hours_within(hours, input.time.now_ns)
	msg := business_hours_message(hours)
}

deny contains {
	"code": "outside_business_hours",
	"message": "the input carries no time (input.time.now_ns), so business hours cannot be checked",
} if {
	business_hours[input.agent_id]
	not business_hours_time_given
}

# A rule, not `not is_number(input.time.now_ns)` inline: OPA hoists the argument out of
# the negation, so the inline form is undefined, not true, when input.time is missing.
business_hours_time_given if is_number(input.time.now_ns)

# Monday to Friday, as time.weekday names them.
business_hours_default_weekdays := ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]

business_hours_weekdays(hours) := object.get(hours, "weekdays", business_hours_default_weekdays)

business_hours_offset(hours) := object.get(hours, "utc_offset_minutes", 0)

business_hours_within(hours, now_ns) if {
	offset := business_hours_offset(hours)
	is_number(offset)
	local := business_hours_local(now_ns, offset)
	local.weekday in business_hours_weekdays(hours)
	business_hours_minute(hours.from) <= local.minute
	local.minute < business_hours_minute(hours.until)
}

# The local weekday and minute of the day at `now_ns` (Unix nanoseconds) and a
# fixed offset from UTC, by arithmetic: the WebAssembly target has no time.date,
# time.clock or time.weekday. Day 0 of the Unix epoch, 1970-01-01, was a Thursday.
business_hours_local(now_ns, offset_minutes) := {"weekday": weekday, "minute": minute} if {
	seconds := floor(now_ns / 1000000000) + (offset_minutes * 60)
	day := floor(seconds / 86400)
	weekday := ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"][(day + 4) % 7]
	minute := floor((seconds - (day * 86400)) / 60)
}

# "HH:MM" -> minutes since midnight; undefined (so the agent is denied) when malformed.
business_hours_minute(hhmm) := (to_number(hh) * 60) + to_number(mm) if {
	[hh, mm] := split(hhmm, ":")
}

# Never undefined: a message that cannot be built must not stop the deny.
business_hours_message(hours) := msg if {
	msg := sprintf("agent %s may get tokens only from %s to %s on %s (local time = UTC %s minutes)", [
		input.agent_id,
		hours.from,
		hours.until,
		concat(", ", business_hours_weekdays(hours)),
		business_hours_signed(business_hours_offset(hours)),
	])
} else := sprintf("agent %s is outside its business hours", [input.agent_id])

business_hours_signed(n) := sprintf("+%d", [n]) if n >= 0

business_hours_signed(n) := sprintf("%d", [n]) if n < 0
