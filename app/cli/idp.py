"""``flask idp``: connect an account to its IdP, show, enable, print SP metadata, refresh.

``idp add`` reads the IdP side exactly as the setup wizard does (same checks, same codes, same
audit events): ``read_idp_side``, then ``create_connection`` and ``import_idp_side``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from app.cli._common import (
    CommandError,
    command_errors,
    command_group,
    connection_json,
    emit,
    get_account,
    get_connection,
    json_option,
)
from app.extensions import db
from app.formatting import plural
from app.saml import EXPIRY_WARNING_DAYS, MAX_METADATA_BYTES, MetadataError, ParsedMetadata, sp_metadata_xml, sp_values
from app.services.certificate_alerts import certificate_alerts
from app.services.connections import (
    add_encryption_key,
    connections_with_metadata_url,
    create_connection,
    enable_connection,
    import_idp_side,
    read_idp_side,
    record_import_failure,
    refresh_from_metadata_url,
    retire_encryption_key,
    update_connection_options,
)

idp_cli = command_group("idp", help="IdP connections.")


def _read_given_idp_side(
    metadata_file: Path | None,
    metadata_url: str | None,
    entity_id: str | None,
    sso_url: str | None,
    cert_file: Path | None,
) -> tuple[ParsedMetadata, str]:
    """The IdP side from exactly one of the three sources, and the wizard's name for that source."""
    sources = [bool(metadata_file), bool(metadata_url), bool(entity_id or sso_url or cert_file)]
    if sum(sources) != 1:
        raise CommandError(
            "IDP_SOURCE", "give exactly one of --metadata-file, --metadata-url, or --entity-id/--sso-url/--cert-file"
        )
    if metadata_file:
        # One byte more than the cap, as the wizard's upload: an oversized file is refused unread.
        with metadata_file.open("rb") as stream:
            return read_idp_side("file", raw=stream.read(MAX_METADATA_BYTES + 1)), "file"
    if metadata_url:
        return read_idp_side("url", url=metadata_url.strip()), "url"
    if not (entity_id and sso_url and cert_file):
        raise CommandError("IDP_SOURCE", "manual entry needs --entity-id, --sso-url and --cert-file")
    certificate = cert_file.read_text(errors="replace")
    return read_idp_side("manual", entity_id=entity_id, sso_url=sso_url, certificate=certificate), "manual"


@idp_cli.command("add")
@click.option("--account", "slug", required=True)
@click.option("--provider", required=True, help="google, entra, okta, onelogin, salesforce or generic.")
@click.option("--metadata-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--metadata-url")
@click.option("--entity-id")
@click.option("--sso-url")
@click.option("--cert-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--enable", is_flag=True, help="Enable at once (skips the wizard's test sign-in).")
@json_option
@command_errors
def idp_add(
    slug: str,
    provider: str,
    metadata_file: Path | None,
    metadata_url: str | None,
    entity_id: str | None,
    sso_url: str | None,
    cert_file: Path | None,
    enable: bool,
    as_json: bool,
) -> None:
    """Connect an account to its IdP and print the SP values to paste into the IdP."""
    account = get_account(slug)
    idp, method = _read_given_idp_side(metadata_file, metadata_url, entity_id, sso_url, cert_file)
    connection = create_connection(account, provider, actor="cli")
    url = metadata_url.strip() if metadata_url else None
    import_idp_side(connection, idp, method=method, metadata_url=url, actor="cli")
    if enable:
        enable_connection(connection, actor="cli")
    db.session.commit()
    values = sp_values(connection)
    data = {"id": connection.id, "status": connection.status, "warnings": idp.warnings, **values.as_dict()}
    text = "\n".join(
        [
            f"Created IdP connection {connection.id} ({provider}, {connection.status}). Paste into your IdP:",
            f"  Entity ID / Audience: {values.sp_entity_id}",
            f"  ACS URL:              {values.acs_url}",
            f"  SP metadata URL:      {values.metadata_url}",
            *[f"Warning: {w}" for w in idp.warnings],
        ]
    )
    emit(as_json, data, text)


@idp_cli.command("show")
@click.argument("connection_id", type=int)
@json_option
@command_errors
def idp_show(connection_id: int, as_json: bool) -> None:
    """Show a connection: IdP side, SP values, certificates, status."""
    data = connection_json(get_connection(connection_id))
    emit(as_json, data, "\n".join(f"{key}: {value}" for key, value in data.items()))


_ON_OFF = click.Choice(["on", "off"])


def _switch(value: str | None) -> bool | None:
    return None if value is None else value == "on"


