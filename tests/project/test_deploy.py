"""deploy/: manifests, Prometheus rules, Grafana dashboard and Dockerfile, checked for real.

- every Kubernetes manifest through kubernetes-validate (strict) and the ServiceMonitor through
  the JSON schema shipped in deploy/schemas/ (kubernetes-validate knows no CRDs);
- ``promtool check rules`` / ``promtool test rules`` on deploy/prometheus (they fail, not skip,
  under CI=true when promtool is missing), and every dashboard query through promtool's parser;
- cross-checks that catch drift between the artifacts and the code: metric names against the
  service's own registry, ConfigMap keys and values against the settings the code reads, ports,
  probe paths against the FastAPI routes, the container command against the CLI parser, and the
  references between manifests (Secret, ConfigMap, PVC, Service ports, Ingress backends).

The dashboard's queries are executed against a real Prometheus by the service end-to-end test.
"""
from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from engine.cli import build_parser
from engine.service.metrics import Metrics
from engine.service.server import ServiceConfig
from engine.verification.api import backend_name, resolve_batch, resolve_threads

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
RULES = DEPLOY / "prometheus" / "rules.yaml"
DASHBOARD = DEPLOY / "grafana" / "bizra-dashboard.json"
DOCKERFILE = DEPLOY / "Dockerfile"

# docs/design.md, "Configuration": the settings every deployment artifact names, exactly these.
DESIGN_SETTINGS = {"POI_BATCH_VERIFY", "BIZRA_VERIFY_BACKEND", "BIZRA_THREADS", "PROMETHEUS_PORT",
                   "METRICS_ENABLED", "RPC_PORT", "BIZRA_MAX_WAITING_BLOCKS", "BIZRA_MAX_WAITING_VOTES",
                   "BIZRA_KEY_TABLES_MB"}
# Series Prometheus itself makes (not exported by the service) that rules may use.
PROMETHEUS_SERIES = {"up"}
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
CRD_SCHEMAS = {("monitoring.coreos.com/v1", "ServiceMonitor"): DEPLOY / "schemas" / "servicemonitor-v1.json"}


def load_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    """Every object under deploy/k8s by (kind, name)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in load_docs(path):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in out, f"{path.name}: {key} defined twice"
            out[key] = doc
    return out


def containers(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    spec = deployment["spec"]["template"]["spec"]
    return {c["name"]: c for c in spec.get("initContainers", []) + spec["containers"]}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("promtool not found: CI must install Debian's prometheus package (.ci/run)")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return path


def run_promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def metric_names(expr: str) -> set[str]:
    """Series names a PromQL expression selects (strings, label matchers, ranges, grouping and
    function names removed; what remains as identifiers are series names)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    s = re.sub(r"\{[^}]*\}", "", s)
    s = re.sub(r"\[[^\]]*\]", "", s)
    s = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", s)
    return {n for n in re.findall(r"(?<![\w:.$])([A-Za-z_:][\w:]*)\b(?!\s*\()", s)} - PROMQL_WORDS


def exported_series() -> set[str]:
    """Sample names one scrape of the service can show (every labelled family touched once)."""
    m = Metrics()
    m.request("GET", "/healthz", 200, 0.001)
    return {s.name for family in m.registry.collect() for s in family.samples}


def dashboard_targets() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(p, t) for p in panels if p["type"] != "row" for t in p.get("targets", [])]


def dockerfile_env() -> dict[str, str]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    runtime = text.split("\nFROM ")[-1]  # the last stage is the image
    env: dict[str, str] = {}
    for line in runtime.splitlines():
        if line.startswith("ENV "):
            env.update(tok.split("=", 1) for tok in shlex.split(line[4:]))
    return env


