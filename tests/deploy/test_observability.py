"""Prometheus scrapes every process where Compose exposes its metrics; the alert rules and the
Grafana dashboard query only metrics the code defines, and routes the gateway serves."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import pytest

from tests.deploy.conftest import DEPLOY, ROOT, GatewayRoutes, load_yaml

PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "zap.json"
SOURCE_DIRS = (ROOT / "libs" / "zapcore", ROOT / "services", ROOT / "gateway")
# Series Prometheus makes itself, not the code.
PROMETHEUS_SERIES = frozenset({"up"})
PROMQL_WORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"and", "or", "unless", "bool", "offset", "inf", "nan"}
)


@cache
def python_source() -> str:
    return "\n".join(
        path.read_text() for folder in SOURCE_DIRS for path in sorted(folder.rglob("*.py"))
    )


@cache
def exposed_series() -> frozenset[str]:
    """The series names prometheus_client exposes for each metric constructed in the code."""
    series = set()
    for kind, name in re.findall(
        r"\b(Counter|Gauge|Histogram|Summary)\(\s*(?:name\s*=\s*)?\"([a-zA-Z_:][\w:]*)\"",
        python_source(),
    ):
        if kind == "Counter":
            series.add(name.removesuffix("_total") + "_total")
        elif kind == "Histogram":
            series.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        elif kind == "Summary":
            series.update({name, f"{name}_sum", f"{name}_count"})
        else:
            series.add(name)
    return frozenset(series)


def is_defined(metric: str) -> bool:
    """A metric constructed in the code exposes exactly these series (histograms as
    <name>_bucket/_sum/_count, counters as <name>_total). A name built some other way counts
    when it, or its family name without such a suffix, is quoted in the code."""
    if metric in exposed_series():
        return True
    names = {metric}
    for suffix in ("_bucket", "_sum", "_count", "_total"):
        names.add(metric.removesuffix(suffix))
    constructed = {n.removesuffix(s) for n in exposed_series() for s in ("_bucket", "_total")}
    return any(f'"{name}"' in python_source() for name in names - constructed)


def metric_names(expr: str) -> set[str]:
    """The series an expression selects: what is left once strings, label matchers, ranges,
    grouping clauses, numbers, function calls and keywords are taken out."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\b\d[\w.+-]*", " ", expr)  # numbers, 1e-9 included
    names = set()
    for match in re.finditer(r"[A-Za-z_:][\w:]*", expr):
        is_call = expr[match.end() :].lstrip().startswith("(")
        if not is_call and match.group().lower() not in PROMQL_WORDS:
            names.add(match.group())
    return names


def route_labels(expr: str) -> set[str]:
    return set(re.findall(r'\broute\s*=\s*"([^"]+)"', expr))


def alert_rules() -> list[dict[str, Any]]:
    return [
        rule for group in load_yaml(PROMETHEUS / "alerts.yml")["groups"] for rule in group["rules"]
    ]


def dashboard_panels() -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = json.loads(DASHBOARD.read_text())["panels"]
    return [p for p in panels if p["type"] != "row"]


def dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in dashboard_panels() for target in panel["targets"]]


def all_exprs() -> list[str]:
    return [rule["expr"] for rule in alert_rules()] + dashboard_exprs()


def test_metric_name_extraction() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, route) (rate(zap_a_seconds_bucket{route="/x"}[5m])))'
        ' / clamp_min(sum(rate(zap_b_total[$__rate_interval])), 1e-9) > 0.05 and up{job="j"} == 0'
    )
    assert metric_names(expr) == {"zap_a_seconds_bucket", "zap_b_total", "up"}


def test_definitions_are_found_by_name() -> None:
    assert is_defined("zap_grpc_server_handling_seconds_bucket")
    assert is_defined("zap_http_requests_total")
    assert not is_defined("zap_http_request_duration_seconds_total")
    assert not is_defined("zap_no_such_metric")


def test_every_metric_queried_is_defined_in_the_code() -> None:
    used = set().union(*(metric_names(expr) for expr in all_exprs()))
    assert used, "no metric found in the rules and the dashboard"
    missing = sorted(m for m in used - PROMETHEUS_SERIES if not is_defined(m))
    assert not missing, f"queried but defined nowhere in libs/, services/, gateway/: {missing}"


def test_every_route_queried_is_a_gateway_route(gateway_routes: GatewayRoutes) -> None:
    routes = set().union(*(route_labels(expr) for expr in all_exprs()))
    assert "/api/v1/feed/home/" in routes
    assert routes <= gateway_routes.http


