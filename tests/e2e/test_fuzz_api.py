"""Schemathesis against the gateway's own OpenAPI, signed in: no 5xx, answers that match
the schema, and data that breaks the schema rejected with a 4xx."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import httpx

from tests.factories import make_moderator
from tests.support.stack import Stack

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
