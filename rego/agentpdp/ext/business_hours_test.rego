package agentpdp.ext_test

import data.agentpdp.ext

# support-resolver: 09:00 to 17:30, Monday to Friday, at UTC+1.
# night-owl: 22:00 to 23:00 on Mondays, at UTC-5.
hours := {
	"support-resolver": {"from": "09:00", "until": "17:30", "utc_offset_minutes": 60},
	"night-owl": {"from": "22:00", "until": "23:00", "weekdays": ["Monday"], "utc_offset_minutes": -300},
	"midnight": {"from": "00:00", "until": "01:00", "weekdays": ["Monday"], "utc_offset_minutes": 60},
	"typo": {"from": "9am", "until": "17:30"},
}

at(agent, now_ns) := {"agent_id": agent, "time": {"now_ns": now_ns}}

outside(agent, now_ns) if {
	{d.code | some d in ext.deny} == {"outside_business_hours"} with input as at(agent, now_ns)
		with ext.business_hours as hours
}

inside(agent, now_ns) if {
	count(ext.deny) == 0 with input as at(agent, now_ns)
		with ext.business_hours as hours
}

# Each case: [agent, now_ns, UTC instant, whether it is within the agent's hours].
cases := [
	["support-resolver", 1767600000000000000, "Mon 2026-01-05 08:00:00Z = 09:00 local: the first minute", true],
	["support-resolver", 1767600000123000000, "Mon 08:00:00.123Z: milliseconds are kept", true],
	["support-resolver", 1767599999000000000, "Mon 07:59:59Z = 08:59:59 local", false],
	["support-resolver", 1767630599000000000, "Mon 16:29:59Z = 17:29:59 local: the last second", true],
	["support-resolver", 1767630600000000000, "Mon 16:30:00Z = 17:30 local: until is exclusive", false],
	["support-resolver", 1768039200000000000, "Sat 2026-01-10 10:00Z: not a default weekday", false],
	["midnight", 1767569400000000000, "Sun 2026-01-04 23:30Z = Mon 00:30 local: the local weekday counts", true],
	["night-owl", 1767664800000000000, "Tue 2026-01-06 02:00Z = Mon 21:00 at UTC-5", false],
	["night-owl", 1767668400000000000, "Tue 03:00Z = Mon 22:00 at UTC-5", true],
	["typo", 1767600000000000000, "a malformed entry denies its agent", false],
]

case_failures contains c if {
	some c in cases
	[agent, now_ns, _, within] := c
	within == true
	not inside(agent, now_ns)
}

case_failures contains c if {
	some c in cases
	[agent, now_ns, _, within] := c
	within == false
	not outside(agent, now_ns)
}

test_business_hours_cases if {
	count(cases) == 10
	count(case_failures) == 0
}

test_the_message_says_the_window if {
	ext.deny == {{
		"code": "outside_business_hours",
		"message": "agent support-resolver may get tokens only from 09:00 to 17:30 on Monday, Tuesday, Wednesday, Thursday, Friday (local time = UTC +60 minutes)",
	}} with input as at("support-resolver", 1768039200000000000)
		with ext.business_hours as hours

	ext.deny == {{
		"code": "outside_business_hours",
		"message": "agent night-owl may get tokens only from 22:00 to 23:00 on Monday (local time = UTC -300 minutes)",
	}} with input as at("night-owl", 1767664800000000000)
		with ext.business_hours as hours
}

test_an_agent_not_listed_is_never_denied if {
	count(ext.deny) == 0 with input as at("code-review-agent", 1768039200000000000)
		with ext.business_hours as hours
}

test_a_listed_agent_without_a_time_is_denied if {
	ext.deny == {{
		"code": "outside_business_hours",
		"message": "the input carries no time (input.time.now_ns), so business hours cannot be checked",
	}} with input as {"agent_id": "support-resolver"}
		with ext.business_hours as hours

	{d.code | some d in ext.deny} == {"outside_business_hours"} with input as {"agent_id": "support-resolver", "time": {"now_ns": "1767600000000000000"}}
		with ext.business_hours as hours
}

test_the_shipped_configuration_lists_no_agent if {
	ext.business_hours == {}
	count(ext.deny) == 0 with input as at("support-resolver", 1768039200000000000)
}

test_the_missing_time_alone_denies_nobody_unlisted if {
	count(ext.deny) == 0 with input as {"agent_id": "code-review-agent"}
		with ext.business_hours as hours
}
