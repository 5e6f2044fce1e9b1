"""The service's configuration: ``ServiceConfig``, read once from the environment.

Variables (docs/design.md, section "Configuration"): RPC_PORT, PROMETHEUS_PORT,
METRICS_ENABLED, BIZRA_API_TOKEN, BIZRA_MAX_BODY_BYTES, BIZRA_MICROBATCH_MAX,
BIZRA_MICROBATCH_WAIT_US, BIZRA_MAX_WAITING_BLOCKS, BIZRA_MAX_WAITING_VOTES (the verifier's own BIZRA_VERIFY_BACKEND, POI_BATCH_VERIFY and
BIZRA_THREADS are read by engine.verification.api).

Example: ``ServiceConfig.from_env("data", env={"RPC_PORT": "8080"}).rpc_port == 8080``.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from engine.model.errors import InputError

__all__ = ["MiB", "ServiceConfig"]

MiB = 1 << 20


def _env_int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"{name}: not an integer: {raw!r}") from None
    if not lo <= value <= hi:
        raise InputError(f"{name}: must be within {lo}..{hi}, got {value}")
    return value


@dataclasses.dataclass(frozen=True)
class ServiceConfig:
    """Everything the service reads from its environment, resolved once."""

    data_dir: Path
    host: str = "127.0.0.1"
    rpc_port: int = 9944
    prometheus_port: int = 9464
    metrics_enabled: bool = True
    api_token: str | None = None
    max_body_bytes: int = 16 * MiB
    batch_max: int = 256
    batch_wait_s: float = 0.001
    bps: int = 6667
    job_queue: int = 4
    max_waiting_blocks: int = 100_000  # blocks waiting for their parent (engine.service.node_state)
    max_waiting_votes: int = 500_000   # votes waiting for their target block

    @classmethod
    def from_env(cls, data_dir: str | os.PathLike[str], host: str = "127.0.0.1",
                 env: Mapping[str, str] | None = None) -> ServiceConfig:
        """Read RPC_PORT, PROMETHEUS_PORT, METRICS_ENABLED, BIZRA_API_TOKEN, BIZRA_MAX_BODY_BYTES,
        BIZRA_MICROBATCH_MAX / BIZRA_MICROBATCH_WAIT_US (1 / 0 turn coalescing off, for comparisons)
        and BIZRA_MAX_WAITING_BLOCKS / BIZRA_MAX_WAITING_VOTES (0: nothing may wait).

        Example: ``ServiceConfig.from_env("data", env={"RPC_PORT": "8080"}).rpc_port == 8080``.
        """
        env = os.environ if env is None else env
        flag = env.get("METRICS_ENABLED", "1").strip().lower()
        if flag not in ("0", "1", "true", "false", "yes", "no", "on", "off", ""):
            raise InputError(f"METRICS_ENABLED: expected 0 or 1, got {flag!r}")
        return cls(
            data_dir=Path(data_dir), host=host,
            rpc_port=_env_int(env, "RPC_PORT", 9944, 0, 65535),
            prometheus_port=_env_int(env, "PROMETHEUS_PORT", 9464, 0, 65535),
            metrics_enabled=flag in ("1", "true", "yes", "on", ""),
            api_token=env.get("BIZRA_API_TOKEN") or None,
            max_body_bytes=_env_int(env, "BIZRA_MAX_BODY_BYTES", 16 * MiB, 1024, 1 << 31),
            batch_max=_env_int(env, "BIZRA_MICROBATCH_MAX", 256, 1, 16384),
            batch_wait_s=_env_int(env, "BIZRA_MICROBATCH_WAIT_US", 1000, 0, 1_000_000) / 1e6,
            max_waiting_blocks=_env_int(env, "BIZRA_MAX_WAITING_BLOCKS", 100_000, 0, 100_000_000),
            max_waiting_votes=_env_int(env, "BIZRA_MAX_WAITING_VOTES", 500_000, 0, 1_000_000_000),
        )
