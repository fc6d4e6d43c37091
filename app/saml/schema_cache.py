"""Compile python3-saml's XML schemas and XPath queries once per process instead of on every response.

``OneLogin_Saml2_XML.validate_xml`` re-parses and recompiles the SAML protocol schema (and the
xmldsig and xenc schemas it imports) for every call: most of the cost of validating a response.
``OneLogin_Saml2_XML.query`` compiles its XPath expression on every call, and validating one
response makes some forty of them. We install drop-in replacements with the same contracts that
keep the compiled schemas and expressions per thread (lxml schema objects keep an error log, and
XPath evaluators are not meant to be shared between threads). ``parse_SAML_to_time`` runs
``strptime`` (locale lookups, a regex built per format) some six times per response: the one form
IdPs send is read directly, everything else still goes to the library's own parser.
``validate_node_sign`` loads the trusted certificate into an xmlsec key for every signature:
the key is kept per certificate (the signature context takes its own copy of it).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import threading
from os.path import dirname, join
from typing import Any

import onelogin.saml2.xml_utils as xml_utils
import xmlsec
from lxml import etree
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.errors import OneLogin_Saml2_ValidationError
from onelogin.saml2.utils import OneLogin_Saml2_Utils, return_false_on_exception
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


#: The library's own timestamp parser, for every form the fast path leaves to it.
_LIBRARY_PARSE_TIME = OneLogin_Saml2_Utils.__dict__["parse_SAML_to_time"].__func__
#: xs:dateTime in UTC as IdPs send it, ASCII digits only (``\d`` would take other scripts' digits).
_SAML_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?Z")


def parse_SAML_to_time(timestr):
    """Same contract as ``OneLogin_Saml2_Utils.parse_SAML_to_time``: whole UNIX seconds, the
    fraction ignored. Only the canonical form is read here; a date the calendar does not have
    (or a leap second) and every other form go to the library, which accepts or raises as before."""
    match = _SAML_TIME.fullmatch(timestr) if isinstance(timestr, str) else None
    if match is not None:
        try:
            year, month, day, hour, minute, second = map(int, match.groups())
            moment = dt.datetime(year, month, day, hour, minute, second)
        except ValueError:
            pass
        else:
            return calendar.timegm(moment.utctimetuple())
    return _LIBRARY_PARSE_TIME(timestr)


#: The library's own signature check, for the cases the fast path leaves to it.
_LIBRARY_VALIDATE_NODE_SIGN = OneLogin_Saml2_Utils.__dict__["validate_node_sign"].__func__.__wrapped__


def _key(cert: str) -> xmlsec.Key:
    cache: dict[str, xmlsec.Key] | None = getattr(_local, "keys", None)
    if cache is None:
        cache = _local.keys = {}
    key = cache.get(cert)
    if key is None:
        if len(cache) >= 256:  # a connection trusts a handful; bound it all the same
            cache.clear()
        key = cache[cert] = xmlsec.Key.from_memory(cert, xmlsec.constants.KeyDataFormatCertPem, None)
    return key


@return_false_on_exception
def validate_node_sign(
    signature_node, elem, cert=None, fingerprint=None, fingerprintalg="sha1", validatecert=False, debug=False
):
    """Same contract as ``OneLogin_Saml2_Utils.validate_node_sign``. With a certificate given and
    no certificate-chain check (how our settings call it), the same verification with a key loaded
    once per certificate; any other call is the library's own."""
    if not cert or validatecert:
        return _LIBRARY_VALIDATE_NODE_SIGN(signature_node, elem, cert, fingerprint, fingerprintalg, validatecert, debug)
    context = xmlsec.SignatureContext()
    context.key = _key(cert)
    context.set_enabled_key_data([xmlsec.constants.KeyDataX509])
    try:
        context.verify(signature_node)
    except Exception as err:
        raise OneLogin_Saml2_ValidationError(
            "Signature validation failed. SAML Response rejected. %s",
            OneLogin_Saml2_ValidationError.INVALID_SIGNATURE,
            str(err),
        ) from err
    return True


def install() -> None:
    """Replace the library's validator, query helper and timestamp parser (idempotent)."""
    OneLogin_Saml2_XML.validate_xml = staticmethod(validate_xml)
    OneLogin_Saml2_XML.query = staticmethod(query)
    OneLogin_Saml2_Utils.parse_SAML_to_time = staticmethod(parse_SAML_to_time)
    OneLogin_Saml2_Utils.validate_node_sign = staticmethod(validate_node_sign)
