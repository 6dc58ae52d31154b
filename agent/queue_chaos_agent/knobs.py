"""Environment knobs, checked when an adapter starts so a bad value fails loudly and early.

Standard library only: part of the agent wheel installed in every backend image.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def flag(name: str, default: str = "false", env: Mapping[str, str] | None = None) -> bool:
    value = (os.environ if env is None else env).get(name, default).strip().lower()
    if value not in ("true", "false"):
        raise ValueError(f"{name}={value!r}: expected true or false")
    return value == "true"


def number(name: str, default: str, minimum: int = 0) -> int:
    value = os.environ.get(name, default)
    try:
        parsed = int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r}: expected a whole number") from None
    if parsed < minimum:
        raise ValueError(f"{name}={value!r}: expected a number >= {minimum}")
    return parsed


def choice(name: str, options: tuple[str, ...], default: str) -> str:
    value = os.environ.get(name, default).strip().lower()
    if value not in options:
        raise ValueError(f"{name}={value!r}: expected one of {', '.join(options)}")
    return value
