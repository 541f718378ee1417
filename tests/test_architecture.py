"""Architecture rules, checked: service boundaries, a thin gateway, SQL only in repositories."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "__init__.py").exists())
SQL_BUILDERS = {"select", "insert", "update", "delete", "text", "func", "literal_column"}


def _python_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.py") if "__pycache__" not in p.parts]


def _imports(path: Path) -> list[tuple[str, set[str]]]:
    """(module, imported names) for every import statement in a file."""
    found: list[tuple[str, set[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, set()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, {alias.name for alias in node.names}))
    return found


def test_no_service_imports_another_service() -> None:
    offences = []
    for service in SERVICES:
        for path in _python_files(ROOT / "services" / service):
            for module, _ in _imports(path):
                parts = module.split(".")
                if parts[0] == "services" and len(parts) > 1 and parts[1] != service:
                    offences.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offences == []


def test_gateway_and_libs_do_not_import_services() -> None:
    offences = []
    for folder in (ROOT / "gateway", ROOT / "libs" / "zapcore"):
        for path in _python_files(folder):
            for module, _ in _imports(path):
                top = module.split(".")[0]
                if top == "services" or (folder.name == "zapcore" and top == "gateway"):
                    offences.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offences == []


def test_sql_lives_in_repositories() -> None:
    offences = []
    for path in _python_files(ROOT / "services"):
        if path.name in ("repository.py", "models.py") or "migrations" in path.parts:
            continue
        for module, names in _imports(path):
            if module.startswith("sqlalchemy") and names & SQL_BUILDERS:
                offences.append(f"{path.relative_to(ROOT)} builds SQL ({names & SQL_BUILDERS})")
        if re.search(r"(session|connection|conn)\.execute\(", path.read_text()):
            offences.append(f"{path.relative_to(ROOT)} executes SQL")
    assert offences == []


def test_every_service_folder_has_the_same_shape() -> None:
    required = {"__init__.py", "__main__.py", "app.py", "settings.py", "models.py", "migrations"}
    for service in SERVICES:
        present = {p.name for p in (ROOT / "services" / service).iterdir()}
        assert required <= present, f"services/{service} lacks {required - present}"
    assert set(SERVICES) == {"auth", "feed", "graph", "media", "moderation", "notification"}


def test_no_hand_written_package_is_called_zap() -> None:
    for folder in (ROOT, ROOT / "libs", ROOT / "services"):
        assert not (folder / "zap" / "__init__.py").exists()
