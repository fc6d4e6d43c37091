"""The SP's encryption key pairs: what an IdP encrypts assertions to, per connection."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.timeutil import utcnow


class SpEncryptionKey(Model):
    """One encryption key pair of a connection, separate from its signing key.

    Several coexist during a rollover: a new key is published in the SP metadata (and decrypts)
    before the old one is retired, so that the IdP can switch at its own pace.
    """

    __tablename__ = "sp_encryption_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("idp_connections.id", ondelete="CASCADE"), index=True)
    #: PEM of the private key (decrypts the EncryptedKey of an assertion).
    private_key: Mapped[str] = mapped_column(Text)
    #: PEM of the self-signed certificate published with ``use="encryption"``.
    certificate: Mapped[str] = mapped_column(Text)
    #: Hex SHA-256 of the certificate's DER bytes, upper case with colons.
    fingerprint_sha256: Mapped[str] = mapped_column(String(95))
    not_after: Mapped[datetime] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    #: Set when the key is retired: no longer published, no longer tried.
    retired_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
