"""Email in over SMTP (a real smtplib client against our aiosmtpd server), IMAP (our poller
against pymap, a local IMAP server) and the inbound-parse webhook, all on the real broker."""

from __future__ import annotations

import base64
import json
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from imapclient import IMAPClient

from connectors.channels import MessageSink
from connectors.channels.webhook import webhook_signature
from connectors.email import webhook as email_webhook
from connectors.email.auth import MailAuthenticator
from connectors.email.imap import ImapConfig, ImapPoller
from connectors.email.plugin import EmailSettings
from connectors.email.smtp import SmtpConnector
from connectors.email.webhook import mailgun_signature
from connectors.http_ingress import create_app
from connectors.ingress_auth import IngressAuth
from connectors.publisher import KafkaPublisher
from schemas import InboundMessage, Topics
from tests.connectors.mail_auth_support import DkimKey, FakeDns
from tests.connectors.mail_auth_support import mail as signed_mail
from tests.connectors.plugin_support import channel_routers
from tests.connectors.test_email_corpus import nested_multipart
from tests.kafka_support import consume_until, create_topics


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def mail(message_id: str, extra: dict[str, str] | None = None, to: str = "help@acme.test") -> bytes:
    message = EmailMessage()
    message["From"] = "Ann <ann@example.com>"
    message["To"] = to
    message["Subject"] = "Parcel missing"
    message["Message-ID"] = f"<{message_id}>"
    for name, value in (extra or {}).items():
        message[name] = value
    message.set_content("Where is my parcel?\n\n-- \nAnn")
    return message.as_bytes()


def messages(bootstrap: str, topics: Topics, count: int) -> list[InboundMessage]:
    return [
        InboundMessage.model_validate_json(r.value or b"")
        for r in consume_until(bootstrap, topics.inbound, count)
    ]


@pytest.fixture
def smtp_server(kafka_bootstrap: str, topics: Topics) -> Iterator[tuple[str, int]]:
    create_topics(kafka_bootstrap, [topics.inbound])
    publisher = KafkaPublisher({"bootstrap.servers": kafka_bootstrap})
    server = SmtpConnector(
        ["acme.test"],
        MessageSink(publisher, topics.inbound),
        port=free_port(),
        max_message_bytes=20_000,
    )
    server.start()
    yield server.address
    server.stop()
    publisher.close()


def test_smtp_accepts_our_domains_refuses_others_and_tags_auto_replies(
    smtp_server: tuple[str, int], kafka_bootstrap: str, topics: Topics
) -> None:
    host, port = smtp_server
    with smtplib.SMTP(host, port, timeout=30) as client:
        refused = client.sendmail(
            "ann@example.com", ["help@acme.test", "x@elsewhere.test"], mail("m1@example.com")
        )
        assert refused == {
            "x@elsewhere.test": (550, b"5.7.1 Relaying denied: not a mailbox of this server")
        }
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("ann@example.com", ["x@elsewhere.test"], mail("m2@example.com"))
        client.sendmail(
            "ooo@example.com",
            ["help@acme.test"],
            mail("ooo@example.com", {"Auto-Submitted": "auto-replied"}),
        )
        with pytest.raises(smtplib.SMTPSenderRefused) as too_big:  # over data_size_limit
            client.sendmail("ann@example.com", ["help@acme.test"], b"x" * 30_000)
        assert too_big.value.smtp_code == 552
    received = {m.external_id: m for m in messages(kafka_bootstrap, topics, 2)}
    message, auto = received["m1@example.com"], received["ooo@example.com"]
    time.sleep(1)
    assert (
        len(consume_until(kafka_bootstrap, topics.inbound, 3, timeout=3, raise_on_timeout=False))
        == 2
    )
    assert (message.external_id, message.text) == ("m1@example.com", "Where is my parcel?")
    assert message.metadata["envelope_recipients"] == ["help@acme.test"]
    assert "auto_reply" not in message.metadata
    assert auto.external_id == "ooo@example.com"
    assert auto.metadata["tags"] == ["auto_reply"]
    assert auto.metadata["auto_reply_reason"] == "auto-submitted: auto-replied"


def test_smtp_answers_451_when_kafka_is_unreachable(topics: Topics) -> None:
    publisher = KafkaPublisher({"bootstrap.servers": "127.0.0.1:1"}, delivery_timeout_seconds=1.0)
    server = SmtpConnector(["acme.test"], MessageSink(publisher, topics.inbound), port=free_port())
    server.start()
    try:
        with (
            smtplib.SMTP(*server.address, timeout=30) as client,
            pytest.raises(smtplib.SMTPDataError) as error,
        ):
            client.sendmail("ann@example.com", ["help@acme.test"], mail("m3@example.com"))
        assert error.value.smtp_code == 451
    finally:
        server.stop()
        publisher.close()


