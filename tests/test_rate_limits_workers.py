"""The password limit holds across worker processes: 40 parallel guesses for one email, sent to
gunicorn with two workers on the tests' database, reach the password check at most
PASSWORD_MAX_FAILURES times (issue 9, item 6: no check-then-act). Runs on SQLite (a file) and on
PostgreSQL (CI sets TEST_DATABASE_URL)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
EMAIL = "race@acme.example"
WORKERS = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gunicorn(app, tmp_path) -> Iterator[str]:
    """gunicorn with two workers (eight threads each) serving the app on the tests' database."""
    if not GUNICORN.exists() and not shutil.which("gunicorn"):
        pytest.skip("gunicorn is not installed (it is in requirements.txt)")
    port = _free_port()
    env = {
        **os.environ,
        "APP_ENV": "testing",
        "TEST_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "LOG_LEVEL": "WARNING",
    }
    command = [str(GUNICORN), "-w", str(WORKERS), "--threads", "20", "-b", f"127.0.0.1:{port}", "app:create_app()"]
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/login", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail(f"gunicorn did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_forty_parallel_guesses_reach_the_password_check_at_most_the_limit(app, gunicorn, acme, make_user):
    make_user(acme["account"], EMAIL, "admin", password="the right one, not guessed")
    # One browser's CSRF cookie and token, sent by hand: the testing BASE_URL is https, so the
    # cookie is Secure, and requests would not send it to http://127.0.0.1 by itself.
    page = requests.get(f"{gunicorn}/login", timeout=10)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)
    cookie = "; ".join(f"{name}={value}" for name, value in page.cookies.items())

    def guess(number: int) -> int:
        return requests.post(
            f"{gunicorn}/login/password",
            data={"email": EMAIL, "password": f"guess {number}", "csrf_token": token},
            headers={"Cookie": cookie},
            allow_redirects=False,
            timeout=60,
        ).status_code

    with ThreadPoolExecutor(max_workers=40) as pool:
        statuses = Counter(pool.map(guess, range(40)))
    limit = app.config["PASSWORD_MAX_FAILURES"]
    # 401: the guess was checked. 429: refused before the check. 503: no hashing slot free, not checked.
    assert set(statuses) <= {401, 429, 503}, statuses
    assert 1 <= statuses[401] <= limit, statuses
    assert statuses[429] >= 40 - limit - statuses[503], statuses
