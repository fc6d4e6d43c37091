"""Compile python3-saml's XML schemas and XPath queries once per process instead of on every response.

``OneLogin_Saml2_XML.validate_xml`` re-parses and recompiles the SAML protocol schema (and the
xmldsig and xenc schemas it imports) for every call: most of the cost of validating a response.
``OneLogin_Saml2_XML.query`` compiles its XPath expression on every call, and validating one
response makes some forty of them. We install drop-in replacements with the same contracts that
keep the compiled schemas and expressions per thread (lxml schema objects keep an error log, and
XPath evaluators are not meant to be shared between threads).
"""

from __future__ import annotations

import threading
from os.path import dirname, join
from typing import Any

import onelogin.saml2.xml_utils as xml_utils
from lxml import etree
from onelogin.saml2.constants import OneLogin_Saml2_Constants
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


def _xpath(expression: str) -> etree.XPath:
    cache: dict[str, etree.XPath] | None = getattr(_local, "xpaths", None)
    if cache is None:
        cache = _local.xpaths = {}
    compiled = cache.get(expression)
    if compiled is None:
        # The library's queries are a fixed set of literals; bound them all the same.
        if len(cache) >= 256:
            cache.clear()
        compiled = cache[expression] = etree.XPath(expression, namespaces=OneLogin_Saml2_Constants.NSMAP)
    return compiled


def query(dom, query, context=None, tagid=None) -> Any:
    """Same contract as ``OneLogin_Saml2_XML.query``: the nodes ``query`` selects from ``context``
    (or ``dom``), with ``$tagid`` bound when given."""
    source = dom if context is None else context
    if tagid is None:
        return _xpath(query)(source)
    return _xpath(query)(source, tagid=tagid)


def install() -> None:
    """Replace the library's validator and query helper (idempotent)."""
    OneLogin_Saml2_XML.validate_xml = staticmethod(validate_xml)
    OneLogin_Saml2_XML.query = staticmethod(query)
