import httpx

from alerts.channels.base import Notification, Transport, TransportError

# Worth another try later; any other 4xx means the request itself is wrong.
RETRYABLE_STATUSES = frozenset({408, 425, 429})


class WebhookTransport(Transport):
    """POSTs a generic JSON payload to a URL; any 2xx is a success."""

    channel = "webhook"

    def payload(self, notification: Notification) -> dict:
        return {
            "event": notification.kind,
            "headline": notification.headline,
            "delivery_id": notification.delivery_id,
            "alert": {
                "id": notification.alert_id,
                "type": notification.alert_type,
                "severity": notification.severity,
                "title": notification.title,
                "message": notification.message,
                "job_type": notification.job_type or None,
                "job_id": notification.job_id or None,
                "error": notification.error or None,
                "occurrences": notification.occurrences,
                "triggered_at": notification.triggered_at,
                "last_seen_at": notification.last_seen_at,
                "url": notification.url,
                "job_url": notification.job_url or None,
                "acknowledged": (
                    {"by": notification.acknowledged_by, "until": notification.acknowledged_until}
                    if notification.acknowledged_until
                    else None
                ),
            },
        }

    def notify(self, notification: Notification, *, timeout: float) -> None:
        try:
            response = httpx.post(self.target, json=self.payload(notification), timeout=timeout)
        except httpx.TimeoutException as e:
            raise TransportError(f"timed out after {timeout:g}s ({type(e).__name__})") from e
        except httpx.HTTPError as e:
            permanent = isinstance(e, (httpx.UnsupportedProtocol, httpx.InvalidURL))
            raise TransportError(f"{type(e).__name__}: {e}", permanent=permanent) from e
        if not response.is_success:
            status = response.status_code
            permanent = 400 <= status < 500 and status not in RETRYABLE_STATUSES
            raise TransportError(f"HTTP {status}: {response.text[:200]}", permanent=permanent)


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn treats &, < and > as control characters (links, mentions).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


SLACK_EMOJI = {"info": ":information_source:", "warning": ":warning:", "error": ":x:", "critical": ":rotating_light:"}
# What became of an alert reads at a glance as news, not as the alarm again.
SLACK_EMOJI_OF_KIND = {"acknowledged": ":eyes:", "resolved": ":white_check_mark:"}


class SlackTransport(WebhookTransport):
    """A Slack incoming webhook (also accepted by Mattermost, Rocket.Chat and Teams' Slack mode)."""

    channel = "slack"

    def payload(self, notification: Notification) -> dict:
        n = notification
        e = _slack_escape
        emoji = SLACK_EMOJI_OF_KIND.get(n.kind) or SLACK_EMOJI.get(n.severity, "")
        job = f"{e(n.job_type) or '-'} / " + (f"<{n.job_url}|{n.job_id}>" if n.job_url else "-")
        fields = [
            f"*Severity*\n{e(n.severity)}",
            f"*Job type / job*\n{job}",
            f"*Occurrences*\n{n.occurrences} (last {e(n.last_seen_at)})",
            f"*Type*\n{e(n.alert_type)}",
        ]
        return {
            "text": e(n.subject),  # notifications and clients without blocks
            "blocks": [
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": f"{emoji} *{e(n.headline)}*\n<{n.url}|{e(n.title)}>"
                        + (f"\n:eyes: _{e(n.acknowledgement)}_" if n.acknowledgement else ""),
                    },
                },
                {"type": "section", "fields": [{"type": "mrkdwn", "text": field} for field in fields]},
                {"type": "section", "text": {"type": "mrkdwn", "text": f"*Error*\n{e(n.error or '-')}"}},
            ],
        }
