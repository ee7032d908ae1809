"""The one exception type for user errors: scripts print `error: <message>` and exit 2."""


class SAEError(ValueError):
    """Bad input (store, flags, checkpoint) or a run that cannot go on; the message says what to do."""
