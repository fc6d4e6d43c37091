"""Forms. Every form subclasses ``Form``, which carries the CSRF token."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, SubmitField
from wtforms.validators import DataRequired, Email, Length


class Form(FlaskForm):
    """The CSRF-protected base of every form in the portal."""


class SsoStartForm(Form):
    """ "Sign in with SSO": only an email, posted with its CSRF token to ``/sso/start``.

    Starting a sign-in is a user action: a third-party page must not be able to send a victim's
    browser to the IdP (which may sign it in silently, as whoever the page chose) with a link.
    """

    email = EmailField("Work email", validators=[DataRequired(), Email(), Length(max=320)])
    next = HiddenField()


class PasswordLoginForm(Form):
    """Email + password, for accounts that do not require SSO."""

    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])
    next = HiddenField()
    submit = SubmitField("Sign in with password")


class LogoutForm(Form):
    """A button that posts to /logout (a GET must never sign anyone out)."""

    submit = SubmitField("Sign out")


class AppSignInEmailForm(Form):
    """ "Which work email?" for an app's sign-in (filled in from ``login_hint`` when the app gave
    one), posted with its CSRF token back to ``/sso/app/authorize`` with the app's parameters:
    like ``SsoStartForm``, starting the sign-in is the person's click."""

    login_hint = EmailField("Work email", validators=[DataRequired(), Email(), Length(max=320)])
