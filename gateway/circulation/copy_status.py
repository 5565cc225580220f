"""The words a copy may be given from outside the engine (a copy CSV), and when its status is
the engine's alone.

A status word the engine does not know makes a copy that can never be lent (R2 asks for the
on-shelf word exactly), and an unknown item type escapes the [[item_types]] rules; so an
import checks both against the configuration, reads the configured synonyms (`在架` → `归还`)
as the words they stand for, and names the known words when it refuses one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.circulation import storage
from gateway.config import ON_SHELF_SYNONYMS, Settings
from gateway.store import Transaction

SHOWN_SYNONYMS = 6  # synonyms named in a refusal; the rest are in the config


class UnknownWord(ValueError):
    """A value that is neither a known word nor a synonym; str() names the known words."""


@dataclass(frozen=True)
class Vocabulary:
    """One closed set of words (status words, or item types) and their synonyms."""

    what: str  # "status", "item type"
    words: tuple[str, ...]  # in the order a refusal lists them
    synonyms: Mapping[str, str]  # other word -> one of `words`
    config_key: str  # where synonyms are configured, for the refusal's hint

    def word(self, given: str) -> str:
        """Our word for `given` (itself, or what its synonym stands for); raises
        `UnknownWord`. Compared as written, then ignoring case (`Lost` is `lost`)."""
        if given in self.words:
            return given
        if given in self.synonyms:
            return self.synonyms[given]
        folded = given.lower()
        for word in self.words:
            if word.lower() == folded:
                return word
        for synonym, word in self.synonyms.items():
            if synonym.lower() == folded:
                return word
        shown = list(self.synonyms.items())[:SHOWN_SYNONYMS]
        synonyms = "; synonyms: " + ", ".join(f"{s} → {w}" for s, w in shown) if shown else ""
        raise UnknownWord(
            f"{self.what} {given} is not a known {self.what}; known: {', '.join(self.words)}"
            f"{synonyms} (another word for one of these goes in {self.config_key})"
        )


@dataclass(frozen=True)
class CopyWords:
    """The status words and item types a copy may carry, with their synonyms."""

    statuses: Vocabulary
    item_types: Vocabulary
    # Words only circulation gives (a checkout, a trap for a hold): a copy imported with one
    # would say "on loan" or "on the hold shelf" with no loan or hold behind it.
    engine_only: frozenset[str] = frozenset()

    def settable(self, word: str) -> str | None:
        """Why an import may not give a copy this status word, or None."""
        if word in self.engine_only:
            return (
                f"status {word} is given by circulation only (a checkout, or a copy trapped for"
                " a hold): import the copy on the shelf and lend it at the desk"
            )
        return None

    @classmethod
    def from_settings(cls, settings: Settings) -> CopyWords:
        circulation = settings.circulation
        words = circulation.status_words()
        folded = {w.lower() for w in words}
        on_shelf = {
            synonym: circulation.on_shelf_status
            for synonym in ON_SHELF_SYNONYMS
            if synonym.lower() not in folded
        }
        return cls(
            statuses=Vocabulary(
                what="status",
                words=words,
                synonyms={**on_shelf, **circulation.status_synonyms},
                config_key="[circulation] status_synonyms",
            ),
            item_types=Vocabulary(
                what="item type",
                words=tuple(t.name for t in settings.item_types),
                synonyms={w: t.name for t in settings.item_types for w in t.synonyms},
                config_key="[[item_types]] synonyms",
            ),
            engine_only=frozenset((circulation.on_loan_status, circulation.on_hold_shelf_status)),
        )


def status_held_by_engine(tx: Transaction, item_pk: int) -> str | None:
    """Why only the engine may change this copy's status now ("on loan", "on the hold shelf
    for a reader"), or None. Checking in or cancelling is what changes it."""
    if storage.open_loan_of_copy(tx, item_pk) is not None:
        return "on loan"
    if storage.ready_hold_of_copy(tx, item_pk) is not None:
        return "on the hold shelf for a reader"
    return None
