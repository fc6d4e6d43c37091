"""Encryption at rest for the SP private keys, with a keyring from ``SP_KEY_ENCRYPTION_KEY``.

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) through ``MultiFernet``: the setting is
a comma-separated list of Fernet keys, the first encrypts, every one decrypts. Rotation: put a new
key first, run ``flask keys rotate`` (re-encrypts every stored key with it), then drop the old one.
A database dump alone holds only ciphertext.

Rows written before encryption hold PEM text; they are still read (with a warning) until the
migration or ``flask keys rotate`` encrypts them. A leaf module: models use it, it uses nothing of
the portal's.
"""

from __future__ import annotations

import functools
import logging

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app

log = logging.getLogger(__name__)

PEM_PREFIX = "-----BEGIN"


class KeyEncryptionError(RuntimeError):
    """A stored key cannot be decrypted with the configured keyring: an operator must fix the setting."""


def parse_keyring(setting: str) -> list[Fernet]:
    """The Fernet keys of ``SP_KEY_ENCRYPTION_KEY`` (comma-separated, newest first).

    Raises ``ValueError`` naming the bad entry's position, never its value.
    """
    keys = [part.strip() for part in (setting or "").split(",") if part.strip()]
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError):
            raise ValueError(f"key {position} of {len(keys)} is not a Fernet key (32 url-safe base64 bytes)") from None
    return fernets


@functools.lru_cache(maxsize=8)
def _keyring(setting: str) -> MultiFernet:
    return MultiFernet(parse_keyring(setting))


def keyring() -> MultiFernet:
    """The app's keyring (parsed once per setting value)."""
    return _keyring(current_app.config["SP_KEY_ENCRYPTION_KEY"])


def is_plaintext(stored: str) -> bool:
    """Whether ``stored`` is a PEM key written before encryption at rest."""
    return stored.lstrip().startswith(PEM_PREFIX)


def encrypt_private_key(pem: str) -> str:
    """The value to store for ``pem``: a Fernet token under the keyring's first key."""
    return keyring().encrypt(pem.encode()).decode("ascii")


def decrypt_private_key(stored: str, *, owner: str) -> str:
    """The PEM key from a stored value; ``owner`` names the row in messages (never the key)."""
    if is_plaintext(stored):
        log.warning("The private key of %s is stored unencrypted: run `flask keys rotate` to encrypt it.", owner)
        return stored
    try:
        return keyring().decrypt(stored.encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise KeyEncryptionError(
            f"The private key of {owner} cannot be decrypted with SP_KEY_ENCRYPTION_KEY: the key that encrypted "
            "it is not in the keyring. Restore the previous key (after the new one, comma-separated)."
        ) from None


def reencrypt_private_key(stored: str, *, owner: str) -> str:
    """``stored`` encrypted under the keyring's first key (plaintext rows are encrypted)."""
    if is_plaintext(stored):
        return encrypt_private_key(stored)
    try:
        return keyring().rotate(stored.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError):
        raise KeyEncryptionError(
            f"The private key of {owner} cannot be decrypted with any key of SP_KEY_ENCRYPTION_KEY."
        ) from None
