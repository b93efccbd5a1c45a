"""SPF, DKIM and DMARC on inbound mail, against a fixed set of DNS answers (no network):
a spoofed From never passes DMARC, so it is never a verified address."""

from __future__ import annotations

import pytest

from connectors.email.auth import (
    Connection,
    MailAuthenticator,
    from_domain_of,
    organisational_domain,
    with_authentication,
)
from connectors.email.parse import parse_email
from tests.connectors.mail_auth_support import DkimKey, FakeDns, mail


@pytest.fixture(scope="module")
def key() -> DkimKey:
    return DkimKey.generate()


@pytest.fixture
def answers(key: DkimKey) -> FakeDns:
    fake = FakeDns()
    fake.add("_dmarc.example.com", "TXT", "v=DMARC1; p=reject")
    fake.add("example.com", "TXT", "v=spf1 ip4:192.0.2.0/24 -all")
    key.publish(fake, "example.com")
    fake.add("_dmarc.victim.test", "TXT", "v=DMARC1; p=reject; adkim=s")
    fake.add("victim.test", "TXT", "v=spf1 ip4:198.51.100.7 -all")
    fake.add("attacker.test", "TXT", "v=spf1 ip4:203.0.113.0/24 -all")
    key.publish(fake, "attacker.test")
    return fake


def evaluate(
    raw: bytes, answers: FakeDns, connection: Connection | None = None
) -> dict[str, object]:
    parsed = parse_email(raw, envelope_sender=connection.mail_from if connection else None)
    auth = MailAuthenticator(answers).authenticate(raw, from_domain_of(parsed), connection)
    authenticated = with_authentication(parsed, auth)
    result: dict[str, object] = dict(authenticated.message.metadata["auth"])
    result["verified"] = authenticated.message.customer.verified
    return result


def test_an_aligned_dkim_signature_passes_dmarc_and_verifies_the_address(
    key: DkimKey, answers: FakeDns
) -> None:
    raw = key.sign(mail("Ann <ann@example.com>"), "example.com")
    result = evaluate(raw, answers)
    assert (result["dkim"], result["dmarc"], result["spf"]) == ("pass", "pass", "none")
    assert result["dkim_domains"] == ["example.com"]
    assert result["from_domain"] == "example.com"
    assert result["verified"] == ["email"]


def test_spf_alone_passes_dmarc_when_mail_from_is_aligned(answers: FakeDns) -> None:
    connection = Connection(ip="192.0.2.10", mail_from="bounce@example.com", helo="mx.example.com")
    result = evaluate(mail("ann@example.com"), answers, connection)
    assert (result["spf"], result["dkim"], result["dmarc"]) == ("pass", "none", "pass")
    assert result["verified"] == ["email"]


def test_a_spoofed_from_signed_by_the_attacker_fails_dmarc(key: DkimKey, answers: FakeDns) -> None:
    raw = key.sign(mail("CEO <ceo@victim.test>"), "attacker.test")
    connection = Connection(ip="203.0.113.9", mail_from="x@attacker.test", helo="attacker.test")
    result = evaluate(raw, answers, connection)
    assert (result["spf"], result["dkim"]) == ("pass", "pass")  # both pass, for attacker.test
    assert result["dmarc"] == "fail"  # but neither is aligned with victim.test
    assert result["dmarc_policy"] == "reject"
    assert result["verified"] == []


def test_a_spoofed_from_from_an_unlisted_ip_fails_spf_and_dmarc(answers: FakeDns) -> None:
    connection = Connection(ip="203.0.113.9", mail_from="ceo@victim.test", helo="evil")
    result = evaluate(mail("ceo@victim.test"), answers, connection)
    assert (result["spf"], result["dmarc"], result["verified"]) == ("fail", "fail", [])


def test_a_tampered_body_fails_dkim(key: DkimKey, answers: FakeDns) -> None:
    raw = key.sign(mail("ann@example.com"), "example.com").replace(b"parcel", b"refund")
    result = evaluate(raw, answers)
    assert (result["dkim"], result["dmarc"], result["verified"]) == ("fail", "fail", [])


def test_no_dmarc_record_is_none_and_verifies_nothing(key: DkimKey, answers: FakeDns) -> None:
    key.publish(answers, "plain.test")
    raw = key.sign(mail("bob@plain.test"), "plain.test")
    result = evaluate(raw, answers)
    assert (result["dkim"], result["dmarc"], result["verified"]) == ("pass", "none", [])


def test_dns_that_does_not_answer_is_a_temporary_error(key: DkimKey, answers: FakeDns) -> None:
    answers.failing.add("s1._domainkey.example.com")
    raw = key.sign(mail("ann@example.com"), "example.com")
    result = evaluate(raw, answers)
    assert result["dkim"] == "temperror"
    assert result["verified"] == []


def test_an_address_not_taken_from_from_is_never_verified(key: DkimKey, answers: FakeDns) -> None:
    raw = key.sign(
        b"Reply-To: ann@example.com\r\n" + mail("undisclosed-recipients:;"), "example.com"
    )
    result = evaluate(raw, answers)
    assert result["from_domain"] is None
    assert (result["dmarc"], result["verified"]) == ("none", [])


def test_only_the_injected_dns_is_asked(key: DkimKey, answers: FakeDns) -> None:
    raw = key.sign(mail("ann@example.com"), "example.com")
    evaluate(raw, answers, Connection(ip="192.0.2.10", mail_from="a@example.com", helo="h"))
    assert ("s1._domainkey.example.com", "TXT") in answers.asked
    assert ("_dmarc.example.com", "TXT") in answers.asked
    assert ("example.com", "TXT") in answers.asked


def test_organisational_domains_follow_the_public_suffix_list_and_its_default_rule() -> None:
    assert organisational_domain("mail.example.co.uk") == "example.co.uk"
    assert organisational_domain("x.github.io") == "x.github.io"  # a listed private suffix
    assert organisational_domain("a.victim.test") == "victim.test"  # unlisted TLD: one label
    assert organisational_domain("attacker.test") == "attacker.test"


def test_relaxed_alignment_takes_a_sibling_of_the_same_organisation(
    key: DkimKey, answers: FakeDns
) -> None:
    key.publish(answers, "mail.example.com")
    raw = key.sign(mail("news@news.example.com"), "mail.example.com")
    result = evaluate(raw, answers)  # the record is found at the organisational domain
    assert (result["dkim"], result["dmarc"], result["verified"]) == ("pass", "pass", ["email"])


def test_past_the_dns_time_budget_nothing_is_asked_and_nothing_passes(
    key: DkimKey, answers: FakeDns
) -> None:
    raw = key.sign(mail("ann@example.com"), "example.com")
    parsed = parse_email(raw)
    spent = MailAuthenticator(answers, timeout_seconds=0)  # the budget is spent at once
    auth = spent.authenticate(
        raw, from_domain_of(parsed), Connection(ip="192.0.2.10", mail_from="a@example.com")
    )
    assert (auth.spf, auth.dkim, auth.dmarc) == ("temperror", "temperror", "temperror")
    assert answers.asked == []
    assert with_authentication(parsed, auth).message.customer.verified == []
