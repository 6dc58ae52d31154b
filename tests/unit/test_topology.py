"""harness/topology.py, and the check that the compose file and the harness agree.

The compose file is the one source of truth for what runs; the harness reads it rather than driving
``docker compose``. These tests load the real ``docker-compose.chaos.yml`` with the variables the
harness sets and check every assumption other modules make about it: one backend (profile) per
service, ports on 127.0.0.1 only, every client reaching its backend's broker only through its own
Toxiproxy proxy, and every knob a scenario turns actually reaching the backend's services.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from harness import world
from harness.backends import REGISTRY
from harness.backends import images as registry_images
from harness.matrix import BACKENDS, CONFIGURATIONS, PROFILES
from harness.paths import ROOT
from harness.topology import (
    COMPOSE_FILE,
    MANAGED,
    PROXY,
    ROLE,
    SERVICE_KEYS,
    Topology,
    TopologyError,
    load,
    port_variables,
    subnet_variables,
    substitute,
    variables_used,
)

TOXIPROXY_JSON = ROOT / "topology" / "toxiproxy.json"
ROLES = {"broker", "proxy", "producer", "worker", "app"}
TOXIPROXY_API_PORT = 8474  # what harness/proxies.py talks to through the published port

# -- substitute -------------------------------------------------------------------------------


def test_substitute_uses_defaults() -> None:
    assert substitute("${A:-one}", {}) == "one"
    assert substitute("${A:-}", {}) == ""
    assert substitute("x-${A:-a}-${B:-b}-y", {}) == "x-a-b-y"
    assert substitute("${A:-redis:7.2}", {}) == "redis:7.2"  # a default may hold a colon


def test_substitute_uses_set_values() -> None:
    assert substitute("${A}", {"A": "set"}) == "set"
    assert substitute("${A:-default}", {"A": "set"}) == "set"
    assert substitute("127.0.0.1:${P:-1}:${Q:-2}", {"P": "10", "Q": "20"}) == "127.0.0.1:10:20"
    assert substitute("${A}/${A}", {"A": "x"}) == "x/x"


def test_substitute_empty_value_takes_the_default() -> None:
    # compose's ``:-``: the default applies when the variable is unset *or* empty
    assert substitute("${A:-d}", {"A": ""}) == "d"


def test_substitute_leaves_plain_text_alone() -> None:
    text = 'celery@%h $HOME {"a": 1} $'
    assert substitute(text, {}) == text


def test_substitute_missing_variable_without_default_is_an_error() -> None:
    with pytest.raises(TopologyError, match="variable CHAOS_MISSING is not set and has no default"):
        substitute("image: ${CHAOS_MISSING}", {"OTHER": "x"})


# -- the real compose file --------------------------------------------------------------------

# Which image each backend's own services run (the registry names the backends/<dir>): one
# Celery image for both of Celery's brokers.
IMAGE_OF = {name: b.image for name, b in REGISTRY.items()}
# Which image variable each backend's broker runs (the local Redis image is the Debian base).
BROKER_IMAGE_OF = {"celery-redis": "CHAOS_REDIS_IMAGE", "celery-rabbitmq": "CHAOS_RABBITMQ_IMAGE",
                   "arq": "CHAOS_REDIS_IMAGE", "rq": "CHAOS_REDIS_IMAGE",
                   "dramatiq-redis": "CHAOS_REDIS_IMAGE",
                   "dramatiq-rabbitmq": "CHAOS_RABBITMQ_IMAGE",
                   "celery-rabbitmq-cluster": "CHAOS_RABBITMQ_IMAGE",
                   "celery-redis-sentinel": "CHAOS_REDIS_IMAGE",
                   "arq-sentinel": "CHAOS_REDIS_IMAGE"}
# Each broker's client port (the proxies' upstream) and the port the harness's forensics read,
# published on 127.0.0.1: Redis's own port for Redis; RabbitMQ's management HTTP API, while its
# AMQP port is reached only through the proxies.
BROKER_PORTS = {"celery-redis": (6379, 6379), "celery-rabbitmq": (5672, 15672),
                "arq": (6379, 6379), "rq": (6379, 6379), "dramatiq-redis": (6379, 6379),
                "dramatiq-rabbitmq": (5672, 15672),
                # a cluster's first node (World's forensics start there), reached directly
                "celery-rabbitmq-cluster": (5672, 15672), "celery-redis-sentinel": (6379, 6379),
                "arq-sentinel": (6379, 6379)}
BROKER_SCHEME = {"celery-redis": "redis", "celery-rabbitmq": "amqp", "arq": "redis", "rq": "redis",
                 "dramatiq-redis": "redis", "dramatiq-rabbitmq": "amqp",
                 "celery-rabbitmq-cluster": "amqp", "celery-redis-sentinel": "sentinel",
                 "arq-sentinel": "sentinel"}
# The clusters profile's backends: several broker-role services (nodes, Sentinels), reached by
# their clients directly (a failover list of URLs), not through Toxiproxy.
CLUSTERED = set(PROFILES["clusters"])
# Which adapter module reads the knobs a backend's task runners are given.
CELERY_SETTINGS = ROOT / "backends" / "celery" / "chaos_celery" / "settings.py"
DRAMATIQ_SETTINGS = ROOT / "backends" / "dramatiq" / "chaos_dramatiq" / "settings.py"
ADAPTER_SETTINGS = {
    "celery-redis": CELERY_SETTINGS,
    "celery-rabbitmq": CELERY_SETTINGS,
    "arq": ROOT / "backends" / "arq" / "chaos_arq" / "settings.py",
    "rq": ROOT / "backends" / "rq" / "chaos_rq" / "settings.py",
    "dramatiq-redis": DRAMATIQ_SETTINGS,
    "dramatiq-rabbitmq": DRAMATIQ_SETTINGS,
    "fastapi": ROOT / "backends" / "fastapi" / "chaos_fastapi" / "app.py",
    "celery-rabbitmq-cluster": CELERY_SETTINGS,
    "celery-redis-sentinel": CELERY_SETTINGS,
    "arq-sentinel": ROOT / "backends" / "arq" / "chaos_arq" / "settings.py",
}
# Adapter variables only a sentinel:// broker URL needs (the Celery settings refuse such a URL
# without it, and ignore it otherwise).
SENTINEL_ONLY = {"CHAOS_SENTINEL_MASTER"}
SCENARIO_PORTS = {name: 26001 + i for i, name in enumerate(sorted(port_variables()))}


def raw_compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


@pytest.fixture
def scenario_variables(tmp_path: Path) -> dict[str, str]:
    """Every variable set the way World and run_scenario set it, to non-default values."""
    ports = world.Ports(SCENARIO_PORTS)
    return {
        "CHAOS_REDIS_IMAGE": "test/redis:1",
        "CHAOS_RABBITMQ_IMAGE": "test/rabbitmq:1",
        "CHAOS_TOXIPROXY_IMAGE": "test/toxiproxy:1",
        **{f"CHAOS_{b.upper()}_IMAGE": f"test/{b}:1" for b in registry_images()},
        **ports.variables(),
        **CONFIGURATIONS["acks-late-prefetch-1"].env(),
        "CHAOS_VISIBILITY_TIMEOUT": "7",
        "CHAOS_RESTORE_INTERVAL": "3",
        "CHAOS_LEDGER_HOST_DIR": str(tmp_path / "ledger"),
        "CHAOS_WORKER_ARGS": "--pool prefork --concurrency 3",
        "CHAOS_REDIS_APPENDONLY": "yes",
    }


@pytest.fixture(params=["defaults", "scenario"])
def topology(request: pytest.FixtureRequest, scenario_variables: dict[str, str]) -> Topology:
    return load({} if request.param == "defaults" else scenario_variables)


def test_every_variable_the_harness_sets_is_used_by_the_compose_file(
    scenario_variables: dict[str, str],
) -> None:
    used = variables_used()
    assert set(scenario_variables) <= set(used), set(scenario_variables) - set(used)
    for config in CONFIGURATIONS.values():
        assert set(config.env()) <= set(used), (config.name, set(config.env()) - set(used))


def test_every_compose_variable_has_a_default() -> None:
    # ``docker compose up`` by hand works with nothing exported.
    missing = [name for name, default in variables_used().items() if default is None]
    assert missing == []


def test_backends_are_the_matrix_backends(topology: Topology) -> None:
    assert sorted(topology.backends) == sorted(BACKENDS)
    assert set(IMAGE_OF) == set(BACKENDS)
    assert sorted(set(IMAGE_OF.values())) == sorted(registry_images())
    assert IMAGE_OF["celery-rabbitmq"] == IMAGE_OF["celery-redis"] == "celery"


def test_every_service_but_toxiproxy_belongs_to_exactly_one_backend() -> None:
    for name, raw in raw_compose()["services"].items():
        if name == "toxiproxy":
            assert "profiles" not in raw, name  # shared by every backend
        else:
            assert len(raw.get("profiles") or []) == 1, name
            assert raw["profiles"][0] in BACKENDS, name
    topology = load({})
    assert topology.services["toxiproxy"].backend is None
    assert topology.services["toxiproxy"].profiles == []
    for service in topology.services.values():
        if service.name != "toxiproxy":
            assert service.profiles == [service.backend], service.name


def test_roles(topology: Topology) -> None:
    assert {s.role for s in topology.services.values()} == ROLES
    proxy = topology.one("proxy")  # exactly one, shared
    assert proxy.backend is None
    for backend in BACKENDS:
        own = topology.of_backend(backend)
        assert own, backend
        assert proxy not in own
        workers = topology.workers(backend)
        assert all(w.runs_tasks for w in workers)
        endpoint = topology.submission_endpoint(backend)
        assert endpoint.takes_submissions
        if backend == "fastapi":
            # BackgroundTasks: the app takes submissions and runs them; no broker, no producer.
            assert [s.role for s in own] == ["app"]
            assert workers == [endpoint]
            assert topology.broker(backend) is None
        else:
            assert len(workers) >= 2  # a fault on one worker leaves another to redeliver to
            assert {w.role for w in workers} == {"worker"}
            assert endpoint.role == "producer"
            broker = topology.broker(backend)
            assert broker is not None
            brokers = topology.brokers(backend)
            if backend in CLUSTERED:  # a cluster's nodes (and Sentinels): the first one first
                assert len(brokers) >= 3, backend
                assert brokers[0] == broker
            else:
                assert topology.one("broker", backend) == broker
                assert brokers == [broker]
            # brokers first: they start before their clients
            assert own[:len(brokers)] == brokers
            assert topology.one("producer", backend) == endpoint
    for service in topology.services.values():
        assert service.labels[MANAGED] == "true", service.name  # cleanup finds it by label
        if service.backend in CLUSTERED:
            assert service.network in topology.networks, service.name
        else:  # the shared network: Toxiproxy's and the single brokers'
            assert [a.network for a in service.attachments] == [topology.network], service.name


def test_runs_tasks_and_takes_submissions_follow_the_role(topology: Topology) -> None:
    for service in topology.services.values():
        assert service.runs_tasks == (service.role in ("worker", "app")), service.name
        assert service.takes_submissions == (service.role in ("producer", "app")), service.name


def test_networks_are_labelled_and_have_no_route_out(topology: Topology) -> None:
    assert topology.network == "chaos"  # the first: Toxiproxy's and the single brokers'
    for network in topology.networks.values():
        assert network.labels == {MANAGED: "true"}, network.name
        assert network.options == {
            "com.docker.network.bridge.enable_ip_masquerade": "false"
        }, network.name


def test_every_port_is_published_on_localhost_only(topology: Topology) -> None:
    published = [(s.name, p) for s in topology.services.values() for p in s.ports]
    assert published, "the harness needs the brokers, Toxiproxy API and producers published"
    for name, port in published:
        assert port.host_ip == "127.0.0.1", (name, port)
    host_ports = [p.host_port for _, p in published]
    assert len(host_ports) == len(set(host_ports))


def published_port_variables() -> dict[str, int]:
    """Each published port's host side, as written in the compose file: a variable's default."""
    found: dict[str, int] = {}
    for name, raw in raw_compose()["services"].items():
        for text in raw.get("ports") or []:
            match = re.fullmatch(r"127\.0\.0\.1:\$\{(CHAOS_[A-Z0-9_]+_PORT):-(\d+)\}:\d+", text)
            assert match, f"service {name}: port {text!r} is not 127.0.0.1:${{CHAOS_*_PORT:-N}}:N"
            assert match.group(1) not in found, f"{match.group(1)} publishes two ports"
            found[match.group(1)] = int(match.group(2))
    return found


def test_every_published_port_is_a_variable_with_a_distinct_default() -> None:
    found = published_port_variables()
    assert "CHAOS_TOXIPROXY_PORT" in found
    assert len(set(found.values())) == len(found), found
    assert port_variables() == found


def test_ports_come_from_the_compose_files_port_variables() -> None:
    assert world.Ports.from_env({}).values == port_variables()
    ports = world.Ports.from_env({"CHAOS_FASTAPI_PORT": "25000", "UNRELATED": "x"})
    assert ports.values == {**port_variables(), "CHAOS_FASTAPI_PORT": 25000}
    assert ports.variables() == {k: str(v) for k, v in ports.values.items()}


def test_workers_publish_nothing(topology: Topology) -> None:
    workers = topology.by_role("worker")
    assert workers
    for worker in workers:
        assert worker.ports == [], worker.name


def test_published_ports_are_the_ones_the_harness_talks_to(
    scenario_variables: dict[str, str],
) -> None:
    topology = load(scenario_variables)
    ports = world.Ports.from_env(scenario_variables)
    assert ports.values == SCENARIO_PORTS
    proxy = topology.one("proxy")
    assert [p.host_port for p in proxy.ports] == [ports.values["CHAOS_TOXIPROXY_PORT"]]
    assert [p.container_port for p in proxy.ports] == [TOXIPROXY_API_PORT]
    assert proxy.command is not None and "-host=0.0.0.0" in proxy.command
    published = {p.host_port for s in topology.services.values() for p in s.ports}
    assert published == set(ports.values.values())
    for backend in BACKENDS:
        # World reads the broker (or, with none, the app) and submits on their first port.
        endpoint = topology.submission_endpoint(backend)
        assert len(endpoint.ports) == 1, endpoint.name
        assert endpoint.command is not None
        port = endpoint.command[endpoint.command.index("--port") + 1]
        assert endpoint.ports[0].container_port == int(port), endpoint.name
        broker = topology.broker(backend)
        if broker is not None:
            # World's forensics read the broker on its one published port.
            assert len(broker.ports) == 1, broker.name
            client_port, forensics_port = BROKER_PORTS[backend]
            assert broker.ports[0].container_port == forensics_port, broker.name
            assert broker.command is not None and "--port" not in broker.command
            if client_port != forensics_port:  # reached by clients only through the proxies
                assert client_port not in {p.container_port for p in broker.ports}
            # World's forensics read each node of a cluster on its one published port too.
            for node in topology.brokers(backend):
                assert len(node.ports) == 1, node.name


def test_toxiproxy_config_is_the_repo_file_mounted_read_only(topology: Topology) -> None:
    proxy = topology.one("proxy")
    assert proxy.command is not None
    (flag,) = [a for a in proxy.command if a.startswith("-config=")]
    (mount,) = [m for m in proxy.mounts if m.target == flag.split("=", 1)[1]]
    assert mount.source == TOXIPROXY_JSON
    assert mount.read_only
    raw = json.loads(TOXIPROXY_JSON.read_text())
    assert {p["name"]: (p["listen"], p["upstream"]) for p in raw} == {
        name: (spec.listen, spec.upstream) for name, spec in topology.proxies.items()
    }
    assert all(p.get("enabled", True) for p in raw)  # a fault disables them, not the config


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def test_every_proxy_leads_to_a_broker(topology: Topology) -> None:
    brokers = {s.name: s for s in topology.by_role("broker")}
    assert topology.proxies
    listens = []
    for spec in topology.proxies.values():
        host, port = _host_port(spec.upstream)
        assert host in brokers, spec
        backend = brokers[host].backend
        assert backend is not None
        assert port == BROKER_PORTS[backend][0], spec
        listen_host, listen_port = _host_port(spec.listen)
        assert listen_host == "0.0.0.0", spec  # reachable from the other containers
        listens.append(listen_port)
    assert len(listens) == len(set(listens))
    assert TOXIPROXY_API_PORT not in listens


def test_every_proxy_has_exactly_one_client(topology: Topology) -> None:
    users = [s.proxy for s in topology.services.values() if s.proxy is not None]
    # One proxy per client: a fault can cut one of them without touching the others.
    assert len(users) == len(set(users))
    assert set(users) == set(topology.proxies)
    for service in topology.services.values():
        if service.role in ("broker", "proxy", "app"):
            assert PROXY not in service.labels, service.name


@pytest.mark.parametrize("backend", BACKENDS)
def test_clients_reach_their_broker_only_through_their_own_proxy(
    topology: Topology, backend: str,
) -> None:
    proxy_service = topology.one("proxy")
    every_broker = [s.name for s in topology.by_role("broker")]
    broker = topology.broker(backend)
    clients = [s for s in topology.of_backend(backend) if s.role in ("worker", "producer", "app")]
    assert clients
    if backend in CLUSTERED:
        own_brokers = topology.brokers(backend)
        names = {s.name for s in own_brokers} | {a for s in own_brokers
                                                  for at in s.attachments for a in at.aliases}
        others = [name for name in every_broker if name not in names]
        for client in clients:
            # A failover list straight to its own cluster's nodes: no proxy, no other broker.
            assert client.proxy is None, client.name
            urls = [urlsplit(u) for u in client.environment["CHAOS_BROKER_URL"].split(";")]
            assert len(urls) >= 2, client.name
            for url in urls:
                assert url.scheme == BROKER_SCHEME[backend], client.name
                assert url.hostname in names, (client.name, url.hostname)
            for value in [*client.environment.values(), *(client.command or [])]:
                assert "toxiproxy" not in value, (client.name, value)
                for name in others:
                    assert f"//{name}:" not in value, (client.name, value)
        upstreams = {_host_port(s.upstream)[0] for s in topology.proxies.values()}
        assert not upstreams & {s.name for s in topology.of_backend(backend)}
        return
    for client in clients:
        if broker is None:  # fastapi: nothing to reach, so no proxy and no broker URL
            assert client.proxy is None, client.name
            assert "CHAOS_BROKER_URL" not in client.environment, client.name
            continue
        assert client.proxy is not None, f"{client.name} names no proxy"
        spec = topology.proxies[client.proxy]
        assert _host_port(spec.upstream)[0] == broker.name, (client.name, spec)
        url = urlsplit(client.environment["CHAOS_BROKER_URL"])
        assert url.scheme == BROKER_SCHEME[backend], client.name
        assert url.hostname == proxy_service.name, client.name
        assert url.port == _host_port(spec.listen)[1], client.name
        # Nothing else in its environment or command points at any broker directly.
        for value in [*client.environment.values(), *(client.command or [])]:
            for name in every_broker:
                assert not re.search(rf"(?<![\w-]){re.escape(name)}:\d", value), (client.name,
                                                                                  value)
                assert f"//{name}" not in value, (client.name, value)
    if broker is None:
        upstreams = {_host_port(s.upstream)[0] for s in topology.proxies.values()}
        assert not upstreams & {s.name for s in topology.of_backend(backend)}


def worker_args(service: Any) -> list[str]:
    """A Celery worker's arguments: the agent runs it with QUEUE_CHAOS_WORKER_ARGS, one string
    it splits as a shell would (compose cannot split a string into argv)."""
    return shlex.split(service.environment.get("QUEUE_CHAOS_WORKER_ARGS", ""))


def _mentions(raw: dict[str, Any], variable: str) -> bool:
    return "${" + variable + ":" in json.dumps(raw) or "${" + variable + "}" in json.dumps(raw)


def test_scenario_knobs_reach_the_backends_services(scenario_variables: dict[str, str]) -> None:
    """Each knob of a configuration is used by its backend's services and arrives with the value
    the scenario gives it (in the environment or the command)."""
    raw_services = raw_compose()["services"]
    for config in CONFIGURATIONS.values():
        knobs = dict(config.env())
        if config.backend == "celery-redis":
            knobs |= {"CHAOS_VISIBILITY_TIMEOUT": "7", "CHAOS_RESTORE_INTERVAL": "3"}
        topology = load({**scenario_variables, **knobs})
        own = {s.name: s for s in topology.of_backend(config.backend)}
        for name, value in knobs.items():
            users = [s for s in own if _mentions(raw_services[s], name)]
            assert users, (config.name, name, "used by none of the backend's services")
            for service in (own[s] for s in users):
                values = [*service.environment.values(), *(service.command or []),
                          *worker_args(service)]
                # A multi-word value (worker arguments) arrives as consecutive arguments.
                joined = " ".join(worker_args(service))
                assert value in values or value in joined, (config.name, service.name, name)
        for worker in topology.workers(config.backend):
            assert worker.environment.get("CHAOS_IDEMPOTENT") == knobs.get(
                "CHAOS_IDEMPOTENT", "false"), (config.name, worker.name)


def test_ledger_directory_reaches_every_task_runner_writable(
    scenario_variables: dict[str, str],
) -> None:
    ledger = Path(scenario_variables["CHAOS_LEDGER_HOST_DIR"])
    topology = load(scenario_variables)
    for backend in BACKENDS:
        for worker in topology.workers(backend):
            (mount,) = [m for m in worker.mounts if m.source == ledger]
            assert mount.target == worker.environment["CHAOS_LEDGER_DIR"]
            assert not mount.read_only


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_reads_only_variables_the_compose_file_gives_its_task_runners(
    backend: str,
) -> None:
    read = set(re.findall(r'"(CHAOS_[A-Z_]+)"', ADAPTER_SETTINGS[backend].read_text()))
    assert read, f"the {backend} adapter reads no CHAOS_ variable?"
    workers = load({}).workers(backend)
    assert workers
    for worker in workers:
        wanted = read
        if not worker.environment.get("CHAOS_BROKER_URL", "").startswith("sentinel://"):
            wanted = read - SENTINEL_ONLY
        assert wanted <= set(worker.environment), (worker.name, wanted - set(worker.environment))


def test_images_come_from_the_variables_provisioning_sets(
    scenario_variables: dict[str, str],
) -> None:
    topology = load(scenario_variables)
    assert topology.one("proxy").image == scenario_variables["CHAOS_TOXIPROXY_IMAGE"]
    for backend in BACKENDS:
        image = scenario_variables[f"CHAOS_{IMAGE_OF[backend].upper()}_IMAGE"]
        for service in topology.of_backend(backend):
            expected = scenario_variables[BROKER_IMAGE_OF[backend]] if service.role == "broker" \
                else image
            assert service.image == expected, service.name


def test_each_service_knows_the_variable_its_image_comes_from(topology: Topology) -> None:
    """What a report's provenance names an image by, in either image mode."""
    assert topology.one("proxy").image_variable == "CHAOS_TOXIPROXY_IMAGE"
    for backend in BACKENDS:
        for service in topology.of_backend(backend):
            expected = BROKER_IMAGE_OF[backend] if service.role == "broker" \
                else f"CHAOS_{IMAGE_OF[backend].upper()}_IMAGE"
            assert service.image_variable == expected, service.name


