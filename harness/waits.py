"""Bounded waiting: poll an observable condition until it holds or a deadline passes.

Every wait in the harness goes through ``until``: there is no unbounded loop and no sleep standing
in for a condition that can be observed. On timeout the error says what was awaited, for how long,
and the last thing seen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """A bounded wait ran out."""


def until(
    probe: Callable[[], T | None],
    *,
    what: str,
    timeout_s: float,
    interval_s: float = 0.1,
    describe: Callable[[], str] | None = None,
) -> T:
    """Call ``probe`` until it returns something other than None/False; return that.

    Exceptions from ``probe`` propagate: a probe that can fail transiently catches its own.
    """
    retrying = Retrying(
        stop=stop_after_delay(timeout_s),
        wait=wait_fixed(interval_s),
        retry=retry_if_result(lambda value: value is None or value is False),
    )
    try:
        result = retrying(probe)
    except RetryError as exc:
        seen = f"; last seen: {describe()}" if describe else ""
        raise WaitTimeout(f"gave up after {timeout_s:.0f}s waiting for {what}{seen}") from exc
    assert result is not None
    return result
