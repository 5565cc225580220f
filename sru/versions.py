"""SRU versions we speak (1.1, 1.2, 2.0), their namespaces, and version negotiation.

The namespaces are emitted exactly as YAZ and the specifications write them: clients match on
them literally (1.x: the ZING SRW namespace for every response; 2.0: OASIS namespaces, with scan
in its own).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SRW_NS = "http://www.loc.gov/zing/srw/"
SRW_DIAGNOSTIC_NS = "http://www.loc.gov/zing/srw/diagnostic/"
SRU2_RESPONSE_NS = "http://docs.oasis-open.org/ns/search-ws/sruResponse"
SRU2_SCAN_NS = "http://docs.oasis-open.org/ns/search-ws/scan"
SRU2_DIAGNOSTIC_NS = "http://docs.oasis-open.org/ns/search-ws/diagnostic"


@dataclass(frozen=True)
class Version:
    text: str  # as written in <version>
    response_ns: str  # searchRetrieveResponse, explainResponse
    scan_ns: str  # scanResponse
    diagnostic_ns: str

    @property
    def is_2(self) -> bool:
        return self.text == "2.0"


V1_1 = Version("1.1", SRW_NS, SRW_NS, SRW_DIAGNOSTIC_NS)
V1_2 = Version("1.2", SRW_NS, SRW_NS, SRW_DIAGNOSTIC_NS)
V2_0 = Version("2.0", SRU2_RESPONSE_NS, SRU2_SCAN_NS, SRU2_DIAGNOSTIC_NS)
SUPPORTED: tuple[Version, ...] = (V1_1, V1_2, V2_0)
HIGHEST = V2_0
LOWEST = V1_1

_VERSION_TEXT = re.compile(r"^(\d{1,3})\.(\d{1,3})$")


def negotiate(requested: str | None) -> tuple[Version, bool]:
    """The version to answer in, and whether the request's version is acceptable.

    SRU's rule: the client's version says it wants a response "less than, or preferably equal
    to" it. So 1.5 is answered as 1.2 and 3.0 as 2.0; a version below 1.1, or one that is not a
    version number, cannot be answered (diagnostic 5, in our lowest or highest version). A
    request without `version` is an SRU 2.0 request (OASIS dropped the parameter).
    """
    if requested is None:
        return V2_0, True
    match = _VERSION_TEXT.match(requested.strip())
    if not match:
        return HIGHEST, False
    wanted = (int(match.group(1)), int(match.group(2)))
    acceptable = [v for v in SUPPORTED if _number(v) <= wanted]
    if not acceptable:
        return LOWEST, False
    return acceptable[-1], True


def _number(version: Version) -> tuple[int, int]:
    major, minor = version.text.split(".")
    return int(major), int(minor)