def test_other_variables_are_substituted(scenario_variables: dict[str, str]) -> None:
    topology = load(scenario_variables)
    for broker in topology.by_role("broker"):
        assert broker.command is not None
        if broker.backend in ("celery-rabbitmq", "dramatiq-rabbitmq", "celery-rabbitmq-cluster"):
            assert broker.command == ["rabbitmq-server"]  # the official image's and ours
            continue
        if broker.command[0] != "redis-server":  # a Sentinel: its script, no persistence
            assert broker.backend in ("celery-redis-sentinel", "arq-sentinel"), broker.name
            assert broker.command == ["sh", "/etc/queue-chaos/sentinel.sh"], broker.name
            continue
        assert broker.command[broker.command.index("--appendonly") + 1] == "yes"
    for backend in ("celery-redis", "celery-rabbitmq"):
        for worker in topology.workers(backend):
            args = worker_args(worker)
            assert args[args.index("--concurrency") + 1] == "3"
    for service in topology.services.values():
        texts = [service.image, *(service.command or []), *service.environment.values(),
                 *service.labels.values()]
        assert not any("${" in text for text in texts), service.name


def test_default_ledger_directory_is_inside_the_repo() -> None:
    topology = load({})
    for backend in BACKENDS:
        for worker in topology.workers(backend):
            sources = [m.source for m in worker.mounts if m.target == "/ledger"]
            assert sources == [ROOT / "runs" / "compose" / "ledger"], worker.name


