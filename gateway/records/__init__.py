"""Records as the protocols send them: the schemas we offer (MARCXML, marcxchange, Dublin Core,
OPAC XML, holdings) and their XML, built once for SRU and Z39.50 alike."""
