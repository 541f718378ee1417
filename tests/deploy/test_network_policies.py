"""deploy/k8s NetworkPolicies, read the way a cluster enforces them: only the ingress controller
reaches the gateway, only ZAP's own pods reach a service, only services, workers and the
migration reach PostgreSQL; everything else is denied. And the gateway believes the
X-Forwarded-For of the ingress only."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import ip_network
from typing import Any

import pytest

from tests.deploy.conftest import K8S, SERVICES, WORKERS, by_kind, kustomization_files
from tests.deploy.conftest import load_yaml_documents as documents

NAMESPACE = "zap"
POSTGRES = 5432
REDIS = 6379


@dataclass(frozen=True)
class Pod:
    """A pod somewhere: its namespace's labels, its own labels and named ports."""

    namespace: str
    labels: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace}


# Somewhere outside the cluster (a database, the object store, the internet).
EXTERNAL = None
INGRESS_CONTROLLER = Pod("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
PROMETHEUS = Pod("monitoring", {"app.kubernetes.io/name": "prometheus"})
STRANGER = Pod("default", {"app": "something-else"})


def matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return True
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        value, operator = labels.get(expression["key"]), expression["operator"]
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if operator == "Exists" and value is None:
            return False
        if operator == "DoesNotExist" and value is not None:
            return False
    return True


def peer_matches(peer: dict[str, Any], pod: Pod | None) -> bool:
    if "ipBlock" in peer:
        return pod is EXTERNAL  # the manifests' ipBlocks name what lives outside the cluster
    if pod is EXTERNAL:
        return False
    if "namespaceSelector" in peer:
        if not matches(peer["namespaceSelector"], pod.namespace_labels):
            return False
    elif pod.namespace != NAMESPACE:
        return False
    return matches(peer.get("podSelector"), pod.labels)


def port_matches(rule: dict[str, Any], port: int, named: dict[str, int]) -> bool:
    if "ports" not in rule:
        return True
    for allowed in rule["ports"]:
        wanted = allowed.get("port")
        if wanted is None or wanted == port or named.get(str(wanted)) == port:
            return True
    return False


class Policies:
    def __init__(self, policies: list[dict[str, Any]]) -> None:
        self._policies = policies

    def _selecting(self, pod: Pod, kind: str) -> list[dict[str, Any]]:
        if pod.namespace != NAMESPACE:
            return []
        return [
            p["spec"]
            for p in self._policies
            if kind in p["spec"]["policyTypes"] and matches(p["spec"]["podSelector"], pod.labels)
        ]

    def may_connect(self, source: Pod | None, target: Pod | None, port: int) -> bool:
        """Both ends' policies allow `source` to open a connection to `target`:`port`."""
        if source is not EXTERNAL:
            egress = self._selecting(source, "Egress")
            named = target.ports if target is not EXTERNAL else {}
            if egress and not any(
                port_matches(rule, port, named)
                and any(peer_matches(peer, target) for peer in rule.get("to", [{}]))
                for spec in egress
                for rule in spec.get("egress", [])
            ):
                return False
        if target is not EXTERNAL:
            ingress = self._selecting(target, "Ingress")
            if ingress and not any(
                port_matches(rule, port, target.ports)
                and any(peer_matches(peer, source) for peer in rule.get("from", [{}]))
                for spec in ingress
                for rule in spec.get("ingress", [])
            ):
                return False
        return True


def workload_pod(workload: dict[str, Any]) -> Pod:
    template = workload["spec"]["template"]
    ports = {
        p["name"]: p["containerPort"]
        for c in template["spec"]["containers"]
        for p in c.get("ports", [])
        if "name" in p
    }
    # kustomize's `labels` adds this one to every template.
    return Pod(
        NAMESPACE, {**template["metadata"]["labels"], "app.kubernetes.io/part-of": "zap"}, ports
    )


@pytest.fixture(scope="module")
def pods(k8s_resources: list[dict[str, Any]]) -> dict[str, Pod]:
    workloads = {**by_kind(k8s_resources, "Deployment"), **by_kind(k8s_resources, "Job")}
    return {name: workload_pod(w) for name, w in workloads.items()}


@pytest.fixture(scope="module")
def policies(k8s_resources: list[dict[str, Any]]) -> Policies:
    found = [doc for doc in k8s_resources if doc["kind"] == "NetworkPolicy"]
    assert found, "deploy/k8s/base has no NetworkPolicy"
    return Policies(found)


def grpc_port(pod: Pod) -> int:
    return pod.ports["grpc"]


def test_everything_not_allowed_is_denied(policies: Policies, pods: dict[str, Pod]) -> None:
    for name, pod in pods.items():
        assert not policies.may_connect(STRANGER, pod, 9999), name
        assert not policies.may_connect(pod, EXTERNAL, 22), name
    # A pod added later without a policy of its own is isolated too.
    newcomer = Pod(NAMESPACE, {"app.kubernetes.io/name": "newcomer"}, {"http": 8000})
    assert not policies.may_connect(pods["gateway"], newcomer, 8000)
    assert not policies.may_connect(newcomer, pods["auth"], grpc_port(pods["auth"]))


def test_only_the_ingress_controller_reaches_the_gateway(
    policies: Policies, pods: dict[str, Pod]
) -> None:
    gateway = pods["gateway"]
    http = gateway.ports["http"]
    assert policies.may_connect(INGRESS_CONTROLLER, gateway, http)
    assert not policies.may_connect(STRANGER, gateway, http)
    assert not policies.may_connect(EXTERNAL, gateway, http)
    for name in [*SERVICES, *(f"{w}-worker" for w in WORKERS)]:
        assert not policies.may_connect(pods[name], gateway, http), name
    # Metrics are scraped from the monitoring namespace only.
    assert policies.may_connect(PROMETHEUS, gateway, gateway.ports["metrics"])
    assert not policies.may_connect(INGRESS_CONTROLLER, gateway, gateway.ports["metrics"])


def test_services_are_reached_by_zap_pods_only(policies: Policies, pods: dict[str, Pod]) -> None:
    for name in SERVICES:
        service = pods[name]
        assert policies.may_connect(pods["gateway"], service, grpc_port(service)), name
        assert not policies.may_connect(INGRESS_CONTROLLER, service, grpc_port(service)), name
        assert not policies.may_connect(STRANGER, service, grpc_port(service)), name
        assert not policies.may_connect(EXTERNAL, service, grpc_port(service)), name
        assert policies.may_connect(PROMETHEUS, service, service.ports["metrics"]), name
    # The calls services and workers make to each other (feed -> graph, moderation -> feed...).
    assert policies.may_connect(pods["feed"], pods["graph"], grpc_port(pods["graph"]))
    assert policies.may_connect(pods["moderation-worker"], pods["feed"], grpc_port(pods["feed"]))


def test_only_services_workers_and_the_migration_reach_postgres(
    policies: Policies, pods: dict[str, Pod]
) -> None:
    for name in [*SERVICES, *(f"{w}-worker" for w in WORKERS), "migrate"]:
        assert policies.may_connect(pods[name], EXTERNAL, POSTGRES), name
    assert not policies.may_connect(pods["gateway"], EXTERNAL, POSTGRES)
    # The gateway reaches Redis and the services, nothing else outside.
    assert policies.may_connect(pods["gateway"], EXTERNAL, REDIS)
    assert not policies.may_connect(pods["gateway"], EXTERNAL, 443)
    assert not policies.may_connect(pods["migrate"], pods["auth"], grpc_port(pods["auth"]))


def test_workers_accept_nothing_but_scrapes(policies: Policies, pods: dict[str, Pod]) -> None:
    for name in (f"{w}-worker" for w in WORKERS):
        worker = pods[name]
        assert policies.may_connect(PROMETHEUS, worker, worker.ports["metrics"]), name
        assert not policies.may_connect(pods["gateway"], worker, worker.ports["metrics"]), name


def test_the_evaluator_allows_what_no_policy_isolates() -> None:
    """The checks above can pass only because of the policies: without any, all is open."""
    pod = Pod(NAMESPACE, {"app.kubernetes.io/name": "auth"}, {"grpc": 50051})
    assert Policies([]).may_connect(STRANGER, pod, 50051)


# --- X-Forwarded-For ----------------------------------------------------------------------


def config_data(path: Any) -> dict[str, str]:
    for doc in documents(path):
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "zap-config":
            data: dict[str, str] = doc["data"]
            return data
    return {}


def test_the_gateway_believes_only_the_ingress(k8s_resources: list[dict[str, Any]]) -> None:
    import json

    base = by_kind(k8s_resources, "ConfigMap")["zap-config"]["data"]
    assert base["ZAP_GATEWAY_BEHIND_PROXY"] == "true"
    # The base cannot know a cluster's ingress addresses: it names none, and production
    # refuses to start until an overlay does (tests/libs/test_production_checklist.py).
    assert json.loads(base["ZAP_GATEWAY_TRUSTED_PROXIES"]) == []
    overlays = [
        config_data(path)
        for overlay in (K8S / "overlays").iterdir()
        for field_name, path in kustomization_files(overlay)
        if field_name == "patches"
    ]
    named = [
        o["ZAP_GATEWAY_TRUSTED_PROXIES"] for o in overlays if "ZAP_GATEWAY_TRUSTED_PROXIES" in o
    ]
    assert named, "the production overlay must name its ingress's addresses"
    for value in named:
        networks = [ip_network(n, strict=False) for n in json.loads(value)]
        assert networks
        # The ingress controller's addresses, not the cluster's whole pod network.
        assert all(n.num_addresses <= 256 for n in networks), value