# -- compose features the harness does not understand ----------------------------------------


def minimal_compose(directory: Path) -> dict[str, Any]:
    """A compose document the loader accepts, written beside its toxiproxy config."""
    (directory / "toxiproxy.json").write_text(json.dumps(
        [{"name": "w_redis", "listen": "0.0.0.0:26380", "upstream": "redis:6379"}]))
    return {
        "networks": {"chaos": {"labels": {MANAGED: "true"}}},
        "services": {
            "redis": {"image": "redis", "networks": ["chaos"],
                      "ports": ["127.0.0.1:16379:6379"], "labels": {ROLE: "broker"},
                      "cap_drop": ["ALL"]},
            "toxiproxy": {
                "image": "toxiproxy", "networks": ["chaos"],
                "command": ["-host=0.0.0.0", "-config=/etc/tp.json"],
                "volumes": ["./toxiproxy.json:/etc/tp.json:ro"],
                "labels": {ROLE: "proxy"},
                "cap_drop": ["ALL"],
            },
            "worker": {
                "image": "w", "networks": ["chaos"],
                "environment": {"CHAOS_BROKER_URL": "redis://toxiproxy:26380/0"},
                "labels": {ROLE: "worker", PROXY: "w_redis"},
                "cap_drop": ["ALL"],
            },
        },
    }


