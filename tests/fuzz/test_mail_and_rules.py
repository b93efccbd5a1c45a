"""Fuzzing SMTP DATA through the real SMTP connector, and rule files through the loader.

SMTP: whatever bytes a client sends as a mail, our server answers with an SMTP code (250
accepted, a 4xx or 5xx refusal with its text) and stays up for the next session; it never
drops the connection or dies. Rules: whatever YAML an ops lead writes, `rules check` either
compiles it or reports problems with a line and column.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.channels import MessageSink
from connectors.email.smtp import SmtpConnector
from connectors.publisher import KafkaPublisher
from escalator.demo.processes import free_port
from schemas import Topics
from tests.connectors.test_email_corpus import _BODY, _HEADER
from tests.fuzz.strategies import FUZZ
from tests.kafka_support import create_topics
from tests.rules.test_properties import DOCUMENTS, YAMLISH, _dump, _never_crashes


@pytest.fixture(scope="module")
def smtp_server(kafka_bootstrap: str) -> Iterator[tuple[str, int]]:
    """Our SMTP connector for acme.test, publishing to the real broker."""
    topics = Topics("fuzz-smtp.")
    create_topics(kafka_bootstrap, [topics.inbound])
    publisher = KafkaPublisher({"bootstrap.servers": kafka_bootstrap})
    server = SmtpConnector(["acme.test"], MessageSink(publisher, topics.inbound), port=free_port())
    server.start()
    yield server.address
    server.stop()
    publisher.close()


MAILS = st.one_of(
    st.binary(max_size=3000),
    st.tuples(st.lists(_HEADER, max_size=12), _BODY).map(
        lambda parts: b"".join(parts[0]) + b"\r\n" + parts[1]
    ),
)
"""Raw mail: any bytes, or awkward headers over awkward bodies."""


@pytest.mark.kafka
@FUZZ
@given(raw=MAILS, sender=st.sampled_from(["ann@example.com", "", "x@y"]))
def test_smtp_answers_any_mail_with_a_code_and_stays_up(
    smtp_server: tuple[str, int], raw: bytes, sender: str
) -> None:
    with smtplib.SMTP(*smtp_server, timeout=30) as client:
        try:
            client.sendmail(sender, ["help@acme.test"], raw)
        except smtplib.SMTPResponseException as refusal:  # a refusal, with its code and text
            assert 400 <= refusal.smtp_code < 600
            assert refusal.smtp_error
        code, _ = client.noop()
        assert code == 250, "the session survived the mail"


@FUZZ
@given(YAMLISH)
def test_any_yamlish_text_compiles_or_says_where_it_is_wrong(text: str) -> None:
    _never_crashes(text)


@FUZZ
@given(DOCUMENTS)
def test_any_yaml_document_compiles_or_says_where_it_is_wrong(document: object) -> None:
    _never_crashes(_dump(document))
