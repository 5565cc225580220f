"""Why a record cannot be loaded, in words a cataloger understands."""


class RecordRejected(Exception):
    """A record that cannot be loaded. `reason` is shown in the report and the rejects log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