def write_compose(directory: Path, document: dict[str, Any]) -> Path:
    path = directory / "compose.yml"
    # in the document's order: the first network declared and a service's first are special
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_minimal_compose_loads(tmp_path: Path) -> None:
    topology = load({}, write_compose(tmp_path, minimal_compose(tmp_path)))
    assert set(topology.services) == {"redis", "toxiproxy", "worker"}
    assert topology.services["worker"].proxy == "w_redis"
    assert topology.proxies["w_redis"].upstream == "redis:6379"
    mount = topology.services["toxiproxy"].mounts[0]
    assert mount.source == tmp_path / "toxiproxy.json"  # relative to the compose file


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("restart", "always"),
        ("depends_on", ["redis"]),
        ("healthcheck", {"test": ["CMD", "true"]}),
        ("network_mode", "host"),
        ("privileged", True),
        ("security_opt", ["seccomp:unconfined"]),
        ("env_file", ".env"),
        ("container_name", "fixed"),
    ],
)
def test_unknown_service_key_is_an_error(tmp_path: Path, key: str, value: object) -> None:
    document = minimal_compose(tmp_path)
    document["services"]["worker"][key] = value
    with pytest.raises(TopologyError) as raised:
        load({}, write_compose(tmp_path, document))
    message = str(raised.value)
    assert f"service worker: keys ['{key}'] are not understood" in message
    assert str(sorted(SERVICE_KEYS)) in message


