"""The one family of user errors: the command prints `error: <message>` and exits 2.

Every error a user can fix (a missing file, a damaged export, a bad setting) is a `LabError`
whose message says what is wrong and what to do; the owner of each format raises its own kind.
"""


class LabError(ValueError):
    """Bad input or a run that cannot go on; the message is the whole story."""


class StoreError(LabError):
    """An activation store that cannot be used as asked."""


class SAEError(LabError):
    """An SAE or transcoder export (or a training run) that is missing, damaged, or does not fit
    what it is used with."""
