"""What "available" means for search limits and availability displays. One place.

`归还` ("returned") is the library's word for a copy on the shelf; the circulation engine
will refine availability (trapped holds, loans) on top of this.
"""

AVAILABLE_STATUSES: tuple[str, ...] = ("归还",)
