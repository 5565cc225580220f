"""What the HTTP resource hands a partner's message to: the engine's ILL service satisfies
this (the composition root wires it). Each method runs in a thread of the ILL pool, may block
on the store, and answers with the confirmation to send back: OK, or ERROR with the errorType
the engine decided (UnrecognisedDataValue for an unknown agency or request id, and so on).
Messages that cannot be read never reach it: the resource answers those itself."""

from __future__ import annotations

from typing import Protocol

from gateway.circulation.ill_types import (
    Confirmation,
    Request,
    RequestingAgencyMessage,
    SupplyingAgencyMessage,
)


class IllHandler(Protocol):
    def on_request(self, request: Request) -> Confirmation:
        """A partner asks us to supply (we are the lender)."""
        ...

    def on_supplying_agency_message(self, message: SupplyingAgencyMessage) -> Confirmation:
        """A lender tells us a status of one of our requests (we are the borrower)."""
        ...

    def on_requesting_agency_message(self, message: RequestingAgencyMessage) -> Confirmation:
        """A borrower asks us to act on a request we supply (we are the lender)."""
        ...


__all__ = ["IllHandler"]
