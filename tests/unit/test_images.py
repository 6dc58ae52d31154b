"""harness/images.py's RabbitMQ root filesystem: what its mmdebstrap hooks write and what the
imported image runs as (the build itself is exercised by `make images`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness import images
from harness.backends import images as registry_images


def test_hooks_write_the_plugin_and_config_files(tmp_path: Path) -> None:
    (tmp_path / "etc" / "rabbitmq").mkdir(parents=True)
    for hook in images.rabbitmq_hooks():
        # mmdebstrap runs each customize hook with sh, the root filesystem's path as $1.
        subprocess.run(["sh", "-c", hook, "hook", str(tmp_path)], check=True)
    etc = tmp_path / "etc" / "rabbitmq"
    assert (etc / "enabled_plugins").read_text() == "[rabbitmq_management].\n"
    assert (etc / "rabbitmq.conf").read_text() == "loopback_users.guest = false\n"


def test_the_image_runs_rabbitmq_as_its_own_user_with_its_own_scripts_first() -> None:
    changes = images.RABBITMQ_CHANGES
    assert "USER rabbitmq" in changes
    assert 'CMD ["rabbitmq-server"]' in changes
    (env,) = [c for c in changes if c.startswith("ENV ")]
    assert "HOME=/var/lib/rabbitmq" in env
    assert "PATH=/usr/lib/rabbitmq/bin:" in env  # not Debian's /usr/sbin wrapper
    assert images.RABBITMQ_PACKAGES == ("rabbitmq-server",)


def test_the_base_image_is_untouched() -> None:
    assert images.BASE_PACKAGES == ("python3", "python3-venv", "redis-server", "procps")
    # Celery on RabbitMQ reuses celery
    assert registry_images() == ("celery", "arq", "rq", "dramatiq", "fastapi")


def test_stale_images_are_earlier_versions_and_never_the_current_one() -> None:
    stale = images.stale
    listed = [
        ("base-old", ["queue-chaos/debian-base:1"], "2026-01-01"),
        ("base-now", ["queue-chaos/debian-base:2"], "2026-02-01"),
        ("shop-old", ["queue-chaos/target-shop:a"], "2026-01-05"),
        ("shop-new", ["queue-chaos/target-shop:b"], "2026-01-06"),
        ("theirs", ["redis:7"], "2025-01-01"),
        ("shared", ["queue-chaos/celery:x", "mine:latest"], "2025-01-01"),
        ("untagged", [], "2025-01-01"),
    ]
    doomed = stale(listed, keep={"queue-chaos/debian-base:2"}, prefix="queue-chaos/")
    assert doomed == ["base-old", "shop-old"]
    assert stale(listed, keep=(), prefix="other/") == []


DEB822 = """Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
"""


def test_another_suite_swaps_the_suites_and_keeps_the_mirror() -> None:
    swapped = images.suite_sources(DEB822, "bookworm", "trixie")
    assert "Suites: trixie trixie-updates" in swapped
    assert "Suites: trixie-security" in swapped
    assert swapped.count("http://deb.debian.org/debian") == 2
    assert images.suite_sources(DEB822, "bookworm", "bookworm") == DEB822


def test_one_line_sources_swap_the_suite_after_the_uri_and_options() -> None:
    text = ("deb http://m/debian bookworm main\n"
            "deb [signed-by=/k.gpg arch=amd64] http://m/bookworm-mirror bookworm-updates main\n")
    assert images.suite_sources(text, "bookworm", "trixie") == (
        "deb http://m/debian trixie main\n"
        "deb [signed-by=/k.gpg arch=amd64] http://m/bookworm-mirror trixie-updates main\n")
