"""The SMTP server as a hostile or careless sender meets it: mail without From, too many
recipients, MIME bombs, a slow parse, STARTTLS, and spoofing judged by SPF/DKIM/DMARC.
A real smtplib client against our aiosmtpd server, publishing to the real broker."""

from __future__ import annotations

import smtplib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import trustme

import connectors.email.smtp as smtp_module
from connectors.channels import MessageSink
from connectors.email.auth import MailAuthenticator
from connectors.email.parse import MAX_MIME_DEPTH
from connectors.email.smtp import SmtpConnector, server_tls_context
from connectors.email.workers import MailWorkers
from connectors.publisher import KafkaPublisher
from schemas import InboundMessage, Topics
from tests.connectors.mail_auth_support import DkimKey, FakeDns
from tests.connectors.mail_auth_support import mail as signed_mail_text
from tests.connectors.test_email_corpus import nested_multipart
from tests.connectors.test_email_servers import free_port, mail, messages
from tests.kafka_support import create_topics

ServerFactory = Callable[..., SmtpConnector]


@pytest.fixture
def start_server(kafka_bootstrap: str, topics: Topics) -> Iterator[ServerFactory]:
    create_topics(kafka_bootstrap, [topics.inbound])
    publisher = KafkaPublisher({"bootstrap.servers": kafka_bootstrap})
    started: list[SmtpConnector] = []

    def start(**options: Any) -> SmtpConnector:
        server = SmtpConnector(
            ["acme.test"], MessageSink(publisher, topics.inbound), port=free_port(), **options
        )
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
    publisher.close()


def test_mail_without_from_takes_the_envelope_sender_and_says_so(
    start_server: ServerFactory, kafka_bootstrap: str, topics: Topics
) -> None:
    server = start_server()
    no_from = b"To: help@acme.test\r\nSubject: help\r\nMessage-ID: <nofrom@x>\r\n\r\nHelp!\r\n"
    subject = " ".join(["word"] * 600)  # 2,999 characters, folded over many lines
    long_subject = mail("long@example.com").replace(
        b"Parcel missing", subject.replace(" ", "\r\n ", 599).encode()
    )
    bounce = b"Subject: Undeliverable\r\nMessage-ID: <bounce@x>\r\n\r\nGone.\r\n"
    with smtplib.SMTP(*server.address, timeout=30) as client:
        client.sendmail("ann@example.com", ["help@acme.test"], no_from)
        client.sendmail("ann@example.com", ["help@acme.test"], long_subject)
        client.sendmail("", ["help@acme.test"], bounce)  # MAIL FROM:<> and no address at all
    received = {m.external_id: m for m in messages(kafka_bootstrap, topics, 3)}
    assert received["bounce@x"].metadata["sender_source"] == "none"
    assert received["bounce@x"].metadata["tags"] == ["auto_reply"]
    message = received["nofrom@x"]
    assert message.sender == "ann@example.com"
    assert message.metadata["sender_source"] == "mail_from"
    assert message.metadata["envelope_sender"] == "ann@example.com"
    assert received["long@example.com"].subject_full == subject


def test_the_recipient_cap_answers_452(start_server: ServerFactory) -> None:
    server = start_server(max_recipients=3)
    with smtplib.SMTP(*server.address, timeout=30) as client:
        client.ehlo()
        client.mail("ann@example.com")
        for index in range(3):
            assert client.rcpt(f"r{index}@acme.test")[0] == 250
        code, reply = client.rcpt("r3@acme.test")
        assert (code, reply) == (452, b"4.5.3 Too many recipients")


def test_a_mime_bomb_is_refused_and_the_server_goes_on(
    start_server: ServerFactory, kafka_bootstrap: str, topics: Topics
) -> None:
    server = start_server()
    with smtplib.SMTP(*server.address, timeout=60) as client:
        for bomb in (nested_multipart(3_000), nested_multipart(MAX_MIME_DEPTH + 5)):
            with pytest.raises(smtplib.SMTPDataError) as refused:
                client.sendmail("ann@example.com", ["help@acme.test"], bomb)
            assert refused.value.smtp_code == 552
            assert b"5.3.4" in refused.value.smtp_error
        client.sendmail("ann@example.com", ["help@acme.test"], mail("after-bomb@example.com"))
    assert [m.external_id for m in messages(kafka_bootstrap, topics, 1)] == [
        "after-bomb@example.com"
    ]


