"""``bizra serve``: configuration (ServiceConfig) and the command line that starts the node's HTTP API.

The service is split by concept:

- engine.service (this module): ``ServiceConfig`` read from the environment, ``add_cli`` /
  ``cmd_serve`` / ``serve`` / ``main``. It imports no FastAPI or uvicorn at module level, so
  every other ``bizra`` command runs without the optional ``serve`` extra; ``serve`` imports
  them when it starts the server.
- engine.service_app: ``create_app``, the routes, the request/response models (the OpenAPI
  document) and the error contract.
- engine.node_state: the live node behind the routes (``NodeState``, ``Snapshot``) and the
  parsing of attestation uploads (``Upload``, ``parse_upload``).
- engine.http_guards: the pure-ASGI middlewares ``BodyLimit`` (413) and ``TokenGate`` (401/503).

``create_app`` is re-exported here lazily (``from engine.service import create_app`` loads
FastAPI only then). Before it binds, ``serve`` checks the BIZRA_* verifier settings and that
RPC_PORT (and PROMETHEUS_PORT when metrics are on) are free, so a bad setting is one stderr
line and exit 2 rather than a traceback.

Example::

    app = create_app(ServiceConfig.from_env("data"))
    # uvicorn.run(app, host="127.0.0.1", port=9944)
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import BizraError, InputError
from engine.verify import resolve_backend, resolve_batch, resolve_threads

if TYPE_CHECKING:
    from engine.service_app import create_app

__all__ = ["ServiceConfig", "add_cli", "cmd_serve", "create_app", "main", "serve"]

MiB = 1 << 20


def __getattr__(name: str) -> Any:
    """``create_app`` on first use: importing it pulls in FastAPI (the optional ``serve`` extra)."""
    if name == "create_app":
        from engine.service_app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---- configuration -----------------------------------------------------------------------


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
    """Everything the service reads from its environment (DESIGN section 6), resolved once."""

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

    @classmethod
    def from_env(cls, data_dir: str | os.PathLike[str], host: str = "127.0.0.1",
                 env: Mapping[str, str] | None = None) -> ServiceConfig:
        """Read RPC_PORT, PROMETHEUS_PORT, METRICS_ENABLED, BIZRA_API_TOKEN, BIZRA_MAX_BODY_BYTES and
        BIZRA_MICROBATCH_MAX / BIZRA_MICROBATCH_WAIT_US (1 / 0 turn coalescing off, for comparisons).

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
        )

# ---- CLI ---------------------------------------------------------------------------------


def add_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``bizra serve`` on an argparse subparsers object; the command is ``cmd_serve``."""
    p = subparsers.add_parser(
        "serve", help="run the node's HTTP API and Prometheus metrics over a data directory",
        description="Serve the HTTP API on RPC_PORT (9944) and metrics on PROMETHEUS_PORT (9464, when "
        "METRICS_ENABLED=1). BIZRA_API_TOKEN enables signing and job submission; BIZRA_MAX_BODY_BYTES "
        "limits request bodies (16 MiB). BIZRA_VERIFY_BACKEND, POI_BATCH_VERIFY, BIZRA_THREADS as for "
        "bizra run.")
    p.add_argument("--data", type=Path, required=True, help="data directory (validators.parquet, blocks.parquet, ...)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=cmd_serve)
    return p


def _check_port(host: str, port: int, name: str) -> None:
    """One clear line for a port already taken (uvicorn would log a traceback-ish message and exit 1)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no conflict
        try:
            s.bind((host, port))
        except OSError as exc:
            raise InputError(f"{name}: cannot listen on {host}:{port} ({exc.strerror})") from None


def serve(args: argparse.Namespace) -> int:
    """Run the service until SIGINT/SIGTERM. Example: ``serve(parser.parse_args(["serve", "--data", "d"]))``."""
    import uvicorn  # the optional ``serve`` extra: imported only to run the server

    from engine.service_app import create_app

    config = ServiceConfig.from_env(args.data, host=args.host)
    if not config.data_dir.is_dir():
        raise InputError(f"{config.data_dir}: no such data directory")
    resolve_backend(), resolve_threads(), resolve_batch()  # a bad BIZRA_* value stops here, not per request
    for name, port in (("RPC_PORT", config.rpc_port), ("PROMETHEUS_PORT", config.prometheus_port)):
        if name == "RPC_PORT" or config.metrics_enabled:
            _check_port(config.host, port, name)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_app(config), host=config.host, port=config.rpc_port, log_level=args.log_level,
                access_log=False, lifespan="on")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """``bizra serve``: configuration errors are one stderr line, exit 2."""
    try:
        return serve(args)
    except (BizraError, ValueError) as exc:
        print(f"bizra serve: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point: ``python -c "from engine.service import main; main(['--data', 'd'])"``."""
    parser = argparse.ArgumentParser(prog="bizra")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["serve", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)
