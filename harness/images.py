"""Images: build every image the topology needs, offline, and cache them by content.

No container registry answers on the machines this project runs on, so nothing is pulled:

* a Debian root filesystem is made with ``mmdebstrap`` from the machine's own apt sources file
  (so no mirror host is written into this repository) and ``docker import``-ed. It carries
  Python and Debian's ``redis-server``: it *is* the local Redis image and the base of the others;
* a second root filesystem, the same way, carries Debian's ``rabbitmq-server`` with the
  management plugin enabled: the local RabbitMQ image (it runs as the ``rabbitmq`` user);
* the Toxiproxy server is built with ``go install`` from the Go module proxy and copied in;
* backend images are ``docker build``-s on that base, their Python packages installed only from
  wheels the host built (``pip wheel``) into ``build/wheels/<backend>``: the backend's
  requirements and the agent (``agent/``, the ``queue-chaos-agent`` wheel every image holds).

Every tag is a hash of the inputs, so a second run finds each image present and builds nothing.
With ``CHAOS_IMAGES=registry`` (a machine that reaches a registry) the official images named in
the compose file are pulled instead and only the backend images are built, on python:3.11-slim.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import docker.errors

from harness.backends import images as registry_images
from harness.brokerversions import BrokerVersion
from harness.containers import OWNER, owner_token
from harness.paths import BUILD, ROOT
from harness.topology import LABEL, MANAGED

if TYPE_CHECKING:
    from harness.target import Target

log = logging.getLogger(__name__)

IMAGES_FILE = BUILD / "images.json"
PROVISION_LOCK_S = 1200.0  # a cold build of every image takes minutes, not twenty
TOXIPROXY_MODULE = "github.com/Shopify/toxiproxy/v2/cmd/server"
TOXIPROXY_VERSION = "v2.12.0"
BASE_PACKAGES = ("python3", "python3-venv", "redis-server", "procps")
RABBITMQ_PACKAGES = ("rabbitmq-server",)
# Written into the RabbitMQ root filesystem by mmdebstrap customize hooks ($1 is its root):
# the management plugin (its HTTP API is what the harness's forensics read), and the default
# guest user allowed in from other hosts (the workers, and the published API port), as the
# official image's 10-defaults.conf does.
RABBITMQ_FILES = {
    "/etc/rabbitmq/enabled_plugins": "[rabbitmq_management].\n",
    "/etc/rabbitmq/rabbitmq.conf": "loopback_users.guest = false\n",
}
# docker import --change lines. It runs as Debian's rabbitmq user (its home holds the Erlang
# cookie and the Mnesia directory), so it needs no capability to drop privileges. PATH puts
# RabbitMQ's own scripts first: `rabbitmq-server` is then the script that execs the Erlang VM
# and turns SIGTERM into a clean stop, as in the official image, not Debian's
# /usr/sbin wrapper (which su-s from root and sends the output to a file under
# /var/log/rabbitmq). UTF-8 for the Elixir CLI tools (rabbitmqctl, rabbitmq-diagnostics).
RABBITMQ_CHANGES = (
    "LABEL io.queue-chaos.image=rabbitmq",
    "USER rabbitmq",
    "WORKDIR /var/lib/rabbitmq",
    "ENV HOME=/var/lib/rabbitmq LANG=C.UTF-8 LC_ALL=C.UTF-8 "
    "PATH=/usr/lib/rabbitmq/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "EXPOSE 5672 15672",
    'CMD ["rabbitmq-server"]',
)
SOURCES_CANDIDATES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
AGENT = ROOT / "agent"
# What the agent wheel is built from (and what its image tags hash); not agent/'s other files.
AGENT_SOURCES = (AGENT / "pyproject.toml", AGENT / "queue_chaos_agent")
IMAGE_MODES = ("local", "registry")
# Every image this project builds is named <repository>/<name>:<hash>. Another repository name
# (QUEUE_CHAOS_IMAGE_REPOSITORY) is a second, separate set of images: how ``queue-chaos bench
# --cold`` measures a provisioning from nothing without removing the images in use.
REPOSITORY_VARIABLE = "QUEUE_CHAOS_IMAGE_REPOSITORY"


def repository() -> str:
    """The repository part of every image name this project builds."""
    name = os.environ.get(REPOSITORY_VARIABLE, "queue-chaos")
    if not name or not all(c.isalnum() or c in "-_." for c in name) or not name[0].isalnum():
        raise ProvisionError(f"{REPOSITORY_VARIABLE}={name!r}: expected a lowercase docker "
                             "repository name (letters, digits, '-', '_', '.')")
    return name.lower()
STEP_TIMEOUT_S = 900


class ProvisionError(RuntimeError):
    """An image could not be built; the message says which step and why."""


@dataclass
class Timing:
    step: str
    seconds: float
    cached: bool


def digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:16]


# Never part of an image's inputs: caches, environments, version control.
SKIPPED_PARTS = ("__pycache__", ".git", ".venv", "venv", ".mypy_cache", ".pytest_cache",
                 ".ruff_cache", "node_modules", ".queue-chaos")


def files_digest(*paths: Path, root: Path = ROOT) -> str:
    """A digest of file names (relative to ``root``) and contents, directories walked in a
    stable order."""
    chunks: list[bytes | str] = []
    for path in paths:
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file() and not set(file.relative_to(root).parts) & set(SKIPPED_PARTS):
                chunks += [str(file.relative_to(root)), file.read_bytes()]
    return digest(*chunks)


def _run(argv: list[str], step: str, **kwargs: object) -> None:
    try:
        subprocess.run(argv, check=True, timeout=STEP_TIMEOUT_S, **kwargs)  # type: ignore[call-overload]
    except FileNotFoundError as exc:
        raise ProvisionError(f"{step}: {argv[0]} is not installed (run `make engine`)") from exc
    except subprocess.CalledProcessError as exc:
        raise ProvisionError(f"{step}: `{' '.join(argv)}` exited {exc.returncode}") from exc
    except subprocess.TimeoutExpired as exc:
        raise ProvisionError(f"{step}: `{' '.join(argv)}` took over {STEP_TIMEOUT_S}s") from exc


def _has_image(engine: docker.DockerClient, tag: str) -> bool:
    try:
        engine.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def apt_sources() -> Path:
    for candidate in SOURCES_CANDIDATES:
        if candidate.is_file() and candidate.read_text().strip():
            return candidate
    raise ProvisionError(
        f"no apt sources file to build the Debian image from (looked at "
        f"{', '.join(map(str, SOURCES_CANDIDATES))})"
    )


def debian_suite() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip('"')
    raise ProvisionError("/etc/os-release names no VERSION_CODENAME to build the Debian image for")


def build_base(engine: docker.DockerClient) -> tuple[str, bool]:
    """The Debian base image (also the local Redis image): mmdebstrap + docker import."""
    sources = apt_sources()
    suite = debian_suite()
    tag = f"{repository()}/debian-base:{digest(suite, sources.read_text(), *BASE_PACKAGES)}"
    if _has_image(engine, tag):
        return tag, True
    _import_rootfs(engine, tag, suite, sources, BASE_PACKAGES, (),
                   ["LABEL io.queue-chaos.image=base", 'CMD ["/bin/bash"]'],
                   "Debian root filesystem (mmdebstrap)")
    return tag, False


def rabbitmq_hooks() -> list[str]:
    """mmdebstrap customize hooks writing RABBITMQ_FILES into the root filesystem ($1)."""
    return [f'printf %s {shlex.quote(text)} > "$1{path}"' for path, text in RABBITMQ_FILES.items()]


def build_rabbitmq(engine: docker.DockerClient) -> tuple[str, bool]:
    """The local RabbitMQ image: Debian's rabbitmq-server, management plugin on, by mmdebstrap
    (minbase) + docker import, like the base image."""
    sources = apt_sources()
    suite = debian_suite()
    hooks = rabbitmq_hooks()
    tag = f"{repository()}/rabbitmq:" + digest(suite, sources.read_text(), *RABBITMQ_PACKAGES,
                                           *hooks, *RABBITMQ_CHANGES)
    if _has_image(engine, tag):
        return tag, True
    _import_rootfs(engine, tag, suite, sources, RABBITMQ_PACKAGES, hooks, list(RABBITMQ_CHANGES),
                   "RabbitMQ root filesystem (mmdebstrap)")
    return tag, False


def suite_sources(text: str, host_suite: str, suite: str) -> str:
    """The machine's apt sources with its suite swapped for ``suite`` (``bookworm-updates`` and
    ``bookworm-security`` become ``trixie-updates`` and ``trixie-security``), in either format
    (deb822 ``Suites:`` lines or one-line ``deb URI suite components``): the same mirror, another
    release. Only whole words are swapped, so a mirror path holding the name stays as it is."""
    if suite == host_suite:
        return text
    out = []
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["Suites:"]:
            line = "Suites: " + " ".join(_swap(w, host_suite, suite) for w in words[1:])
        elif words[:1] in (["deb"], ["deb-src"]):
            # deb [options] URI suite components: the suite follows the URI
            options_end = next((i for i, w in enumerate(words) if w.endswith("]")), 0)
            at = options_end + 2
            if at < len(words):
                words[at] = _swap(words[at], host_suite, suite)
            line = " ".join(words)
        out.append(line)
    return "\n".join(out) + "\n"


def _swap(word: str, old: str, new: str) -> str:
    return new + word[len(old):] if word == old or word.startswith(old + "-") else word


def build_broker_version(engine: docker.DockerClient, version: BrokerVersion
                         ) -> tuple[str, bool]:
    """A broker release's local image: its Debian suite's package, by mmdebstrap from the
    machine's sources with the suite swapped, + docker import. A RabbitMQ release gets the
    same management plugin, configuration and run-as settings as the default RabbitMQ image."""
    host_suite = debian_suite()
    sources_text = suite_sources(apt_sources().read_text(), host_suite, version.suite)
    rabbit = version.broker == "rabbitmq"
    hooks = rabbitmq_hooks() if rabbit else []
    changes = ([c if not c.startswith("LABEL") else f"LABEL io.queue-chaos.image={version.name}"
                for c in RABBITMQ_CHANGES] if rabbit
               else [f"LABEL io.queue-chaos.image={version.name}", 'CMD ["/bin/bash"]'])
    tag = f"{repository()}/{version.name}:" + digest(version.suite, sources_text,
                                                     *version.packages, *hooks, *changes)
    if _has_image(engine, tag):
        return tag, True
    BUILD.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BUILD) as tmp:
        sources = Path(tmp) / f"{version.suite}.sources"
        sources.write_text(sources_text)
        _import_rootfs(engine, tag, version.suite, sources, version.packages, hooks, changes,
                       f"{version.name} root filesystem (mmdebstrap, Debian {version.suite})")
    return tag, False


def _import_rootfs(
    engine: docker.DockerClient, tag: str, suite: str, sources: Path, packages: tuple[str, ...],
    hooks: list[str] | tuple[str, ...], changes: list[str], step: str,
) -> None:
    BUILD.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BUILD) as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        _run(
            ["mmdebstrap", "--quiet", "--variant=minbase", f"--include={','.join(packages)}",
             *(f"--customize-hook={hook}" for hook in hooks), suite, str(tarball), str(sources)],
            step,
        )
        repository, _, version = tag.partition(":")
        engine.api.import_image_from_file(str(tarball), repository=repository, tag=version,
                                          changes=changes)


def build_toxiproxy_binary() -> tuple[Path, bool]:
    out = BUILD / "toxiproxy" / TOXIPROXY_VERSION
    binary = out / "toxiproxy"
    if binary.is_file():
        return binary, True
    if shutil.which("go") is None:
        raise ProvisionError("the Toxiproxy server is built with Go, and `go` is not on PATH")
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(out), "CGO_ENABLED": "0"}
    _run(["go", "install", f"{TOXIPROXY_MODULE}@{TOXIPROXY_VERSION}"], "Toxiproxy (go install)",
         env=env)
    (out / "server").rename(binary)
    return binary, False


def build_toxiproxy_image(engine: docker.DockerClient, base: str) -> tuple[str, bool]:
    binary, _ = build_toxiproxy_binary()
    tag = f"{repository()}/toxiproxy:{TOXIPROXY_VERSION}-{digest(base, binary.read_bytes())}"
    if _has_image(engine, tag):
        return tag, True
    (binary.parent / "Dockerfile").write_text(
        f"FROM {base}\nCOPY toxiproxy /toxiproxy\nENTRYPOINT [\"/toxiproxy\"]\n"
        'CMD ["-host=0.0.0.0"]\n'
    )
    _docker_build(engine, binary.parent, "Dockerfile", tag, {})
    return tag, False


def build_wheels(backend: str) -> tuple[Path, bool]:
    """Wheels for a backend's requirements and the agent, built on the host with the host's
    Python 3.11."""
    requirements = ROOT / "backends" / backend / "requirements.txt"
    out = BUILD / "wheels" / backend
    stamp = out / ".requirements-digest"
    want = files_digest(requirements)
    cached = stamp.is_file() and stamp.read_text() == want
    if not cached:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
              "-r", str(requirements), "-w", str(out)], f"{backend} wheels (pip wheel)")
        stamp.write_text(want)
    agent_cached = build_agent_wheel(out)
    return out, cached and agent_cached


def build_agent_wheel(out: Path) -> bool:
    """The agent's wheel into ``out`` (an older one replaced), unless its sources are unchanged.

    Built from a copy of its sources: pip builds a local directory in place, and the build/ and
    .egg-info it leaves would land in agent/. Standard library only, so no dependency wheels.
    """
    stamp = out / ".agent-digest"
    want = files_digest(*AGENT_SOURCES)
    if stamp.is_file() and stamp.read_text() == want:
        return True
    for old in out.glob("queue_chaos_agent-*.whl"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "agent"
        source.mkdir()
        shutil.copy2(AGENT / "pyproject.toml", source / "pyproject.toml")
        shutil.copytree(AGENT / "queue_chaos_agent", source / "queue_chaos_agent",
                        ignore=shutil.ignore_patterns("__pycache__"))
        _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
              "--no-deps", str(source), "-w", str(out)], "agent wheel (pip wheel agent/)")
    stamp.write_text(want)
    return False


def build_backend_image(
    engine: docker.DockerClient, backend: str, base: str | None
) -> tuple[str, bool]:
    wheels, _ = build_wheels(backend)
    source = ROOT / "backends" / backend
    dockerfile = ROOT / "backends" / "Dockerfile"
    # The wheels by name (project and version), not by bytes: a wheel built here (the agent's,
    # an sdist-only dependency) differs in its zip timestamps on every build, and a fresh
    # checkout would build an image afresh for nothing. What the agent's wheel holds is in the
    # digest through its sources.
    names = sorted(wheel.name for wheel in wheels.glob("*.whl"))
    inputs = digest(base or "registry", files_digest(source, dockerfile, *AGENT_SOURCES), *names)
    tag = f"{repository()}/{backend}:{inputs}"
    if _has_image(engine, tag):
        return tag, True
    # The context holds only what the Dockerfile copies, laid out as it expects (from a
    # checkout or an installed package alike, whose build folder is elsewhere).
    context = BUILD / "contexts" / backend
    shutil.rmtree(context, ignore_errors=True)
    shutil.copytree(source, context / "backends" / backend,
                    ignore=shutil.ignore_patterns(*SKIPPED_PARTS, "*.pyc"))
    shutil.copy2(dockerfile, context / "backends" / "Dockerfile")
    shutil.copytree(wheels, context / "build" / "wheels" / backend)
    _docker_build(engine, context, "backends/Dockerfile", tag,
                  {"BACKEND": backend, **({"BASE_IMAGE": base} if base else {})})
    return tag, False


TARGET_DOCKERFILE = ROOT / "backends" / "target" / "Dockerfile"
# What the agent's producer serves with, installed beside a team's requirements; and
# async-timeout, which redis-py needs below Python 3.11.3 (the local image's Debian Python is
# 3.11.2) but which the host's newer Python leaves out when it resolves the wheels.
TARGET_EXTRAS = ("fastapi", "uvicorn", "async-timeout")


def build_target_image(
    engine: docker.DockerClient, target: Target, base: str | None
) -> tuple[str, bool]:
    """A team's app as an image: their source and requirements, the agent, the producer's web
    server. The tag hashes all of them, so an unchanged target builds nothing; a requirement that
    does not resolve fails here, with pip's own words."""
    context = BUILD / "targets" / target.name
    wheels = context / "wheels"
    inputs = digest(base or "registry", files_digest(target.source, root=target.source.parent),
                    target.requirements.read_bytes(), files_digest(*AGENT_SOURCES),
                    TARGET_DOCKERFILE.read_bytes())
    tag = f"{repository()}/target-{target.name}:{inputs}"
    if _has_image(engine, tag):
        return tag, True
    shutil.rmtree(context, ignore_errors=True)
    wheels.mkdir(parents=True)
    shutil.copy2(target.requirements, context / "requirements.txt")
    shutil.copytree(target.source, context / "source",
                    ignore=shutil.ignore_patterns(*SKIPPED_PARTS, "*.pyc"))
    shutil.copy2(TARGET_DOCKERFILE, context / "Dockerfile")
    step = f"target {target.name}: wheels for {target.requirements}"
    try:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet",
                        "--disable-pip-version-check", "-r", str(target.requirements),
                        *TARGET_EXTRAS, "-w", str(wheels)],
                       check=True, timeout=STEP_TIMEOUT_S, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        said = (exc.stderr or exc.stdout or "").strip().splitlines()[-6:]
        raise ProvisionError(f"{step}: the requirements do not resolve or build "
                             f"(pip wheel exited {exc.returncode}):\n" + "\n".join(said)) from None
    except subprocess.TimeoutExpired:
        raise ProvisionError(f"{step}: pip wheel took over {STEP_TIMEOUT_S}s") from None
    build_agent_wheel(wheels)
    _docker_build(engine, context, "Dockerfile", tag, {**({"BASE_IMAGE": base} if base else {})})
    return tag, False