@pytest.mark.parametrize(
    "port",
    ["0.0.0.0:16379:6379", "16379:6379", "6379", "::1:16379:6379", "192.168.1.5:16379:6379",
     "127.0.0.1:16379"],
)
def test_port_not_on_localhost_is_an_error(tmp_path: Path, port: str) -> None:
    document = minimal_compose(tmp_path)
    document["services"]["redis"]["ports"] = [port]
    with pytest.raises(TopologyError, match=re.escape(f"service redis: port {port!r} must be")):
        load({}, write_compose(tmp_path, document))


def test_port_from_a_variable_is_checked_after_substitution(tmp_path: Path) -> None:
    document = minimal_compose(tmp_path)
    document["services"]["redis"]["ports"] = ["${BIND:-127.0.0.1}:16379:6379"]
    path = write_compose(tmp_path, document)
    assert load({}, path).services["redis"].ports[0].host_ip == "127.0.0.1"
    with pytest.raises(TopologyError, match=re.escape("must be published as 127.0.0.1")):
        load({"BIND": "0.0.0.0"}, path)


PEERS_SUBNET = "${PEERS_NET:-10.213.77}.0/24"


def two_networks(directory: Path, subnet: str | None = PEERS_SUBNET) -> dict[str, Any]:
    """minimal_compose with the worker in backend b1 on a second network, "peers" (with an ipam
    subnet unless ``subnet`` is None), besides the shared one."""
    document = minimal_compose(directory)
    peers: dict[str, Any] = {"labels": {MANAGED: "true"}}
    if subnet is not None:
        peers["ipam"] = {"config": [{"subnet": subnet}]}
    document["networks"]["peers"] = peers
    worker = document["services"]["worker"]
    worker["profiles"] = ["b1"]
    worker["networks"] = {"peers": {"ipv4_address": "${PEERS_NET:-10.213.77}.5",
                                    "aliases": ["w-peer"]},
                          "chaos": None}
    return document


