"""The IdP connection model and its signing certificates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.key_encryption import decrypt_private_key, encrypt_private_key
from app.models.account import Account
from app.timeutil import utcnow

DRAFT = "draft"
TESTED = "tested"
ENABLED = "enabled"
STATUSES = (DRAFT, TESTED, ENABLED)


class IdpConnection(Model):
    """One account's link to one IdP: an instance of an IdP plugin, with this customer's values."""

    __tablename__ = "idp_connections"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    #: Key of the plugin in ``app.idp_plugins`` (``okta``, ``generic``, ...).
    plugin_key: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200), default="")
    idp_entity_id: Mapped[str] = mapped_column(String(1024), default="")
    idp_sso_url: Mapped[str] = mapped_column(String(2048), default="")
    idp_slo_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    #: Where the IdP metadata was fetched from, so that it can be re-imported (certificate rollover).
    idp_metadata_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    #: Per-connection overrides of the plugin defaults (``email_attributes``, ``signed_element``,
    #: ``nameid_format``).
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The ``SetupPath`` key the admin chose in a walkthrough with several (Salesforce); None
    #: until they choose. The wizard's links return to that path's steps.
    setup_path: Mapped[str | None] = mapped_column(String(40), nullable=True)
    #: Accept IdP-initiated (unsolicited) responses. Off unless the admin turns it on.
    allow_idp_initiated: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The SP's private key for this connection, encrypted at rest (``app.key_encryption``, column
    #: ``sp_private_key``). Read and write it with ``sp_private_key_pem`` / ``set_sp_private_key``.
    sp_private_key_encrypted: Mapped[str] = mapped_column("sp_private_key", Text)
    #: The SP's certificate (PEM, public): it goes into SP metadata.
    sp_certificate: Mapped[str] = mapped_column(Text)
    #: ``draft`` until a test sign-in passes (``tested``), then ``enabled`` by an admin.
    status: Mapped[str] = mapped_column(String(20), default=DRAFT)
    #: When a test sign-in's SAML exchange first worked (the response was valid, even if the
    #: person who tried it had no access yet): what moves a draft to ``tested``.
    saml_test_passed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    #: When a test sign-in first fully succeeded (its person would have got in): what "SSO
    #: required" and replacing an SSO-required account's connection ask for.
    signin_test_passed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    account: Mapped[Account] = relationship()
    certificates: Mapped[list[IdpCertificate]] = relationship(
        back_populates="connection",
        cascade="all, delete-orphan",
        order_by="IdpCertificate.id",
        lazy="selectin",
    )

    def set_sp_private_key(self, pem: str) -> None:
        """Store the SP's private key, encrypted with the first key of SP_KEY_ENCRYPTION_KEY."""
        self.sp_private_key_encrypted = encrypt_private_key(pem)

    def sp_private_key_pem(self) -> str:
        """The SP's private key in PEM. Decrypting costs time: callers cache what they build with it."""
        return decrypt_private_key(self.sp_private_key_encrypted, owner=f"IdP connection {self.id}")

    @property
    def is_enabled(self) -> bool:
        return self.status == ENABLED

    def __repr__(self) -> str:
        return f"<IdpConnection {self.id} {self.plugin_key} account={self.account_id}>"


class IdpCertificate(Model):
    """One of the IdP's signing certificates; several coexist during a rollover."""

    __tablename__ = "idp_certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("idp_connections.id", ondelete="CASCADE"), index=True)
    #: PEM text of the certificate.
    pem: Mapped[str] = mapped_column(Text)
    #: Hex SHA-256 of the DER bytes, upper case with colons, as IdP consoles show it.
    fingerprint_sha256: Mapped[str] = mapped_column(String(95))
    not_after: Mapped[datetime] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    connection: Mapped[IdpConnection] = relationship(back_populates="certificates")
