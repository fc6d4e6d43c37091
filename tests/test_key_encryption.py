"""SP private keys at rest: encrypted with SP_KEY_ENCRYPTION_KEY, so a database dump alone yields
no usable key; `flask keys rotate` moves them to a new key; rows from before still work until then."""

from __future__ import annotations

import json
import logging

import flask_migrate
import pytest
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from sqlalchemy import text

from app.extensions import db
from app.models import IdpConnection
from app.saml import sp_metadata_xml
from config import DEV_SP_KEY_ENCRYPTION_KEY
from tests.helpers.audit import audit_events

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def _raw(connection: IdpConnection | int) -> str:
    """The column as a database dump shows it (by id where the schema is older than the model)."""
    connection_id = connection if isinstance(connection, int) else connection.id
    return db.session.execute(
        text("SELECT sp_private_key FROM idp_connections WHERE id = :id"), {"id": connection_id}
    ).scalar_one()


def _set_raw(connection: IdpConnection, value: str) -> None:
    db.session.execute(
        text("UPDATE idp_connections SET sp_private_key = :value WHERE id = :id"), {"value": value, "id": connection.id}
    )
    db.session.commit()
    db.session.expire_all()


def _rotate(runner) -> tuple[int, dict]:
    result = runner.invoke(args=["keys", "rotate", "--json"])
    return result.exit_code, json.loads(result.output)


def test_a_database_dump_yields_no_usable_private_key(make_account, make_connection):
    connection = make_connection(make_account())
    raw = _raw(connection)
    assert "BEGIN" not in raw and "PRIVATE KEY" not in raw
    with pytest.raises(InvalidToken):
        Fernet(Fernet.generate_key()).decrypt(raw.encode())
    # With the key (and only then) it is the SP's RSA key.
    pem = Fernet(DEV_SP_KEY_ENCRYPTION_KEY).decrypt(raw.encode()).decode()
    assert pem == connection.sp_private_key_pem()
    assert load_pem_private_key(pem.encode(), password=None).key_size == 2048


def test_rotate_moves_every_key_to_the_new_key_and_the_old_key_can_go(
    app, runner, monkeypatch, make_account, make_connection
):
    monkeypatch.setitem(app.config, "SP_KEY_ENCRYPTION_KEY", OLD_KEY)
    connections = [make_connection(make_account(slug, slug.title())) for slug in ("acme", "globex")]
    pems = [connection.sp_private_key_pem() for connection in connections]
    updated = [connection.updated_at for connection in connections]

    monkeypatch.setitem(app.config, "SP_KEY_ENCRYPTION_KEY", f"{NEW_KEY},{OLD_KEY}")
    assert [connection.sp_private_key_pem() for connection in connections] == pems  # old key still reads
    exit_code, answer = _rotate(runner)
    assert exit_code == 0 and answer == {"reencrypted": 2, "were_plaintext": 0}

    monkeypatch.setitem(app.config, "SP_KEY_ENCRYPTION_KEY", NEW_KEY)  # the old key is dropped
    db.session.expire_all()
    for connection, pem, before in zip(connections, pems, updated, strict=True):
        raw = _raw(connection)
        assert Fernet(NEW_KEY).decrypt(raw.encode()).decode() == pem
        with pytest.raises(InvalidToken):
            Fernet(OLD_KEY).decrypt(raw.encode())
        assert connection.sp_private_key_pem() == pem and connection.updated_at == before
        assert "EntityDescriptor" in sp_metadata_xml(connection)
    assert audit_events("sp_keys.rotate")[0].details == {"reencrypted": 2, "were_plaintext": 0}


def test_a_key_the_keyring_cannot_open_stops_rotation_and_changes_nothing(
    app, runner, monkeypatch, make_account, make_connection
):
    connection = make_connection(make_account())
    before = _raw(connection)
    monkeypatch.setitem(app.config, "SP_KEY_ENCRYPTION_KEY", NEW_KEY)  # the dev key that wrote it is gone
    exit_code, answer = _rotate(runner)
    assert exit_code == 1 and answer["error"] == "KEY_NOT_DECRYPTABLE"
    assert f"IdP connection {connection.id}" in answer["message"] and before not in answer["message"]
    assert _raw(connection) == before


def test_a_plaintext_row_from_before_still_works_with_a_warning_until_rotated(
    runner, caplog, make_account, make_connection
):
    connection = make_connection(make_account())
    pem = connection.sp_private_key_pem()
    _set_raw(connection, pem)
    with caplog.at_level(logging.WARNING, logger="app.key_encryption"):
        assert connection.sp_private_key_pem() == pem
    assert "flask keys rotate" in caplog.text

    exit_code, answer = _rotate(runner)
    assert exit_code == 0 and answer == {"reencrypted": 1, "were_plaintext": 1}
    assert not _raw(connection).startswith("-----BEGIN")
    assert connection.sp_private_key_pem() == pem


def test_the_migration_encrypts_plaintext_rows_with_the_apps_key(app, make_account, make_connection):
    connection = make_connection(make_account())
    pem = connection.sp_private_key_pem()
    connection_id = connection.id  # read now: the older schema lacks columns the model loads
    flask_migrate.downgrade(revision="c5e8b2a7d301-1")  # to just before this migration
    try:
        db.session.expire_all()
        assert _raw(connection_id) == pem  # downgrade decrypts
    finally:
        # End the read's transaction first: on PostgreSQL a later migration's ALTER TABLE waits
        # for every open transaction that has read the table.
        db.session.rollback()
        flask_migrate.upgrade()
    raw = _raw(connection)
    assert not raw.startswith("-----BEGIN")
    assert MultiFernet([Fernet(DEV_SP_KEY_ENCRYPTION_KEY)]).decrypt(raw.encode()).decode() == pem
