"""SRU (1.1, 1.2, 2.0) server for partner libraries: explain, searchRetrieve and scan over the
catalogue, with live availability from the circulation engine (README: "SRU")."""
