"""What the portal does, one module per job. Views and commands call these; these call the SAML
core, the session store and the models. Services add to the database session; the view or
command that called them commits, so an audit event lands with the change it describes.

- ``accounts``: accounts and their "SSO required" switch
- ``users``: create, edit, deactivate, reactivate, delete (the one hook that ends sessions)
- ``imports``: CSV import of users, previewed and all-or-nothing
- ``connections``: an IdP connection's life: create, import the IdP side, certificates, enable
- ``connection_tests``: an admin's test sign-in and what it proved
- ``signin``: who gets in, and finishing a web sign-in (SSO and password)
- ``native_apps``: desktop and mobile sign-in (RFC 8252 with PKCE) and their bearer tokens
- ``listing``: filters, keyset cursors and pages shared by every list
- ``session_queries``, ``audit_log``, ``account_directory``, ``user_directory``: the read-only
  lists of the support console, the admin pages and "your sessions"
"""
