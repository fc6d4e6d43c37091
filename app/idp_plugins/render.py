"""Fill a plugin's walkthrough and hints with one connection's SP values.

Plugins hold text with ``{placeholders}``; this module is the only place that fills them, so that
every page (the setup wizard, the error log, the support console) shows the same words and a typo
in a plugin fails loudly in the contract test instead of showing "{acs_ur}" to a customer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from xml.sax.saxutils import escape as xml_escape

from app.idp_plugins.base import IdpPlugin, SetupFile, SetupPath, SetupStep
from app.idp_plugins.generic import GenericPlugin


@dataclass(frozen=True)
class RenderedValue:
    """One value the admin copies: the IdP's own field label and this connection's value."""

    label: str
    value: str
    #: Shown with a Copy button (our values, and literals the admin types); else shown as a setting.
    copy: bool = True


@dataclass(frozen=True)
class RenderedFile:
    """A file to save as it is (``SetupFile``) with this connection's values filled in."""

    #: Where it goes in the admin's project.
    path: str
    #: The download's file name.
    name: str
    content: str
    media_type: str


@dataclass(frozen=True)
class RenderedStep:
    """One walkthrough step with every placeholder replaced."""

    title: str
    body: str
    values: list[RenderedValue] = field(default_factory=list)
    #: The ``SetupPath`` key the step belongs to; None when every path shares it.
    path: str | None = None
    #: Whether the page asks here which of the plugin's paths the admin takes.
    offers_paths: bool = False
    files: list[RenderedFile] = field(default_factory=list)


def _with_derived_values(values: Mapping[str, str]) -> dict[str, str]:
    """Add the values computed from others, so callers only supply the SP's real URLs.

    OneLogin asks for a regular expression of the ACS URL; deriving it here keeps the escaping in
    one place instead of in every caller.
    """
    filled = dict(values)
    if "acs_url_regex" not in filled and "acs_url" in filled:
        filled["acs_url_regex"] = "^" + re.escape(filled["acs_url"]) + "$"
    return filled


def _fill(text: str, values: Mapping[str, str], where: str) -> str:
    """Fill ``text``'s placeholders; an unknown one raises ``KeyError`` naming it and ``where``."""
    try:
        return text.format_map(values)
    except KeyError as exc:
        missing = exc.args[0]
        error = KeyError(missing)
        error.add_note(f"no value for placeholder {{{missing}}} in {where}")
        raise error from None


def render_provisioning(plugin: type[IdpPlugin], values: Mapping[str, str]) -> list[RenderedStep]:
    """Return ``plugin``'s SCIM provisioning steps with ``values`` (SCIM value key -> text) filled in."""
    return render_walkthrough(plugin, values, steps=plugin.provisioning_steps)


def render_walkthrough(
    plugin: type[IdpPlugin], values: Mapping[str, str], *, steps: tuple[SetupStep, ...] | None = None
) -> list[RenderedStep]:
    """Return ``plugin``'s setup steps (or ``steps``) with ``values`` (SP value key -> text) filled in.

    Raises ``KeyError`` naming the key when a step uses a placeholder or shows a value that
    ``values`` lacks: a half-filled walkthrough would send the admin off with a wrong URL.
    """
    filled = _with_derived_values(values)
    rendered: list[RenderedStep] = []
    for step in plugin.setup_steps if steps is None else steps:
        where = f"{plugin.__name__} step {step.title!r}"
        shown: list[RenderedValue] = []
        for value in step.values:
            if value.literal is not None:
                shown.append(RenderedValue(value.label, value.literal, copy=value.typed))
                continue
            if value.key not in filled:
                error = KeyError(value.key)
                error.add_note(f"no value for {value.label!r} in {where}")
                raise error
            shown.append(RenderedValue(value.label, filled[value.key]))
        rendered.append(
            RenderedStep(
                title=_fill(step.title, filled, where),
                body=_fill(step.body, filled, where),
                values=shown,
                path=step.path,
                offers_paths=step.offers_paths,
                files=[_render_file(file, filled, where) for file in step.files],
            )
        )
    return rendered


def _render_file(file: SetupFile, filled: Mapping[str, str], where: str) -> RenderedFile:
    """Fill a file; in an XML file every value is escaped, so that an address with ``&`` or ``<``
    (an email may hold ``&``) still gives a well-formed file the IdP's tools accept."""
    if file.media_type.endswith("xml"):
        filled = {key: xml_escape(value) for key, value in filled.items()}
    content = _fill(file.content, filled, f"{where} file {file.name}")
    return RenderedFile(path=file.path, name=file.name, content=content, media_type=file.media_type)


def find_path(plugin: type[IdpPlugin], key: str | None) -> SetupPath | None:
    """The plugin's setup path called ``key``, or None (no such path, or none asked for)."""
    return next((path for path in plugin.setup_paths if path.key == key), None)


def steps_on_path(steps: list[RenderedStep], path: SetupPath | None) -> list[RenderedStep]:
    """The steps an admin on ``path`` follows: the shared ones and that path's own.

    Before a path is chosen (``None``) the walkthrough stops at the step that asks for the choice:
    the later shared steps come after a path's steps, so showing them first would mislead.
    """
    shown: list[RenderedStep] = []
    for step in steps:
        if step.path is None or (path is not None and step.path == path.key):
            shown.append(step)
        if step.offers_paths and path is None:
            break
    return shown


def render_setup_file(plugin: type[IdpPlugin], values: Mapping[str, str], name: str) -> RenderedFile | None:
    """The plugin's walkthrough file called ``name``, filled in with ``values``; None when it has none."""
    filled = _with_derived_values(values)
    for step in plugin.setup_steps:
        for file in step.files:
            if file.name == name:
                return _render_file(file, filled, f"{plugin.__name__} step {step.title!r}")
    return None


@dataclass(frozen=True)
class RenderedOption:
    """One optional security feature as the IdP sets it, placeholders filled."""

    title: str
    offered: bool
    body: str
    values: list[RenderedValue] = field(default_factory=list)


#: The optional features, in the order the walkthrough explains them.
OPTION_TITLES = (
    ("single_logout_help", "Single Logout"),
    ("encryption_help", "Encrypted assertions"),
    ("signed_requests_help", "Signed sign-in requests"),
)


def render_option_help(plugin: type[IdpPlugin], values: Mapping[str, str]) -> list[RenderedOption]:
    """``plugin``'s words for Single Logout, assertion encryption and request signing, filled in."""
    filled = _with_derived_values(values)
    rendered = []
    for attribute, title in OPTION_TITLES:
        option = getattr(plugin, attribute)
        where = f"{plugin.__name__} {attribute}"
        shown = [
            RenderedValue(value.label, value.literal if value.literal is not None else filled[value.key])
            for value in option.values
        ]
        rendered.append(RenderedOption(title, option.offered, _fill(option.body, filled, where), shown))
    return rendered


def render_hint(plugin: type[IdpPlugin], error_code: str, values: Mapping[str, str]) -> str | None:
    """Return the plain-language fix for ``error_code`` in ``plugin``'s words, or ``None``.

    Falls back to the generic plugin's hint, so every provider gets at least the standard advice
    for a code its own module does not mention.
    """
    hint = plugin.hints.get(error_code)
    source: type[IdpPlugin] = plugin
    if hint is None:
        hint = GenericPlugin.hints.get(error_code)
        source = GenericPlugin
    if hint is None:
        return None
    return _fill(hint, _with_derived_values(values), f"{source.__name__} hint {error_code}")
