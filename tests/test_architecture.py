"""The layering of app/ (DESIGN.md, "The shape of the code"), proved by import-linter's contracts in
pyproject.toml: nothing imports a layer above it, and plugins import only the plugin base."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _lint_imports() -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).with_name("lint-imports")
    executable = str(command) if command.exists() else shutil.which("lint-imports")
    assert executable, "lint-imports is missing: pip install -r requirements-dev.txt"
    return subprocess.run([executable, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_import_contracts_hold() -> None:
    result = _lint_imports()
    output = result.stdout + result.stderr
    assert "Analyzed" in output, output
    assert result.returncode == 0, output
    assert "Contracts: 3 kept, 0 broken." in output, output


def test_every_folder_of_app_is_a_package_the_linter_sees() -> None:
    folders = {path.parent for path in (ROOT / "app").rglob("*.py")}
    assert sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").exists()) == []
