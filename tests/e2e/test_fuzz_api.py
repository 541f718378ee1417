"""Schemathesis against the gateway's own OpenAPI, signed in: no 5xx, answers that match
the schema, and data that breaks the schema rejected with a 4xx; and a property test that
puts control characters into every string the API accepts."""

from __future__ import annotations

import asyncio
import json
import os
import string
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import hypothesis
from hypothesis import strategies as st

from tests.e2e.feed_helpers import post
from tests.factories import PASSWORD, make_moderator, make_user, new_identity
from tests.support.stack import Stack
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
    ]
)
# Cases per operation: enough to reach every 4xx path of the validators, small enough
# for two cores (the command in docs/benchmarks.md runs more).
EXAMPLES = int(os.environ.get("ZAP_FUZZ_EXAMPLES", "12"))


async def test_fuzzing_the_public_api_finds_no_server_error(
    stack: Stack, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    # A moderator reaches every route a user does, and the moderation queue too.
    user = await make_moderator(client, stack.dsn("auth"))
    report = tmp_path / "report.json"
    fuzz = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{stack.gateway_url}/openapi.json",
        "--checks",
        CHECKS,
        "--header",
        f"Authorization: Bearer {user.access}",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        "20261126",
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        "2",
        # Signing out or deleting the account would leave the rest of the run unauthenticated.
        "--exclude-path",
        "/api/v1/auth/logout/",
        "--exclude-path",
        "/api/v1/auth/me/",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await fuzz.communicate()
    text = output.decode(errors="replace")
    assert fuzz.returncode == 0, text[-6000:]
    summary = json.loads(report.read_text())
    assert summary["operations"]["tested"] == summary["operations"]["selected"] >= 40
    assert summary["test_cases"]["with_failures"] == 0
    assert summary["test_cases"]["errored"] == 0
    assert not summary["warnings"]["missing_auth"]
    print(
        f"\nfuzzed {summary['test_cases']['generated']} requests over "
        f"{summary['operations']['tested']} operations: no failures"
    )


# --- control characters in every string ------------------------------------------------------
#
# Schemathesis may put a NUL in a string, but seldom where it matters (a report on a post that
# exists, a decision on a queued item), so it never found the 502s they caused. This strategy
# puts NUL or another control character into every string the API accepts, one string at a
# time, in requests that are otherwise valid and name real posts, items and decisions.

_CONTROLS = [chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F)]
_CONTROLS += [chr(c) for c in range(0x80, 0xA0)]
_PLAIN = st.text(alphabet=string.ascii_letters + string.digits + " #@-", max_size=6)
_DESTRUCTIVE = {("POST", "/api/v1/auth/logout/"), ("DELETE", "/api/v1/auth/me/")}


def hostile_text(*, in_url: bool) -> st.SearchStrategy[str]:
    """Short text with at least one control character (NUL first) somewhere in it."""
    control = st.sampled_from(_CONTROLS)
    if not in_url:  # a URL cannot carry a lone surrogate; JSON can, as \\ud800
        control = control | st.characters(categories=["Cs"])
    return st.tuples(_PLAIN, control, _PLAIN).map("".join)


@dataclass(frozen=True)
class Slot:
    """One string of one operation: where it goes and whether it is a list of strings."""

    method: str
    path: str
    place: str  # "path", "query" or "body"
    name: str
    listed: bool = False


def _string_shape(schema: dict[str, Any]) -> tuple[bool, bool] | None:
    """(is a string, is a list of strings) for a free-text schema, else None."""
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "string" and "enum" not in option:
            return True, False
        items = option.get("items", {})
        if option.get("type") == "array" and items.get("type") == "string" and "enum" not in items:
            return True, True
    return None


def string_slots(spec: dict[str, Any]) -> list[Slot]:
    slots = []
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                place = parameter["in"]
                if place in ("path", "query") and _string_shape(parameter["schema"]):
                    slots.append(Slot(method.upper(), path, place, parameter["name"]))
            body = _body_schema(spec, operation)
            for name, schema in body.get("properties", {}).items():
                if shape := _string_shape(schema):
                    slots.append(Slot(method.upper(), path, "body", name, listed=shape[1]))
    return sorted(slots, key=lambda s: ((s.method, s.path) in _DESTRUCTIVE, s.path, s.name))


def _body_schema(spec: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any]:
    content = operation.get("requestBody", {}).get("content", {})
    schema: dict[str, Any] = content.get("application/json", {}).get("schema", {})
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def valid_value(name: str, schema: dict[str, Any], known: dict[str, str]) -> object:
    """A value the API accepts for a field the probe does not spoil."""
    if name in known:
        return known[name]
    option = schema.get("anyOf", [schema])[0]
    if "enum" in option:
        return option["enum"][0]
    if option.get("examples"):
        return option["examples"][0]
    if option.get("type") == "integer":
        return max(1, option.get("minimum", 1))
    if option.get("type") == "boolean":
        return False
    if option.get("type") == "array":
        return []
    return "fuzz"


