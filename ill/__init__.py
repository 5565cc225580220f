"""ISO 18626 (2017, v1.2) interlibrary loan front-end: the XML codec (`wire`, `reading`,
`writing`, no I/O), the HTTP resource that takes partners' messages and answers each with its
confirmation (`resource`, `handler`), and the sender that posts our queued messages to partners
(`sender`). Decisions are the circulation engine's (gateway/circulation/ill*)."""
