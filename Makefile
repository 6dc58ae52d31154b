# The two commands a user needs (see README.md):
#   make durability   run the scenario matrix, write reports/durability.md (+ .json)
#   make test         the harness's own test suite (unit tests, then container tests)
# Both set up the host first (tools/host-setup) and build or reuse the images.

PY := .venv/bin/python
# Go (for the Toxiproxy build) may live outside a bare environment's PATH.
export PATH := $(PATH):/usr/local/go/bin:/usr/sbin:/sbin
SEED ?=
BACKENDS ?=
CONFIGS ?=
FAULTS ?=
SET ?=
TARGET ?=
# Broker releases (harness/brokerversions.py), e.g. BROKERS=redis-8.0,rabbitmq-4.0 or BROKERS=trixie.
BROKERS ?=
# Worlds side by side for `make durability` (auto: what this machine holds; 1: one at a time).
WORLDS ?= auto
# Trials for `make durability`: the whole selection N times (seed, seed+1, ...), one report.
TRIALS ?= 1
PYTEST_ARGS ?=
comma := ,

.PHONY: setup engine images durability versions bench gate stability test test-unit test-agent test-container lint reap reproduce

RUNS ?= 3

setup:
	bash tools/host-setup

engine: setup

images: setup
	$(PY) -m harness images

# PROFILE=clusters: the clustered brokers (a RabbitMQ cluster, Redis with Sentinel) under node
# faults, kept out of the default matrix for time; its report goes to reports/clusters/.
PROFILE ?= default
durability: setup
	$(PY) -m harness run $(if $(SEED),--seed $(SEED)) --profile $(PROFILE) \
	  $(if $(filter-out default,$(PROFILE)),--report-dir reports/$(PROFILE)) \
	  $(if $(BACKENDS),--backends $(BACKENDS)) $(if $(CONFIGS),--configs $(CONFIGS)) \
	  $(if $(FAULTS),--faults $(FAULTS)) $(if $(TARGET),--target $(TARGET)) \
	  $(if $(SET),--set '$(SET)') $(if $(BROKERS),--brokers $(BROKERS)) \
	  --worlds $(WORLDS) --trials $(TRIALS) \
	  $(if $(PYTEST_ARGS),-- $(PYTEST_ARGS))

# The broker release as an axis: the selection (default: worker and broker kills) once per pass of
# releases (bookworm: Redis 7.0 + RabbitMQ 3.10; trixie: Redis 8.0 + RabbitMQ 4.0; valkey:
# Valkey 8.1), same seed -> reports/versions.md (+ .json). PASSES=trixie,valkey narrows it.
PASSES ?=
versions: setup
	$(PY) -m harness versions $(if $(SEED),--seed $(SEED)) $(if $(PASSES),--passes $(PASSES)) \
	  $(if $(BACKENDS),--backends $(BACKENDS)) $(if $(CONFIGS),--configs $(CONFIGS)) \
	  $(if $(FAULTS),--faults $(FAULTS)) --worlds $(WORLDS) --trials $(TRIALS)

# Upstream bugs, reproduced (harness/reproductions.py) -> reports/reproductions.md (+ .json);
# REPRODUCE=celery-3541,arq-498 runs only those (default: every one); PASSES=bookworm,trixie,valkey
# runs each on every pass of broker releases: a verdict per version.
REPRODUCE ?=
reproduce: setup
	$(PY) -m harness reproduce $(subst $(comma), ,$(REPRODUCE)) $(if $(SEED),--seed $(SEED)) \
	  $(if $(PASSES),--passes $(PASSES))

# What the harness itself costs (CPU and memory per task, overhead per scenario) -> reports/bench.md
bench: setup
	$(PY) -m harness bench

# CI gate on the last report: fails when the chosen configurations break their claims
# (ALLOW=inconclusive accepts inconclusive verdicts; JUNIT=path also writes JUnit XML).
gate:
	$(PY) -m harness gate $(if $(CONFIGS),--configs $(CONFIGS)) $(if $(FAULTS),--faults $(FAULTS)) \
	  $(if $(ALLOW),--allow $(ALLOW)) $(if $(JUNIT),--junit $(JUNIT))

# Do the verdicts hold still? `make durability TRIALS=$(RUNS)`: the selection RUNS times (seed,
# seed+1, ...), one reports/durability.md whose cells hold every trial and name the changed ones.
stability:
	$(MAKE) durability TRIALS=$(RUNS)

# The images are provisioned in the background while the unit and agent tests run (a cold
# provisioning takes a minute and a half, mostly waiting on apt and PyPI); the container tests
# start once it is done, and find every image cached. Its output is shown if it fails.
test: setup
	@mkdir -p build; $(PY) -m harness images >build/provision.log 2>&1 & images=$$!; \
	status=0; $(PY) -m pytest tests/unit -p no:cacheprovider -q && $(MAKE) test-agent || status=$$?; \
	if ! wait $$images; then cat build/provision.log; exit 1; fi; \
	echo "images: $$(grep 'images ready' build/provision.log)"; \
	[ $$status -eq 0 ] || exit $$status; \
	$(MAKE) test-container

# The agent against the real libraries, each in an environment of its own (Celery's and arq's
# releases cannot share one), on a redis-server of its own: the harness's plugin is not loaded.
AGENT_VENVS := build/agent-venvs
test-agent:
	bash tools/agent-venv $(AGENT_VENVS)/celery backends/celery/requirements.txt
	bash tools/agent-venv $(AGENT_VENVS)/arq backends/arq/requirements.txt
	bash tools/agent-venv $(AGENT_VENVS)/rq backends/rq/requirements.txt
	bash tools/agent-venv $(AGENT_VENVS)/dramatiq backends/dramatiq/requirements.txt
	$(AGENT_VENVS)/celery/bin/python -m pytest tests/agent/test_celery_agent.py --noconftest \
	  -p no:cacheprovider -p no:queue_chaos -q
	$(AGENT_VENVS)/arq/bin/python -m pytest tests/agent/test_arq_agent.py --noconftest \
	  -p no:cacheprovider -p no:queue_chaos -q
	$(AGENT_VENVS)/rq/bin/python -m pytest tests/agent/test_rq_agent.py --noconftest \
	  -p no:cacheprovider -p no:queue_chaos -q
	$(AGENT_VENVS)/dramatiq/bin/python -m pytest tests/agent/test_dramatiq_agent.py --noconftest \
	  -p no:cacheprovider -p no:queue_chaos -q

test-unit:
	$(PY) -m pytest tests/unit -p no:cacheprovider -q

# The container tests in TEST_WORLDS worlds side by side (pytest-xdist workers, a test file
# each at a time: a file's tests share its world and its run's self-proof).
TEST_WORLDS ?= 4
test-container: setup
	$(PY) -m pytest tests/container -p no:cacheprovider -v -n $(TEST_WORLDS) --dist loadfile --durations=12 \
	  $(PYTEST_ARGS)

lint:
	$(PY) -m ruff check .
	$(PY) -m mypy

reap: setup
	$(PY) -m harness reap
