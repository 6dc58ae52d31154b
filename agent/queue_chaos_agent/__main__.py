"""``queue-chaos-agent worker | producer | check``: the one entry point of every backend image.

Configured by environment variables (queue_chaos_agent.config), all checked before anything
else runs. ``check`` is what the harness runs right after building an image: it loads the app
exactly as ``worker`` and ``producer`` will and exits non-zero with one line naming what is
wrong and what would be valid, so a scenario never starts against an app that cannot be measured.
"""

from __future__ import annotations

import argparse
import logging.config
import sys
from dataclasses import dataclass
from typing import Any

from queue_chaos_agent import target, versions
from queue_chaos_agent.config import Config, ConfigError, from_env

COMMANDS = ("worker", "producer", "check")
# What the agent's own failures exit with (2, like a usage error): the harness tells them apart
# from a worker that ran and died.
EXIT_UNUSABLE = 2


@dataclass
class Prepared:
    """The team's app, loaded, checked and (when asked) pointed at the harness's broker."""

    config: Config
    app: Any  # a Celery app, an arq WorkerSettings class, an RQ or a Dramatiq settings class
    queue: str


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="queue-chaos-agent", description=__doc__)
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("--host", default="0.0.0.0", help="producer: address to serve on")
    parser.add_argument("--port", type=int, default=8000, help="producer: port to serve on")
    return parser.parse_args(argv)


def prepare(config: Config) -> Prepared:
    """Version first (read from metadata, before their code or the library is imported), then
    their app, then what the configuration asks of it."""
    if config.kind == "celery":
        versions.require("celery", versions.version_of("celery"), *versions.CELERY)
        from queue_chaos_agent import celery

        app = target.load(config.app, "a Celery app", celery.is_app)
        if config.broker_url is not None:
            celery.redirect(app, config.broker_url)
        celery.check(app, config)
        return Prepared(config, app, config.queue or celery.default_queue(app))
    if config.kind == "rq":
        versions.require("rq", versions.version_of("rq"), *versions.RQ)
        from queue_chaos_agent import rq

        settings = target.load(config.app, "an RQ settings class", rq.is_settings)
        rq.check(settings, config)
        return Prepared(config, settings, config.queue or rq.queue_name(settings))
    if config.kind == "dramatiq":
        versions.require("dramatiq", versions.version_of("dramatiq"), *versions.DRAMATIQ)
        from queue_chaos_agent import dramatiq

        settings = target.load(config.app, "a Dramatiq settings class", dramatiq.is_settings)
        dramatiq.check(settings, config)
        return Prepared(config, settings, config.queue or dramatiq.queue_name(settings))
    versions.require("arq", versions.version_of("arq"), *versions.ARQ)
    from queue_chaos_agent import arq

    settings = target.load(config.app, "an arq WorkerSettings class", arq.is_settings)
    arq.check(settings, config)
    return Prepared(config, settings, config.queue or arq.queue_name(settings))


def run_worker(prepared: Prepared) -> None:
    """The worker, in this process, with the team's own configuration plus the agent."""
    config = prepared.config
    if config.kind == "celery":
        from queue_chaos_agent import celery

        celery.instrument(prepared.app, prepared.queue, config.task,
                          ledger_dir=config.ledger_dir, idempotent=config.idempotent,
                          bare=config.bare)
        prepared.app.worker_main(["worker", *config.worker_args])
        return
    if config.kind == "rq":
        from queue_chaos_agent import rq

        rq.run_worker(prepared.app, prepared.queue, broker_url=config.broker_url,
                      ledger_dir=config.ledger_dir, idempotent=config.idempotent,
                      bare=config.bare)
        return
    if config.kind == "dramatiq":
        from queue_chaos_agent import dramatiq

        dramatiq.run_worker(prepared.app, prepared.queue, broker_url=config.broker_url,
                            ledger_dir=config.ledger_dir, idempotent=config.idempotent,
                            bare=config.bare)
        return
    from arq.logs import default_log_config
    from arq.worker import run_worker as arq_run_worker

    from queue_chaos_agent import arq

    settings = arq.instrument(prepared.app, prepared.queue, config.task,
                              broker_url=config.broker_url, ledger_dir=config.ledger_dir,
                              idempotent=config.idempotent, bare=config.bare)
    logging.config.dictConfig(default_log_config(verbose=False))  # as arq's own CLI logs
    arq_run_worker(settings)


def run_producer(prepared: Prepared, host: str, port: int) -> None:
    from queue_chaos_agent import producer

    config = prepared.config
    if config.kind == "celery":
        api = producer.celery_api(prepared.app, config, prepared.queue)
    elif config.kind == "rq":
        api = producer.rq_api(prepared.app, config, prepared.queue)
    elif config.kind == "dramatiq":
        api = producer.dramatiq_api(prepared.app, config, prepared.queue)
    else:
        from queue_chaos_agent import arq

        api = producer.arq_api(arq.redis_settings(prepared.app, config.broker_url), config,
                               prepared.queue)
    producer.serve(api, host, port)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = from_env()
        prepared = prepare(config)
    except (ConfigError, target.TargetError, versions.UnsupportedVersion) as exc:
        print(f"queue-chaos-agent {args.command}: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    if args.command == "check":
        measured = config.task or "the probe task"
        print(f"queue-chaos-agent check: ok: {config.kind} app {config.app}, {measured} on "
              f"queue {prepared.queue!r}")
        return 0
    if args.command == "worker":
        run_worker(prepared)
    else:
        run_producer(prepared, args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