async def test_control_characters_in_any_string_are_refused_with_a_4xx(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    # The caller: a moderator with a post that another moderator removed, so that reports,
    # decisions and appeals all reach the service with everything else in them valid.
    user = await make_moderator(client, stack.dsn("auth"))
    other = await make_user(client)
    judge = await make_moderator(client, stack.dsn("auth"))
    own = await post(client, user, "mine, removed, to appeal")
    theirs = await post(client, other, "theirs, to report and decide on")
    for reporter, target in ((other, own), (user, theirs)):
        reported = await client.post(
            f"/api/v1/posts/{target['id']}/report/",
            json={"reason": "spam"},
            headers=reporter.headers,
        )
        assert reported.status_code == 201, reported.text

    async def queue() -> dict[str, str]:
        answer = await client.get("/api/v1/moderation/queue/", headers=judge.headers)
        return {i["content_id"]: i["id"] for i in answer.json()["results"]}

    items = await eventually(queue, lambda found: {own["id"], theirs["id"]} <= found.keys())
    removed = await client.post(
        f"/api/v1/moderation/queue/{items[own['id']]}/decision/",
        json={"action": "remove"},
        headers=judge.headers,
    )
    assert removed.status_code == 201, removed.text
    identity = new_identity()
    known = {
        "post_id": theirs["id"],
        "user_id": other.id,
        "item_id": items[theirs["id"]],
        "decision_id": removed.json()["id"],
        "media_id": "01900000-0000-7000-8000-000000000000",
        "email": identity["email"],
        "username": identity["username"],
        "password": PASSWORD,
        "password_confirm": PASSWORD,
        "refresh": user.refresh,
    }
    spec = (await client.get("/openapi.json")).json()
    slots = string_slots(spec)
    assert len(slots) >= 40, slots  # every body field, query parameter and path id
    examples = int(os.environ.get("ZAP_FUZZ_CONTROL_EXAMPLES", "4"))
    with httpx.Client(base_url=stack.gateway_url, timeout=10, headers=user.headers) as http:
        await asyncio.to_thread(_probe_all, http, spec, slots, known, examples)
    # Nothing a refused probe carried was stored: the caller is intact and still signed in.
    me = await client.get("/api/v1/auth/me/", headers=user.headers)
    assert me.status_code == 200
    assert (me.json()["bio"], me.json()["display_name"]) == ("", "")


def _probe_all(
    http: httpx.Client,
    spec: dict[str, Any],
    slots: list[Slot],
    known: dict[str, str],
    examples: int,
) -> None:
    failures = []
    for slot in slots:
        try:
            _probe(http, spec, slot, known, examples)
        except Exception as failure:  # one report for every string that is not refused
            failures.append(str(failure).splitlines()[0])
    assert not failures, "\n".join(failures)
    print(f"\nsent control characters in {len(slots)} strings, {examples}+ requests each")


def _probe(
    http: httpx.Client, spec: dict[str, Any], slot: Slot, known: dict[str, str], examples: int
) -> None:
    operation = spec["paths"][slot.path][slot.method.lower()]

    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(hypothesis.HealthCheck),
        # The first failing text says enough; shrinking would only send more requests.
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @hypothesis.given(text=hostile_text(in_url=slot.place != "body"))
    @hypothesis.example(text="a\x00b")
    def probe(text: str) -> None:
        where = f"{slot.method} {slot.path} {slot.place}:{slot.name}={text!r}"
        try:
            answer = _send(http, spec, operation, slot, text, known)
        except httpx.TimeoutException:
            raise AssertionError(f"{where}: no answer in time") from None
        assert answer.status_code < 500, f"{where}: {answer.status_code} {answer.text}"
        assert 400 <= answer.status_code < 500, f"{where}: accepted, {answer.text}"
        assert answer.headers["content-type"].startswith("application/problem+json"), where
        if slot.place != "path":  # ids are the services' to judge (400 invalid-id)
            assert answer.status_code == 422, f"{where}: {answer.text}"
            named = {e["field"].split(".")[0] for e in answer.json().get("errors", [])}
            assert slot.name in named, f"{where}: {answer.text}"

    probe()


def _send(
    http: httpx.Client,
    spec: dict[str, Any],
    operation: dict[str, Any],
    slot: Slot,
    text: str,
    known: dict[str, str],
) -> httpx.Response:
    url = slot.path
    query: dict[str, str] = {}
    for parameter in operation.get("parameters", []):
        name = parameter["name"]
        if parameter["in"] == "path":
            value = text if (slot.place, slot.name) == ("path", name) else known[name]
            url = url.replace("{" + name + "}", quote(value, safe=""))
        elif (slot.place, slot.name) == ("query", name):
            query[name] = text
    body = _body_schema(spec, operation)
    content = None
    if body:
        payload = {
            name: valid_value(name, schema, known)
            for name, schema in body.get("properties", {}).items()
            if name in body.get("required", [])
        }
        if slot.place == "body":
            payload[slot.name] = [text] if slot.listed else text
        content = json.dumps(payload)  # \u escapes: a lone surrogate travels as JSON allows
    return http.request(
        slot.method,
        url,
        params=query,
        content=content,
        headers={"Content-Type": "application/json"} if content is not None else {},
    )
