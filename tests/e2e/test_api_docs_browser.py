"""/docs and /redoc render in a real browser that can reach nothing but the gateway.

Chromium (Debian's, headless; scripts/test installs it) loads each page with every host other
than 127.0.0.1 unresolvable, as on a machine offline, and runs its scripts until the page is
idle; the DOM it prints is what a developer would see. A page that still took Swagger UI or
ReDoc from a CDN would print an empty shell.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

import httpx
import pytest

from tests.support.stack import Stack

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Operations the page must list (Swagger UI shows each as an "opblock" with its path).
SOME_PATHS = ("/api/v1/feed/home/", "/api/v1/posts/", "/api/v1/auth/login/")


# src="...", href="...", url: "..." in the page the gateway serves.
_REFERENCES = re.compile(r"""(?:src|href|url)\s*[=:]\s*["']([^"']+)["']""")


async def rendered_dom(url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran, from a headless Chromium with no network."""
    browser = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        # Any other host fails to resolve: a CDN asset cannot load, whatever this machine reaches.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        # Virtual time runs until the page has no pending work (fetches, timers) or the budget
        # is spent, so the scripts have fetched /openapi.json and rendered before the dump.
        "--virtual-time-budget=30000",
        "--dump-dom",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(browser.communicate(), timeout=120)
    assert browser.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode()


async def test_swagger_ui_renders_the_operations_and_authorize_offline(
    stack: Stack, tmp_path: Path
) -> None:
    dom = await rendered_dom(f"{stack.gateway_url}/docs", tmp_path / "profile")

    assert 'class="swagger-ui"' in dom, dom[:2000]
    assert dom.count('class="opblock opblock-') >= 40, dom[:2000]
    for path in SOME_PATHS:
        assert f'data-path="{path}"' in dom, path
    assert "Authorize" in dom
    assert 'class="btn authorize' in dom


async def test_redoc_renders_the_operations_offline(stack: Stack, tmp_path: Path) -> None:
    dom = await rendered_dom(f"{stack.gateway_url}/redoc", tmp_path / "profile")

    # ReDoc lists every operation in its side menu, by summary.
    assert "Publish a post" in dom, dom[:2000]
    assert "Sign in for tokens" in dom
    # Signed-in operations name the bearer scheme they want.
    assert "Authorizations:" in dom


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_pages_load_nothing_from_another_host(
    client: httpx.AsyncClient, page: str
) -> None:
    html = (await client.get(page)).text

    references = _REFERENCES.findall(html)
    assert references, html
    assert all(reference.startswith("/") for reference in references), references
    if page == "/docs":
        # Nor does Swagger UI send the schema's address to its online validator.
        assert '"validatorUrl": null' in html