def test_a_backends_service_may_join_a_second_network_with_an_address_and_aliases(
    tmp_path: Path,
) -> None:
    path = write_compose(tmp_path, two_networks(tmp_path))
    topology = load({}, path)
    assert list(topology.networks) == ["chaos", "peers"]
    assert topology.network == "chaos"  # the first declared is the shared one
    assert topology.networks["chaos"].subnet is None
    assert topology.networks["peers"].subnet == "10.213.77.0/24"
    worker = topology.services["worker"]
    assert worker.network == "peers"  # its container is created on its first network
    assert [(a.network, a.ipv4_address, a.aliases) for a in worker.attachments] == [
        ("peers", "10.213.77.5", ("w-peer",)), ("chaos", None, ())]
    assert topology.services["redis"].attachments[0].network == "chaos"
    # the subnet knob moves the subnet and the address together
    moved = load({"PEERS_NET": "10.213.99"}, path)
    assert moved.networks["peers"].subnet == "10.213.99.0/24"
    assert moved.services["worker"].attachments[0].ipv4_address == "10.213.99.5"
    assert subnet_variables(path) == {"PEERS_NET": "10.213.77"}


def test_a_network_list_is_the_same_as_a_mapping_without_settings(tmp_path: Path) -> None:
    document = two_networks(tmp_path)
    document["services"]["worker"]["networks"] = ["chaos", "peers"]
    worker = load({}, write_compose(tmp_path, document)).services["worker"]
    assert [(a.network, a.ipv4_address, a.aliases) for a in worker.attachments] == [
        ("chaos", None, ()), ("peers", None, ())]


@pytest.mark.parametrize("networks", [["other"], ["chaos", "other"], {"other": None}])
def test_an_undeclared_network_is_an_error(tmp_path: Path, networks: object) -> None:
    document = minimal_compose(tmp_path)
    document["services"]["worker"]["networks"] = networks
    with pytest.raises(TopologyError, match=re.escape(
            "service worker: network 'other' is not declared (declared: chaos)")):
        load({}, write_compose(tmp_path, document))


@pytest.mark.parametrize("networks", [None, [], {}, "chaos"])
def test_a_service_on_no_network_is_an_error(tmp_path: Path, networks: object) -> None:
    document = minimal_compose(tmp_path)
    document["services"]["worker"]["networks"] = networks
    with pytest.raises(TopologyError,
                       match="service worker: networks must list at least one network"):
        load({}, write_compose(tmp_path, document))


@pytest.mark.parametrize(("service", "networks"), [
    ("toxiproxy", ["chaos", "peers"]),
    ("toxiproxy", ["peers"]),
    ("redis", ["peers", "chaos"]),  # no profile: shared, so on the first network only
])
def test_a_shared_service_off_the_first_network_alone_is_an_error(
    tmp_path: Path, service: str, networks: list[str],
) -> None:
    document = two_networks(tmp_path)
    document["services"][service]["networks"] = networks
    with pytest.raises(TopologyError, match=re.escape(
            f"service {service}: a service shared by every backend must be on network "
            "[chaos] only")):
        load({}, write_compose(tmp_path, document))


@pytest.mark.parametrize("address", ["10.213.78.5", "10.0.0.1", "not-an-address", "10.213.77"])
def test_an_address_outside_the_networks_subnet_is_an_error(tmp_path: Path, address: str) -> None:
    document = two_networks(tmp_path)
    document["services"]["worker"]["networks"]["peers"]["ipv4_address"] = address
    with pytest.raises(TopologyError, match=re.escape(
            f"service worker: ipv4_address {address!r} on network peers needs the network's "
            "ipam subnet to hold it (subnet: 10.213.77.0/24)")):
        load({}, write_compose(tmp_path, document))


def test_an_address_on_a_network_without_a_subnet_is_an_error(tmp_path: Path) -> None:
    document = two_networks(tmp_path, subnet=None)
    with pytest.raises(TopologyError, match=re.escape(
            "service worker: ipv4_address '10.213.77.5' on network peers needs the network's "
            "ipam subnet to hold it (subnet: None)")):
        load({}, write_compose(tmp_path, document))


def test_an_unknown_key_of_a_services_network_is_an_error(tmp_path: Path) -> None:
    document = two_networks(tmp_path)
    document["services"]["worker"]["networks"]["peers"]["mac_address"] = "02:42:ac:11:00:02"
    with pytest.raises(TopologyError, match=re.escape(
            "service worker on network peers: keys ['mac_address'] are not understood")):
        load({}, write_compose(tmp_path, document))


@pytest.mark.parametrize("ipam", [
    {"driver": "default", "config": [{"subnet": "10.213.77.0/24"}]},
    {"config": [{"subnet": "10.213.77.0/24", "gateway": "10.213.77.1"}]},
    {"config": [{"subnet": "10.213.77.0/24"}, {"subnet": "10.213.78.0/24"}]},
    {"config": []},
    None,
])
def test_ipam_other_than_one_subnet_is_an_error(tmp_path: Path, ipam: object) -> None:
    document = two_networks(tmp_path)
    document["networks"]["peers"]["ipam"] = ipam
    with pytest.raises(TopologyError, match=re.escape(
            "network peers: ipam must be {config: [{subnet: CIDR}]}")):
        load({}, write_compose(tmp_path, document))


