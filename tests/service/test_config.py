"""ServiceConfig: every variable read from the environment, with its range checks."""
from __future__ import annotations


import pytest

from engine.model.errors import InputError
from engine.service.config import ServiceConfig


def test_config_from_environment() -> None:
    c = ServiceConfig.from_env("d", env={})
    assert (c.rpc_port, c.prometheus_port, c.metrics_enabled, c.api_token, c.max_body_bytes) == (9944, 9464, True, None, 16 << 20)
    c = ServiceConfig.from_env("d", env={"RPC_PORT": "8080", "PROMETHEUS_PORT": "9000", "METRICS_ENABLED": "0",
                                         "BIZRA_API_TOKEN": "t", "BIZRA_MAX_BODY_BYTES": "4096",
                                         "BIZRA_MICROBATCH_MAX": "1", "BIZRA_MICROBATCH_WAIT_US": "0"})
    assert (c.rpc_port, c.prometheus_port, c.metrics_enabled, c.api_token, c.max_body_bytes) == (8080, 9000, False, "t", 4096)
    assert (c.batch_max, c.batch_wait_s) == (1, 0.0)
    assert ServiceConfig.from_env("d", env={"BIZRA_API_TOKEN": ""}).api_token is None
    for env, name in (({"RPC_PORT": "x"}, "RPC_PORT"), ({"PROMETHEUS_PORT": "70000"}, "PROMETHEUS_PORT"),
                      ({"METRICS_ENABLED": "maybe"}, "METRICS_ENABLED"), ({"BIZRA_MAX_BODY_BYTES": "1"}, "BIZRA_MAX_BODY_BYTES")):
        with pytest.raises(InputError, match=name):
            ServiceConfig.from_env("d", env=env)




def test_waiting_pool_bounds_from_environment() -> None:
    c = ServiceConfig.from_env("d", env={})
    assert (c.max_waiting_blocks, c.max_waiting_votes) == (100_000, 500_000)
    c = ServiceConfig.from_env("d", env={"BIZRA_MAX_WAITING_BLOCKS": "0", "BIZRA_MAX_WAITING_VOTES": "7"})
    assert (c.max_waiting_blocks, c.max_waiting_votes) == (0, 7)
    for name in ("BIZRA_MAX_WAITING_BLOCKS", "BIZRA_MAX_WAITING_VOTES"):
        with pytest.raises(InputError, match=f"{name}: must be within 0"):
            ServiceConfig.from_env("d", env={name: "-1"})