# ---- Kubernetes manifests -----------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(K8S.glob("*.yaml")), ids=lambda p: p.name)
def test_manifest_validates_strictly(path: Path) -> None:
    docs = load_docs(path)
    assert docs, f"{path.name}: no objects"
    for doc in docs:
        crd = CRD_SCHEMAS.get((doc["apiVersion"], doc["kind"]))
        if crd is not None:
            schema = json.loads(crd.read_text())
            jsonschema.Draft202012Validator.check_schema(schema)
            jsonschema.Draft202012Validator(schema).validate(doc)
        else:
            kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_validation_rejects_typos() -> None:
    """The two validators above do reject a misspelt field (strict mode, additionalProperties)."""
    objs = manifests()
    bad = copy.deepcopy(objs[("Deployment", "bizra")])
    bad["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, kubernetes_validate.latest_version(), strict=True)
    schema = json.loads(CRD_SCHEMAS[("monitoring.coreos.com/v1", "ServiceMonitor")].read_text())
    bad = copy.deepcopy(objs[("ServiceMonitor", "bizra")])
    bad["spec"]["endpoints"][0]["intervall"] = "5s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema, cls=jsonschema.Draft202012Validator)
    bad["spec"]["endpoints"][0] = {"port": "metrics", "interval": "5 seconds"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema, cls=jsonschema.Draft202012Validator)


def test_configmap_holds_exactly_the_design_settings_and_the_code_accepts_them(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data = manifests()[("ConfigMap", "bizra-config")]["data"]
    assert set(data) == DESIGN_SETTINGS
    readme = (ROOT / "README.md").read_text()
    for name in DESIGN_SETTINGS:
        assert f"`{name}`" in readme, f"{name} missing from the README's configuration table"
    config = ServiceConfig.from_env(tmp_path, env=data)
    assert (config.rpc_port, config.prometheus_port, config.metrics_enabled) == (
        int(data["RPC_PORT"]), int(data["PROMETHEUS_PORT"]), True)
    assert (config.max_waiting_blocks, config.max_waiting_votes) == (
        int(data["BIZRA_MAX_WAITING_BLOCKS"]), int(data["BIZRA_MAX_WAITING_VOTES"]))
    for name, value in data.items():
        monkeypatch.setenv(name, value)
    assert backend_name() == data["BIZRA_VERIFY_BACKEND"]
    assert resolve_threads() == int(data["BIZRA_THREADS"])
    assert resolve_batch() is True


def test_deployment_wiring() -> None:
    objs = manifests()
    dep = objs[("Deployment", "bizra")]
    pod = dep["spec"]["template"]["spec"]
    main = containers(dep)["bizra"]
    config = objs[("ConfigMap", "bizra-config")]["data"]

    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert ports == {"rpc": int(config["RPC_PORT"]), "metrics": int(config["PROMETHEUS_PORT"])}

    args = build_parser().parse_args(main["command"][1:])  # the real CLI accepts the command
    assert main["command"][0] == "bizra" and args.command == "serve"
    mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
    assert mounts[str(args.data)] == "data" and "/tmp" in mounts

    env = {e["name"]: e for e in main["env"]}
    ref = env["BIZRA_API_TOKEN"]["valueFrom"]["secretKeyRef"]
    secret = objs[("Secret", ref["name"])]
    assert ref["key"] in secret["stringData"]
    assert [s["configMapRef"]["name"] for s in main["envFrom"]] == ["bizra-config"]

    volumes = {v["name"]: v for v in pod["volumes"]}
    for c in containers(dep).values():
        assert {m["name"] for m in c["volumeMounts"]} <= set(volumes)
    assert ("PersistentVolumeClaim", volumes["data"]["persistentVolumeClaim"]["claimName"]) in objs

    # Numba needs a writable cache dir: the init container copies the image's cache onto it.
    cache = env["NUMBA_CACHE_DIR"]["value"]
    assert mounts[cache] == "numba-cache"
    init = containers(dep)["numba-cache"]
    assert init["command"][:3] == ["cp", "-a", dockerfile_env()["NUMBA_CACHE_DIR"] + "/."]
    assert init["command"][3].rstrip("/") == cache and init["image"] == main["image"]


def test_deployment_is_locked_down() -> None:
    dep = manifests()[("Deployment", "bizra")]
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    uid = re.search(r"useradd .*--uid (\d+)", DOCKERFILE.read_text())
    assert uid and pod["securityContext"]["runAsUser"] == int(uid.group(1))
    for c in containers(dep).values():
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"] and sc["runAsNonRoot"] is True
        assert c["resources"]["limits"] and c["resources"]["requests"]


def test_probes_hit_routes_the_app_serves(tmp_path: Path) -> None:
    from engine.service.app import create_app

    app = create_app(ServiceConfig(data_dir=tmp_path, metrics_enabled=False))
    routes = {(m, r.path) for r in app.routes for m in getattr(r, "methods", ()) or ()}
    main = containers(manifests()[("Deployment", "bizra")])["bizra"]
    probes = {kind: main[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"]["path"] == "/healthz" and probes["readinessProbe"]["path"] == "/readyz"
    for probe in probes.values():
        assert ("GET", probe["path"]) in routes
        assert probe["port"] in {p["name"] for p in main["ports"]}
    assert re.search(r"/healthz", DOCKERFILE.read_text().split("HEALTHCHECK", 1)[1].split("\n\n")[0])


def test_canary_deployment_differs_only_in_identity() -> None:
    objs = manifests()
    stable, canary = objs[("Deployment", "bizra")], copy.deepcopy(objs[("Deployment", "bizra-canary")])
    assert canary["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "canary"
    canary["metadata"]["name"] = "bizra"
    text = json.dumps(canary).replace('"canary"', '"stable"').replace("bizra-canary-data", "bizra-data")
    canary = json.loads(text)
    for c in containers(canary).values():
        assert c["image"] != containers(stable)[c["name"]]["image"]
        c["image"] = containers(stable)[c["name"]]["image"]
    assert canary == stable


def test_services_ingress_and_servicemonitor_agree() -> None:
    objs = manifests()
    services = {name: o for (kind, name), o in objs.items() if kind == "Service"}
    assert set(services) == {"bizra", "bizra-canary"}
    deployments = {name: o for (kind, name), o in objs.items() if kind == "Deployment"}
    for name, svc in services.items():
        pod = deployments[name]["spec"]["template"]
        assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
        pod_ports = {p["name"]: p["containerPort"] for p in containers(deployments[name])["bizra"]["ports"]}
        assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == pod_ports
        assert all(p["targetPort"] in pod_ports for p in svc["spec"]["ports"])

    monitor = objs[("ServiceMonitor", "bizra")]["spec"]
    selected = [n for n, s in services.items() if monitor["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()]
    assert sorted(selected) == ["bizra", "bizra-canary"]  # the canary is scraped too
    assert [(e["port"], e["interval"]) for e in monitor["endpoints"]] == [("metrics", "5s")]

    ingresses = {name: o for (kind, name), o in objs.items() if kind == "Ingress"}
    canary = ingresses["bizra-canary"]["metadata"]["annotations"]
    assert canary["nginx.ingress.kubernetes.io/canary"] == "true"
    assert canary["nginx.ingress.kubernetes.io/canary-weight"] == "5"
    hosts = {name: [r["host"] for r in ing["spec"]["rules"]] for name, ing in ingresses.items()}
    assert hosts["bizra"] == hosts["bizra-canary"]  # nginx canaries must share the host
    for ing in ingresses.values():
        for rule in ing["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["port"]["name"] in {p["name"] for p in services[backend["name"]]["spec"]["ports"]}


def test_example_secret_is_a_placeholder() -> None:
    token = manifests()[("Secret", "bizra-api-token")]["stringData"]["token"]
    assert "REPLACE-ME" in token and "not-a-real-token" in token


# ---- Dockerfile ---------------------------------------------------------------------------


def test_dockerfile_ports_and_settings_match_the_code(tmp_path: Path) -> None:
    text = DOCKERFILE.read_text()
    defaults = ServiceConfig(data_dir=tmp_path)
    exposed = {int(p) for line in text.splitlines() if line.startswith("EXPOSE ") for p in line.split()[1:]}
    assert exposed == {defaults.rpc_port, defaults.prometheus_port}
    env = dockerfile_env()
    assert (int(env["RPC_PORT"]), int(env["PROMETHEUS_PORT"])) == (defaults.rpc_port, defaults.prometheus_port)
    for name in DESIGN_SETTINGS:  # docs/design.md, "Configuration": the same names in the Dockerfile
        assert name in text, name
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2, "multi-stage build expected"
    assert re.search(r"^USER (?!root)\S+", text, re.M)
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))
    args = build_parser().parse_args(entry[1:])
    assert entry[0] == "bizra" and args.command == "serve"
    # Every command the image runs to warm the Numba cache parses with the real CLI.
    for cmd in re.findall(r"\bbizra ((?:generate|run) [^&\n]*)", text):
        build_parser().parse_args(shlex.split(cmd.replace("\\", "")))


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "artifacts", "demo-out", ".asv", "**/__pycache__", "**/*.secret"} <= ignored
    copied = re.findall(r"^COPY (?!--)(\S+)", DOCKERFILE.read_text(), re.M)
    assert copied and not set(copied) & ignored


# ---- Prometheus rules and the dashboard ---------------------------------------------------


def test_promtool_check_rules() -> None:
    r = run_promtool("check", "rules", str(RULES), cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_promtool_rule_unit_tests() -> None:
    r = run_promtool("test", "rules", "rules_test.yaml", cwd=RULES.parent)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_rules_cover_the_runbook_alerts() -> None:
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    alerts = {r["alert"]: r for r in rules if "alert" in r}
    assert {"BizraFinalityP99High", "BizraVerifyFailureRatioHigh", "BizraGenerationThroughputLow",
            "BizraVerificationThroughputLow", "BizraVerifyBatchingIneffective"} <= set(alerts)
    assert "> 0.001" in alerts["BizraFinalityP99High"]["expr"]  # the runbook's 1 ms
    tested = {t["alertname"] for t in yaml.safe_load((RULES.parent / "rules_test.yaml").read_text())["tests"]
              for t in t.get("alert_rule_test", [])}
    assert tested == set(alerts), "every alert needs a promtool unit test"


def test_metric_name_extraction() -> None:
    expr = ('histogram_quantile(0.99, sum by (job, le) (rate(a_bucket{route="/x", s=~"5.."}[5m])))'
            " / on (job) group_left() b:rec and c_total offset 5m > bool 1")
    assert metric_names(expr) == {"a_bucket", "b:rec", "c_total"}


def test_rules_and_dashboard_use_only_exported_metrics() -> None:
    exported = exported_series()
    assert {"bizra_poi_verify_total", "bizra_finality_check_seconds_bucket", "process_cpu_seconds_total"} <= exported
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    recorded = {r["record"] for r in rules if "record" in r}
    for r in rules:
        unknown = metric_names(r["expr"]) - exported - recorded - PROMETHEUS_SERIES
        assert not unknown, f"{r.get('record') or r.get('alert')}: {unknown} not exported by engine.service.metrics"
    for panel, target in dashboard_targets():
        unknown = metric_names(target["expr"]) - exported
        assert not unknown, f"panel {panel['title']!r}: {unknown} not exported by engine.service.metrics"


def test_dashboard_structure() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["schemaVersion"] >= 36 and board["uid"]
    assert [v["name"] for v in board["templating"]["list"] if v["type"] == "datasource"] == ["datasource"]
    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    assert [p["title"] for p in panels if p["type"] == "row"] == ["Finality", "Generation", "Verification", "Process"]
    for p in panels:
        if p["type"] == "row":
            continue
        assert p["targets"], p["title"]
        assert p["datasource"]["uid"] == "${datasource}"
        assert len({t["refId"] for t in p["targets"]}) == len(p["targets"])
        assert all(t["expr"].strip() for t in p["targets"]), p["title"]
    exprs = " ".join(t["expr"] for _, t in dashboard_targets())
    for histogram in ("bizra_finality_check_seconds", "bizra_poi_generate_seconds", "bizra_poi_verify_seconds"):
        for q in ("0.5", "0.9", "0.99"):
            assert f"histogram_quantile({q}, sum by (le) (rate({histogram}_bucket[" in exprs, (histogram, q)
    assert "bizra_poi_verify_batch_size_bucket" in exprs and "bizra_poi_verify_fail_total" in exprs


def test_dashboard_json_is_what_the_generator_writes() -> None:
    sys.path.insert(0, str(DASHBOARD.parent))
    try:
        import build_dashboard
    finally:
        sys.path.remove(str(DASHBOARD.parent))
    assert DASHBOARD.read_text() == build_dashboard.render(), "run python deploy/grafana/build_dashboard.py"


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    """promtool parses every panel query (as a recording rule, with Grafana's interval filled in)."""
    rules = [{"record": f"dashboard:panel{p['id']}:{t['refId']}", "expr": t["expr"].replace("$__rate_interval", "1m")}
             for p, t in dashboard_targets()]
    path = tmp_path / "dashboard_rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    r = run_promtool("check", "rules", str(path), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(rules)} rules found" in r.stdout
