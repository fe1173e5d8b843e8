"""The one exception type users see: a clear, actionable message instead of a deep traceback."""


class W2SError(Exception):
    """A user-facing error: the message names the bad value and how to fix it.

    ``main.py`` prints it as a single ``error: ...`` line and exits with status 2.
    """


def w2s_error_in(exc: BaseException) -> W2SError | None:
    """The W2SError that caused ``exc`` (itself, or one in its cause/context chain), if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, W2SError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None
