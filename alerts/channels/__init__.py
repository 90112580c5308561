"""Notification channels: a recipient string names its channel.

    ops@example.com, mailto:ops@example.com   email, through Django's email backend
    https://hooks.example.com/alerts          a webhook with a generic JSON payload
    slack:https://hooks.slack.com/services/…   a Slack-compatible incoming webhook
"""

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email

from alerts.channels.base import Notification, Transport, TransportError
from alerts.channels.email import EmailTransport
from alerts.channels.webhook import SlackTransport, WebhookTransport
from jobs.payloads import url_origin

__all__ = ["Notification", "Transport", "TransportError", "UnknownRecipient", "display_recipient", "transport_for"]


class UnknownRecipient(ValueError):
    pass


def transport_for(recipient: str) -> Transport:
    """The transport a recipient string names; UnknownRecipient when it names none."""
    recipient = recipient.strip()
    try:
        if recipient.startswith("slack:"):
            return SlackTransport(_checked_url(recipient.removeprefix("slack:")))
        if recipient.startswith(("http://", "https://")):
            return WebhookTransport(_checked_url(recipient))
        address = recipient.removeprefix("mailto:")
        validate_email(address)
        return EmailTransport(address)
    except ValidationError:
        raise UnknownRecipient(
            f"{display_recipient(recipient)!r} is neither an email address, an http(s) URL nor slack:<URL>"
        ) from None


def _checked_url(url: str) -> str:
    URLValidator(schemes=["http", "https"])(url)
    try:
        urlsplit(url).port  # URLValidator takes any port of up to 5 digits
    except ValueError as e:
        raise ValidationError(str(e)) from None
    return url


def display_recipient(recipient: str) -> str:
    """A recipient safe to show: webhook URLs carry their secret in the path, so it is hidden.
    Never raises: rows may hold recipients stored before they were refused."""
    prefix = "slack:" if recipient.startswith("slack:") else ""
    url = recipient.removeprefix(prefix)
    if not url.startswith(("http://", "https://")):
        return recipient
    try:
        origin, parts = url_origin(url), urlsplit(url)
    except ValueError:  # no URL at all ("http://["): none of it is shown
        return f"{prefix}{url.split('://')[0]}://…"
    hidden = "/…" if (parts.path not in ("", "/") or parts.query) else ""
    return f"{prefix}{origin}{hidden}"
