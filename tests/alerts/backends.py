"""Email backends that misbehave like a real SMTP server can."""

import smtplib

from django.core.mail.backends.locmem import EmailBackend as LocmemBackend


class FlakyEmailBackend(LocmemBackend):
    """Refuses the first `failures` messages as a server going away would, then delivers to the outbox."""

    failures = 0
    calls = 0

    def send_messages(self, messages):
        type(self).calls += 1
        if type(self).calls <= type(self).failures:
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return super().send_messages(messages)


class RefusingEmailBackend(LocmemBackend):
    def send_messages(self, messages):
        raise smtplib.SMTPRecipientsRefused({"nobody@example.com": (550, b"5.1.1 User unknown")})


class ResolvedWhileSendingEmailBackend(LocmemBackend):
    """An operator resolves the alert while this send is in flight; then the server goes away."""

    def send_messages(self, messages):
        from alerts.models import AlertHistory
        from alerts.services import alert_resolve

        alert_resolve(alert=AlertHistory.objects.get(id=messages[0].extra_headers["X-Alert-Id"]))
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


class BackWhileResolvedIsSentEmailBackend(LocmemBackend):
    """A flapping condition comes back while the alert's "Resolved" is in flight (`comes_back`
    reopens the alert); then the server goes away. Other messages are delivered."""

    comes_back = None

    def send_messages(self, messages):
        if " Resolved: " not in messages[0].subject:
            return super().send_messages(messages)
        type(self).comes_back()
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
