"""The OpenAPI document's security requirements are the gateway's: every operation it says
needs a bearer token answers 401 without one, and every other operation does not.

A generated client decides from the document whether to send the token (openapi-python-
client even picks the client class by it), so a route that authenticates without saying
so, or says so without doing it, breaks clients. Each operation is called once, without a
token, with made-up ids."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

_PARAMETER = re.compile(r"\{([^}]+)\}")


def _concrete(path: str) -> str:
    return _PARAMETER.sub(
        lambda match: "nobody" if match.group(1) == "username" else str(uuid.uuid4()), path
    )


def _security(operation: dict[str, Any]) -> str:
    requirements = operation.get("security")
    if not requirements:
        return "none"
    return "optional" if {} in requirements else "required"


async def test_every_operation_that_says_it_needs_a_token_refuses_none_and_no_other_does(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"

    wrong = []
    seen = {"required": 0, "optional": 0, "none": 0}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            security = _security(operation)
            seen[security] += 1
            answer = await client.request(method.upper(), _concrete(path))
            if (answer.status_code == 401) != (security == "required"):
                wrong.append(f"{method.upper()} {path}: {security}, answered {answer.status_code}")
    assert not wrong, "\n".join(wrong)
    # Each kind is there: the check above is not vacuous.
    assert seen["required"] >= 25, seen
    assert seen["optional"] >= 5, seen
    assert seen["none"] >= 8, seen
