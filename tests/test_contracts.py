"""The contracts: buf lint is clean and the committed stubs are exactly what buf generates."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _buf(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(BIN / "buf"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def _tree(root: Path) -> dict[str, Path]:
    return {
        str(path.relative_to(root)): path
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_buf_lint_is_clean() -> None:
    result = _buf("lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_committed_stubs_match_buf_generate(tmp_path: Path) -> None:
    result = _buf("generate", "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    fresh = _tree(tmp_path / "libs" / "gen")
    committed = _tree(ROOT / "libs" / "gen")
    assert sorted(fresh) == sorted(committed), "run `make generate`: stub files differ"
    drifted = [
        name for name in fresh if not filecmp.cmp(fresh[name], committed[name], shallow=False)
    ]
    assert drifted == [], f"run `make generate`: these stubs drifted from protos/: {drifted}"


def test_every_service_has_a_contract() -> None:
    for service in ("auth", "feed", "graph", "media", "moderation", "notification"):
        assert (ROOT / "protos" / "zap" / service / "v1" / f"{service}.proto").is_file()
