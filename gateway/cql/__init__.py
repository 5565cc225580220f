"""CQL (Contextual Query Language) 1.2: parse to an AST, translate to our query model."""