@pytest.mark.parametrize("subnet", ["10.213.77", "10.213.77.0/33", "fd00::/64", "10.213.77.5/24"])
def test_a_subnet_that_is_no_ipv4_cidr_is_an_error(tmp_path: Path, subnet: str) -> None:
    document = two_networks(tmp_path, subnet=subnet)
    with pytest.raises(TopologyError, match=re.escape(
            f"network peers: subnet {subnet!r} is not an IPv4 CIDR")):
        load({}, write_compose(tmp_path, document))


def test_extra_hosts_name_addresses_after_substitution(tmp_path: Path) -> None:
    document = minimal_compose(tmp_path)
    document["services"]["worker"]["extra_hosts"] = ["redis:${PEERS_NET:-10.213.77}.11",
                                                     "peer:10.1.2.3"]
    path = write_compose(tmp_path, document)
    assert load({}, path).services["worker"].extra_hosts == {"redis": "10.213.77.11",
                                                              "peer": "10.1.2.3"}
    assert load({"PEERS_NET": "10.213.90"}, path).services["worker"].extra_hosts["redis"] == (
        "10.213.90.11")
    assert load({}, path).services["redis"].extra_hosts == {}


@pytest.mark.parametrize("entry", ["redis", "redis=10.213.77.11", ":10.213.77.11",
                                   "redis:not-an-address", "redis:", "redis:fd00::1"])
def test_a_bad_extra_hosts_entry_is_an_error(tmp_path: Path, entry: str) -> None:
    document = minimal_compose(tmp_path)
    document["services"]["worker"]["extra_hosts"] = [entry]
    with pytest.raises(TopologyError, match=re.escape(
            f"service worker: extra_hosts entry {entry!r} must be NAME:IPV4")):
        load({}, write_compose(tmp_path, document))


def test_the_real_clusters_networks_and_static_addresses() -> None:
    topology = load({})
    assert topology.network == "chaos"
    assert subnet_variables() == {"CHAOS_RABBITMQ_NET": "10.213.78",
                                  "CHAOS_SENTINEL_NET": "10.213.77"}
    moved = load({"CHAOS_SENTINEL_NET": "10.213.101"})
    # RabbitMQ's nodes peer over their own network (the one a partition cuts) and meet their
    # clients on the shared one under an alias
    for node in moved.brokers("celery-rabbitmq-cluster"):
        assert node.network != moved.network, node.name
        assert moved.network in [a.network for a in node.attachments], node.name
    # Sentinel's services have static addresses in the knob's subnet, and every one of them
    # names every broker-role service by the address it has
    subnet = moved.networks[moved.brokers("celery-redis-sentinel")[0].network].subnet
    assert subnet == "10.213.101.0/24"
    addresses = {s.name: s.attachments[0].ipv4_address
                 for s in moved.brokers("celery-redis-sentinel")}
    assert all(a is not None and a.startswith("10.213.101.") for a in addresses.values())
    for service in moved.of_backend("celery-redis-sentinel"):
        assert service.extra_hosts == addresses, service.name


def test_shell_form_command_is_an_error(tmp_path: Path) -> None:
    document = minimal_compose(tmp_path)
    document["services"]["worker"]["command"] = "celery worker"
    with pytest.raises(TopologyError, match="service worker: command must be a list"):
        load({}, write_compose(tmp_path, document))


@pytest.mark.parametrize("volume", ["named:/data", "/only-one-part", "a:b:c:d"])
def test_non_bind_volume_is_an_error(tmp_path: Path, volume: str) -> None:
    document = minimal_compose(tmp_path)
    document["services"]["worker"]["volumes"] = [volume]
    with pytest.raises(TopologyError, match="must be a bind mount"):
        load({}, write_compose(tmp_path, document))


def test_undefined_proxy_is_an_error(tmp_path: Path) -> None:
    document = minimal_compose(tmp_path)
    document["services"]["worker"]["labels"][PROXY] = "worker9_redis"
    with pytest.raises(TopologyError, match=r"names proxy 'worker9_redis'.*does not define"):
        load({}, write_compose(tmp_path, document))


def test_a_profile_makes_a_backend(tmp_path: Path) -> None:
    document = minimal_compose(tmp_path)
    for name in ("redis", "worker"):
        document["services"][name]["profiles"] = ["b1"]
    topology = load({}, write_compose(tmp_path, document))
    assert topology.backends == ["b1"]
    assert [s.name for s in topology.of_backend("b1")] == ["redis", "worker"]
    assert topology.services["toxiproxy"].backend is None
    broker = topology.broker("b1")
    assert broker is not None and broker.name == "redis"
    assert topology.broker("b2") is None
    assert [s.name for s in topology.workers("b1")] == ["worker"]


def test_a_service_with_two_profiles_is_an_error(tmp_path: Path) -> None:
    document = minimal_compose(tmp_path)
    document["services"]["worker"]["profiles"] = ["b1", "b2"]
    with pytest.raises(TopologyError, match=r"service worker: belongs to one backend"):
        load({}, write_compose(tmp_path, document))


def test_a_backend_without_a_submission_endpoint_is_an_error(tmp_path: Path) -> None:
    document = minimal_compose(tmp_path)
    document["services"]["worker"]["profiles"] = ["b1"]
    topology = load({}, write_compose(tmp_path, document))
    with pytest.raises(TopologyError, match=r"backend b1: expected one producer or app"):
        topology.submission_endpoint("b1")


def test_proxy_without_config_flag_is_an_error(tmp_path: Path) -> None:
    document = minimal_compose(tmp_path)
    document["services"]["toxiproxy"]["command"] = ["-host=0.0.0.0"]
    with pytest.raises(TopologyError, match="-config=FILE"):
        load({}, write_compose(tmp_path, document))


