"""Twilio: SMS and WhatsApp in (`POST /v1/channels/twilio`) and out (the Messages API).

`X-Twilio-Signature` is base64(HMAC-SHA1(auth token, URL + every POST parameter's name and
value, sorted by name)), where URL is the public URL Twilio called: `ESCALATOR_PUBLIC_URL`
+ path + query, since behind a proxy the URL this process sees is not the one Twilio signed.
Replies go out as `POST {api}/2010-04-01/Accounts/{sid}/Messages.json` from the number the
customer wrote to (`thread_ref` is `<customer>><ours>`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.channels._http import MessageSink, Outcome, Rejection, handle
from connectors.channels._plugin import ChannelPlugin, ConfigurationError, HttpSender, Inbound
from connectors.channels._signing import require_signature
from connectors.outbound._model import DeliveryError, Reply
from connectors.outbound.senders import post
from schemas import Attachment, CustomerAttributes, InboundMessage

PATH = "/v1/channels/twilio"
CHANNELS = ("sms", "whatsapp")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
"""The answer Twilio expects: a TwiML document; empty means "send nothing back now"."""


class TwilioSettings(BaseSettings):
    """Twilio (`ESCALATOR_TWILIO_*`): the webhook's auth token is also the API's password."""

    model_config = SettingsConfigDict(
        env_prefix="ESCALATOR_TWILIO_", extra="ignore", populate_by_name=True
    )

    auth_token: SecretStr | None = None
    account_sid: str | None = None
    api_url: str = "https://api.twilio.com"
    public_url: str | None = Field(
        default=None,
        validation_alias="ESCALATOR_PUBLIC_URL",
        description="The URL the providers call (behind a proxy), e.g. https://help.example.com; "
        "Twilio signatures are checked against it + path + query.",
    )


def twilio_signature(auth_token: str, url: str, params: Mapping[str, Sequence[str]]) -> str:
    """The signature Twilio sends for a form POST to `url` with `params`."""
    payload = url
    for name in sorted(params):
        for value in sorted(set(params[name])):
            payload += name + value
    digest = hmac.new(auth_token.encode("utf-8"), payload.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def form_params(body: bytes) -> dict[str, list[str]]:
    """An `application/x-www-form-urlencoded` body as name -> values; 400 if it is not one."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Rejection(400, "malformed", f"the body is not form-encoded: {exc}") from exc
    params: dict[str, list[str]] = {}
    for name, value in pairs:
        params.setdefault(name, []).append(value)
    return params


def normalise(params: Mapping[str, Sequence[str]], received_at: datetime) -> Outcome:
    """A Twilio message webhook as a contract message; status callbacks are ignored."""

    def one(name: str) -> str:
        values = params.get(name) or [""]
        return values[0]

    sid = one("MessageSid") or one("SmsMessageSid") or one("SmsSid")
    sender = one("From")
    if not sid or not sender:
        raise Rejection(400, "malformed", "MessageSid and From are required")
    if "Body" not in params and not one("NumMedia").strip("0"):
        # delivery status callbacks (MessageStatus=sent/delivered/...) carry no body
        return Outcome(ignored=f"status callback: {one('MessageStatus') or 'unknown'}")
    whatsapp = sender.startswith("whatsapp:")
    handle_ = sender.removeprefix("whatsapp:")
    media_count = int(one("NumMedia") or "0") if one("NumMedia").isdigit() else 0
    attachments = [
        Attachment(
            filename=f"media-{index}",
            content_type=one(f"MediaContentType{index}") or "application/octet-stream",
            url=one(f"MediaUrl{index}") or None,
        )
        for index in range(min(media_count, 10))
    ]
    metadata = {
        "to": one("To").removeprefix("whatsapp:"),
        "account_sid": one("AccountSid"),
        **{key: one(key) for key in ("FromCountry", "FromCity", "WaId") if one(key)},
    }
    message = InboundMessage(
        channel="whatsapp" if whatsapp else "sms",
        external_id=sid,
        sender=handle_,
        text=one("Body"),
        sent_at=received_at,  # Twilio's webhook carries no send time; it calls at once
        thread_ref=f"{handle_}>{metadata['to']}",
        customer=CustomerAttributes(phone=handle_, name=one("ProfileName") or None),
        attachments=attachments,
        metadata=metadata,
    )
    return Outcome(messages=[message], reply=_twiml())


def _twiml() -> Response:
    return Response(EMPTY_TWIML, media_type="text/xml")


def router(auth_token: str, public_url: str, sink: MessageSink, max_body_bytes: int) -> APIRouter:
    """The Twilio webhook route, verifying signatures against `public_url`."""
    api = APIRouter()
    base = public_url.rstrip("/")

    async def verify_and_normalise(request: Request, body: bytes) -> Outcome:
        params = form_params(body)
        query = request.url.query
        url = f"{base}{request.url.path}" + (f"?{query}" if query else "")
        signature = request.headers.get("x-twilio-signature")
        expected = twilio_signature(auth_token, url, params)
        require_signature(signature, expected, "X-Twilio-Signature")
        outcome = normalise(params, datetime.now(UTC))
        if not outcome.reply:
            outcome = Outcome(ignored=outcome.ignored, reply=_twiml())
        return replace(outcome, delivery_id=signature)

    @api.post(PATH)
    async def twilio_webhook(request: Request) -> Response:
        """Receive an inbound SMS or WhatsApp message from Twilio."""
        return await handle(request, "twilio", sink, max_body_bytes, verify_and_normalise)

    return api


class TwilioSender(HttpSender[TwilioSettings]):
    """Sends SMS and WhatsApp replies through the Messages API."""

    def send(self, reply: Reply) -> None:
        """Send the reply from the number the customer wrote to, or raise DeliveryError."""
        sid, token = self.settings.account_sid, self.settings.auth_token
        if not (sid and token):
            raise DeliveryError(
                "not_configured", "set ESCALATOR_TWILIO_ACCOUNT_SID and _AUTH_TOKEN", True
            )
        ours = (reply.thread_ref or "").partition(">")[2]  # thread_ref is "<customer>><ours>"
        if not (reply.recipient and ours):
            raise DeliveryError("no_recipient", "no customer or company number on the case", True)
        prefix = "whatsapp:" if reply.channel == "whatsapp" else ""
        url = f"{self.settings.api_url.rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"
        post(
            self.client,
            url,
            data={"To": prefix + reply.recipient, "From": prefix + ours, "Body": reply.text},
            auth=(sid, token.get_secret_value()),
        )


def inbound(settings: TwilioSettings, context: Inbound) -> APIRouter | None:
    """The webhook, when the auth token is set; it needs the public URL its signatures cover."""
    if settings.auth_token is None:
        return None
    if not settings.public_url:
        raise ConfigurationError("ESCALATOR_TWILIO_AUTH_TOKEN needs ESCALATOR_PUBLIC_URL")
    return router(
        settings.auth_token.get_secret_value(),
        settings.public_url,
        context.sink,
        context.max_body_bytes,
    )


PLUGIN = ChannelPlugin(
    name="twilio",
    channels=CHANNELS,
    settings=TwilioSettings,
    inbound=inbound,
    outbound=TwilioSender,
)
"""Twilio as a channel plugin."""
