"""The settings of the wrong-PIN back-off, as the policy holds them (see pin_guard.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.networks import Networks

ADDRESS_FACTOR = 5  # one address may fail this many times more, over all readers, than on one


@dataclass(frozen=True)
class PinBackoff:
    """The back-off's settings ([sip2] pin_failures_before_backoff, pin_backoff_max_seconds;
    [circulation] pin_forgiveness_seconds, pin_trusted_networks)."""

    threshold: int = 3
    cap_seconds: int = 900
    forgiveness_seconds: int = 3600
    trusted_networks: tuple[str, ...] = ()
    # Parsed once from `trusted_networks` (validated with the config), not at every PIN check.
    _trusted: Networks = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_trusted", Networks(self.trusted_networks))

    def trusts(self, address: str) -> bool:
        return address in self._trusted

    def delay_seconds(self, failures: int, threshold: int) -> int:
        """How long after the last of `failures` failures the next check must wait."""
        threshold = max(1, threshold)
        if failures < threshold:
            return 0
        exponent = min(failures - threshold + 1, 30)  # 2**30 s is past any cap
        return int(min(self.cap_seconds, 2**exponent))
