"""What the catalogue knows about a record and its copies, independent of MARC flavour.

The bibliographic data and the copies are the types the MARC maps produce (`marc` owns them;
they are re-exported here so the rest of gateway names one place). `MappedRecord` is what the
load pipeline stores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from marc.bibliographic import BIB_FIELD_NAMES, BibRecord, Name
from marc.errors import RecordWarning
from marc.holdings import ItemData

__all__ = ["BIB_FIELD_NAMES", "BibRecord", "ItemData", "MappedRecord", "Name"]


@dataclass(frozen=True, slots=True)
class MappedRecord:
    """A record ready to store: its bibliographic data, copies and canonical MARC bytes."""

    bib: BibRecord
    items: tuple[ItemData, ...]
    marc: bytes  # UTF-8 ISO 2709 as we store and export it
    format: str
    warnings: tuple[RecordWarning, ...] = field(default=())  # loaded, but something was wrong
    index: object | None = None  # indexes.IndexDocument, computed where the record is prepared
    bib_json: str | None = None  # bib.to_json(), computed where the record is prepared
