"""Compile python3-saml's XML schemas once per process instead of on every response.

``OneLogin_Saml2_XML.validate_xml`` re-parses and recompiles the SAML protocol schema (and the
xmldsig and xenc schemas it imports) for every call: most of the cost of validating a response.
We install a drop-in replacement with the same contract that keeps the compiled schema per thread
(lxml schema objects keep an error log, so they are not shared between threads).
"""

from __future__ import annotations

import threading
from os.path import dirname, join

import onelogin.saml2.xml_utils as xml_utils
from lxml import etree
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

_local = threading.local()
_SCHEMA_DIR = join(dirname(xml_utils.__file__), "schemas")


def _schema(name: str) -> etree.XMLSchema:
    cache: dict[str, etree.XMLSchema] = getattr(_local, "schemas", None) or {}
    _local.schemas = cache
    if name not in cache:
        with open(join(_SCHEMA_DIR, name), "rb") as schema_file:
            cache[name] = etree.XMLSchema(etree.parse(schema_file))
    return cache[name]


def validate_xml(xml, schema, debug=False):
    """Same contract as ``OneLogin_Saml2_XML.validate_xml``: the element, or an error string."""
    try:
        xml = OneLogin_Saml2_XML.to_etree(xml)
    except Exception:  # noqa: BLE001 - the library maps every parse failure to this string
        return "unloaded_xml"
    if not _schema(schema).validate(xml):
        return "invalid_xml"
    return xml


def install() -> None:
    """Replace the library's validator (idempotent)."""
    OneLogin_Saml2_XML.validate_xml = staticmethod(validate_xml)
