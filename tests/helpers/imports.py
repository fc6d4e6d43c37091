"""Waiting for a CSV import job, as the page's progress bar does: by polling its status."""

from __future__ import annotations

import time

from flask.testing import FlaskClient


def wait_for_job(
    client: FlaskClient, path: str, *states: str, timeout: float = 120.0, seen: list[dict] | None = None
) -> dict:
    """Poll ``path``/status until the job is in one of ``states``; return that status (and add
    every status read on the way to ``seen``)."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"{path}/status")
        assert response.status_code == 200, response.get_data(as_text=True)
        status = response.get_json()
        if seen is not None:
            seen.append(status)
        if status["state"] in states:
            return status
        assert status["state"] in ("checking", "writing"), status  # nothing else is on the way
        assert time.monotonic() < deadline, f"job still {status['state']} after {timeout} s: {status}"
        time.sleep(0.05)
