"""The circulation and hold engine: the library's rules R1-R15 in one place, behind every
channel (SIP2, staff CLI, SRU/Z39.50 availability, ILL)."""
