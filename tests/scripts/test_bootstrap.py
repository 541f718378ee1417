"""`scripts/bootstrap` on a stock Debian/Ubuntu: its system Python refuses `pip install`
(PEP 668), so uv must come from somewhere pip is allowed to install into."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIND_UV = ROOT / "scripts" / "find-uv"


def externally_managed_python(root: Path) -> Path:
    """A Python that refuses pip installs exactly as Debian's does.

    pip skips the PEP 668 check inside any venv, so this is not a venv: a Python home of its
    own whose stdlib (the real one, linked file by file) holds an EXTERNALLY-MANAGED marker.
    """
    home = root / "system"
    stdlib = home / "lib" / Path(sysconfig.get_path("stdlib")).name
    stdlib.mkdir(parents=True)
    # The marker is written below, never linked: on a Debian base that would write through
    # the link into the real interpreter's stdlib.
    for entry in Path(sysconfig.get_path("stdlib")).iterdir():
        if entry.name not in ("site-packages", "EXTERNALLY-MANAGED"):
            (stdlib / entry.name).symlink_to(entry)
    (stdlib / "site-packages").mkdir()
    python = root / "bin" / "python3"
    python.parent.mkdir()
    python.write_text(
        f'#!/bin/sh\nPYTHONHOME="{home}" exec "{os.path.realpath(sys.executable)}" "$@"\n'
    )
    python.chmod(0o755)
    # The distribution's pip, then the marker its packaging adds.
    subprocess.run([python, "-m", "ensurepip", "--default-pip"], check=True, capture_output=True)
    (stdlib / "EXTERNALLY-MANAGED").write_text(
        "[externally-managed]\nError=install with apt, or use a venv\n"
    )
    return python


def path_without_uv() -> str:
    """PATH minus any folder holding a uv: the machine has none to find."""
    folders = os.environ["PATH"].split(os.pathsep)
    return os.pathsep.join(f for f in folders if not (Path(f) / "uv").exists())


def test_a_python_that_refuses_pip_installs_still_ends_with_a_working_uv(
    tmp_path: Path,
) -> None:
    python = externally_managed_python(tmp_path)
    refused = subprocess.run(
        [python, "-m", "pip", "install", "--dry-run", "uv"], capture_output=True, text=True
    )
    assert refused.returncode != 0
    assert "externally-managed-environment" in refused.stderr

    bootstrap_dir = tmp_path / "bootstrap"
    env = {
        **os.environ,
        "PATH": path_without_uv(),
        "PYTHON": str(python),
        "ZAP_BOOTSTRAP_DIR": str(bootstrap_dir),
    }
    found = subprocess.run([FIND_UV], env=env, capture_output=True, text=True, check=True)

    uv = Path(found.stdout.strip())
    assert uv.is_relative_to(bootstrap_dir)
    version = subprocess.run([uv, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("uv ")
    # Found again without installing anything: the second run is today's fast path.
    again = subprocess.run([FIND_UV], env=env, capture_output=True, text=True, check=True)
    assert again.stdout == found.stdout
    assert "installing" not in again.stderr
