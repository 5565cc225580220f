"""The batch load pipeline: frame, prepare (in worker processes), match, store, report.

`marc` reads and maps the records; this package decides what happens to them in the store
(load, overlay, leave unchanged, reject) and writes through `gateway.catalogue.repository`.
"""
