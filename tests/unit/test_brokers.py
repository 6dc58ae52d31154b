"""harness/brokers.py: the forensics registry, CeleryRabbit against a fake RabbitMQ management
API (the real one is exercised by the container tests and the scenarios), and the servers'
versions each broker's forensics read."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis

from harness.backends import REGISTRY, celery_rabbitmq, redisbroker
from harness.backends.celery_rabbitmq import CeleryRabbitForensics as CeleryRabbit
from harness.backends.celery_rabbitmq import attribute_unacked
from harness.backends.celery_redis import CeleryRedisForensics as CeleryRedis
from harness.matrix import Settings
from harness.topology import load

QUEUE = "/api/queues/%2F/chaos"


def test_every_backend_has_forensics_reading_its_published_port() -> None:
    assert isinstance(REGISTRY["celery-rabbitmq"].forensics(15672), CeleryRabbit)
    assert isinstance(REGISTRY["celery-redis"].forensics(16379), CeleryRedis)
    topology = load({})
    rabbitmq = topology.broker("celery-rabbitmq")
    assert rabbitmq is not None
    # World builds the forensics on the broker's first published port: the management API.
    assert rabbitmq.ports[0].container_port == 15672


@dataclass
class FakeRabbit:
    """The parts of RabbitMQ's management API that CeleryRabbit uses, with their status codes."""

    vhost: bool = True
    listener: bool = True
    overview: Any = None
    queue: dict[str, Any] | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    auth: set[str] = field(default_factory=set)

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        self.requests.append((method, path, body))
        url = urlsplit(path)
        query = parse_qs(url.query)
        if method == "GET" and url.path == "/api/vhosts/%2F":
            return (200, {"name": "/"}) if self.vhost else (404, {"error": "Object Not Found"})
        if method == "GET" and url.path == "/api/overview":
            return (200, self.overview) if self.overview else (503, {"error": "starting"})
        if method == "GET" and url.path == "/api/health/checks/port-listener/5672":
            return (200, {"status": "ok"}) if self.listener else (503, {"status": "failed"})
        if method == "GET" and url.path == "/api/queues/%2F":
            if query != {"disable_stats": ["true"], "enable_queue_totals": ["true"]}:
                return 400, {"error": "only the queue totals are fresh enough"}
            other = {"name": "celery@w1.celery.pidbox", "messages_ready": 9}
            return 200, [other] + ([self.queue] if self.queue else [])
        if url.path.startswith(QUEUE) and self.queue is None:
            return 404, {"error": "Object Not Found"}
        if method == "DELETE" and url.path == QUEUE:
            if query.get("if-unused") == ["true"] and (self.queue or {}).get("type") == "quorum":
                return 400, {"error": "bad_request", "reason": "not supported by quorum queues"}
            self.queue = None
            return 204, None
        if method == "DELETE" and url.path == QUEUE + "/contents":
            self.messages.clear()
            return 204, None
        if method == "POST" and url.path == QUEUE + "/get":
            return 200, self.messages[: body["count"]]
        return 405, {"error": "unexpected"}


@pytest.fixture
def fake() -> Iterator[tuple[FakeRabbit, CeleryRabbit]]:
    state = FakeRabbit()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            state.auth.add(self.headers.get("Authorization", ""))
            status, payload = state.handle(self.command, self.path, body)
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_DELETE = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    broker = CeleryRabbit(server.server_address[1])
    try:
        yield state, broker
    finally:
        broker.close()
        server.shutdown()
        server.server_close()


def message(task: str, correlation_only: bool = False) -> dict[str, Any]:
    properties: dict[str, Any] = {"correlation_id": task, "delivery_mode": 2}
    if not correlation_only:
        properties["headers"] = {"id": task, "task": "chaos.work"}
    return {"properties": properties, "payload": "[]", "redelivered": False}


def test_ready_needs_the_vhost_and_the_amqp_listener(fake: tuple[FakeRabbit, CeleryRabbit]) -> None:
    state, broker = fake
    assert broker.ready()
    state.listener = False
    assert not broker.ready()
    state.listener, state.vhost = True, False
    assert not broker.ready()
    expected = "Basic " + base64.b64encode(b"guest:guest").decode()
    assert state.auth == {expected}


def test_nothing_answering_is_not_ready_and_not_empty() -> None:
    broker = CeleryRabbit(1)  # nothing listens on port 1
    assert not broker.ready()
    assert not broker.empty()
    broker.close()


def test_empty_counts_ready_and_unacknowledged(fake: tuple[FakeRabbit, CeleryRabbit]) -> None:
    state, broker = fake
    assert broker.empty()  # no queue at all
    state.queue = {"name": "chaos", "type": "classic"}  # declared, no statistics yet
    assert not broker.empty()
    state.queue = {"name": "chaos", "messages_ready": 0, "messages_unacknowledged": 0}
    assert broker.empty()
    state.queue["messages_unacknowledged"] = 1
    assert not broker.empty()
    state.queue.update(messages_ready=2, messages_unacknowledged=0)
    assert not broker.empty()


def test_reset_with_no_client_running_deletes_the_queue(
    fake: tuple[FakeRabbit, CeleryRabbit],
) -> None:
    state, broker = fake
    state.queue = {"name": "chaos", "type": "quorum"}
    broker.reset(idle=True)
    assert state.queue is None
    # Unconditionally: quorum queues refuse an if-unused delete.
    assert state.requests[-1][:2] == ("DELETE", QUEUE)
    broker.reset(idle=True)  # an absent queue is fine too
    broker.reset()