# The agent names what it was given by its variables; the user wrote these keys.
AGENT_KEYS = {"QUEUE_CHAOS_APP": "[target] app", "QUEUE_CHAOS_QUEUE": "[target] queue",
              "QUEUE_CHAOS_WORKER_ARGS": "[target] worker_args",
              "QUEUE_CHAOS_TASK_ARGS": "[task] args", "QUEUE_CHAOS_TASK_KWARGS": "[task] kwargs",
              "QUEUE_CHAOS_TASK": "[task] name"}


def check_target(engine: docker.DockerClient, target: Target, image: str) -> None:
    """``queue-chaos-agent check`` in the built image, before any scenario: their app imports,
    the queue is consumed, the task is registered, the library version can be instrumented.
    Its one line becomes the error."""
    try:
        output = engine.containers.run(
            image, ["queue-chaos-agent", "check"], environment=target.env(), network_mode="none",
            remove=True, stdout=True, stderr=True,
            labels={MANAGED: "true", OWNER: owner_token(), f"{LABEL}.check": target.name})
    except docker.errors.ContainerError as exc:
        said = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
        line = said[-1] if said else f"queue-chaos-agent check exited {exc.exit_status}"
        for variable, key in AGENT_KEYS.items():  # in the words of the file they wrote
            line = line.replace(f"{variable}=", f"{key} = ")
        raise ProvisionError(f"{target.path}: {line}") from None
    log.info("target %s: %s", target.name, output.decode(errors="replace").strip())


