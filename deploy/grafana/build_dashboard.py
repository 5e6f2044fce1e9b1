"""Write deploy/grafana/bizra-dashboard.json: the runbook's four panel groups as Grafana JSON.

The dashboard is generated rather than hand-edited so that panel ids and grid positions stay
consistent and every query follows the same conventions:

- latency quantiles aggregate buckets across pods with ``sum by (le)`` before
  ``histogram_quantile`` (a quantile of per-pod quantiles is meaningless);
- rates use ``$__rate_interval`` so Grafana picks a window of at least four scrapes;
- error/success shares put ``or vector(0)`` on the numerator only: a share is 0 while no request
  failed, yet the panel stays empty while the route gets no traffic at all;
- process_* series are kept only for targets that also export bizra metrics (``and on (job,
  instance)``), so a Prometheus that scrapes other jobs does not mix their processes in.

Run ``python deploy/grafana/build_dashboard.py`` after editing; tests/project/test_deploy.py fails when
the committed JSON differs from what this prints.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).with_name("bizra-dashboard.json")
DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
BIZRA_TARGETS = "and on (job, instance) bizra_poi_verify_total"


def quantiles(histogram: str) -> list[tuple[str, str]]:
    return [(f"histogram_quantile({q}, sum by (le) (rate({histogram}_bucket[{RATE}])))", f"p{round(q * 100)}")
            for q in (0.5, 0.9, 0.99)]


def route_share(route: str, status_re: str) -> str:
    """Share of a route's requests whose status matches ``status_re`` (0 without such requests)."""
    sel = f'bizra_http_requests_total{{route="{route}"'
    return (f'(sum(rate({sel}, status=~"{status_re}"}}[{RATE}])) or vector(0))'
            f" / sum(rate({sel}}}[{RATE}]))")


# (group title, [(panel title, panel type, unit, [(expr, legend)], description)])
GROUPS = [
    ("Finality", [
        ("Finality check latency", "timeseries", "s", quantiles("bizra_finality_check_seconds"),
         "POST /api/v1/finality, one lookup; the runbook alert fires above 1 ms at p99."),
        ("Finality check rate", "timeseries", "reqps",
         [(f"sum(rate(bizra_finality_checks_total[{RATE}]))", "checks/s")],
         "Finality checks answered (found or unknown block)."),
        ("Finality errors", "timeseries", "percentunit",
         [(route_share("/api/v1/finality", "5.."), "5xx share"),
          (route_share("/api/v1/finality", "4.."), "4xx share (unknown block, bad input)")],
         "Share of finality requests answered with an error status."),
    ]),
    ("Generation", [
        ("Generation latency", "timeseries", "s", quantiles("bizra_poi_generate_seconds"),
         "POST /api/v1/poi/generate: encode + libsodium sign."),
        ("Generation throughput", "timeseries", "ops",
         [(f"sum(rate(bizra_poi_generate_total[{RATE}]))", "signatures/s")],
         "Attestations signed by the node key."),
        ("Generation success", "timeseries", "percentunit",
         [(route_share("/api/v1/poi/generate", "2.."), "2xx share")],
         "Share of generate requests answered 2xx (401/503 mean a missing or wrong BIZRA_API_TOKEN)."),
    ]),
    ("Verification", [
        ("Verification latency", "timeseries", "s", quantiles("bizra_poi_verify_seconds"),
         "One verify request: queue + micro-batch for /poi/verify, the whole upload for /poi/verify_batch."),
        ("Verification throughput", "timeseries", "ops",
         [(f"sum(rate(bizra_poi_verify_total[{RATE}]))", "signatures/s")],
         "Signatures checked through the API."),
        ("Verify batch size", "timeseries", "short",
         [(f"sum(rate(bizra_poi_verify_batch_size_sum[{RATE}])) / sum(rate(bizra_poi_verify_batch_size_count[{RATE}]))",
           "average"),
          (f"histogram_quantile(0.5, sum by (le) (rate(bizra_poi_verify_batch_size_bucket[{RATE}])))", "p50"),
          (f"histogram_quantile(0.99, sum by (le) (rate(bizra_poi_verify_batch_size_bucket[{RATE}])))", "p99")],
         "Rows per verify_many call; an average near 1 under load means micro-batching is not coalescing."),
        ("Verify batch size distribution", "heatmap", "short",
         [(f"sum by (le) (rate(bizra_poi_verify_batch_size_bucket[{RATE}]))", "{{le}}")],
         "verify_many calls per second by batch-size bucket (powers of two up to 16384)."),
        ("Verification failures", "timeseries", "percentunit",
         [(f"sum(rate(bizra_poi_verify_fail_total[{RATE}])) / sum(rate(bizra_poi_verify_total[{RATE}]))",
           "failure ratio")],
         "Share of checked signatures that did not verify."),
    ]),
    ("Process", [
        ("CPU", "timeseries", "percentunit",
         [(f"rate(process_cpu_seconds_total[{RATE}]) {BIZRA_TARGETS}", "{{instance}}")],
         "CPU seconds per second (1.0 = one core busy)."),
        ("Memory", "timeseries", "bytes",
         [(f"process_resident_memory_bytes {BIZRA_TARGETS}", "RSS {{instance}}"),
          (f"process_virtual_memory_bytes {BIZRA_TARGETS}", "virtual {{instance}}")],
         "Resident and virtual memory of the bizra serve process."),
        ("Open file descriptors", "timeseries", "short",
         [(f"process_open_fds {BIZRA_TARGETS}", "open {{instance}}"),
          (f"process_max_fds {BIZRA_TARGETS}", "limit {{instance}}")],
         "Sockets and files held by the process, against its limit."),
        ("Threads", "timeseries", "short",
         [("bizra_process_threads", "threads {{instance}}")],
         "OS threads of the process: uvicorn, the verify worker threads (BIZRA_THREADS), libsodium."),
    ]),
]


def panel(pid: int, x: int, y: int, w: int, title: str, kind: str, unit: str,
          targets: list[tuple[str, str]], description: str) -> dict:
    p: dict = {
        "id": pid, "type": kind, "title": title, "description": description, "datasource": DS,
        "gridPos": {"h": 8, "w": w, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(ord("A") + i), "datasource": DS, "expr": expr, "legendFormat": legend,
                     "range": True, "format": "heatmap" if kind == "heatmap" else "time_series"}
                    for i, (expr, legend) in enumerate(targets)],
    }
    if kind == "heatmap":
        p["options"] = {"calculate": False, "yAxis": {"unit": unit}, "cellGap": 1}
    else:
        p["options"] = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "none"}}
    return p


def dashboard() -> dict:
    panels, pid, y = [], 1, 0
    for group, members in GROUPS:
        panels.append({"id": pid, "type": "row", "title": group, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        pid, y = pid + 1, y + 1
        per_line = 3
        for i, member in enumerate(members):
            w = 24 // min(per_line, len(members) - (i // per_line) * per_line)
            panels.append(panel(pid, (i % per_line) * w, y + (i // per_line) * 8, w, *member))
            pid += 1
        y += 8 * -(-len(members) // per_line)
    return {
        "__inputs": [],
        "annotations": {"list": []},
        "description": "bizra serve: finality, generation, verification and process metrics (deploy/grafana).",
        "editable": True,
        "graphTooltip": 1,
        "links": [],
        "panels": panels,
        "refresh": "10s",
        "schemaVersion": 39,
        "tags": ["bizra"],
        "templating": {"list": [{
            "name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
            "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": [],
        }]},
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "utc",
        "title": "bizra",
        "uid": "bizra-serve",
        "version": 1,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}", file=sys.stderr)
