"""Issue 12's mail findings as an attacker meets them, end to end: the SMTP server offered no
STARTTLS, took any number of recipients, and a spoofed `From` reached the victim's linked
customer. Each test failed on the code before the fix."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trustme

from connectors.channels import MessageSink
from connectors.email.auth import MailAuthenticator
from connectors.email.smtp import SmtpConnector, server_tls_context
from connectors.publisher import KafkaPublisher
from schemas import InboundMessage, Topics
from streams.identity import IdentityDirectory, implicit_customer
from tests.connectors.mail_auth_support import DkimKey, FakeDns, mail
from tests.connectors.test_email_servers import free_port, messages
from tests.kafka_support import create_topics


@pytest.fixture
def publisher(kafka_bootstrap: str, topics: Topics) -> Iterator[KafkaPublisher]:
    create_topics(kafka_bootstrap, [topics.inbound])
    client = KafkaPublisher({"bootstrap.servers": kafka_bootstrap})
    yield client
    client.close()


def test_starttls_is_offered_and_can_be_required(
    publisher: KafkaPublisher, topics: Topics, tmp_path: Path
) -> None:
    certificate = trustme.CA().issue_cert("localhost")
    certificate.cert_chain_pems[0].write_to_path(str(tmp_path / "c.pem"))
    certificate.private_key_pem.write_to_path(str(tmp_path / "k.pem"))
    context = server_tls_context(str(tmp_path / "c.pem"), str(tmp_path / "k.pem"))
    server = SmtpConnector(
        ["acme.test"],
        MessageSink(publisher, topics.inbound),
        port=free_port(),
        tls_context=context,
        require_tls=True,
    )
    server.start()
    try:
        with smtplib.SMTP(*server.address, timeout=30) as eavesdropped:
            eavesdropped.ehlo()
            assert eavesdropped.has_extn("starttls")
            assert eavesdropped.mail("ann@example.com")[0] == 530  # no mail in the clear
    finally:
        server.stop()


def test_one_mail_cannot_fan_out_to_unbounded_recipients(
    publisher: KafkaPublisher, topics: Topics
) -> None:
    server = SmtpConnector(["acme.test"], MessageSink(publisher, topics.inbound), port=free_port())
    server.start()
    try:
        with smtplib.SMTP(*server.address, timeout=30) as client:
            client.ehlo()
            client.mail("spammer@example.com")
            codes = [client.rcpt(f"user{n}@acme.test")[0] for n in range(150)]
        assert codes.count(250) == 100  # the default cap
        assert set(codes[100:]) == {452}
    finally:
        server.stop()


def test_a_spoofed_from_never_reaches_the_victims_linked_customer(
    publisher: KafkaPublisher, topics: Topics, kafka_bootstrap: str
) -> None:
    key = DkimKey.generate()
    answers = FakeDns()
    answers.add("_dmarc.bank.test", "TXT", "v=DMARC1; p=reject")
    answers.add("bank.test", "TXT", "v=spf1 ip4:198.51.100.0/24 -all")
    key.publish(answers, "bank.test")
    server = SmtpConnector(
        ["acme.test"],
        MessageSink(publisher, topics.inbound),
        port=free_port(),
        authenticator=MailAuthenticator(answers),
    )
    server.start()
    try:
        with smtplib.SMTP(*server.address, timeout=30) as attacker:
            attacker.sendmail(
                "ceo@bank.test", ["help@acme.test"], mail("CEO <ceo@bank.test>", "spoof@x")
            )
            genuine = key.sign(mail("CEO <ceo@bank.test>", "real@x"), "bank.test")
            attacker.sendmail("ceo@bank.test", ["help@acme.test"], genuine)
    finally:
        server.stop()
    received: dict[str, InboundMessage] = {
        m.external_id: m for m in messages(kafka_bootstrap, topics, 2)
    }
    directory = IdentityDirectory()  # the CEO's address was linked by a verified web form
    account = InboundMessage.model_validate(
        {
            "channel": "webform",
            "external_id": "f-1",
            "sender": "session-1",
            "text": "hi",
            "sent_at": datetime.now(UTC).isoformat(),
            "customer": {"id": "cust-ceo", "email": "ceo@bank.test", "verified": ["email"]},
        }
    )
    directory.resolve(account, datetime.now(UTC))
    spoofed = directory.resolve(received["spoof@x"], datetime.now(UTC))
    assert received["spoof@x"].metadata["auth"]["dmarc"] == "fail"
    assert spoofed.customer_id == implicit_customer("email:ceo@bank.test") != "cust-ceo"
    assert spoofed.records == []
    real = directory.resolve(received["real@x"], datetime.now(UTC))
    assert received["real@x"].metadata["auth"]["dmarc"] == "pass"
    assert real.customer_id == "cust-ceo"
