"""SRU (1.1, 1.2, 2.0) front-end for partner libraries. Arrives with the SRU issue."""
