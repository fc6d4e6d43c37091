"""The one confirmation pattern for destructive actions.

Every destructive action (revoke a session or all of someone's, remove a certificate, disable or
delete a connection, deactivate or delete a user, revoke a SCIM token) has a page of its own: a GET
shows what will happen, named and counted ("Alice will be signed out of 3 open sessions on 2
devices"), with the destructive button and a way back; the POST, with its CSRF token, does it. No
JavaScript is needed, and the POST endpoints are the ones scripts and tests already use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import render_template


@dataclass(frozen=True)
class Confirmation:
    """What a confirmation page says and where its buttons go."""

    #: The question, as the page's one heading and its title: "Deactivate alice@acme.example?".
    title: str
    #: What will happen, in one sentence naming who and how many.
    consequence: str
    #: Where the form posts.
    action: str
    #: The destructive button's words: the action, not "OK" ("Deactivate and sign out").
    button: str
    #: Where "Cancel" goes: the page the action was started from.
    cancel: str
    #: More facts worth knowing before confirming, one per line.
    details: tuple[str, ...] = ()
    #: Hidden form fields the POST endpoint expects (a token id, a page to come back to).
    hidden: dict[str, str] = field(default_factory=dict)
    #: For what cannot be undone: the words of a box to tick (posted as ``confirm=y``).
    tick_box: str = ""
    #: The tick box's error after a POST without it.
    error: str = ""
    #: ``data-testid`` of the page's card, so that existing browser tests find it.
    testid: str = "confirm-page"
    #: Links above the heading: (label, url or "" for the current page).
    breadcrumb: tuple[tuple[str, str], ...] = ()


def render_confirmation(confirmation: Confirmation, status: int = 200) -> tuple[str, int]:
    """The confirmation page (``confirm.html``)."""
    return render_template("confirm.html", c=confirmation), status
