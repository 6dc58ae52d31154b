"""harness/proxies.py: Toxiproxy's version, from its API or, for a build that does not know it,
from the Go build information in its binary (against a fake API; the real one is exercised by
the container tests)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from harness.proxies import UNVERSIONED, ToxiproxyControl, build_version, parse_version

# What `go version -m` reads from a binary built by `go install .../cmd/server@v2.12.0`.
BUILD_INFO = (b"\x00go1.26.8\npath\tgithub.com/Shopify/toxiproxy/v2/cmd/server\n"
              b"mod\tgithub.com/Shopify/toxiproxy/v2\tv2.12.0\th1:d1x++lYZg=\n"
              b"dep\tgithub.com/beorn7/perks\tv1.0.1\th1:VlbKK=\n")


@pytest.mark.parametrize(("body", "expected"), [
    ('{"version": "2.12.0"}\n', "2.12.0"),  # since 2.6: JSON
    ("2.5.0", "2.5.0"),  # before: plain text
    ('{"version": "git"}\n', UNVERSIONED),
    ("", None), ("{}", None),
])
def test_the_version_answer_is_json_or_plain_text(body: str, expected: str | None) -> None:
    assert parse_version(body) == expected


def test_the_build_information_names_the_module_version() -> None:
    assert build_version(b"\x7fELF..." + BUILD_INFO + b"...") == "2.12.0"
    assert build_version(b"") is None
    assert build_version(b"\nmod\texample.com/other\tv1.0.0\t\n") is None


@pytest.fixture
def api() -> Iterator[tuple[list[str], ToxiproxyControl]]:
    """A Toxiproxy API whose ``GET /version`` answers the body at the head of the list."""
    answers: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = answers[0].encode() if self.path == "/version" and answers else b""
            self.send_response(200 if data else 404)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield answers, ToxiproxyControl("127.0.0.1", server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_a_released_toxiproxy_says_its_version_and_its_binary_is_not_read(
    api: tuple[list[str], ToxiproxyControl],
) -> None:
    answers, control = api
    answers.append('{"version": "2.12.0"}\n')
    read: list[bool] = []

    def binary() -> bytes:
        read.append(True)
        return BUILD_INFO

    assert control.server_versions(binary) == {"toxiproxy": "2.12.0"}
    assert not read


def test_a_build_that_says_git_is_read_from_its_binary(
    api: tuple[list[str], ToxiproxyControl],
) -> None:
    answers, control = api
    answers.append('{"version": "git"}\n')
    assert control.server_versions(lambda: BUILD_INFO) == {"toxiproxy": "2.12.0"}
    # A binary that cannot be read (or has no build information): the API's word stands.
    assert control.server_versions(lambda: b"") == {"toxiproxy": UNVERSIONED}


def test_a_toxiproxy_that_does_not_answer_has_no_version(
    api: tuple[list[str], ToxiproxyControl],
) -> None:
    _, control = api
    assert control.server_versions() == {}  # 404
    assert ToxiproxyControl("127.0.0.1", 1).server_versions() == {}  # nothing listens