def _docker_build(
    engine: docker.DockerClient, context: Path, dockerfile: str, tag: str, args: dict[str, str]
) -> None:
    try:
        engine.images.build(
            path=str(context), dockerfile=dockerfile, tag=tag, buildargs=args, rm=True,
            forcerm=True, pull=False, network_mode="none",
            labels={"io.queue-chaos.image": tag},
        )
    except docker.errors.BuildError as exc:
        tail = "".join(str(c.get("stream", c.get("error", ""))) for c in exc.build_log)[-3000:]
        raise ProvisionError(f"docker build of {tag} failed: {exc.msg}\n{tail}") from exc


def provision(
    engine: docker.DockerClient, mode: str = "local", targets: Sequence[Target] = (),
    backends: Collection[str] | None = None, brokers: Mapping[str, BrokerVersion] | None = None,
) -> tuple[dict[str, str], list[Timing]]:
    """Every image, built or found (a team's targets' too, each checked by the agent); returns
    the compose variables that name them. ``backends`` narrows the backend images to those a
    run needs (None: all); ``brokers`` names the broker releases it runs
    (``harness/brokerversions.py``; None: each broker's default).

    One provisioning at a time per build directory (worlds side by side, two runs of one
    checkout): they would build the same images and write the same build files at once. The
    lock is the kernel's (``flock``), so a process that dies holding it releases it.
    """
    BUILD.mkdir(parents=True, exist_ok=True)
    with (BUILD / "provision.lock").open("w") as lock:
        deadline = time.monotonic() + PROVISION_LOCK_S
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ProvisionError(
                        f"another process has been provisioning images for over "
                        f"{PROVISION_LOCK_S:.0f}s (it holds {BUILD / 'provision.lock'})"
                    ) from None
                time.sleep(0.5)
        return _provision(engine, mode, targets, backends, brokers)


