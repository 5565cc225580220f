"""SIP2 (3M SIP 2.00) front-end for self-check machines and desk terminals: the wire format
(`spec`, `codec`, `framing`), the per-connection session and its logins (`session`,
`accounts`), one handler per message asking the circulation engine (`handlers`),
and the Twisted listener (`server`)."""
