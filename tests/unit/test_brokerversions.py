"""The broker-release catalogue and --brokers / --passes parsing."""

from __future__ import annotations

import re

import pytest

from harness import brokerversions as bv


def test_no_names_is_each_brokers_default() -> None:
    chosen = bv.parse("")
    assert {b: v.name for b, v in chosen.items()} == {"redis": "redis-7.0",
                                                       "rabbitmq": "rabbitmq-3.10"}
    assert all(v.default for v in chosen.values())


def test_a_release_replaces_only_its_brokers_default() -> None:
    chosen = bv.parse("redis-8.0")
    assert chosen["redis"].name == "redis-8.0"
    assert chosen["rabbitmq"].name == "rabbitmq-3.10"
    assert bv.label(chosen) == "redis-8.0,rabbitmq-3.10"


def test_a_pass_name_stands_for_its_releases() -> None:
    assert bv.label(bv.parse("trixie")) == "redis-8.0,rabbitmq-4.0"
    assert bv.parse("valkey")["redis"].server == "valkey-server"


def test_unknown_release_names_every_valid_one() -> None:
    with pytest.raises(ValueError, match=re.escape(
            "unknown broker version redis-9; valid: redis-7.0, redis-8.0, valkey-8.1, "
            "rabbitmq-3.10, rabbitmq-4.0")):
        bv.parse("redis-9")


def test_two_releases_of_one_broker_are_refused() -> None:
    with pytest.raises(ValueError, match=re.escape("redis-8.0 and valkey-8.1 are both")):
        bv.parse("redis-8.0,valkey-8.1")


def test_variables_name_the_image_and_the_redis_servers_command() -> None:
    valkey = bv.CATALOGUE["valkey-8.1"]
    assert valkey.variables("img") == {"CHAOS_REDIS_IMAGE": "img",
                                       "CHAOS_REDIS_SERVER": "valkey-server"}
    assert bv.CATALOGUE["rabbitmq-4.0"].variables("img") == {"CHAOS_RABBITMQ_IMAGE": "img"}


def test_passes() -> None:
    assert bv.parse_passes("") == ["bookworm", "trixie", "valkey"]
    assert bv.parse_passes("valkey,trixie,valkey") == ["valkey", "trixie"]
    assert bv.pass_brokers("valkey") == {"redis"}
    assert bv.pass_brokers("trixie") == {"redis", "rabbitmq"}
    with pytest.raises(ValueError, match="unknown pass sid; valid: bookworm"):
        bv.parse_passes("sid")


def test_every_release_names_a_known_broker_and_one_default_each() -> None:
    defaults = [v.broker for v in bv.CATALOGUE.values() if v.default]
    assert sorted(defaults) == sorted(bv.IMAGE_VARIABLES)
    for version in bv.CATALOGUE.values():
        assert version.broker in bv.IMAGE_VARIABLES
        assert version.packages
