from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from alerts.channels.base import Notification, Transport, TransportError


class EmailTransport(Transport):
    """Through Django's email backend (EMAIL_BACKEND), one message per recipient."""

    channel = "email"

    def notify(self, notification: Notification, *, timeout: float) -> None:
        # Every built-in backend accepts `timeout`; the SMTP one applies it to the socket.
        connection = get_connection(fail_silently=False, timeout=timeout)
        message = EmailMessage(
            subject=notification.subject[:250],
            body=notification.text(),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[self.target],
            connection=connection,
            headers={"X-Alert-Id": notification.alert_id, "X-Alert-Severity": notification.severity},
        )
        try:
            message.send()
        except Exception as e:  # smtplib, socket and backend errors alike
            permanent = type(e).__name__ in ("SMTPRecipientsRefused", "SMTPSenderRefused")
            raise TransportError(f"{type(e).__name__}: {e}", permanent=permanent) from e
