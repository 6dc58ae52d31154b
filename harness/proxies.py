"""Toxiproxy control, through toxiproxy-python with a thin wrapper around it.

Why a wrapper: toxiproxy-python 0.1.1 (the current release, from 2017) keeps the API address in
class attributes of ``APIConsumer`` and calls ``requests`` with no timeout, so a Toxiproxy that
accepts a connection and never answers would hang the harness forever. It also has no call for
Toxiproxy's ``POST /reset``. The wrapper points the library at our published port, gives every
call a timeout (by wrapping APIConsumer's three verbs once, at import), and adds reset and the
server's version. Proxies, toxics, enable and disable are the library's own.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

import requests
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.proxy import Proxy

from harness.topology import ProxySpec

API_TIMEOUT_S = 5.0
# What a Toxiproxy says its version is when none was stamped into it at build time (its
# release builds set it with -ldflags; `go install`, as the local image is built, does not).
UNVERSIONED = "git"
# The main module's line in a Go binary's embedded build information (`go version -m`).
_MAIN_MODULE = re.compile(rb"\nmod\t(?P<path>\S*toxiproxy\S*)\t(?P<version>v[^\s]+)")


def _bounded(verb: Callable[..., requests.Response]) -> Callable[..., requests.Response]:
    @functools.wraps(verb)
    def call(url: str, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", API_TIMEOUT_S)
        return verb(url, *args, **kwargs)

    return call


for _verb in ("get", "post", "delete"):
    setattr(APIConsumer, _verb, classmethod(_bounded(getattr(APIConsumer, _verb).__func__)))


class ToxiproxyControl:
    """One Toxiproxy server's API, every call bounded."""

    def __init__(self, host: str, port: int) -> None:
        self.server = Toxiproxy()
        self.server.update_api_consumer(host, port)
        self.url = f"http://{host}:{port}"

    @retry(
        stop=stop_after_delay(30),
        wait=wait_fixed(0.2),
        retry=retry_if_exception_type(requests.RequestException),
        reraise=True,
    )
    def wait_ready(self, expected: Iterable[ProxySpec]) -> None:
        """Until the API answers and lists every proxy of the topology (from its -config)."""
        have = self.server.proxies()
        missing = {p.name for p in expected} - set(have)
        if missing:
            raise requests.ConnectionError(f"Toxiproxy has not loaded proxies {sorted(missing)}")

    def server_versions(self, binary: Callable[[], bytes] | None = None) -> dict[str, str]:
        """{"toxiproxy": version} as the running server answers ``GET /version``; best effort,
        {} when it does not answer. A server that does not know its version (``git``) is read
        from the Go build information in its binary, which ``binary`` returns (the bytes of the
        running container's executable, b"" when they cannot be read): the module version it
        was built from."""
        try:
            response = requests.get(f"{self.url}/version", timeout=API_TIMEOUT_S)
            response.raise_for_status()
        except requests.RequestException:
            return {}
        said = parse_version(response.text)
        if said == UNVERSIONED and binary is not None:
            said = build_version(binary()) or said
        return {"toxiproxy": said} if said else {}

    def reset(self) -> None:
        """Enable every proxy and remove every toxic (Toxiproxy's POST /reset)."""
        APIConsumer.post("/reset").raise_for_status()

    def proxy(self, name: str) -> Proxy:
        found = self.server.get_proxy(name)
        if found is None:
            raise LookupError(f"Toxiproxy has no proxy {name!r}")
        return found

    def cut(self, name: str) -> None:
        """Disable the proxy: open connections are closed, new ones refused."""
        self.proxy(name).disable()

    def heal(self, name: str) -> None:
        self.proxy(name).enable()

    def blackhole(self, name: str) -> None:
        """Silence the link both ways (timeout toxic, timeout=0): Toxiproxy drops every byte
        while it lasts and closes nothing; removing the toxic (``clear``) closes the
        connections it held (the toxic's cleanup, toxics/timeout.go in Toxiproxy 2.12), so a
        healed blackhole ends like a link reset after a silent stall."""
        proxy = self.proxy(name)
        for stream in ("upstream", "downstream"):
            proxy.add_toxic(name=f"blackhole_{stream}", type="timeout", stream=stream,
                            attributes={"timeout": 0})

    def slow(self, name: str, latency_ms: int, jitter_ms: int) -> None:
        proxy = self.proxy(name)
        for stream in ("upstream", "downstream"):
            proxy.add_toxic(name=f"latency_{stream}", type="latency", stream=stream,
                            attributes={"latency": latency_ms, "jitter": jitter_ms})

    def clear(self, name: str) -> None:
        """Heal one proxy: enabled, no toxics."""
        proxy = self.proxy(name)
        for toxic in proxy.toxics():
            proxy.destroy_toxic(toxic)
        proxy.enable()


def parse_version(body: str) -> str | None:
    """The version in a ``GET /version`` answer: JSON ``{"version": ...}`` since Toxiproxy 2.6,
    plain text before."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip() or None
    if isinstance(data, dict):
        version = data.get("version")
        return str(version) if version else None
    return str(data) if data else None


def build_version(binary: bytes) -> str | None:
    """The Toxiproxy module version a Go binary was built from (its build information's main
    module line, as ``go version -m`` shows it), without the leading v: v2.12.0 -> 2.12.0."""
    found = _MAIN_MODULE.search(binary)
    return found.group("version").decode(errors="replace").removeprefix("v") if found else None