def test_alert_rules_cover_the_runbook() -> None:
    rules = alert_rules()
    for rule in rules:
        assert {"alert", "expr", "labels", "annotations"} <= set(rule), rule
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
    metrics_alerted = {rule["alert"]: metric_names(rule["expr"]) for rule in rules}
    wanted = {
        "zap_http_request_duration_seconds_bucket",  # feed p99 over 50 ms / 200 ms
        "zap_http_requests_total",  # 5xx rate
        "zap_queue_depth",  # queue depth growing
        "zap_feed_fanout_lag_seconds_bucket",  # fanout lag
        "zap_event_dead_letters_total",  # dead letters
        "zap_event_stream_pending",  # consumer groups behind
        "up",  # a target down
    }
    assert wanted <= set().union(*metrics_alerted.values())
    feed_thresholds = {
        float(rule["expr"].rsplit(">", 1)[1])
        for rule in rules
        if "/api/v1/feed/home/" in rule["expr"]
    }
    assert feed_thresholds == {0.05, 0.2}


def test_dashboard_has_the_panels_operators_need() -> None:
    used = set().union(*(metric_names(expr) for expr in dashboard_exprs()))
    assert {
        "zap_http_request_duration_seconds_bucket",  # feed p99
        "zap_http_requests_total",  # error rate
        "zap_queue_depth",
        "zap_ws_connections",
        "zap_grpc_server_handling_seconds_bucket",  # per service latency
        "zap_feed_fanout_lag_seconds_bucket",
        "zap_job_duration_seconds_bucket",
    } <= used
    assert any('route="/api/v1/feed/home/"' in expr for expr in dashboard_exprs())
    assert any("by (le, grpc_service)" in expr for expr in dashboard_exprs())


def test_dashboard_uses_the_provisioned_datasource() -> None:
    (datasource,) = load_yaml(
        DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
    )["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    for panel in dashboard_panels():
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == datasource["uid"], panel["title"]
    ids = [p["id"] for p in json.loads(DASHBOARD.read_text())["panels"]]
    assert len(ids) == len(set(ids))


def test_dashboard_provider_reads_where_compose_mounts_the_dashboards(
    compose_services: dict[str, dict[str, Any]],
) -> None:
    (provider,) = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "zap.yml")[
        "providers"
    ]
    mounts = dict(v.split(":")[:2] for v in compose_services["grafana"]["volumes"])
    assert mounts["../grafana/dashboards"] == provider["options"]["path"]
    assert mounts["../grafana/provisioning"] == "/etc/grafana/provisioning"


def scrape_targets() -> dict[str, str]:
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    targets = {}
    for job in config["scrape_configs"]:
        (static,) = job["static_configs"]
        (target,) = static["targets"]
        targets[job["job_name"]] = target
        if job["job_name"] != "prometheus":
            assert static["labels"]["process"] == job["job_name"]
    return targets


def test_prometheus_scrapes_every_process_on_its_metrics_port(
    compose_services: dict[str, dict[str, Any]], zap_processes: dict[str, list[str]]
) -> None:
    targets = scrape_targets()
    for process in zap_processes:
        host, port = targets[process].split(":")
        assert host == process, "the Compose service name"
        env = compose_services[process]["environment"]
        owner = process.removesuffix("-worker").upper()
        setting = "WORKER_METRICS_PORT" if process.endswith("-worker") else "METRICS_PORT"
        assert env[f"ZAP_{owner}_{setting}"] == port, process


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-kubernetes.yml"])
def test_prometheus_loads_the_alert_rules(
    config: str, compose_services: dict[str, dict[str, Any]]
) -> None:
    (rule_file,) = load_yaml(PROMETHEUS / config)["rule_files"]
    mounts = dict(v.split(":")[:2] for v in compose_services["prometheus"]["volumes"])
    assert mounts["../prometheus/alerts.yml"] == rule_file


def test_kubernetes_scrape_config_reads_the_pod_annotations() -> None:
    (job,) = load_yaml(PROMETHEUS / "prometheus-kubernetes.yml")["scrape_configs"]
    sources = {label for r in job["relabel_configs"] for label in r.get("source_labels", [])}
    assert {
        "__meta_kubernetes_pod_annotation_prometheus_io_scrape",
        "__meta_kubernetes_pod_annotation_prometheus_io_port",
        "__meta_kubernetes_pod_label_app_kubernetes_io_name",
    } <= sources
    assert {"process"} <= {r.get("target_label") for r in job["relabel_configs"]}
