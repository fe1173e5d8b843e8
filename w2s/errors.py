"""The one exception type users see: a clear, actionable message instead of a deep traceback."""


class W2SError(Exception):
    """A user-facing error: the message names the bad value and how to fix it.

    ``main.py`` prints it as a single ``error: ...`` line and exits with status 2.
    """
