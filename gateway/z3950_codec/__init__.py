"""The Z39.50 wire codec, sans I/O, shared by the target (z3950/) and the origin (union/):
BER framing (`ber`), the ASN.1 module and its compiled schema (`schema`), the APDUs as
messages (`messages`), OIDs, the Bib-1 attribute and diagnostic tables, the origin's codec
(`origin`) and the query model as Bib-1 RPN (`from_query`)."""
