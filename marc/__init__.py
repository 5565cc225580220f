"""MARC for libgate, and nothing else: ISO 2709 framing and parsing, character sets,
CNMARC/UNIMARC and MARC21 field maps into the types this package owns (`BibRecord`,
`ItemData`), holdings profiles, and writers.

This is the bottom layer: it imports nothing of ours (no gateway, no front-end), knows no SQL
and no sockets. The batch load pipeline that stores records is `gateway.catalogue.loading`.
"""