def test_proxy_config_not_mounted_is_an_error(tmp_path: Path) -> None:
    document = minimal_compose(tmp_path)
    document["services"]["toxiproxy"]["volumes"] = []
    with pytest.raises(TopologyError, match="is not mounted from the repo"):
        load({}, write_compose(tmp_path, document))


def test_two_proxy_services_is_an_error(tmp_path: Path) -> None:
    document = minimal_compose(tmp_path)
    document["services"]["toxiproxy2"] = dict(document["services"]["toxiproxy"])
    with pytest.raises(TopologyError, match="expected one service with role 'proxy', found 2"):
        load({}, write_compose(tmp_path, document))


@pytest.mark.parametrize(
    ("where", "key", "value"),
    [
        ("network", "internal", True),
        ("network", "driver", "overlay"),
        ("top", "include", ["other.yml"]),
        ("top", "secrets", {"s": {"file": "./s.txt"}}),
    ],
)
def test_unknown_network_or_top_level_key_is_an_error(
    tmp_path: Path, where: str, key: str, value: object
) -> None:
    document = minimal_compose(tmp_path)
    (document["networks"]["chaos"] if where == "network" else document)[key] = value
    with pytest.raises(TopologyError):
        load({}, write_compose(tmp_path, document))


def test_compose_file_is_the_repo_file() -> None:
    assert COMPOSE_FILE == ROOT / "docker-compose.chaos.yml"
    assert COMPOSE_FILE.is_file()


@pytest.mark.parametrize("cap_drop", [None, [], ["NET_RAW"]])
def test_a_service_must_drop_every_capability(tmp_path: Path, cap_drop: Any) -> None:
    document = minimal_compose(tmp_path)
    document["services"]["worker"]["cap_drop"] = cap_drop
    with pytest.raises(TopologyError, match=r"must drop every capability"):
        load({}, write_compose(tmp_path, document))


def test_every_real_service_drops_all_and_adds_back_little() -> None:
    topology = load({})
    for service in topology.services.values():
        assert set(service.cap_add) <= {"CHOWN", "SETUID", "SETGID"}, service.name


# -- Celery on RabbitMQ -------------------------------------------------------------------------


def test_rabbitmq_broker_runs_for_the_official_image_and_the_local_one() -> None:
    topology = load({})
    rabbitmq = topology.broker("celery-rabbitmq")
    assert rabbitmq is not None
    assert rabbitmq.image == "rabbitmq:3.13-management"  # the official default
    assert load({"CHAOS_RABBITMQ_IMAGE": "x/rabbit:1"}).services["rabbitmq"].image == "x/rabbit:1"
    assert rabbitmq.command == ["rabbitmq-server"]
    assert rabbitmq.entrypoint is None  # the official image's entrypoint stays in place
    # A node name independent of the container's hostname, logs on stdout, fresh statistics.
    assert rabbitmq.environment["RABBITMQ_NODENAME"] == "rabbit@localhost"
    assert rabbitmq.environment["RABBITMQ_LOGS"] == "-"
    assert "collect_statistics_interval" in rabbitmq.environment[
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"]
    assert [(p.host_port, p.container_port) for p in rabbitmq.ports] == [(15673, 15672)]
    assert rabbitmq.mounts == []


def test_rabbitmq_producer_declares_the_queue_as_its_workers_do(
    scenario_variables: dict[str, str],
) -> None:
    """RabbitMQ refuses a queue declaration whose arguments differ from the queue's, so the
    producer gets the same queue type as the workers, and the confirm knob it publishes with."""
    for variables in ({}, {**scenario_variables, **CONFIGURATIONS["rabbit-acks-late-quorum"].env(),
                           "CHAOS_CONFIRM_PUBLISH": "true"}):
        topology = load(variables)
        producer = topology.one("producer", "celery-rabbitmq")
        assert producer.ports[0].host_port == int(variables.get("CHAOS_RABBIT_PRODUCER_PORT",
                                                                "18001"))
        for worker in topology.workers("celery-rabbitmq"):
            for knob in ("CHAOS_QUEUE_TYPE", "CHAOS_CONFIRM_PUBLISH"):
                assert producer.environment[knob] == worker.environment[knob], (worker.name, knob)
    assert load({}).services["rabbit-worker1"].environment["CHAOS_QUEUE_TYPE"] == "classic"


def test_both_celery_backends_run_the_same_image_and_commands() -> None:
    topology = load({})
    redis = {s.role: s for s in topology.of_backend("celery-redis")}
    rabbit = {s.role: s for s in topology.of_backend("celery-rabbitmq")}
    assert redis["producer"].command == rabbit["producer"].command
    assert [w.command for w in topology.workers("celery-redis")] == [
        w.command for w in topology.workers("celery-rabbitmq")]
    assert {s.image for s in topology.of_backend("celery-rabbitmq") if s.role != "broker"} == {
        redis["producer"].image}


def test_cluster_peers_find_each_other_only_on_the_network_a_partition_cuts() -> None:
    """A node's peers resolve through its /etc/hosts to their fixed address on its first
    network: by Docker's DNS, a RabbitMQ node's name answered with its address on the clients'
    network, where a partition of the peers' network did not cut them (measured: a partition
    the cluster never noticed)."""
    real = load({})
    for backend in ("celery-rabbitmq-cluster", "celery-redis-sentinel", "arq-sentinel"):
        nodes = real.brokers(backend)
        assert len(nodes) >= 3, backend
        addresses = {n.name: n.attachments[0].ipv4_address for n in nodes}
        assert None not in addresses.values(), addresses
        for node in nodes:
            assert {k: v for k, v in node.extra_hosts.items() if k in addresses} == addresses, (
                node.name)
