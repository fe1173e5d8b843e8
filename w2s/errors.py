"""The one exception type users see: a clear, actionable message instead of a deep traceback."""

import numbers
import operator
from collections.abc import Callable
from typing import Any


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


_COMPARISONS = {">=": (operator.ge, "≥"), "<=": (operator.le, "≤"), ">": (operator.gt, ">"),
                "<": (operator.lt, "<")}
_INTEGERS = {">= 1": "a positive integer", "> 0": "a positive integer", ">= 0": "a non-negative integer"}


def parse_rule(rule: str) -> tuple[Callable[[Any], bool], str]:
    """A range rule as (its test of a value, the rule in words).

    A rule is a comparison with a number (``">= 1"``, ``"> 0"``) or an interval (``"[0, 1)"``, ``"(0, 1]"``); a
    comparison may start with ``"int "`` (``"int >= 1"``) to ask for an integer rather than any real number.
    """
    text = rule.strip()
    integer = text.startswith("int ")
    text = text.removeprefix("int ").strip()
    kind = numbers.Integral if integer else numbers.Real
    if len(text) > 2 and text[0] in "[(" and text[-1] in "])" and not integer:
        low, high = (float(bound) for bound in text[1:-1].split(","))
        above = operator.ge if text[0] == "[" else operator.gt
        below = operator.le if text[-1] == "]" else operator.lt
        checks, words = [(above, low), (below, high)], f"in {text}"
    else:
        op = next((op for op in _COMPARISONS if text.startswith(op)), None)
        if op is None:
            raise ValueError(f"unknown range rule {rule!r}")
        compare, symbol = _COMPARISONS[op]
        bound = text[len(op):].strip()
        checks, words = [(compare, float(bound))], f"{symbol} {bound}"
        if integer:
            words = _INTEGERS.get(text, f"an integer {words}")

    def test(value: Any) -> bool:
        return (isinstance(value, kind) and not isinstance(value, bool)
                and all(compare(value, bound) for compare, bound in checks))

    return test, words


def check_ranges(owner: str, **checks: tuple[Any, str]) -> None:
    """Raise a W2SError naming the first argument out of its range; ``None`` values (unset options) pass.

    ``check_ranges("NeuralTrustFunction", width=(width, "int >= 1"), dropout=(dropout, "[0, 1)"))``
    """
    for name, (value, rule) in checks.items():
        if value is None:
            continue
        test, words = parse_rule(rule)
        if not test(value):
            raise W2SError(f"{owner}.{name} must be {words} (got {value!r})")
