"""Every alert links to its runbook: a section of docs/runbooks.md that exists and talks
about what the alert measures (a renamed heading or alert breaks the link; this catches it)."""

from __future__ import annotations

import re

import pytest

from tests.deploy.conftest import ROOT
from tests.deploy.test_observability import alert_rules, metric_names

RUNBOOKS = ROOT / "docs" / "runbooks.md"


def anchor(heading: str) -> str:
    """The anchor GitHub (and most Markdown renderers) give a heading."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def sections(markdown: str) -> dict[str, str]:
    """Anchor -> the text under that `## ` heading, up to the next one."""
    found = {}
    parts = re.split(r"^## (.+)$", markdown, flags=re.MULTILINE)
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        found[anchor(heading)] = body
    return found


RULES = alert_rules()


def test_headings_become_the_anchors_github_links_to() -> None:
    assert anchor("HomeFeedP99Slow") == "homefeedp99slow"
    assert anchor("What to do, now?") == "what-to-do-now"


@pytest.mark.parametrize("rule", RULES, ids=[rule["alert"] for rule in RULES])
def test_every_alert_links_to_a_runbook_section_about_it(rule: dict[str, str]) -> None:
    url = rule["annotations"].get("runbook_url", "")
    path, _, fragment = url.partition("#")
    assert path == "docs/runbooks.md", f"{rule['alert']}: runbook_url {url!r}"
    assert (ROOT / path).is_file()
    runbook = sections(RUNBOOKS.read_text()).get(fragment)
    assert runbook is not None, f"{rule['alert']}: no section #{fragment} in docs/runbooks.md"
    for part in ("**What it means.**", "**What to look at.**", "**What to do.**"):
        assert part in runbook, f"{rule['alert']}'s runbook has no {part}"
    for metric in metric_names(str(rule["expr"])):
        family = re.sub(r"_(bucket|count|sum)$", "", metric)
        assert f"`{family}" in runbook, f"{rule['alert']}'s runbook never names {family}"


def test_every_runbook_is_for_an_alert_that_exists() -> None:
    linked = {rule["annotations"]["runbook_url"].partition("#")[2] for rule in RULES}
    assert set(sections(RUNBOOKS.read_text())) == linked


def test_links_between_runbooks_land_on_a_section() -> None:
    text = RUNBOOKS.read_text()
    targets = set(re.findall(r"\]\(#([\w-]+)\)", text))
    assert targets, "the runbooks refer to each other"
    assert targets <= set(sections(text))
    for relative in re.findall(r"\]\((\.\./[^)#]+)\)", text):
        assert (RUNBOOKS.parent / relative).exists(), relative