@pytest.fixture
def imap_server(tmp_path: Path) -> Iterator[int]:
    """pymap's in-memory IMAP server (user demouser/demopass) on a free loopback port."""
    port = free_port()
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "pymap"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-tls",
            "dict",
            "--demo-data",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "pymap.log").open("w"),
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail(f"pymap did not start: {(tmp_path / 'pymap.log').read_text()}")
            time.sleep(0.2)
    try:
        yield port
    finally:
        process.terminate()
        process.wait(10)


def imap_client(port: int) -> IMAPClient:
    client = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=10)
    client.login("demouser", "demopass")
    client.select_folder("INBOX")
    return client


async def test_imap_marks_seen_only_after_kafka_acknowledged(
    imap_server: int, kafka_bootstrap: str, topics: Topics
) -> None:
    client = imap_client(imap_server)
    client.add_flags(client.search(["ALL"]), [b"\\Seen"])  # pymap's demo mail is not ours
    client.append("INBOX", mail("imap-1@example.com"))
    client.append("INBOX", mail("imap-ooo@example.com", {"Precedence": "bulk"}))
    config = ImapConfig(
        host="127.0.0.1", port=imap_server, use_ssl=False, username="demouser", password="demopass"
    )
    down = KafkaPublisher({"bootstrap.servers": "127.0.0.1:1"}, delivery_timeout_seconds=1.0)
    result = await ImapPoller(config, MessageSink(down, topics.inbound)).poll_once()
    down.close()
    assert result.published == 0 and result.left_unseen == 2
    assert len(client.search(["UNSEEN"])) == 2  # Kafka did not take it: still unseen
    create_topics(kafka_bootstrap, [topics.inbound])
    up = KafkaPublisher({"bootstrap.servers": kafka_bootstrap})
    result = await ImapPoller(config, MessageSink(up, topics.inbound)).poll_once()
    up.close()
    assert (result.published, result.auto_replies) == (2, 1)
    assert client.search(["UNSEEN"]) == []
    client.logout()
    received = {m.external_id: m for m in messages(kafka_bootstrap, topics, 2)}
    assert received["imap-1@example.com"].metadata["source"] == "imap"
    assert len(received) == 2
    [auto] = [m for m in received.values() if m.metadata.get("auto_reply")]
    assert auto.metadata["tags"] == ["auto_reply"]


@pytest.fixture
async def ingress(kafka_bootstrap: str, topics: Topics) -> AsyncIterator[httpx.AsyncClient]:
    create_topics(kafka_bootstrap, [topics.inbound])
    publisher = KafkaPublisher({"bootstrap.servers": kafka_bootstrap})
    routers = channel_routers(
        MessageSink(publisher, topics.inbound),
        64 * 1024,
        email=EmailSettings(email_webhook_secret="email-secret"),
    )
    app = create_app(
        publisher, topics, 64 * 1024, list(routers.values()), auth=IngressAuth.without_keys()
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://i"
    ) as http:
        yield http
    publisher.close()


