"""harness/topology.py, and the check that the compose file and the harness agree.

The compose file is the one source of truth for what runs; the harness reads it rather than driving
``docker compose``. These tests load the real ``docker-compose.chaos.yml`` with the variables the
harness sets and check every assumption other modules make about it: ports on 127.0.0.1 only,
every client reaching Redis only through its own Toxiproxy proxy, and every knob a scenario turns
actually reaching the workers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from harness import images, world
from harness.matrix import CONFIGURATIONS
from harness.topology import (
    COMPOSE_FILE,
    MANAGED,
    PROXY,
    ROLE,
    ROOT,
    SERVICE_KEYS,
    Topology,
    TopologyError,
    load,
    substitute,
    variables_used,
)

TOXIPROXY_JSON = ROOT / "topology" / "toxiproxy.json"
BACKEND_SETTINGS = ROOT / "backends" / "celery" / "chaos_celery" / "settings.py"
ROLES = {"broker", "proxy", "producer", "worker"}
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


@pytest.fixture
def scenario_variables(tmp_path: Path) -> dict[str, str]:
    """Every variable set the way World and run_scenario set it, to non-default values."""
    ports = world.Ports(redis=26001, toxiproxy=26002, producer=26003)
    return {
        "CHAOS_REDIS_IMAGE": "test/redis:1",
        "CHAOS_TOXIPROXY_IMAGE": "test/toxiproxy:1",
        **{f"CHAOS_{b.upper()}_IMAGE": f"test/{b}:1" for b in images.BACKENDS},
        **ports.variables(),
        **CONFIGURATIONS["acks-late-prefetch-1"].env(),
        "CHAOS_VISIBILITY_TIMEOUT": "7",
        "CHAOS_RESTORE_INTERVAL": "3",
        "CHAOS_LEDGER_HOST_DIR": str(tmp_path / "ledger"),
        "CHAOS_CONCURRENCY": "3",
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


def test_every_compose_variable_has_a_default() -> None:
    # ``docker compose up`` by hand works with nothing exported.
    missing = [name for name, default in variables_used().items() if default is None]
    assert missing == []


def test_port_defaults_agree_with_the_harness() -> None:
    used = variables_used()
    for name, default in world.PORT_VARIABLES.items():
        assert used[name] == str(default), name


def test_roles(topology: Topology) -> None:
    assert {s.role for s in topology.services.values()} == ROLES
    for role in ("broker", "proxy", "producer"):
        topology.one(role)  # exactly one
    workers = topology.by_role("worker")
    assert len(workers) >= 2  # a fault on one worker leaves another to redeliver to
    for service in topology.services.values():
        assert service.labels[MANAGED] == "true", service.name  # cleanup finds it by label
        assert service.network == topology.network


def test_network_is_labelled_and_has_no_route_out(topology: Topology) -> None:
    assert topology.network_labels == {MANAGED: "true"}
    assert topology.network_options == {
        "com.docker.network.bridge.enable_ip_masquerade": "false"
    }


def test_every_port_is_published_on_localhost_only(topology: Topology) -> None:
    published = [(s.name, p) for s in topology.services.values() for p in s.ports]
    assert published, "the harness needs the broker, Toxiproxy API and producer published"
    for name, port in published:
        assert port.host_ip == "127.0.0.1", (name, port)
    host_ports = [p.host_port for _, p in published]
    assert len(host_ports) == len(set(host_ports))


def test_workers_publish_nothing(topology: Topology) -> None:
    for worker in topology.by_role("worker"):
        assert worker.ports == [], worker.name


def test_published_ports_are_the_ones_the_harness_talks_to(
    scenario_variables: dict[str, str],
) -> None:
    topology = load(scenario_variables)
    ports = world.Ports.from_env(scenario_variables)
    broker, proxy, producer = (topology.one(r) for r in ("broker", "proxy", "producer"))
    assert [p.host_port for p in broker.ports] == [ports.redis]
    assert [p.host_port for p in proxy.ports] == [ports.toxiproxy]
    assert [p.host_port for p in producer.ports] == [ports.producer]
    # ... and inside the containers, the ports those services listen on
    assert [p.container_port for p in proxy.ports] == [TOXIPROXY_API_PORT]
    assert proxy.command is not None and "-host=0.0.0.0" in proxy.command
    assert producer.command is not None
    producer_port = producer.command[producer.command.index("--port") + 1]
    assert [p.container_port for p in producer.ports] == [int(producer_port)]


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


def test_every_proxy_leads_to_the_broker(topology: Topology) -> None:
    broker = topology.one("broker")
    assert broker.command is not None and "--port" not in broker.command  # Redis's default 6379
    broker_ports = {p.container_port for p in broker.ports}
    assert topology.proxies
    listens = []
    for spec in topology.proxies.values():
        host, port = _host_port(spec.upstream)
        assert host == broker.name, spec
        assert port in broker_ports, spec
        listen_host, listen_port = _host_port(spec.listen)
        assert listen_host == "0.0.0.0", spec  # reachable from the other containers
        listens.append(listen_port)
    assert len(listens) == len(set(listens))
    assert TOXIPROXY_API_PORT not in listens


def test_every_worker_and_the_producer_name_a_proxy_of_their_own(topology: Topology) -> None:
    clients = [*topology.by_role("worker"), topology.one("producer")]
    names = []
    for client in clients:
        assert client.proxy is not None, f"{client.name} names no proxy"
        assert client.proxy in topology.proxies, client.name
        names.append(client.proxy)
    # One proxy per client: a fault can cut one of them without touching the others.
    assert len(names) == len(set(names))
    for service in topology.services.values():
        if service.role in ("broker", "proxy"):
            assert PROXY not in service.labels, service.name


def test_clients_reach_the_broker_only_through_their_proxy(topology: Topology) -> None:
    broker, proxy_service = topology.one("broker"), topology.one("proxy")
    for client in [*topology.by_role("worker"), topology.one("producer")]:
        assert client.proxy is not None
        url = urlsplit(client.environment["CHAOS_BROKER_URL"])
        assert url.scheme == "redis", client.name
        assert url.hostname == proxy_service.name, client.name
        assert url.port == _host_port(topology.proxies[client.proxy].listen)[1], client.name
        # Nothing else in its environment or command points at the broker directly.
        for value in [*client.environment.values(), *(client.command or [])]:
            assert not re.search(rf"\b{re.escape(broker.name)}:\d", value), (client.name, value)
            assert f"//{broker.name}" not in value, (client.name, value)


def test_scenario_knobs_reach_every_worker(scenario_variables: dict[str, str]) -> None:
    for config in CONFIGURATIONS.values():
        knobs = {**config.env(), "CHAOS_VISIBILITY_TIMEOUT": "7", "CHAOS_RESTORE_INTERVAL": "3"}
        topology = load({**scenario_variables, **knobs})
        for worker in topology.by_role("worker"):
            for name, value in knobs.items():
                assert worker.environment.get(name) == value, (config.name, worker.name, name)


def test_ledger_directory_reaches_every_worker_writable(
    scenario_variables: dict[str, str],
) -> None:
    ledger = Path(scenario_variables["CHAOS_LEDGER_HOST_DIR"])
    topology = load(scenario_variables)
    for worker in topology.by_role("worker"):
        (mount,) = [m for m in worker.mounts if m.source == ledger]
        assert mount.target == worker.environment["CHAOS_LEDGER_DIR"]
        assert not mount.read_only


def test_backend_reads_only_variables_the_compose_file_gives_its_workers() -> None:
    read = set(re.findall(r'"(CHAOS_[A-Z_]+)"', BACKEND_SETTINGS.read_text()))
    assert read, "the backend's settings module reads no CHAOS_ variable?"
    for worker in load({}).by_role("worker"):
        assert read <= set(worker.environment), (worker.name, read - set(worker.environment))


def test_images_come_from_the_variables_provisioning_sets(
    scenario_variables: dict[str, str],
) -> None:
    topology = load(scenario_variables)
    assert topology.one("broker").image == scenario_variables["CHAOS_REDIS_IMAGE"]
    assert topology.one("proxy").image == scenario_variables["CHAOS_TOXIPROXY_IMAGE"]
    celery = scenario_variables["CHAOS_CELERY_IMAGE"]
    assert topology.one("producer").image == celery
    assert {w.image for w in topology.by_role("worker")} == {celery}


def test_other_variables_are_substituted(scenario_variables: dict[str, str]) -> None:
    topology = load(scenario_variables)
    broker = topology.one("broker")
    assert broker.command is not None
    assert broker.command[broker.command.index("--appendonly") + 1] == "yes"
    for worker in topology.by_role("worker"):
        assert worker.command is not None
        assert worker.command[worker.command.index("--concurrency") + 1] == "3"
        assert not any("${" in part for part in worker.command)
        assert not any("${" in v for v in worker.environment.values())


def test_default_ledger_directory_is_inside_the_repo() -> None:
    for worker in load({}).by_role("worker"):
        sources = [m.source for m in worker.mounts if m.target == "/ledger"]
        assert sources == [ROOT / "runs" / "compose" / "ledger"]


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
    path.write_text(yaml.safe_dump(document))
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


@pytest.mark.parametrize("networks", [["other"], ["chaos", "other"], None])
def test_service_off_the_one_network_is_an_error(tmp_path: Path, networks: object) -> None:
    document = minimal_compose(tmp_path)
    document["services"]["worker"]["networks"] = networks
    with pytest.raises(TopologyError, match="service worker: must be on network"):
        load({}, write_compose(tmp_path, document))


def test_two_networks_is_an_error(tmp_path: Path) -> None:
    document = minimal_compose(tmp_path)
    document["networks"]["other"] = {}
    with pytest.raises(TopologyError, match="expected exactly one network"):
        load({}, write_compose(tmp_path, document))


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