def _provision(
    engine: docker.DockerClient, mode: str, targets: Sequence[Target],
    backends: Collection[str] | None, brokers: Mapping[str, BrokerVersion] | None,
) -> tuple[dict[str, str], list[Timing]]:
    if mode not in IMAGE_MODES:
        raise ProvisionError(f"CHAOS_IMAGES={mode!r}: expected one of {', '.join(IMAGE_MODES)}")
    timings: list[Timing] = []

    def step(name: str, result: tuple[str, bool], started: float) -> str:
        timings.append(Timing(name, time.monotonic() - started, result[1]))
        log.info("%-10s %s (%s, %.1fs)", name, result[0], "cached" if result[1] else "built",
                 timings[-1].seconds)
        return result[0]

    variables: dict[str, str] = {}
    base: str | None = None
    if mode == "local":
        t = time.monotonic()
        base = step("base", build_base(engine), t)
        variables["CHAOS_REDIS_IMAGE"] = base
        t = time.monotonic()
        variables["CHAOS_RABBITMQ_IMAGE"] = step("rabbitmq", build_rabbitmq(engine), t)
        t = time.monotonic()
        toxiproxy = build_toxiproxy_image(engine, base)
        variables["CHAOS_TOXIPROXY_IMAGE"] = step("toxiproxy", toxiproxy, t)
    for version in (brokers or {}).values():
        if mode == "registry":
            variables.update(version.variables(version.official))
        elif version.default:  # the images above are the default releases
            variables.update(version.variables(variables[version.variable]))
        else:
            t = time.monotonic()
            variables.update(version.variables(
                step(version.name, build_broker_version(engine, version), t)))
    for backend in registry_images():
        if backends is not None and backend not in backends:
            continue
        t = time.monotonic()
        variables[f"CHAOS_{backend.upper()}_IMAGE"] = step(
            backend, build_backend_image(engine, backend, base), t
        )
    for target in targets:
        t = time.monotonic()
        image = step(f"target {target.name}", build_target_image(engine, target, base), t)
        check_target(engine, target, image)
        variables[target.image_variable] = image
    if mode == "registry":
        from harness.topology import load  # the official images the compose file names

        for service in load(variables).services.values():
            if not _has_image(engine, service.image):
                engine.images.pull(service.image)
    BUILD.mkdir(exist_ok=True)
    IMAGES_FILE.write_text(json.dumps(variables, indent=2) + "\n")
    return variables, timings


