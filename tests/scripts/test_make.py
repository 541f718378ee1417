"""`make` with no target tells a newcomer what there is, and starts nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_make_alone_lists_the_targets_with_what_they_do() -> None:
    listing = subprocess.run(
        ["make", "--no-print-directory", "-C", ROOT], capture_output=True, text=True, check=True
    )
    lines = listing.stdout.splitlines()
    targets = {line.split()[0]: line for line in lines}
    assert {"help", "up", "test", "lint", "migrate"} <= targets.keys()
    assert "run the whole stack locally" in targets["up"]
    assert not any(line.startswith("==>") for line in lines), "make alone started something"
