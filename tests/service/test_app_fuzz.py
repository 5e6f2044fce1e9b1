"""API fuzzing: schemathesis generates requests from the app's own OpenAPI document (valid and
invalid ones) and every response must be a non-5xx that matches the documented status codes.

The requests go through httpx.ASGITransport, which re-raises anything the app lets escape, so a
crash fails the case with its traceback. BIZRA_FUZZ_EXAMPLES sets examples per operation and
generation mode (default 70: about 1100 cases, asserted >= 1000; Hypothesis stops early on
operations whose input space is small, and finds nothing to negate for input-less GETs).
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, status_code_conformance
from tests.support.app_harness import TOKEN, Api, config as _config, running

from engine.synthetic import generate_dataset

EXAMPLES = int(os.environ.get("BIZRA_FUZZ_EXAMPLES", "70"))


@pytest.fixture(scope="module")
def fuzz_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data = tmp_path_factory.mktemp("fuzz")
    generate_dataset(data, validators=4, blocks=8, attestations=32, seed=3, threads=1, progress=False)
    with running(_config(data)) as a:
        assert a.wait_ready().status_code == 200
        yield a


def _send(api: Api, case: Any) -> httpx.Response:
    kw = case.as_transport_kwargs(base_url="http://bizra.test", headers={"Authorization": f"Bearer {TOKEN}"})
    if "data" in kw:  # requests-style raw body -> httpx
        kw["content"] = kw.pop("data")
    kw.pop("cookies", None)
    return api(kw.pop("method"), kw.pop("url"), **{k: v for k, v in kw.items() if v is not None})


# schemathesis' own pytest plugin does not run under pytest 9 (it reads Function._nodeid), so the
# cases come from its Hypothesis strategies, one operation and generation mode at a time.
def _operations(api: Api) -> list[Any]:
    schema = schemathesis.openapi.from_dict(api.app.openapi())
    return [result.ok() for result in schema.get_all_operations()]


def test_fuzz_no_server_errors(fuzz_api: Api) -> None:
    ops = _operations(fuzz_api)
    assert len(ops) == 12  # every route of the API, cancel included
    counted: list[int] = []
    modes = set()
    for mode in GenerationMode:  # positive (schema-valid) and negative (schema-violating) requests
        for op in ops:
            @given(op.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            def run(case: Any) -> None:
                counted.append(1)
                response = _send(fuzz_api, case)
                case.validate_response(response, checks=[not_a_server_error, status_code_conformance])

            before = len(counted)
            try:
                run()
            except Unsatisfiable:  # nothing to make invalid: GET /healthz and friends take no input
                assert mode is GenerationMode.NEGATIVE and op.method.upper() == "GET" and "{" not in op.path, op.label
            if len(counted) > before:
                modes.add(mode)
    if EXAMPLES >= 70:  # the default: the issue asks for at least 1000 generated cases
        assert len(counted) >= 1000, len(counted)
    assert modes == set(GenerationMode)
