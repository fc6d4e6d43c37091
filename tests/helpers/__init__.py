"""Helpers shared by the tests, each defined once.

- ``web``: test clients ("another browser"), CSRF tokens read from a page, portal and app sessions.
- ``signin``: the SAML sign-in flow through the test IdP (``tests/saml_idp.py``).
- ``audit``: the audit trail a test checks.
- ``metadata``: IdP metadata and certificates as IdPs publish them.
- ``browser``: screenshots and the demo IdP's form for the Playwright tests.
"""
