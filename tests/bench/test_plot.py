"""The committed feed picture can be redrawn from the committed data alone."""

from __future__ import annotations

import json
from pathlib import Path

from scripts.bench.plot import AFTER, BEFORE, draw, markdown


def test_the_picture_is_redrawn_from_the_committed_before_and_after(tmp_path: Path) -> None:
    picture = tmp_path / "feed-p99.png"

    draw(json.loads(BEFORE.read_text()), json.loads(AFTER.read_text()), picture)

    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_table_has_a_row_per_level_and_run_and_says_what_held() -> None:
    after = json.loads(AFTER.read_text())

    table = markdown(after).splitlines()

    rows = [line for line in table if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == len(after["levels"])
    assert table[-2].startswith("Highest level holding, run by run: run 1: ")