class ParseGate:
    """Holds every parse until released, so a test knows a parse is running, whatever the
    machine's speed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        real = smtp_module.parse_email

        def gated(*args: Any, **kwargs: Any) -> Any:
            self.entered.set()
            self.release.wait(60)
            return real(*args, **kwargs)

        monkeypatch.setattr(smtp_module, "parse_email", gated)


def banner(address: tuple[str, int]) -> bytes:
    with socket.create_connection(address, timeout=10) as probe:
        return probe.recv(512)


def test_another_session_is_served_while_a_heavy_mail_parses(
    start_server: ServerFactory,
    monkeypatch: pytest.MonkeyPatch,
    kafka_bootstrap: str,
    topics: Topics,
) -> None:
    server = start_server()
    gate = ParseGate(monkeypatch)
    heavy = nested_multipart(MAX_MIME_DEPTH - 2) + (b"x" * 70 + b"\r\n") * 14_000

    def send_heavy() -> dict[str, Any]:
        with smtplib.SMTP(*server.address, timeout=60) as client:
            return client.sendmail("ann@example.com", ["help@acme.test"], heavy)

    with ThreadPoolExecutor(1) as pool:
        sent = pool.submit(send_heavy)
        assert gate.entered.wait(30), "the heavy mail never reached the parser"
        try:
            assert banner(server.address).startswith(b"220 ")  # the loop is free
        finally:
            gate.release.set()
        assert sent.result(60) == {}
    assert len(messages(kafka_bootstrap, topics, 1)) == 1


def test_past_the_time_bound_or_when_full_the_answer_is_a_temporary_failure(
    start_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    workers = MailWorkers(threads=1, max_in_flight=1, timeout_seconds=0.5)
    server = start_server(workers=workers)
    gate = ParseGate(monkeypatch)
    try:
        with smtplib.SMTP(*server.address, timeout=30) as client:
            with pytest.raises(smtplib.SMTPDataError) as slow:
                client.sendmail("ann@example.com", ["help@acme.test"], mail("slow@example.com"))
            assert (slow.value.smtp_code, slow.value.smtp_error[:5]) == (451, b"4.3.0")
            # the slow parse still holds the only slot: the next mail is told to come back
            with pytest.raises(smtplib.SMTPDataError) as busy:
                client.sendmail("ann@example.com", ["help@acme.test"], mail("busy@example.com"))
            assert (busy.value.smtp_code, busy.value.smtp_error[:5]) == (451, b"4.3.2")
    finally:
        gate.release.set()


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


def tls_server_context(authority: trustme.CA, tmp_path: Path) -> ssl.SSLContext:
    certificate = authority.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    certificate.cert_chain_pems[0].write_to_path(str(cert_file))
    certificate.private_key_pem.write_to_path(str(key_file))
    return server_tls_context(str(cert_file), str(key_file))


def client_context(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    authority.configure_trust(context)
    return context


def test_starttls_with_the_configured_certificate(
    start_server: ServerFactory,
    authority: trustme.CA,
    tmp_path: Path,
    kafka_bootstrap: str,
    topics: Topics,
) -> None:
    server = start_server(tls_context=tls_server_context(authority, tmp_path), require_tls=True)
    host, port = server.address
    with smtplib.SMTP(host, port, timeout=30) as plain:
        plain.ehlo()
        assert plain.has_extn("starttls")
        code, _ = plain.mail("ann@example.com")
        assert code == 530  # TLS required before any mail
    with smtplib.SMTP("localhost", port, timeout=30) as client:
        client.starttls(context=client_context(authority))  # verifies the certificate
        client.sendmail("ann@example.com", ["help@acme.test"], mail("tls@example.com"))
    assert [m.external_id for m in messages(kafka_bootstrap, topics, 1)] == ["tls@example.com"]


def test_a_self_signed_certificate_the_client_does_not_trust_is_refused(
    start_server: ServerFactory, authority: trustme.CA, tmp_path: Path
) -> None:
    server = start_server(tls_context=tls_server_context(authority, tmp_path))
    with (
        smtplib.SMTP("localhost", server.address[1], timeout=30) as client,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        client.starttls(context=ssl.create_default_context())


def test_spoofed_and_authenticated_mail_carry_their_evidence(
    start_server: ServerFactory, kafka_bootstrap: str, topics: Topics
) -> None:
    key = DkimKey.generate()
    answers = FakeDns()
    answers.add("_dmarc.example.com", "TXT", "v=DMARC1; p=reject")
    answers.add("example.com", "TXT", "v=spf1 ip4:127.0.0.0/8 -all")
    key.publish(answers, "example.com")
    answers.add("_dmarc.victim.test", "TXT", "v=DMARC1; p=reject")
    answers.add("victim.test", "TXT", "v=spf1 ip4:198.51.100.7 -all")
    server = start_server(authenticator=MailAuthenticator(answers))
    genuine = key.sign(
        signed_mail_text("Ann <ann@example.com>", "genuine@example.com"), "example.com"
    )
    spoofed = signed_mail_text("CEO <ceo@victim.test>", "spoofed@example.com")
    with smtplib.SMTP(*server.address, timeout=30) as client:
        client.sendmail("bounce@example.com", ["help@acme.test"], genuine)
        client.sendmail("ceo@victim.test", ["help@acme.test"], spoofed)
    received: dict[str, InboundMessage] = {
        m.external_id: m for m in messages(kafka_bootstrap, topics, 2)
    }
    good, bad = received["genuine@example.com"], received["spoofed@example.com"]
    assert good.metadata["auth"]["spf"] == "pass"  # 127.0.0.1 is in example.com's SPF
    assert (good.metadata["auth"]["dkim"], good.metadata["auth"]["dmarc"]) == ("pass", "pass")
    assert good.customer.verified == ["email"]
    assert bad.metadata["auth"]["spf"] == "fail"
    assert bad.metadata["auth"]["dmarc"] == "fail"
    assert bad.metadata["auth"]["from_domain"] == "victim.test"
    assert bad.customer.verified == []
