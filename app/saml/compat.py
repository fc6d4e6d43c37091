"""Start-up check that lxml and xmlsec share one libxml2.

When they do not, signature checks fail in confusing ways (or crash), so refuse to start instead.
"""

from __future__ import annotations

import lxml.etree
import xmlsec


class LibxmlMismatchError(RuntimeError):
    """lxml and xmlsec were built against different libxml2 versions."""


def check_libxml2() -> None:
    """Raise with instructions when lxml's libxml2 differs from xmlsec's."""
    lxml_version = lxml.etree.LIBXML_VERSION
    xmlsec_version = xmlsec.get_libxml_version()
    if tuple(lxml_version) != tuple(xmlsec_version):
        raise LibxmlMismatchError(
            f"lxml uses libxml2 {'.'.join(map(str, lxml_version))} but xmlsec uses "
            f"{'.'.join(map(str, xmlsec_version))}. Install the versions pinned in requirements.txt "
            "(`pip install -r requirements.txt`), or build both from source against the system "
            "libxml2: `pip install --no-binary lxml,xmlsec lxml xmlsec`."
        )
