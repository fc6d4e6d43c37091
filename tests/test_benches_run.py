"""Every benchmark still runs, at a tiny size, so that a change to the app cannot leave `make
bench` broken unnoticed (the figures themselves are measured by `make bench`, not here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

TINY = {
    "acs.py": ["--responses", "4", "--rounds", "2"],
    "session_check.py": ["--small", "200", "--large", "400", "--requests", "5", "--rounds", "1"],
    "native_token.py": [
        "--few",
        "20",
        "--many",
        "40",
        "--sessions-few",
        "20",
        "--sessions-many",
        "40",
        "--requests",
        "3",
        "--rounds",
        "1",
    ],
    "support_list.py": ["--sessions", "2000", "--audit-events", "500", "--repeat", "1"],
    "csv_import.py": ["--rows", "200", "--repeat", "1"],
    "revoke.py": ["--sessions", "10", "--background", "100", "--repeat", "1"],
    "password.py": ["--failures", "200", "--repeat", "1"],
    "scim.py": ["--users", "10", "--total", "100", "--repeat", "1"],
    "slo.py": ["--responses", "3", "--sessions", "10", "--background", "100", "--repeat", "1"],
}


def test_every_bench_is_listed_here():
    """``bench/http_load.py`` needs gunicorn on PostgreSQL and is run by ``make bench`` only."""
    scripts = {path.name for path in (ROOT / "bench").glob("*.py") if not path.name.startswith("_")}
    assert scripts == set(TINY) | {"http_load.py"}


@pytest.mark.parametrize("script", sorted(TINY))
def test_bench_runs_at_a_tiny_size(script, tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("BENCH_DATABASE_URL", "TEST_DATABASE_URL")}
    env["INSTANCE_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *TINY[script]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "ms" in result.stdout or "s " in result.stdout  # it printed figures
