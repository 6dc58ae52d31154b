"""Library versions: which are installed (for the ready record) and which the agent supports.

Read through ``importlib.metadata``, never by importing the libraries: the record names what the
image really holds, and a check can refuse a version before the library's own code runs.
"""

from __future__ import annotations

import re
from importlib import metadata

# The distributions whose versions decide what a scenario measures.
DISTRIBUTIONS = ("celery", "kombu", "billiard", "amqp", "redis", "arq", "rq", "dramatiq",
                 "pika", "fastapi", "starlette", "uvicorn", "pydantic")
# The versions the agent can instrument, (minimum, below). Celery: 5.2 is where the signals,
# worker_main(argv) and the settings read took the shape relied on. arq: 0.25 is where job_try
# in ctx, Function and the settings read did (tested on 0.28). A next major may change them.
CELERY = ((5, 2), (6,))
ARQ = ((0, 25), (1,))
# RQ: 2.0 is where StartedJobRegistry entries became executions (job id:execution id), the
# intermediate queue and the cleanup's retry of abandoned jobs took the shape relied on (tested
# on 2.12).
RQ = ((2, 0), (3,))
# Dramatiq: tested on 2.2.1 (Worker, Message, CurrentMessage and the brokers' constructor
# arguments as relied on); a next major may change them.
DRAMATIQ = ((2, 0), (3,))


class UnsupportedVersion(RuntimeError):
    """The library is installed in a version the agent cannot instrument."""


def installed(distributions: tuple[str, ...] = DISTRIBUTIONS) -> dict[str, str]:
    """{distribution: version} of those installed."""
    found: dict[str, str] = {}
    for name in distributions:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def parse(version: str) -> tuple[int, ...]:
    """The leading release numbers of a version string: '5.7.0rc1' -> (5, 7, 0)."""
    numbers = re.match(r"\d+(?:\.\d+)*", version.strip())
    return tuple(int(n) for n in numbers.group(0).split(".")) if numbers else ()


def require(name: str, found: str | None, minimum: tuple[int, ...],
            below: tuple[int, ...]) -> None:
    """Raise UnsupportedVersion naming the version found and the versions supported."""
    supported = f">= {'.'.join(map(str, minimum))}, < {'.'.join(map(str, below))}"
    if found is None:
        raise UnsupportedVersion(f"{name} is not installed in this environment "
                                 f"(the agent supports {name} {supported})")
    if not minimum <= parse(found) < below:
        raise UnsupportedVersion(f"{name} {found} cannot be instrumented: the agent supports "
                                 f"{name} {supported}")


def version_of(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
