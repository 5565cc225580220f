"""SIP2 (3M SIP 2.00) front-end for self-check machines. Arrives with the SIP2 issue."""
