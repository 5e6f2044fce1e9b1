"""Operations tooling on top of the runtime: the release gates (gates, gate_checks), the load
test (loadtest, loadtest_clients), the three-validator determinism check (determinism) and a
``bizra serve`` subprocess on loopback (serve_process). Nothing in the runtime imports it."""
