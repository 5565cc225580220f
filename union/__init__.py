"""Union search: one search across the partner libraries' catalogues (SRU and Z39.50 clients),
records normalised through marc/, merged into works with every holding library, ranked, and
handed to interlibrary loan (issue 16)."""
