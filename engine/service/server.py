"""``bizra serve``: the command line that starts the node's HTTP API.

The service is split by concept (engine.service):

- engine.service.config: ``ServiceConfig`` read from the environment;
- engine.service.server (this module): ``add_cli`` / ``cmd_serve`` / ``serve``. It imports no
  FastAPI or uvicorn at module level, so every other ``bizra`` command runs without the
  optional ``serve`` extra; ``serve`` imports them when it starts the server;
- engine.service.app: ``create_app``, the routes, the error contract (domain errors -> status
  codes); engine.service.api_models: the request/response models (the OpenAPI document);
- engine.service.node_state: the live node behind the routes (``NodeState``, ``Snapshot``);
- engine.service.http_guards: the pure-ASGI middlewares ``BodyLimit`` (413) and ``TokenGate``
  (401/503); engine.service.metrics, engine.service.microbatch, engine.service.jobs_runner.

Before it binds, ``serve`` checks the BIZRA_* verifier settings and that RPC_PORT (and
PROMETHEUS_PORT when metrics are on) are free, so a bad setting is one stderr line and exit 2
rather than a traceback.

Example::

    serve(parser.parse_args(["serve", "--data", "data"]))
"""
from __future__ import annotations

import argparse
import logging
import socket
import sys
from pathlib import Path
from typing import Any

from engine.model.errors import BizraError, InputError
from engine.service.config import ServiceConfig
from engine.verification.api import resolve_backend, resolve_batch, resolve_threads, use_heap_scratch

__all__ = ["add_cli", "cmd_serve", "serve"]


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

    from engine.service.app import create_app

    config = ServiceConfig.from_env(args.data, host=args.host)
    if not config.data_dir.is_dir():
        raise InputError(f"{config.data_dir}: no such data directory")
    resolve_backend(), resolve_threads(), resolve_batch()  # a bad BIZRA_* value stops here, not per request
    for name, port in (("RPC_PORT", config.rpc_port), ("PROMETHEUS_PORT", config.prometheus_port)):
        if name == "RPC_PORT" or config.metrics_enabled:
            _check_port(config.host, port, name)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    use_heap_scratch()  # the server owns its process (see use_heap_scratch)
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

