"""``python -m harness images`` builds (or finds) every image; ``reap`` removes orphans."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from harness import containers, images


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness")
    parser.add_argument("command", choices=("images", "reap"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        engine = containers.client()
        if args.command == "images":
            started = time.monotonic()
            variables, _ = images.provision(engine, os.environ.get("CHAOS_IMAGES", "local"))
            print(f"images ready in {time.monotonic() - started:.1f}s; for docker compose:")
            for name, value in variables.items():
                print(f"export {name}={value}")
        else:
            print(f"reaped {containers.reap_orphans(engine)} objects of dead harness runs")
    except (containers.EngineUnavailable, images.ProvisionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
