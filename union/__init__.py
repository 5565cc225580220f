"""Union search: libgate as a client of its partners' catalogues (Z39.50 and SRU). This step
holds the two clients; fan-out, merging and ranking build on them."""
