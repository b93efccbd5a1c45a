"""Escalation notifications: a fired step's `notify` targets, to Slack and by email.

A target name (as written in the rules, e.g. `team-leads`) maps to a Slack incoming
webhook URL (`ESCALATOR_NOTIFY_SLACK_WEBHOOKS`) and/or email addresses
(`ESCALATOR_NOTIFY_EMAILS`). Mails carry `Auto-Submitted: auto-generated`, so well-behaved
auto-responders do not answer them and no mail loop starts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate

import httpx

from connectors.email.relay import SmtpRelay, send_mail
from connectors.outbound._headers import id_part, one_line
from connectors.outbound._model import DeliveryError, Notification
from connectors.outbound.senders import post


@dataclass(frozen=True)
class NotifyConfig:
    """Where each notify target is reached."""

    slack_webhooks: Mapping[str, str] = field(default_factory=dict)
    emails: Mapping[str, Sequence[str]] = field(default_factory=dict)
    mail_from: str | None = None
    smtp: SmtpRelay | None = None


@dataclass(frozen=True)
class Delivery:
    """One notification to one target on one medium; `key` is its idempotency key."""

    notification: Notification
    target: str
    medium: str

    @property
    def key(self) -> str:
        """Stable per escalation event, target and medium."""
        return f"{self.notification.event_id}:{self.target}:{self.medium}"


def summary(notification: Notification) -> str:
    """One line for people: which case, what happened, where it is now."""
    where = ", ".join(
        part
        for part in (
            f"queue {notification.queue}" if notification.queue else "",
            f"priority {notification.priority}" if notification.priority else "",
        )
        if part
    )
    return f"Case {notification.case_id} escalated: {notification.reason}" + (
        f" ({where})" if where else ""
    )


class Notifier:
    """Sends notifications to the configured media of each target."""

    def __init__(self, config: NotifyConfig, client: httpx.Client) -> None:
        self.config = config
        self.client = client

    def deliveries(self, notification: Notification) -> list[Delivery]:
        """What one notification means: a delivery per target and configured medium.

        A target with no medium configured is still a delivery (`unconfigured`), so it fails
        visibly instead of being skipped.
        """
        found: list[Delivery] = []
        for target in notification.targets:
            media = [
                medium
                for medium, table in (
                    ("slack", self.config.slack_webhooks),
                    ("email", self.config.emails),
                )
                if target in table
            ]
            for medium in media or ["unconfigured"]:
                found.append(Delivery(notification, target, medium))
        return found

    def send(self, delivery: Delivery) -> None:
        """Deliver one or raise DeliveryError."""
        text = summary(delivery.notification)
        if delivery.medium == "slack":
            post(
                self.client,
                self.config.slack_webhooks[delivery.target],
                json={"text": text},
            )
        elif delivery.medium == "email":
            self._mail(delivery, text)
        else:
            raise DeliveryError(
                "not_configured",
                f"notify target {delivery.target!r} has no Slack webhook or email addresses",
                permanent=True,
            )

    def _mail(self, delivery: Delivery, text: str) -> None:
        smtp = self.config.smtp
        if smtp is None:
            raise DeliveryError("not_configured", "set ESCALATOR_SMTP_RELAY_HOST", True)
        send_mail(smtp, self.mail(delivery, text))

    def mail(self, delivery: Delivery, text: str | None = None) -> EmailMessage:
        """The notification as a mail to the target's addresses (what `send` hands the relay)."""
        config = self.config
        if config.smtp is None or not config.mail_from:
            raise DeliveryError(
                "not_configured", "set ESCALATOR_SMTP_RELAY_HOST and ESCALATOR_NOTIFY_FROM", True
            )
        notification = delivery.notification
        case_id, target = one_line(notification.case_id), one_line(delivery.target)
        mail = EmailMessage()
        mail["From"] = config.mail_from
        mail["To"] = ", ".join(config.emails[delivery.target])
        mail["Subject"] = f"[Escalator] {case_id} escalated ({target})"
        mail["Date"] = formatdate(notification.at.timestamp(), usegmt=True)
        domain = config.mail_from.rpartition("@")[2] or "escalator"
        mail["Message-ID"] = f"<{id_part(notification.event_id)}.{id_part(target)}@{domain}>"
        mail["Auto-Submitted"] = "auto-generated"
        mail["X-Escalator-Case"] = case_id
        mail.set_content((text if text is not None else summary(notification)) + "\n")
        return mail
