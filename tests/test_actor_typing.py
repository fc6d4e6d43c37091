"""mypy checks what the services receive as the person acting: the session check's
``SessionUser`` fits ``app.roles.Actor`` like a ``User`` row does, and an object that is not a
person is an error (``warn_unused_ignores`` turns a missed one into a failure)."""

from __future__ import annotations

from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parent.parent


def test_session_users_and_user_rows_are_actors_to_mypy() -> None:
    stdout, stderr, status = api.run(
        ["--config-file", str(ROOT / "pyproject.toml"), str(ROOT / "tests" / "typechecks" / "actor_calls.py")]
    )
    assert status == 0, stdout + stderr
