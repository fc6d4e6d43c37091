"""Where the browser may go after sign-in: a path on this site, never another origin."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

DEFAULT_NEXT = "/portal/"
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9\-._~!$&'()*+,;=:@%/?#]*$")


def safe_next_path(candidate: str | None, default: str = DEFAULT_NEXT) -> str:
    """Return ``candidate`` if it is a relative path on this site, else ``default``.

    Refuses absolute URLs, scheme-relative ``//host``, backslash tricks (browsers read ``/\\host``
    as ``//host``), control characters and anything with a scheme such as ``javascript:``.
    """
    if not candidate or len(candidate) > 2000:
        return default
    if not _SAFE_PATH.match(candidate):
        return default
    if candidate.startswith("//") or "\\" in candidate or "%5c" in candidate.lower():
        return default
    parts = urlsplit(candidate)
    if parts.scheme or parts.netloc:
        return default
    # Percent-decoded slashes at the start would turn into '//host' after a decode elsewhere.
    if candidate.lower().startswith(("/%2f", "/%09", "/%0a", "/%0d")):
        return default
    return candidate
