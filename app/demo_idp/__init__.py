"""A small SAML 2.0 identity provider: the demo IdP of development settings, and the tests' IdP.

It signs real responses with its own key (xmlsec), so everything downstream is the real path.
"""
