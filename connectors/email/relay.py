"""Handing mail to the SMTP relay: replies to customers and notification mails to staff."""

from __future__ import annotations

import contextlib
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

from connectors.outbound._model import DeliveryError


@dataclass(frozen=True)
class SmtpRelay:
    """The mail server replies and notification mails are handed to."""

    host: str
    port: int = 25
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout_seconds: float = 30.0


def send_mail(relay: SmtpRelay, mail: EmailMessage) -> None:
    """Hand a mail to the relay; 4xx answers and connection trouble are transient.

    Trouble before the mail's data went out is certain; a connection lost or timed out while
    the relay had the data is `in_doubt` (the relay may have accepted it).
    """
    try:
        smtp = smtplib.SMTP(relay.host, relay.port, timeout=relay.timeout_seconds)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError("connection", f"{type(exc).__name__}: {exc}") from exc
    try:
        try:
            if relay.starttls:
                smtp.starttls()
            if relay.username and relay.password:
                smtp.login(relay.username, relay.password)
        except smtplib.SMTPResponseException as exc:
            raise _smtp_answer(exc) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError("connection", f"{type(exc).__name__}: {exc}") from exc
        try:
            # the envelope names exactly the To addresses (never Cc/Bcc a header might add)
            smtp.send_message(mail, to_addrs=[a.addr_spec for a in mail["To"].addresses])
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            temporary = all(400 <= code < 500 for code in codes)
            reason = "smtp_4xx" if temporary else "smtp_5xx"
            detail = f"recipients refused: {exc.recipients}"
            raise DeliveryError(reason, detail, not temporary) from exc
        except smtplib.SMTPResponseException as exc:
            raise _smtp_answer(exc) from exc
        except (smtplib.SMTPException, OSError) as exc:
            detail = f"{type(exc).__name__}: {exc}"
            raise DeliveryError("connection", detail, in_doubt=True) from exc
    finally:
        # QUIT without waiting for its answer: the mail is accepted or not by now, and every
        # moment between the relay's acceptance and our record of it is a window for doubt
        with contextlib.suppress(smtplib.SMTPException, OSError):
            smtp.putcmd("quit")
        smtp.close()


def _smtp_answer(exc: smtplib.SMTPResponseException) -> DeliveryError:
    """The relay said no: 4xx is worth another try, 5xx is final."""
    temporary = 400 <= exc.smtp_code < 500
    reason = "smtp_4xx" if temporary else "smtp_5xx"
    return DeliveryError(reason, f"{exc.smtp_code} {exc.smtp_error!r}", not temporary)
