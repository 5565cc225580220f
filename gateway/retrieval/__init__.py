"""The retrieval core SRU and Z39.50 share: search into a result set, page it, and retrieve
records with live availability. It is the seam between the protocol front-ends and the search
engine (`gateway.catalogue.search` today); a new engine is swapped in here, behind `Retrieval`.
"""

from gateway.retrieval.core import Retrieval, Retrieved
from gateway.retrieval.resultset import ResultSet

__all__ = ["ResultSet", "Retrieval", "Retrieved"]
