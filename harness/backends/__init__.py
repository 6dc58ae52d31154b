"""The backend registry: every backend the harness can measure, once, in run order.

Adding a backend is one module here (its ``Backend`` subclass: knobs, claims, forensics,
explanations, configurations), one folder ``backends/<image>/`` for what runs inside its image,
its services under a compose profile of its name, and one line below.
"""

from __future__ import annotations

from harness.backend import Backend, Configuration
from harness.backends import (
    arq,
    arq_sentinel,
    celery_rabbitmq,
    celery_rabbitmq_cluster,
    celery_redis,
    celery_redis_sentinel,
    dramatiq_rabbitmq,
    dramatiq_redis,
    fastapi,
    rq,
)

REGISTRY: dict[str, Backend] = {
    b.name: b
    for b in (celery_redis.BACKEND, celery_rabbitmq.BACKEND, arq.BACKEND, rq.BACKEND,
              dramatiq_redis.BACKEND, dramatiq_rabbitmq.BACKEND, fastapi.BACKEND,
              # The cluster profile (matrix_profile "clusters"): not in the default matrix.
              celery_rabbitmq_cluster.BACKEND, celery_redis_sentinel.BACKEND,
              arq_sentinel.BACKEND)
}


class UnknownBackend(ValueError):
    """A backend name the registry does not hold."""


def backend(name: str) -> Backend:
    if name not in REGISTRY:
        raise UnknownBackend(f"unknown backend {name!r}; valid: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def for_target(kind: str, broker: str | None) -> Backend:
    """The backend a target file's ``kind`` and ``broker`` name."""
    for b in REGISTRY.values():
        if (b.kind, b.broker) == (kind, broker):
            return b
    valid = ", ".join(f"{b.kind} on {b.broker}" for b in REGISTRY.values() if b.broker)
    raise UnknownBackend(f"no backend runs kind {kind!r} on broker {broker!r}; valid: {valid}")


def configurations() -> dict[str, Configuration]:
    """Every built-in configuration by name, backends in registry order."""
    found: dict[str, Configuration] = {}
    for b in REGISTRY.values():
        for c in b.configurations:
            if c.name in found:
                raise ValueError(f"configuration {c.name} is defined twice")
            found[c.name] = c
    return found


def images() -> tuple[str, ...]:
    """The backend images to build (backends/<image>/), each once."""
    return tuple(dict.fromkeys(b.image for b in REGISTRY.values()))