@idp_cli.command("set")
@click.argument("connection_id", type=int)
@click.option("--single-logout", type=_ON_OFF, help="Answer the IdP's LogoutRequests; sign out at the IdP too.")
@click.option("--encrypt-assertions", type=click.Choice(["off", "accept", "require"]))
@click.option("--sign-requests", type=_ON_OFF, help="Sign AuthnRequests (RSA-SHA256).")
@click.option(
    "--signed-element",
    type=click.Choice(["any", "assertion", "response", "both"]),
    help="What must carry the IdP's signature (the service says which values this version accepts).",
)
@click.option("--idp-initiated", type=_ON_OFF, help="Accept sign-ins started at the IdP.")
@json_option
@command_errors
def idp_set(
    connection_id: int,
    single_logout: str | None,
    encrypt_assertions: str | None,
    sign_requests: str | None,
    signed_element: str | None,
    idp_initiated: str | None,
    as_json: bool,
) -> None:
    """Set a connection's options, with the same checks as the settings page."""
    connection = get_connection(connection_id)
    changed = update_connection_options(
        connection,
        single_logout=_switch(single_logout),
        encrypt_assertions=encrypt_assertions,
        sign_requests=_switch(sign_requests),
        signed_element=signed_element,
        allow_idp_initiated=_switch(idp_initiated),
        actor="cli",
    )
    db.session.commit()
    data = {**connection_json(connection), "changed": changed}
    warnings = []
    if data["options"]["single_logout"] and not connection.idp_slo_url:
        warnings.append("The IdP's Single Logout URL is not known: import its metadata again (or sign-out stays here).")
    data["warnings"] = warnings
    text = "\n".join(
        [f"Changed: {', '.join(changed)}." if changed else "Nothing changed.", *[f"Warning: {w}" for w in warnings]]
    )
    emit(as_json, data, text)


@idp_cli.command("encryption-key")
@click.argument("connection_id", type=int)
@click.option("--add", "add", is_flag=True, help="Publish a new encryption key beside the current one.")
@click.option("--retire", "retire", type=int, help="Retire the encryption key with this id.")
@json_option
@command_errors
def idp_encryption_key(connection_id: int, add: bool, retire: int | None, as_json: bool) -> None:
    """Roll the SP encryption key over: --add a new one, upload it to the IdP, then --retire the old."""
    connection = get_connection(connection_id)
    if add == (retire is not None):
        raise CommandError("KEY_ACTION", "give exactly one of --add and --retire KEY_ID")
    key = (
        add_encryption_key(connection, actor="cli")
        if add
        else retire_encryption_key(connection, retire or 0, actor="cli")
    )
    db.session.commit()
    data = {**connection_json(connection), "key_id": key.id}
    emit(as_json, data, f"{'Added' if add else 'Retired'} encryption key {key.id} ({key.fingerprint_sha256}).")


@idp_cli.command("enable")
@click.argument("connection_id", type=int)
@json_option
@command_errors
def idp_enable(connection_id: int, as_json: bool) -> None:
    """Enable sign-in through a connection."""
    connection = get_connection(connection_id)
    enable_connection(connection, actor="cli")
    db.session.commit()
    emit(as_json, connection_json(connection), f"Enabled IdP connection {connection.id}.")


@idp_cli.command("sp-metadata")
@click.argument("connection_id", type=int)
@json_option
@command_errors
def idp_sp_metadata(connection_id: int, as_json: bool) -> None:
    """Print the SP metadata XML of a connection."""
    xml = sp_metadata_xml(get_connection(connection_id))
    emit(as_json, {"id": connection_id, "metadata": xml}, xml)


@idp_cli.command("refresh")
@click.argument("connection_id", type=int, required=False)
@click.option("--all", "refresh_all", is_flag=True, help="Every connection imported from a metadata URL (for cron).")
@json_option
@command_errors
def idp_refresh(connection_id: int | None, refresh_all: bool, as_json: bool) -> None:
    """Re-import metadata URLs: new certificates are added, old ones kept; a change of entity ID or
    SSO URL is held for review (exit code 1), not applied."""
    if refresh_all == (connection_id is not None):
        raise CommandError("REFRESH_TARGET", "give a connection ID or --all")
    if connection_id is not None:
        connection = get_connection(connection_id)
        added = refresh_from_metadata_url(connection, actor="cli")
        db.session.commit()
        emit(
            as_json,
            {**connection_json(connection), "certificates_added": added},
            f"{plural(added, 'new certificate').capitalize()}.",
        )
        return
    results: list[dict[str, Any]] = []
    for connection in connections_with_metadata_url():
        try:
            added = refresh_from_metadata_url(connection, actor="cli")
            db.session.commit()
            results.append({"id": connection.id, "certificates_added": added})
        except MetadataError as err:
            db.session.rollback()
            record_import_failure(connection, err, method="url", url=connection.idp_metadata_url)
            db.session.commit()
            results.append({"id": connection.id, "error": err.code, "message": err.message})
    failed = [result for result in results if "error" in result]
    lines = [
        f"{result['id']}: {result.get('error') or plural(result['certificates_added'], 'new certificate')}"
        for result in results
    ]
    emit(
        as_json,
        {"connections": results, "failed": len(failed)},
        "\n".join(lines) or "No connection has a metadata URL.",
    )
    if failed:
        sys.exit(1)


@idp_cli.command("check-certs")
@json_option
@command_errors
def idp_check_certs(as_json: bool) -> None:
    """List certificates expiring within the warning window; exit code 1 when there is one (cron)."""
    alerts = certificate_alerts()
    data = {"warning_days": EXPIRY_WARNING_DAYS, "alerts": [alert.as_dict() for alert in alerts]}
    lines = [
        f"{alert.account_slug} / connection {alert.connection_id}: {alert.label} {alert.state}, "
        f"not after {alert.not_after:%Y-%m-%d} ({alert.fingerprint_sha256})"
        for alert in alerts
    ]
    emit(as_json, data, "\n".join(lines) or f"No certificate expires within {EXPIRY_WARNING_DAYS} days.")
    if alerts:
        sys.exit(1)