def test_reset_with_clients_running_purges_the_queue(
    fake: tuple[FakeRabbit, CeleryRabbit],
) -> None:
    state, broker = fake
    state.queue = {"name": "chaos", "type": "classic"}
    state.messages = [message("a"), message("b")]
    broker.reset()
    assert state.queue is not None
    assert state.messages == []
    assert state.requests[-1][:2] == ("DELETE", QUEUE + "/contents")


def test_holdings_map_ready_messages_and_count_the_unacknowledged(
    fake: tuple[FakeRabbit, CeleryRabbit],
) -> None:
    state, broker = fake
    settings = Settings()
    assert broker.holdings(settings) == {}
    assert broker.unmapped_unacked == 0
    state.queue = {"name": "chaos", "type": "quorum", "messages_ready": 2,
                   "messages_unacknowledged": 3}
    state.messages = [message("t1"), message("t2", correlation_only=True)]
    held = broker.holdings(settings)
    assert set(held) == {"t1", "t2"}
    assert held["t1"] == "queued (ready) in quorum queue 'chaos': waiting for a consumer"
    assert broker.unmapped_unacked == 3
    method, path, body = state.requests[-1]
    assert (method, path) == ("POST", QUEUE + "/get")
    # Every ready message is read, and put back: requeued, not consumed.
    assert body["ackmode"] == "ack_requeue_true"
    assert body["count"] >= 2


def test_unacked_deliveries_hold_every_unaccounted_task_when_they_are_as_many() -> None:
    held = attribute_unacked(["t1", "t2"], 2)
    assert set(held) == {"t1", "t2"}
    assert "inferred: the queue counted 2 unacknowledged messages" in held["t1"]
    assert set(attribute_unacked(["t1"], 3)) == {"t1"}


def test_unacked_deliveries_fewer_than_unaccounted_tasks_attribute_none() -> None:
    assert attribute_unacked(["t1", "t2", "t3"], 2) == {}
    assert attribute_unacked(["t1"], 0) == {}
    assert attribute_unacked([], 4) == {}


# -- the servers' versions ----------------------------------------------------------------------

OVERVIEW = {"management_version": "3.10.8", "rabbitmq_version": "3.10.8",
            "erlang_version": "25.2.3", "erlang_full_version": "Erlang/OTP 25 [erts-13.1.5]",
            "product_name": "RabbitMQ", "node": "rabbit@localhost"}


def test_rabbitmq_and_erlang_versions_are_read_from_the_overview(
    fake: tuple[FakeRabbit, CeleryRabbit],
) -> None:
    state, broker = fake
    assert broker.server_versions() == {}  # not answering yet: best effort, no exception
    state.overview = OVERVIEW
    assert broker.server_versions() == {"rabbitmq-server": "3.10.8", "erlang": "25.2.3"}


@pytest.mark.parametrize(("overview", "expected"), [
    (OVERVIEW, {"rabbitmq-server": "3.10.8", "erlang": "25.2.3"}),
    ({"rabbitmq_version": "3.13.7"}, {"rabbitmq-server": "3.13.7"}),
    ({}, {}), ([], {}), ("<html>", {}),
])
def test_the_overview_parse_keeps_only_what_it_says(overview: Any,
                                                    expected: dict[str, str]) -> None:
    assert celery_rabbitmq.server_versions(overview) == expected


def test_a_rabbitmq_that_does_not_answer_has_no_versions() -> None:
    broker = CeleryRabbit(1)  # nothing listens on port 1
    assert broker.server_versions() == {}
    broker.close()


@pytest.mark.parametrize(("info", "expected"), [
    ({"redis_version": "7.0.15", "redis_mode": "standalone", "os": "Linux"},
     {"redis-server": "7.0.15"}),
    # Valkey says it is Redis 7.2.4 (the Redis it is compatible with): its own version names it.
    ({"redis_version": "7.2.4", "server_name": "valkey", "valkey_version": "8.0.1"},
     {"valkey-server": "8.0.1"}),
    ({"redis_version": "7.2.4", "valkey_version": "8.1.0"}, {"valkey-server": "8.1.0"}),
    ({}, {}),
])
def test_redis_and_valkey_versions_from_info_server(info: dict[str, Any],
                                                    expected: dict[str, str]) -> None:
    assert redisbroker.server_versions(info) == expected


def test_redis_forensics_ask_info_server_and_survive_a_dead_broker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker = CeleryRedis(1)  # nothing listens on port 1
    assert broker.server_versions() == {}
    asked: list[str] = []

    def info(section: str) -> dict[str, Any]:
        asked.append(section)
        return {"redis_version": "7.0.15"}

    monkeypatch.setattr(broker.client, "info", info)
    assert broker.server_versions() == {"redis-server": "7.0.15"}
    assert asked == ["server"]

    def stalled(section: str) -> dict[str, Any]:
        raise redis.TimeoutError("Timeout reading from socket")

    monkeypatch.setattr(broker.client, "info", stalled)
    assert broker.server_versions() == {}
    broker.close()


def test_a_backend_without_a_broker_has_no_server_versions() -> None:
    assert REGISTRY["fastapi"].forensics(1).server_versions() == {}
