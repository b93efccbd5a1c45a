"""Deliver page orders to on-call providers, each by its documented API.

- `pagerduty`: Events API v2, `POST /v2/enqueue` with `event_action` trigger, acknowledge or
  resolve and the page's `dedup_key`;
- `opsgenie`: Alert API, `POST /v2/alerts` with the page's `alias` (`Authorization: GenieKey
  …`); `POST /v2/alerts/{alias}/acknowledge` or `/close` with `identifierType=alias`;
- `sms`: Twilio, `POST /2010-04-01/Accounts/{sid}/Messages.json`, one number per order;
- `slack`: `chat.postMessage` to the pager's `channel`, else its incoming webhook;
- `email`: a mail through the SMTP relay, `Auto-Submitted: auto-generated`.

SMS, Slack and email have no incident to acknowledge or resolve: they are only triggered.
Secrets come from the settings by pager name (`ESCALATOR_PAGER_KEYS`): a PagerDuty routing
key, an Opsgenie API key, a Slack incoming webhook URL. Every failure is a `DeliveryError`
(permanent for answers that will not change on retry), as for replies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
from urllib.parse import quote

import httpx

from connectors.email.relay import SmtpRelay, send_mail
from connectors.outbound._headers import id_part, one_line
from connectors.outbound._model import DeliveryError
from connectors.outbound._pages import PageOrder
from connectors.outbound.senders import post

__all__ = ["PagerConfig", "Pagers", "page_text"]

IDEMPOTENT_VIA = frozenset({"pagerduty", "opsgenie"})
"""Providers that drop a repeated order (same dedup key / alias): safe to resend when in doubt."""


@dataclass(frozen=True)
class PagerConfig:
    """Where the providers are and the secrets of each pager (by its name in the rules)."""

    keys: Mapping[str, str] = field(default_factory=dict)
    pagerduty_events_url: str = "https://events.pagerduty.com/v2/enqueue"
    opsgenie_api_url: str = "https://api.opsgenie.com"
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_api_url: str = "https://api.twilio.com"
    sms_from: str | None = None
    slack_bot_token: str | None = None
    slack_api_url: str = "https://slack.com/api"
    smtp: SmtpRelay | None = None
    mail_from: str | None = None
    console_url: str | None = None


def page_text(order: PageOrder, console_url: str | None = None) -> str:
    """One line for the person paged: which case, which page, why, where to act."""
    where = ", ".join(
        part
        for part in (
            f"queue {order.queue}" if order.queue else "",
            f"priority {order.priority}" if order.priority else "",
        )
        if part
    )
    text = f"Escalator page {order.number} for case {order.case_id}"
    text += f" ({where})" if where else ""
    text += f": {order.reason}"
    if console_url:
        text += f" {console_url.rstrip('/')}/console/cases/{order.case_id}"
    return text


class Pagers:
    """Sends page orders with the configured credentials."""

    def __init__(self, config: PagerConfig, client: httpx.Client) -> None:
        self.config = config
        self.client = client

    def send(self, order: PageOrder) -> None:
        """Deliver one order or raise DeliveryError."""
        senders = {
            "pagerduty": self._pagerduty,
            "opsgenie": self._opsgenie,
            "sms": self._sms,
            "slack": self._slack,
            "email": self._email,
        }
        send = senders.get(order.via)
        if send is None:
            raise DeliveryError("not_configured", f"no pager provider {order.via!r}", True)
        send(order)

    def _key(self, order: PageOrder, what: str) -> str:
        key = self.config.keys.get(order.target)
        if not key:
            raise DeliveryError(
                "not_configured",
                f"pager {order.target!r} has no {what}: set it in ESCALATOR_PAGER_KEYS",
                permanent=True,
            )
        return key

    def _pagerduty(self, order: PageOrder) -> None:
        body: dict[str, Any] = {
            "routing_key": self._key(order, "PagerDuty routing key"),
            "event_action": order.action,
            "dedup_key": order.key,
        }
        if order.action == "trigger":
            settings = order.settings
            details = {"case_id": order.case_id, "page": order.number, "level": order.level}
            payload: dict[str, Any] = {
                "summary": page_text(order)[:1024],
                "source": "escalator",
                "severity": settings.get("severity", "critical"),
                "class": "escalation",
                "custom_details": details,
            }
            for name in ("component", "group"):
                if settings.get(name):
                    payload[name] = settings[name]
            body["payload"] = payload
            body["client"] = "Escalator"
            if self.config.console_url:
                body["client_url"] = (
                    f"{self.config.console_url.rstrip('/')}/console/cases/{order.case_id}"
                )
        answer = post(self.client, self.config.pagerduty_events_url, json=body)
        result = _json(answer)
        if result.get("status") not in (None, "success"):
            raise DeliveryError("api_error", f"PagerDuty: {result}")

    def _opsgenie(self, order: PageOrder) -> None:
        base = self.config.opsgenie_api_url.rstrip("/")
        headers = {"Authorization": f"GenieKey {self._key(order, 'Opsgenie API key')}"}
        if order.action == "trigger":
            settings = order.settings
            body: dict[str, Any] = {
                "message": page_text(order)[:130],
                "alias": order.key[:512],
                "description": page_text(order, self.config.console_url)[:15000],
                "priority": settings.get("priority", "P1"),
                "source": "Escalator",
                "tags": ["escalator"],
                "details": {"case_id": order.case_id, "page": str(order.number)},
            }
            responders = settings.get("responders") or []
            if responders:
                body["responders"] = [{"name": team, "type": "team"} for team in responders]
            post(self.client, f"{base}/v2/alerts", json=body, headers=headers)
            return
        verb = "acknowledge" if order.action == "acknowledge" else "close"
        alias = quote(order.key[:512], safe="")
        post(
            self.client,
            f"{base}/v2/alerts/{alias}/{verb}",
            params={"identifierType": "alias"},
            json={"user": order.by or "escalator", "source": "Escalator", "note": order.reason},
            headers=headers,
        )

    def _sms(self, order: PageOrder) -> None:
        config = self.config
        if not (config.twilio_account_sid and config.twilio_auth_token and config.sms_from):
            raise DeliveryError(
                "not_configured",
                "set ESCALATOR_TWILIO_ACCOUNT_SID, _AUTH_TOKEN and ESCALATOR_PAGER_SMS_FROM",
                permanent=True,
            )
        if not order.recipient:
            raise DeliveryError("no_recipient", "an SMS page without a number", permanent=True)
        url = (
            f"{config.twilio_api_url.rstrip('/')}/2010-04-01/Accounts/"
            f"{config.twilio_account_sid}/Messages.json"
        )
        post(
            self.client,
            url,
            data={"To": order.recipient, "From": config.sms_from, "Body": page_text(order)[:1600]},
            auth=(config.twilio_account_sid, config.twilio_auth_token),
        )

    def _slack(self, order: PageOrder) -> None:
        text = page_text(order, self.config.console_url)
        channel = order.settings.get("channel")
        if not channel:
            post(self.client, self._key(order, "Slack incoming webhook URL"), json={"text": text})
            return
        if not self.config.slack_bot_token:
            raise DeliveryError("not_configured", "set ESCALATOR_SLACK_BOT_TOKEN", True)
        answer = post(
            self.client,
            f"{self.config.slack_api_url.rstrip('/')}/chat.postMessage",
            json={"channel": channel, "text": text},
            headers={"Authorization": f"Bearer {self.config.slack_bot_token}"},
        )
        result = _json(answer)
        if not result.get("ok"):
            error = str(result.get("error") or "unknown")
            transient = error in {"ratelimited", "service_unavailable", "internal_error"}
            raise DeliveryError("api_error", f"Slack: {error}", permanent=not transient)

    def _email(self, order: PageOrder) -> None:
        config = self.config
        if config.smtp is None or not config.mail_from:
            raise DeliveryError(
                "not_configured", "set ESCALATOR_SMTP_RELAY_HOST and ESCALATOR_NOTIFY_FROM", True
            )
        send_mail(config.smtp, self.mail(order))

    def mail(self, order: PageOrder) -> EmailMessage:
        """The page as a mail to the target's addresses (what `_email` hands the relay)."""
        config = self.config
        addresses = [one_line(str(a)) for a in order.settings.get("to") or []]
        if not addresses or not config.mail_from:
            raise DeliveryError("no_recipient", "an email page without addresses", True)
        mail = EmailMessage()
        mail["From"] = config.mail_from
        mail["To"] = ", ".join(addresses)
        mail["Subject"] = f"[Escalator] PAGE {order.number}: case {one_line(order.case_id)}"
        if order.at is not None:
            mail["Date"] = formatdate(order.at.timestamp(), usegmt=True)
        domain = config.mail_from.rpartition("@")[2] or "escalator"
        mail["Message-ID"] = f"<{id_part(order.ledger_key)}@{domain}>"
        mail["Auto-Submitted"] = "auto-generated"
        mail["X-Escalator-Case"] = one_line(order.case_id)
        mail.set_content(page_text(order, config.console_url) + "\n")
        return mail


def _json(response: httpx.Response) -> Mapping[str, Any]:
    try:
        document = response.json()
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}
