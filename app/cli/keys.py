"""``flask keys``: the encryption of secrets at rest (the SP private keys)."""

from __future__ import annotations

from app.cli._common import command_errors, command_group, emit, json_option
from app.extensions import db
from app.formatting import plural
from app.key_encryption import KeyEncryptionError
from app.services.connections import rotate_sp_key_encryption

keys_cli = command_group("keys", help="Encryption of the SP private keys (SP_KEY_ENCRYPTION_KEY).")


@keys_cli.command("rotate")
@json_option
@command_errors
def keys_rotate(as_json: bool) -> None:
    """Re-encrypt every SP private key with the first key of SP_KEY_ENCRYPTION_KEY.

    Rotation: set SP_KEY_ENCRYPTION_KEY=new,old everywhere, run this, then drop the old key.
    Keys stored in plain text (before encryption at rest) are encrypted too. All or nothing.
    """
    try:
        result = rotate_sp_key_encryption(actor="cli")
    except KeyEncryptionError as exc:
        db.session.rollback()
        emit(as_json, {"error": "KEY_NOT_DECRYPTABLE", "message": str(exc)}, f"{exc} [KEY_NOT_DECRYPTABLE]")
        raise SystemExit(1) from None
    db.session.commit()
    emit(
        as_json,
        {"reencrypted": result.reencrypted, "were_plaintext": result.were_plaintext},
        f"Re-encrypted {plural(result.reencrypted, 'SP private key')} "
        f"({result.were_plaintext} {'was' if result.were_plaintext == 1 else 'were'} stored in plain text).",
    )
