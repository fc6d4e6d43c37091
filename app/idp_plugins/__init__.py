"""The IdP plugin registry: an explicit list, checked when the app starts."""

from __future__ import annotations

import re

from app.errors import ERROR_CODES
from app.idp_plugins.base import SCIM_VALUE_KEYS, SIGNED_ELEMENTS, SP_VALUE_KEYS, IdpPlugin
from app.idp_plugins.entra import EntraPlugin
from app.idp_plugins.generic import GenericPlugin
from app.idp_plugins.google import GooglePlugin
from app.idp_plugins.okta import OktaPlugin
from app.idp_plugins.onelogin import OneLoginPlugin
from app.idp_plugins.salesforce import SalesforcePlugin

#: Every plugin, in the order the wizard offers them. Adding a provider = adding one entry.
PLUGINS: tuple[type[IdpPlugin], ...] = (
    GooglePlugin,
    EntraPlugin,
    OktaPlugin,
    OneLoginPlugin,
    SalesforcePlugin,
    GenericPlugin,
)


class PluginRegistryError(RuntimeError):
    """A plugin is malformed; the app refuses to start."""


def _check_paths_and_files(plugin: type[IdpPlugin]) -> None:
    """Setup paths: one step asks for the choice, before every step of a path, and every step's path
    exists; walkthrough files have unique names (the download finds a file by its name)."""
    where = f"IdP plugin {plugin.__name__} ({plugin.key})"
    path_keys = [path.key for path in plugin.setup_paths]
    if len(set(path_keys)) != len(path_keys) or not all(re.fullmatch(r"[a-z0-9-]+", key) for key in path_keys):
        raise PluginRegistryError(f"{where}: setup path keys must be unique and use a-z, 0-9 and dashes.")
    asking = [index for index, step in enumerate(plugin.setup_steps) if step.offers_paths]
    if bool(asking) != bool(path_keys) or len(asking) > 1:
        raise PluginRegistryError(f"{where}: with setup paths, exactly one step must offer them (and none without).")
    for index, step in enumerate(plugin.setup_steps):
        if step.path is not None and (step.path not in path_keys or index < asking[0]):
            raise PluginRegistryError(f"{where}: step {step.title!r} names an unknown path or comes before the choice.")
    names = [file.name for step in plugin.setup_steps for file in step.files]
    if len(set(names)) != len(names):
        raise PluginRegistryError(f"{where}: two walkthrough files share a name.")


def check_registry(plugins: tuple[type[IdpPlugin], ...] = PLUGINS) -> dict[str, type[IdpPlugin]]:
    """Validate the plugins (unique keys, required data present, hints keyed by error codes that
    exist) and return them by key."""
    by_key: dict[str, type[IdpPlugin]] = {}
    for plugin in plugins:
        name = plugin.__name__
        key = getattr(plugin, "key", None)
        if not key or not getattr(plugin, "display_name", None):
            raise PluginRegistryError(f"IdP plugin {name} must set `key` and `display_name`.")
        if key in by_key:
            raise PluginRegistryError(f"IdP plugins {by_key[key].__name__} and {name} both use the key {key!r}.")
        if not plugin.setup_steps:
            raise PluginRegistryError(f"IdP plugin {name} ({key}) has no setup steps.")
        if not plugin.email_attributes:
            raise PluginRegistryError(f"IdP plugin {name} ({key}) names no email attribute.")
        if plugin.signed_element not in SIGNED_ELEMENTS:
            raise PluginRegistryError(f"IdP plugin {name} ({key}): bad signed_element.")
        if "transient" in plugin.nameid_format:
            raise PluginRegistryError(f"IdP plugin {name} ({key}) must not request transient NameIDs.")
        for step in plugin.setup_steps:
            for value in step.values:
                if value.literal is None and value.key not in SP_VALUE_KEYS:
                    raise PluginRegistryError(
                        f"IdP plugin {name} ({key}): step {step.title!r} shows unknown value {value.key!r}."
                    )
        _check_paths_and_files(plugin)
        for option in ("single_logout_help", "encryption_help", "signed_requests_help"):
            help_text = getattr(plugin, option, None)
            if help_text is None or not help_text.body:
                raise PluginRegistryError(f"IdP plugin {name} ({key}) must describe {option}.")
            for value in help_text.values:
                if value.literal is None and value.key not in SP_VALUE_KEYS:
                    raise PluginRegistryError(f"IdP plugin {name} ({key}): {option} shows unknown value {value.key!r}.")
        if plugin.single_logout_help.offered != plugin.supports_slo:
            raise PluginRegistryError(f"IdP plugin {name} ({key}): single_logout_help disagrees with supports_slo.")
        unknown_hints = sorted(set(plugin.hints) - set(ERROR_CODES))
        if unknown_hints:
            raise PluginRegistryError(
                f"IdP plugin {name} ({key}) has hints for unknown error codes: {', '.join(unknown_hints)}."
            )
        if plugin.provisioning_steps and plugin.provisioning_unavailable:
            raise PluginRegistryError(
                f"IdP plugin {name} ({key}) has provisioning steps and says provisioning is unavailable."
            )
        for step in plugin.provisioning_steps:
            for value in step.values:
                if value.literal is None and value.key not in SCIM_VALUE_KEYS:
                    raise PluginRegistryError(
                        f"IdP plugin {name} ({key}): provisioning step {step.title!r} shows unknown value {value.key!r}."
                    )
        by_key[key] = plugin
    return by_key


PLUGINS_BY_KEY: dict[str, type[IdpPlugin]] = check_registry()


def get_plugin(key: str) -> type[IdpPlugin]:
    """Return the plugin for ``key``; unknown keys (a removed plugin) fall back to ``generic``."""
    return PLUGINS_BY_KEY.get(key, GenericPlugin)
