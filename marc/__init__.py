"""MARC for libgate: ISO 2709 framing and parsing, character sets, CNMARC/UNIMARC and MARC21
field maps, holdings profiles, writers, and the batch load pipeline.

This package knows MARC, not sockets or SQL: the loader talks to storage only through
`gateway.catalogue.repository`.
"""
