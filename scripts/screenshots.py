"""Retake the README's screenshots: the main pages at 1280 px (desktop) and 390 px (phone).

    .venv/bin/python scripts/screenshots.py            # writes docs/screenshots/<page>-<size>.png

It serves the portal with development settings (the demo IdP signs real SAML) on a throwaway
SQLite database in a temporary folder, builds the same demo world as the browser tests (the demo
account, a connection per provider, signed-in people, test sign-ins: tests/browser/portal_pages.py)
and drives Debian's chromium through Playwright, as the tests do. Nothing under instance/ changes.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
SIZES = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    app: object


def main() -> int:
    scratch = tempfile.mkdtemp(prefix="portal-screenshots-")
    url = f"http://127.0.0.1:{free_port()}"
    # Read by config.py when it is imported: development settings on the scratch database.
    os.environ.update(
        APP_ENV="development", INSTANCE_DIR=scratch, DATABASE_URL=f"sqlite:///{scratch}/portal.db", BASE_URL=url
    )
    sys.path.insert(0, str(ROOT))
    import flask_migrate
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from app import create_app
    from tests.browser.portal_pages import MAIN_PAGES, build_world, close_world
    from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS

    app = create_app()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per screenshot, not per request
    with app.app_context():
        flask_migrate.upgrade(directory=str(ROOT / "migrations"))
    server = make_server("127.0.0.1", int(url.rsplit(":", 1)[1]), app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            world = build_world(Server(url=url, app=app), browser)
            for size, viewport in SIZES.items():
                for page in MAIN_PAGES:
                    world.tab(page.who).set_viewport_size(viewport)
                    tab = page.open(world)
                    path = OUT / f"{page.name}-{size}.png"
                    tab.screenshot(path=str(path), full_page=True)
                    print(f"{path.relative_to(ROOT)}")
            close_world(world, Server(url=url, app=app))
            browser.close()
    finally:
        server.shutdown()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
