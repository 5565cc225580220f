"""Object identifiers libgate's Z39.50 target and origin use (Z39.50 Maintenance Agency registry,
1.2.840.10003 = {iso member-body US ANSI-standard-Z39.50}), as dotted strings: asn1tools
reads and writes OBJECT IDENTIFIER values in that form."""

from __future__ import annotations

Z3950 = "1.2.840.10003"

# Attribute sets (3.x)
BIB1 = f"{Z3950}.3.1"

# Diagnostic sets (4.x)
DIAG_BIB1 = f"{Z3950}.4.1"

# Record syntaxes (5.x)
UNIMARC = f"{Z3950}.5.1"
USMARC = f"{Z3950}.5.10"  # MARC 21
SUTRS = f"{Z3950}.5.101"
OPAC = f"{Z3950}.5.102"
GRS1 = f"{Z3950}.5.105"
XML_TEXT = f"{Z3950}.5.109.10"  # text/xml
XML_APPLICATION = f"{Z3950}.5.109.3"  # application/xml: same bytes, another label

# Negotiation records (15.x)
CHARSET_NEGOTIATION_3 = f"{Z3950}.15.3"

# ISO 10646 transfer syntax ("form") OIDs used inside charset negotiation: 1.0.10646.1.0.form
ISO10646_UTF8 = "1.0.10646.1.0.8"
ISO10646_UCS2 = "1.0.10646.1.0.2"
ISO10646_UCS4 = "1.0.10646.1.0.4"
ISO10646_UTF16 = "1.0.10646.1.0.5"

# Short names for logs and addinfo (what yaz-client prints).
SYNTAX_NAMES: dict[str, str] = {
    UNIMARC: "UNIMARC",
    USMARC: "USMARC",
    SUTRS: "SUTRS",
    OPAC: "OPAC",
    GRS1: "GRS-1",
    XML_TEXT: "XML",
    XML_APPLICATION: "XML",
}


def name_of(oid: str | None) -> str:
    if oid is None:
        return "-"
    return SYNTAX_NAMES.get(oid, oid)
