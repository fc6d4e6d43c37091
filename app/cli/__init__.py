"""The ``flask`` commands, one module per group (``app/cli/<group>.py``).

Every command takes ``--json`` and then prints one JSON object. Commands parse arguments, call
services, commit and print; the rules live in ``app/services``.
"""

from __future__ import annotations

from flask import Flask

from app.cli.accounts import accounts_cli
from app.cli.demo import demo_cli
from app.cli.idp import idp_cli
from app.cli.keys import keys_cli
from app.cli.scim import scim_cli
from app.cli.sessions import sessions_cli
from app.cli.users import users_cli


def init_app(app: Flask) -> None:
    """Register the command groups on ``app``."""
    for group in (accounts_cli, users_cli, idp_cli, sessions_cli, demo_cli, keys_cli, scim_cli):
        app.cli.add_command(group)