def _ours(tags: list[str], prefix: str) -> bool:
    """An image of this repository alone: tagged, and every tag under ``prefix`` (one someone
    also tagged as theirs is not ours to remove)."""
    return bool(tags) and all(t.startswith(prefix) for t in tags)


def stale(images: Sequence[tuple[str, list[str], str]], keep: Collection[str],
          prefix: str) -> list[str]:
    """Of (id, tags, created) images, the ids to remove: this repository's images (every tag
    under ``prefix``) that are an earlier version of an image kept (same name, another tag) or,
    for a name not kept (a team's target, provisioned only when it runs), older than that
    name's newest image. Each change of an input leaves the previous image behind; the current
    one of every name stays."""
    kept_names = {t.rsplit(":", 1)[0] for t in keep}
    newest: dict[str, str] = {}
    for _, tags, created in images:
        for tag in tags:
            name = tag.rsplit(":", 1)[0]
            newest[name] = max(newest.get(name, ""), created)
    doomed: list[str] = []
    for image_id, tags, created in images:
        if not _ours(tags, prefix) or set(tags) & set(keep):
            continue
        names = {t.rsplit(":", 1)[0] for t in tags}
        if all(n in kept_names or created < newest[n] for n in names):
            doomed.append(image_id)
    return doomed


def prune(engine: docker.DockerClient, keep: Collection[str],
          repository_name: str | None = None, everything: bool = False) -> list[str]:
    """Remove this repository's stale images (``stale``; every one of them with ``everything``,
    how a cold measurement's images go). Images a container still uses stay (the engine
    refuses); returns the tags removed."""
    prefix = f"{repository_name or repository()}/"
    listed = [(i.id, list(i.tags), str(i.attrs.get("Created", ""))) for i in engine.images.list()]
    doomed = ([i for i, tags, _ in listed if _ours(tags, prefix)]
              if everything else stale(listed, keep, prefix))
    tags_of = {i: tags for i, tags, _ in listed}
    removed: list[str] = []
    for image_id in doomed:
        try:
            engine.images.remove(image_id, noprune=False)
        except docker.errors.APIError:
            continue  # in use by a container (another run's), or a parent of one kept
        removed.extend(tags_of[image_id])
    return sorted(removed)


def recorded_images() -> dict[str, str]:
    """The image variables the last provisioning wrote, or a clear error if there was none."""
    if not IMAGES_FILE.is_file():
        raise ProvisionError(f"{IMAGES_FILE} is missing: run `make images` first")
    data = json.loads(IMAGES_FILE.read_text())
    return {str(k): str(v) for k, v in data.items()}