async def test_inbound_parse_raw_mailgun_and_sendgrid(
    ingress: httpx.AsyncClient, kafka_bootstrap: str, topics: Topics
) -> None:
    path = "/v1/channels/email/inbound"
    raw = mail("raw-1@example.com")
    now = str(int(time.time()))
    answer = await ingress.post(
        path,
        content=raw,
        headers={
            "content-type": "message/rfc822",
            "X-Escalator-Timestamp": now,
            "X-Escalator-Signature": webhook_signature("email-secret", now, raw),
        },
    )
    assert answer.status_code == 200, answer.text
    token = "a" * 50
    mailgun = {
        "timestamp": now,
        "token": token,
        "signature": mailgun_signature("email-secret", now, token),
        "body-mime": mail("mailgun-1@example.com").decode(),
    }
    answer = await ingress.post(path, files={k: (None, v) for k, v in mailgun.items()})
    assert answer.status_code == 200, answer.text
    basic = base64.b64encode(b"escalator:email-secret").decode()
    answer = await ingress.post(
        path,
        data={"email": mail("sendgrid-1@example.com").decode()},
        headers={"authorization": f"Basic {basic}"},
    )
    assert answer.status_code == 200, answer.text
    ooo = await ingress.post(
        path,
        data={"email": mail("ooo-2@example.com", {"X-Autoreply": "yes"}).decode()},
        headers={"authorization": f"Basic {basic}"},
    )
    assert ooo.json()["accepted"] == 1
    received = {m.external_id: m for m in messages(kafka_bootstrap, topics, 4)}
    assert set(received) == {
        "raw-1@example.com",
        "mailgun-1@example.com",
        "sendgrid-1@example.com",
        "ooo-2@example.com",
    }
    assert received["ooo-2@example.com"].metadata["tags"] == ["auto_reply"]
    forged = {**mailgun, "signature": mailgun_signature("guess", now, token)}
    answer = await ingress.post(path, files={k: (None, v) for k, v in forged.items()})
    assert answer.status_code == 401
    answer = await ingress.post(
        path,
        data={"email": "x"},
        headers={"authorization": "Basic " + base64.b64encode(b"a:b").decode()},
    )
    assert answer.status_code == 401
    # no address anywhere: still a message (tagged automatic: it can never be answered)
    answer = await ingress.post(
        path, data={"email": "no headers at all"}, headers={"authorization": f"Basic {basic}"}
    )
    assert (answer.status_code, answer.json()["accepted"]) == (200, 1)
    answer = await ingress.post(
        path, content=json.dumps({"a": 1}), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400


async def test_imap_and_the_webhook_record_dkim_and_dmarc(
    imap_server: int, kafka_bootstrap: str, topics: Topics
) -> None:
    key = DkimKey.generate()
    answers = FakeDns()
    answers.add("_dmarc.example.com", "TXT", "v=DMARC1; p=reject")
    key.publish(answers, "example.com")
    authenticator = MailAuthenticator(answers)
    create_topics(kafka_bootstrap, [topics.inbound])
    publisher = KafkaPublisher({"bootstrap.servers": kafka_bootstrap})
    sink = MessageSink(publisher, topics.inbound)
    client = imap_client(imap_server)
    client.add_flags(client.search(["ALL"]), [b"\\Seen"])
    client.append("INBOX", key.sign(signed_mail("ann@example.com", "imap-dkim@x"), "example.com"))
    client.append("INBOX", signed_mail("ceo@example.com", "imap-forged@x"))
    client.logout()
    config = ImapConfig(
        host="127.0.0.1", port=imap_server, use_ssl=False, username="demouser", password="demopass"
    )
    result = await ImapPoller(config, sink, authenticator=authenticator).poll_once()
    assert result.published == 2
    app = create_app(
        publisher,
        topics,
        1 << 20,
        [email_webhook.router("s", 300, sink, 1 << 20, authenticator=authenticator)],
        auth=IngressAuth.without_keys(),
    )
    path = "/v1/channels/email/inbound"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://i"
    ) as http:
        for raw in (
            key.sign(signed_mail("ann@example.com", "hook-dkim@x"), "example.com"),
            nested_multipart(3_000),
        ):
            now = str(int(time.time()))
            answer = await http.post(
                path,
                content=raw,
                headers={
                    "content-type": "message/rfc822",
                    "X-Escalator-Timestamp": now,
                    "X-Escalator-Signature": webhook_signature("s", now, raw),
                },
            )
    assert answer.status_code == 413  # the MIME bomb
    publisher.close()
    received = {m.external_id: m for m in messages(kafka_bootstrap, topics, 3)}
    for genuine in ("imap-dkim@x", "hook-dkim@x"):
        auth = received[genuine].metadata["auth"]
        assert (auth["spf"], auth["dkim"], auth["dmarc"]) == ("none", "pass", "pass")
        assert received[genuine].customer.verified == ["email"]
    forged = received["imap-forged@x"]
    assert (forged.metadata["auth"]["dmarc"], forged.customer.verified) == ("fail", [])


async def test_sendgrids_envelope_and_sender_ip_give_the_fallback_sender_and_spf(
    kafka_bootstrap: str, topics: Topics
) -> None:
    answers = FakeDns()
    answers.add("_dmarc.example.com", "TXT", "v=DMARC1; p=reject")
    answers.add("example.com", "TXT", "v=spf1 ip4:192.0.2.0/24 -all")
    create_topics(kafka_bootstrap, [topics.inbound])
    publisher = KafkaPublisher({"bootstrap.servers": kafka_bootstrap})
    sink = MessageSink(publisher, topics.inbound)
    authenticator = MailAuthenticator(answers)
    app = create_app(
        publisher,
        topics,
        1 << 20,
        [email_webhook.router("s", 300, sink, 1 << 20, authenticator=authenticator)],
        auth=IngressAuth.without_keys(),
    )
    basic = base64.b64encode(b"escalator:s").decode()
    no_from = b"To: help@acme.test\r\nMessage-ID: <sg-nofrom@x>\r\n\r\nHelp\r\n"
    posts = [
        (no_from, {"from": "ann@example.com", "to": ["help@acme.test"]}, "203.0.113.5"),
        (signed_mail("ann@example.com", "sg-spf@x"), {"from": "b@example.com"}, "192.0.2.10"),
    ]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://i"
    ) as http:
        for raw, envelope, ip in posts:
            answer = await http.post(
                "/v1/channels/email/inbound",
                data={"email": raw.decode(), "envelope": json.dumps(envelope), "sender_ip": ip},
                headers={"authorization": f"Basic {basic}"},
            )
            assert answer.status_code == 200, answer.text
    publisher.close()
    received = {m.external_id: m for m in messages(kafka_bootstrap, topics, 2)}
    fallback = received["sg-nofrom@x"]
    assert (fallback.sender, fallback.metadata["sender_source"]) == ("ann@example.com", "mail_from")
    assert fallback.metadata["auth"]["spf"] == "fail"  # 203.0.113.5 is not example.com's
    assert fallback.customer.verified == []
    aligned = received["sg-spf@x"]
    assert (aligned.metadata["auth"]["spf"], aligned.metadata["auth"]["dmarc"]) == ("pass", "pass")
    assert aligned.customer.verified == ["email"]
