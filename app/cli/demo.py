"""``flask demo``: the development demo IdP."""

from __future__ import annotations

from flask import current_app

from app.cli._common import CommandError, command_errors, command_group, connection_json, emit, json_option
from app.extensions import db

demo_cli = command_group("demo", help="The development demo IdP.")


@demo_cli.command("setup")
@json_option
@command_errors
def demo_setup(as_json: bool) -> None:
    """Create the demo account, users and demo IdP connection (development settings only)."""
    # Imported here: the demo IdP package is only wired into development apps.
    from app.demo_idp.setup import ensure_demo

    if not current_app.config["DEMO_IDP"]:
        raise CommandError("DEMO_DISABLED", "the demo IdP exists only with APP_ENV=development")
    connection = ensure_demo()
    db.session.commit()
    emit(
        as_json,
        connection_json(connection),
        f"Demo ready: sign in at {current_app.config['BASE_URL']}/login as alice@demo.example.",
    )
