"""What every channel gets (a Notification) and how it says it failed (TransportError)."""

from dataclasses import dataclass
from datetime import UTC, datetime

# Unicode's direction embeddings, overrides and isolates. One in a job's error (U+202E) turned the
# rest of its line in an email around (" (system)" read backwards); plain text cannot isolate part
# of a line as the dashboard's <bdi> does, so notifications show them instead of obeying them.
DIRECTION_CONTROLS = {code: f"<U+{code:04X}>" for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def shown_plainly(text: str) -> str:
    return text.translate(DIRECTION_CONTROLS)


class TransportError(Exception):
    """A delivery attempt failed. `permanent`: retrying cannot help (a bad address, a 404)."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.message = message
        self.permanent = permanent


@dataclass(frozen=True)
class Notification:
    """Everything an operator needs to act, whatever the channel."""

    kind: str  # alert, repeat, severity_raised, escalation, resolved, acknowledged, reopened
    headline: str  # why this notification, e.g. "Escalated: unresolved for 60 min"
    alert_id: str
    alert_type: str
    severity: str
    title: str
    message: str
    job_type: str  # "" when the alert is not about a job type
    job_id: str  # the latest occurrence's job, "" when none
    error: str  # the classified error (or the check's reading) in one line
    occurrences: int
    triggered_at: str  # ISO 8601
    last_seen_at: str
    url: str  # the alert's page on the dashboard
    job_url: str  # "" when no job
    # Who is on it, when an acknowledgement holds as this is sent ("" otherwise): a notification
    # queued before it (an escalation, a retried one) must not send a second person to work on it.
    acknowledged_by: str = ""
    acknowledged_until: str = ""  # ISO 8601
    # The same for each attempt at one delivery: sending is at least once (a worker killed after
    # the receiver answered, a timeout on an answer that came), so a receiver may drop a repeat.
    delivery_id: str = ""

    @property
    def acknowledgement(self) -> str:
        """ "acknowledged by alice until 04:00 UTC", when one holds and this is not its own news."""
        if not self.acknowledged_until or self.kind in ("acknowledged", "resolved"):
            return ""
        until = datetime.fromisoformat(self.acknowledged_until).astimezone(UTC)
        return f"acknowledged by {self.acknowledged_by or 'someone'} until {until:%H:%M} UTC"

    @property
    def subject(self) -> str:
        # One line: a newline in a title must not break (or inject into) an email header.
        held = f" ({self.acknowledgement})" if self.acknowledgement else ""
        return " ".join(f"[{self.severity.upper()}] {self.headline}: {self.title}{held}".split())

    def text(self) -> str:
        """The plain-text body (email, and the fallback text of chat messages)."""
        job = f"{self.job_type or '-'} / {self.job_id or '-'}"
        lines = [
            self.headline,
            "",
            f"Alert:       {self.title}",
            f"Severity:    {self.severity}",
            *([f"Now:         {self.acknowledgement}"] if self.acknowledgement else []),
            f"Type:        {self.alert_type}",
            f"Job:         {job}",
            f"Error:       {self.error or '-'}",
            f"Occurrences: {self.occurrences} (first {self.triggered_at}, last {self.last_seen_at})",
            "",
            self.message,
            "",
            f"Alert: {self.url}",
        ]
        if self.job_url:
            lines.append(f"Job:   {self.job_url}")
        return "\n".join(lines) + "\n"


class Transport:
    """One kind of channel. `notify` returns on success and raises TransportError otherwise."""

    channel = ""

    def __init__(self, target: str):
        self.target = target

    def notify(self, notification: Notification, *, timeout: float) -> None:
        raise NotImplementedError
