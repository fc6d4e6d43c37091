"""The SP's URLs for a connection, built from ``BASE_URL`` (never from the Host header)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from flask import current_app

from app.models import IdpConnection


@dataclass(frozen=True)
class SpValues:
    """What an admin pastes into the IdP for one connection."""

    sp_entity_id: str
    acs_url: str
    metadata_url: str
    sls_url: str
    start_url: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def sp_values(connection: IdpConnection) -> SpValues:
    """Return the SP entity ID, ACS URL and friends of ``connection``."""
    base = current_app.config["BASE_URL"]
    prefix = f"{base}/saml/{connection.id}"
    return SpValues(
        sp_entity_id=f"{prefix}/metadata",
        acs_url=f"{prefix}/acs",
        metadata_url=f"{prefix}/metadata",
        sls_url=f"{prefix}/sls",
        start_url=f"{base}/login",
    )


def request_data_for(url: str, post_data: dict[str, str] | None = None) -> dict:
    """python3-saml's request description of ``url``, so its Destination checks use our URL."""
    parts = urlsplit(url)
    return {
        "https": "on" if parts.scheme == "https" else "off",
        "http_host": parts.netloc,
        "script_name": parts.path,
        "path_info": "",
        "get_data": {},
        "post_data": post_data or {},
    }
